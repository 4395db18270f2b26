"""Results collections live in their own namespace (issue 16, item 4): a
manifest's name is always stored as `results_` + a safe name (`users` becomes
`results_users`), a name with markup or other characters is refused at upload
with a clear error, and a spider stored with a ledger name before the check
never shows that collection in the results browser or the API."""

import io
import zipfile

import pytest

from crawlfleet import users
from deploy_helpers import (app, assert_nothing_deployed, auth, client,  # noqa: F401
                            sandbox_tmp, upload)
from test_ui import PASSWORD, Browser


def project(results_collection):
    manifest = ('{"spiders": [{"name": "s1", "command": ["python", "main.py"], '
                f'"results_collection": {results_collection}}}]}}')
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("p/crawlfleet.json", manifest)
        zf.writestr("p/main.py", "print('hi')\n")
    return buf.getvalue()


@pytest.mark.parametrize("name", ['"<b>x</b>"', '"results_"', '"results_a.b"', '"fs.files"',
                                  '"../users"', '""', "42", '["results_x"]'])
def test_upload_refuses_a_results_collection_outside_the_namespace(client, auth, store, config,
                                                                   sandbox_tmp, name):
    response = upload(client, auth.admin, project(name))
    assert response.status_code == 400, response.get_json()
    error = response.get_json()["error"]
    assert error.startswith("crawlfleet.json: spider 's1': results_collection") and "\n" not in error
    assert_nothing_deployed(store, config, sandbox_tmp)


@pytest.mark.parametrize("name,stored", [("results_shared_books", "results_shared_books"),
                                         ("users", "results_users"),
                                         ("tokens", "results_tokens")])
def test_upload_keeps_a_results_collection_inside_the_namespace(client, auth, store, name,
                                                                stored):
    response = upload(client, auth.admin, project(f'"{name}"'))
    assert response.status_code == 201, response.get_json()
    assert store.spiders.find_one({"_id": "s1"})["results_collection"] == stored


def test_a_stored_spider_naming_the_ledger_shows_nothing(app, client, auth, store):
    """A spider registered before the check, pointing at `users`: the browser
    lists no such collection, refuses to open it, and the index still renders."""
    store.users.delete_many({})
    users.create_user(store, "admin", PASSWORD, "admin")
    users.create_user(store, "val", PASSWORD, "viewer")
    store.spiders.insert_one({"_id": "sneaky", "project": "p", "results_collection": "users"})
    store.spiders.insert_one({"_id": "marked", "project": "p",
                              "results_collection": "<script>x</script>"})
    viewer = Browser(app, store, "viewer")
    index = viewer.get("/results/")
    assert index.status_code == 200
    assert b"password_hash" not in index.data and b"/results/users" not in index.data
    assert viewer.get("/results/users").status_code == 404
    assert viewer.get("/results/tokens").status_code == 404
    task = {"_id": "t1", "spider": "sneaky", "results_collection": "users", "status": "finished",
            "created_at": 1.0}
    store.tasks.insert_one(task)
    response = client.get("/api/v1/tasks/t1/results", headers=auth.viewer)
    assert response.status_code == 404
    assert b"password_hash" not in viewer.get("/tasks/t1").data
