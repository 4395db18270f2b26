"""The editor's API (master/editing.py, master/versiondiff.py, master/wizard.py):
save an edited version as a new one with its diff, compare two versions,
and make a project from a wizard template."""

import base64
import re

import pytest

from deploy_helpers import (BUNDLED, app, auth, client, copy_project, sandbox_tmp,  # noqa: F401
                            upload, zip_folder)


@pytest.fixture
def shop(client, auth, tmp_path):
    folder = copy_project(BUNDLED / "plain_catalogue", tmp_path / "src" / "shop")
    body = upload(client, auth.admin, zip_folder(folder, top="shop"), label="v1").get_json()
    assert "version" in body, body
    return body["version"]


def save(client, headers, version, ops, **extra):
    return client.post(f"/api/v1/projects/shop/versions/{version}/save", headers=headers,
                       json={"ops": ops, **extra})


def test_save_makes_a_new_current_version_with_parent_message_and_diff(client, auth, shop):
    main = client.get(f"/api/v1/projects/shop/versions/{shop}/files/main.py",
                      headers=auth.viewer).get_json()["content"]
    ops = [{"op": "write", "path": "main.py", "content": main.replace("1.0", "2.0")},
           {"op": "write", "path": "lib/helpers.py", "content": "X = 1\n"},
           {"op": "write", "path": "data/logo.bin",
            "base64": base64.b64encode(b"\x00\x01binary").decode()}]
    res = save(client, auth.operator, shop, ops, label="v2", message="bump the user agent")
    assert res.status_code == 201, res.get_json()
    body = res.get_json()
    assert body["parent"] == shop and body["message"] == "bump the user agent"
    assert body["label"] == "v2" and body["spiders"] == ["plain_catalogue"]
    assert not body["unchanged"]
    files = {f["path"]: f["status"] for f in body["diff"]["files"]}
    assert files == {"main.py": "changed", "lib/helpers.py": "added", "data/logo.bin": "added"}
    assert "+USER_AGENT = \"crawlfleet-plain-catalogue/2.0\"" in body["diff"]["diff"]
    assert "Binary or large file data/logo.bin added" in body["diff"]["diff"]
    listed = client.get("/api/v1/projects/shop/versions", headers=auth.viewer).get_json()
    assert listed["current_version"] == body["version"]
    newest = listed["versions"][0]
    assert newest["parent"] == shop and newest["message"] == "bump the user agent"
    tree = client.get(f"/api/v1/projects/shop/versions/{body['version']}/files",
                      headers=auth.viewer).get_json()
    assert {"lib/helpers.py", "data/logo.bin"} <= {f["path"] for f in tree["files"]}


def test_rename_and_delete_files_and_folders(client, auth, shop):
    first = save(client, auth.operator, shop, [
        {"op": "write", "path": "pkg/a.py", "content": "A = 1\n"},
        {"op": "write", "path": "pkg/b.py", "content": "B = 1\n"}]).get_json()
    res = save(client, auth.operator, first["version"], [
        {"op": "rename", "from": "pkg", "to": "lib"},
        {"op": "delete", "path": "lib/b.py"},
        {"op": "rename", "from": "lib/a.py", "to": "lib/renamed.py"}])
    assert res.status_code == 201, res.get_json()
    files = {f["path"]: f["status"] for f in res.get_json()["diff"]["files"]}
    assert files == {"pkg/a.py": "removed", "pkg/b.py": "removed", "lib/renamed.py": "added"}


def test_an_identical_edit_is_unchanged(client, auth, shop):
    res = save(client, auth.operator, shop, [])
    assert res.status_code == 200
    body = res.get_json()
    assert body["unchanged"] and body["version"] == shop and body["diff"]["files"] == []


