"""A deploy while its spiders are listed (master/inspections.py): an upload
that outlasts `deploy_wait` answers 202 at once with the version
`inspecting`, which the API and the projects pages show until its spiders
land, or its error (message first, traceback folded under it); nothing is
registered for a failed one."""

import re
import time

import pytest

from crawlfleet import users
from deploy_helpers import (PROJECTS, app, assert_nothing_deployed, auth,  # noqa: F401
                            client, sandbox_tmp, upload, zip_folder)
from helpers import wait_for
from master import inspections


@pytest.fixture
def pages(app, store):
    """A web UI session of a viewer: the projects pages as people see them."""
    users.create_user(store, "u-view", "a viewer's password", "viewer")
    ui = app.test_client()
    token = re.search(rb'name="csrf_token" value="([^"]+)"', ui.get("/login").data).group(1)
    response = ui.post("/login", data={"username": "u-view", "password": "a viewer's password",
                                       "csrf_token": token.decode()})
    assert response.status_code == 302, response.data
    return lambda path: ui.get(path).get_data(as_text=True)


def answered_at_once(client, auth, app, config, name, **settings):
    """Upload fixture project `name` with deploy_wait 0: the 202 and its body."""
    app.extensions["crawlfleet"].config = config.replace(deploy_wait=0.0, **settings)
    response = upload(client, auth.operator, zip_folder(PROJECTS / name, top=name))
    assert response.status_code == 202, response.get_json()
    body = response.get_json()
    assert body["status"] == "inspecting" and body["project"] == name, body
    assert response.headers["Location"].endswith(
        f"/api/v1/projects/{name}/inspections/{body['inspection']}")
    return body


def follow(client, auth, body, timeout=240):
    url = f"/api/v1/projects/{body['project']}/inspections/{body['inspection']}"
    states = []

    def ended():
        states.append(client.get(url, headers=auth.viewer).get_json())
        return states[-1]["status"] != "inspecting"

    wait_for(ended, timeout=timeout, what=f"inspection of {body['project']} ended")
    return states[-1]


def test_an_upload_outlasting_deploy_wait_answers_202_then_its_spiders_land(
        client, auth, app, store, config, sandbox_tmp):
    """The slugify project's environment takes seconds to build: the upload
    answers before that, and the inspection ends with its version and spiders."""
    body = answered_at_once(client, auth, app, config, "needs_slugify")
    state = follow(client, auth, body)
    assert state["status"] == "done", state
    assert state["spiders"] == ["slug_titles"] and state["new"] is True
    assert store.spiders.find_one({"_id": "slug_titles"})["project"] == "needs_slugify"
    project = client.get("/api/v1/projects/needs_slugify", headers=auth.viewer).get_json()
    assert project["current_version"] == state["version"]
    assert project["inspections"] == []  # nothing left to show once it landed
    # the unpacked zip went with the thread that listed it
    wait_for(lambda: list((config.home_path / "tmp").iterdir()) == [], timeout=30,
             what="HOME/tmp emptied")


def test_the_pages_show_inspecting_then_the_readable_error_and_nothing_registers(
        client, auth, app, store, config, sandbox_tmp, pages):
    """A listing that hangs is `inspecting…` on the projects page (and in the
    API) while it runs, then failed with its message; nothing is deployed."""
    body = answered_at_once(client, auth, app, config, "list_hangs", scrapy_list_timeout=8.0)
    listed = client.get("/api/v1/projects", headers=auth.viewer).get_json()
    assert [(i["project"], i["status"]) for i in listed["inspections"]] == [
        ("list_hangs", "inspecting")]
    page = pages("/projects/")
    assert "inspecting…" in page and 'data-status="inspecting"' in page
    state = follow(client, auth, body)
    assert state["status"] == "failed" and "did not finish within 8 s" in state["error"]
    page = pages("/projects/")
    assert 'data-status="failed"' in page and "did not finish within 8 s" in page
    wait_for(lambda: list((config.home_path / "tmp").iterdir()) == [], timeout=30,
             what="HOME/tmp emptied")
    store.inspections.delete_many({})
    assert_nothing_deployed(store, config, sandbox_tmp)


def test_a_failure_reads_message_first_with_the_traceback_folded(client, auth, app, store,
                                                                 config, sandbox_tmp, pages):
    body = answered_at_once(client, auth, app, config, "syntax_error")
    state = follow(client, auth, body)
    assert state["error"].startswith("`scrapy list` failed with exit code 1: SyntaxError")
    assert str(config.home_path) not in state["error"]
    page = pages("/projects/")
    message = page.index('<span class="message">`scrapy list` failed with exit code 1: '
                         'SyntaxError')
    assert message < page.index("<details><summary") < page.index("broken.py")
    assert str(config.home_path) not in page
    assert store.projects.count_documents({}) == 0 and store.versions.count_documents({}) == 0


def test_a_record_whose_process_died_reads_as_interrupted(store, config):
    inspection_id = inspections.begin(store, config, "gone", label=None, source="upload")
    assert inspections.get(store, "gone", inspection_id)["status"] == "inspecting"
    store.inspections.update_one({"_id": inspection_id}, {"$set": {"deadline": time.time() - 1}})
    state = inspections.get(store, "gone", inspection_id)
    assert state["status"] == "failed" and "interrupted" in state["error"]


def test_a_success_hides_the_failures_before_it_not_after(store, config):
    first = inspections.begin(store, config, "p", label=None, source="upload")
    inspections.fail(store, first, "broken")
    assert [i["id"] for i in inspections.shown(store, "p")] == [first]
    time.sleep(0.01)  # started_at orders them
    second = inspections.begin(store, config, "p", label=None, source="upload")
    inspections.succeed(store, second, {"version": "v", "spiders": ["s"], "new": True})
    assert inspections.shown(store, "p") == []
    time.sleep(0.01)
    third = inspections.begin(store, config, "p", label=None, source="upload")
    assert [i["status"] for i in inspections.shown(store)] == ["inspecting"]
    assert inspections.get(store, "p", third)["project"] == "p"


def test_an_unknown_inspection_is_404(client, auth, store):
    response = client.get("/api/v1/projects/p/inspections/nope", headers=auth.viewer)
    assert response.status_code == 404 and "no inspection" in response.get_json()["error"]


def test_the_same_deploy_within_deploy_wait_answers_as_before(client, auth, store, config,
                                                               sandbox_tmp):
    """The default wait covers a quick listing: 201 with the version, and its
    record says done."""
    response = upload(client, auth.operator,
                      zip_folder(PROJECTS / "two_spiders_cmd", top="two_spiders_cmd"))
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["status"] == "done"
    assert inspections.get(store, "two_spiders_cmd", body["inspection"])["version"] == \
        body["version"]