@pytest.mark.parametrize("ops, status, words", [
    ([{"op": "write", "path": "../x.py", "content": ""}], 400, "invalid file path"),
    ([{"op": "write", "path": "a.py"}], 400, "either content"),
    ([{"op": "write", "path": "a.py", "base64": "@@"}], 400, "base64"),
    ([{"op": "chmod", "path": "a.py"}], 400, "op is one of"),
    ([{"op": "delete", "path": "nothing.py"}], 404, "nothing to delete"),
    ([{"op": "rename", "from": "main.py", "to": "crawlfleet.json"}], 400, "already exists"),
    ([{"op": "delete", "path": "crawlfleet.json"}], 400, "crawlfleet.json"),
    ("main.py", 400, "list"),
])
def test_bad_edits_are_refused_in_one_line(client, auth, shop, ops, status, words):
    res = save(client, auth.operator, shop, ops)
    assert res.status_code == status, res.get_json()
    assert words in res.get_json()["error"]
    listed = client.get("/api/v1/projects/shop/versions", headers=auth.viewer).get_json()
    assert [v["id"] for v in listed["versions"]] == [shop]


def test_a_viewer_may_not_save(client, auth, shop):
    assert save(client, auth.viewer, shop, []).status_code == 403


def test_compare_two_versions(client, auth, shop):
    new = save(client, auth.operator, shop, [
        {"op": "write", "path": "notes.txt", "content": "hello\n"}], label="v2").get_json()
    res = client.get("/api/v1/projects/shop/compare?from=v1&to=v2", headers=auth.viewer)
    body = res.get_json()
    assert res.status_code == 200, body
    assert body["from"]["id"] == shop and body["to"]["id"] == new["version"]
    assert body["files"] == [{"path": "notes.txt", "status": "added"}]
    assert body["counts"] == {"added": 1, "removed": 0, "changed": 0}
    assert "+hello" in body["diff"]
    back = client.get("/api/v1/projects/shop/compare?from=v2&to=v1", headers=auth.viewer)
    assert back.get_json()["files"] == [{"path": "notes.txt", "status": "removed"}]
    assert client.get("/api/v1/projects/shop/compare?from=v1",
                      headers=auth.viewer).status_code == 400
    assert client.get("/api/v1/projects/shop/compare?from=v1&to=nope",
                      headers=auth.viewer).status_code == 404


@pytest.mark.parametrize("template, kind, files", [
    ("scrapy", "scrapy", {"scrapy.cfg", "my_shop/settings.py", "my_shop/spiders/shop_books.py"}),
    ("script", "command", {"crawlfleet.json", "main.py"}),
])
def test_wizard_makes_a_project_from_a_template(client, auth, template, kind, files):
    listed = client.get("/api/v1/project-templates", headers=auth.viewer).get_json()
    assert {t["name"] for t in listed["templates"]} == {"scrapy", "script"}
    res = client.post(f"/api/v1/project-templates/{template}", headers=auth.operator,
                      json={"project": "my-shop", "spider": "shop_books"})
    body = res.get_json()
    assert res.status_code == 201, body
    assert body["kind"] == kind and body["spiders"] == ["shop_books"]
    tree = client.get(f"/api/v1/projects/my-shop/versions/{body['version']}/files",
                      headers=auth.viewer).get_json()
    assert files <= {f["path"] for f in tree["files"]}
    again = client.post(f"/api/v1/project-templates/{template}", headers=auth.operator,
                        json={"project": "my-shop"})
    assert again.status_code == 409


@pytest.mark.parametrize("template, body, words", [
    ("perl", {"project": "p"}, "unknown template"),
    ("script", {"project": "../p"}, "invalid project name"),
    ("scrapy", {"project": "p", "spider": "a-b"}, "invalid spider name"),
    ("script", {"project": "p", "extra": 1}, "unknown field"),
])
def test_wizard_refusals(client, auth, template, body, words):
    res = client.post(f"/api/v1/project-templates/{template}", headers=auth.operator, json=body)
    assert res.status_code == 400 and words in res.get_json()["error"]


def test_viewers_read_only_operators_edit(app, store, client, auth, shop):
    """The editor page and the project actions are for operators; a viewer
    sees the versions, the file viewer and the comparison, nothing to change."""
    from test_ui import Browser

    viewer, operator = Browser(app, store, "viewer"), Browser(app, store, "operator")
    page = viewer.get("/projects/shop").get_data(as_text=True)
    assert "Edit files" not in page and "delete-project-dialog" not in page
    assert viewer.get(f"/projects/shop/versions/{shop}/edit").status_code == 403
    assert viewer.post("/projects/shop/delete").status_code == 403
    assert viewer.post("/projects/new", {"project": "x", "template": "script"}).status_code == 403
    assert viewer.get("/projects/shop/compare").status_code == 200
    page = operator.get("/projects/shop").get_data(as_text=True)
    assert "Edit files" in page and "delete-project-dialog" in page
    editor = operator.get(f"/projects/shop/versions/{shop}/edit")
    assert editor.status_code == 200
    nonce = re.search(r'data-style-nonce="([^"]+)"', editor.get_data(as_text=True)).group(1)
    assert f"style-src 'self' 'nonce-{nonce}'" in editor.headers["Content-Security-Policy"]
    assert "script-src 'self';" in editor.headers["Content-Security-Policy"]


def test_the_project_pages_version_buttons_roll_back_and_delete(app, store, client, auth, shop):
    """"Roll back to this" makes a version current and "Delete" removes one that
    is not; each says so on the page, a refusal included, and a viewer may not."""
    from test_ui import Browser

    newer = save(client, auth.operator, shop, [
        {"op": "write", "path": "later.txt", "content": "x\n"}]).get_json()["version"]
    viewer, operator = Browser(app, store, "viewer"), Browser(app, store, "operator")
    page = operator.get("/projects/shop").get_data(as_text=True)
    assert f"/projects/shop/versions/{shop}/activate" in page
    assert f"/projects/shop/versions/{shop}/delete" in page
    assert viewer.post(f"/projects/shop/versions/{shop}/activate").status_code == 403
    done = operator.post(f"/projects/shop/versions/{shop}/activate", follow_redirects=True)
    assert f"shop: version {shop[:12]} is now current." in done.get_data(as_text=True)
    assert client.get("/api/v1/projects/shop/versions",
                      headers=auth.viewer).get_json()["current_version"] == shop
    refused = operator.post(f"/projects/shop/versions/{shop}/delete", follow_redirects=True)
    assert "deleted." not in refused.get_data(as_text=True)
    done = operator.post(f"/projects/shop/versions/{newer}/delete", follow_redirects=True)
    assert f"shop: version {newer[:12]} deleted." in done.get_data(as_text=True)
    assert operator.post(f"/projects/shop/versions/{shop}/rename").status_code == 404


def test_a_save_that_outlasts_deploy_wait_is_followed_by_its_inspection(app, config, client,
                                                                        auth, store, shop):
    """deploy_wait 0: 202 with the inspection to follow; the version it
    makes still records its parent and message."""
    from helpers import wait_for

    app.extensions["crawlfleet"].config = config.replace(deploy_wait=0.0)
    res = save(client, auth.operator, shop, [
        {"op": "write", "path": "later.txt", "content": "x\n"}], message="slow one")
    body = res.get_json()
    assert res.status_code == 202, body
    assert body["status"] == "inspecting" and body["parent"] == shop
    location = res.headers["Location"]

    def done():
        rec = client.get(location, headers=auth.viewer).get_json()
        return rec if rec["status"] != "inspecting" else None

    rec = wait_for(done, timeout=60, what="the inspection to end")
    assert rec["status"] == "done", rec
    wait_for(lambda: (store.versions.find_one({"_id": rec["version"]}) or {}).get("parent"),
             timeout=30, what="the parent recorded")
    version = store.versions.find_one({"_id": rec["version"]})
    assert version["parent"] == shop and version["message"] == "slow one"
