"""Versions (master/versions.py) and the file viewer (master/browse.py) through
/api/v1/projects: list, roll back, delete, run an older version, read files
straight from the stored zip."""

import json
import random
import string

import pytest

from crawlfleet.broker import Broker
from crawlfleet.models import new_task
from deploy_helpers import (BUNDLED, app, auth, client, copy_project, sandbox_tmp,  # noqa: F401
                            upload, zip_folder)
from master import discovery, dispatch


@pytest.fixture
def shop(tmp_path):
    return copy_project(BUNDLED / "plain_catalogue", tmp_path / "src" / "shop")


def add_second_spider(folder):
    manifest = json.loads((folder / "crawlfleet.json").read_text())
    manifest["spiders"].append({"name": "shop_extra", "command": ["python", "main.py"],
                                "description": "second"})
    (folder / "crawlfleet.json").write_text(json.dumps(manifest))


@pytest.fixture
def two_versions(client, auth, shop):
    """Project shop: v1 (one spider), then v2 (two spiders), v2 current."""
    v1 = upload(client, auth.admin, zip_folder(shop, top="shop"), label="v1").get_json()
    add_second_spider(shop)
    v2 = upload(client, auth.admin, zip_folder(shop, top="shop"), label="v2").get_json()
    assert v1["version"] != v2["version"]
    return v1["version"], v2["version"]


def pending_task(store, spider, version):
    task = new_task(dict(store.spiders.find_one({"_id": spider}), version=version), target="any")
    store.tasks.insert_one(task)
    return task["_id"]


def test_versions_are_listed_newest_first_with_the_current_one(client, auth, two_versions):
    v1, v2 = two_versions
    body = client.get("/api/v1/projects/shop/versions", headers=auth.viewer).get_json()
    assert body["current_version"] == v2
    assert [(v["id"], v["label"], v["current"]) for v in body["versions"]] == [
        (v2, "v2", True), (v1, "v1", False)]
    assert body["versions"][0]["spiders"] == ["plain_catalogue", "shop_extra"]
    assert body["versions"][0]["source"] == "upload"


def test_projects_list_and_one_project(client, auth, two_versions):
    v1, v2 = two_versions
    projects = client.get("/api/v1/projects", headers=auth.viewer).get_json()["projects"]
    assert [(p["name"], p["current_version"], p["current_label"], p["version_count"])
            for p in projects] == [("shop", v2, "v2", 2)]
    one = client.get("/api/v1/projects/shop", headers=auth.viewer).get_json()
    assert one["spiders"] == ["plain_catalogue", "shop_extra"]
    assert [v["id"] for v in one["versions"]] == [v2, v1]
    missing = client.get("/api/v1/projects/nope", headers=auth.viewer)
    assert missing.status_code == 404 and "known projects: shop" in missing.get_json()["error"]


def test_rollback_makes_the_older_version_and_its_spiders_current(client, auth, store,
                                                                   two_versions):
    """Activating v1 points the project and its spiders at v1; v2's extra spider goes."""
    v1, v2 = two_versions
    response = client.post(f"/api/v1/projects/shop/versions/{v1}/activate", headers=auth.operator)
    assert response.status_code == 200
    assert response.get_json()["current_version"] == v1
    assert store.projects.find_one({"_id": "shop"})["current_version"] == v1
    assert [(d["_id"], d["version"]) for d in store.spiders.find()] == [("plain_catalogue", v1)]
    # forward again, by label this time
    client.post("/api/v1/projects/shop/versions/v2/activate", headers=auth.operator)
    spiders = {d["_id"]: d for d in store.spiders.find()}
    assert {n: d["version"] for n, d in spiders.items()} == {"plain_catalogue": v2,
                                                             "shop_extra": v2}
    assert spiders["shop_extra"]["description"] == "second"


def write_manifest(folder, **fields):
    manifest = json.loads((folder / "crawlfleet.json").read_text())
    manifest["spiders"][0].update(fields)
    (folder / "crawlfleet.json").write_text(json.dumps(manifest))


def test_rollback_restores_every_field_of_each_spider(client, auth, store, shop):
    """A rollback gives each spider row back exactly what its version recorded:
    kind, version, command, description, results collection and retry policy
    (the newer version's policy does not stay behind)."""
    write_manifest(shop, description="first", results_collection="shop_v1",
                   retry={"max_attempts": 2, "backoff": 1, "on": ["error"]})
    v1 = upload(client, auth.admin, zip_folder(shop, top="shop"), label="v1").get_json()["version"]
    moving = ("updated_at", "created_at")

    def row():
        doc = store.spiders.find_one({"_id": "plain_catalogue"})
        return {k: v for k, v in doc.items() if k not in moving}

    first = row()
    write_manifest(shop, command=["python3", "main.py"], description="second",
                   results_collection="shop_v2",
                   retry={"max_attempts": 3, "backoff": 5, "on": ["timeout"]})
    v2 = upload(client, auth.admin, zip_folder(shop, top="shop"), label="v2").get_json()["version"]
    second = row()
    assert first["retry"] == {"max_attempts": 2, "backoff": 1.0, "on": ["error"]}
    assert second["retry"] == {"max_attempts": 3, "backoff": 5.0, "on": ["timeout"]}
    changed = {"version", "command", "description", "results_collection", "retry"}
    assert {k for k in first if first[k] != second.get(k)} == changed
    assert client.post(f"/api/v1/projects/shop/versions/{v1}/activate",
                       headers=auth.operator).status_code == 200
    assert row() == first
    assert client.post(f"/api/v1/projects/shop/versions/{v2}/activate",
                       headers=auth.operator).status_code == 200
    assert row() == second


def test_rollback_needs_a_writer_and_a_known_version(client, auth, two_versions):
    v1, _ = two_versions
    assert client.post(f"/api/v1/projects/shop/versions/{v1}/activate",
                       headers=auth.viewer).status_code == 403
    response = client.post("/api/v1/projects/shop/versions/nope/activate", headers=auth.admin)
    assert response.status_code == 404 and "no version 'nope'" in response.get_json()["error"]


def test_a_task_runs_the_version_it_recorded(store, config, two_versions):
    """dispatch pins a task to an older version on request; the default is the current one."""
    v1, v2 = two_versions
    broker = Broker(config)
    try:
        pinned = dispatch.run_spider(store, broker, config, "plain_catalogue", version=v1)[0]
        current = dispatch.run_spider(store, broker, config, "plain_catalogue")[0]
        with pytest.raises(Exception, match="has no spider 'shop_extra'"):
            dispatch.run_spider(store, broker, config, "shop_extra", version=v1)
    finally:
        broker.close()
    assert pinned["version"] == v1 and current["version"] == v2


def test_delete_version_refuses_the_current_one_and_one_in_use(client, auth, store, two_versions):
    v1, v2 = two_versions
    current = client.delete(f"/api/v1/projects/shop/versions/{v2}", headers=auth.admin)
    assert current.status_code == 409 and "current version" in current.get_json()["error"]
    task_id = pending_task(store, "plain_catalogue", v1)
    busy = client.delete(f"/api/v1/projects/shop/versions/{v1}", headers=auth.admin)
    assert busy.status_code == 409 and task_id in busy.get_json()["error"]
    assert store.versions.count_documents({}) == 2


def test_delete_version_removes_it_and_its_zip(client, auth, store, two_versions):
    v1, v2 = two_versions
    file_id = store.versions.find_one({"_id": v1})["file_id"]
    response = client.delete(f"/api/v1/projects/shop/versions/{v1}", headers=auth.operator)
    assert response.status_code == 200 and response.get_json()["deleted"] == v1
    assert [d["_id"] for d in store.versions.find()] == [v2]
    assert store.db["files.files"].find_one({"_id": file_id}) is None
    assert store.db["files.chunks"].find_one({"files_id": file_id}) is None


def test_delete_project_is_refused_while_its_tasks_run(client, auth, store, two_versions):
    v1, v2 = two_versions
    task_id = pending_task(store, "plain_catalogue", v2)
    response = client.delete("/api/v1/projects/shop", headers=auth.admin)
    assert response.status_code == 409 and task_id in response.get_json()["error"]
    store.tasks.update_one({"_id": task_id}, {"$set": {"status": "finished"}})
    response = client.delete("/api/v1/projects/shop", headers=auth.admin)
    assert response.status_code == 200
    assert sorted(response.get_json()["versions"]) == sorted([v1, v2])
    assert store.projects.count_documents({}) == 0 and store.versions.count_documents({}) == 0
    assert store.spiders.count_documents({}) == 0
    assert store.db["files.files"].find_one({}) is None
    assert store.tasks.find_one({"_id": task_id}) is not None  # history stays


def test_a_scan_leaves_a_deployed_project_alone(client, auth, store, config, tmp_path):
    """A project uploaded under the name of a bundled folder stays as uploaded
    after a rescan (a restart must not undo a deploy)."""
    folder = copy_project(BUNDLED / "plain_catalogue", tmp_path / "src" / "plain_catalogue")
    (folder / "NOTES.txt").write_text("my own copy\n")
    body = upload(client, auth.admin, zip_folder(folder, top="plain_catalogue")).get_json()
    report = discovery.scan(store, config)
    assert "plain_catalogue" not in [p["project"] for p in report["projects"]]
    assert store.projects.find_one({"_id": "plain_catalogue"})["current_version"] == body["version"]
    assert store.spiders.find_one({"_id": "plain_catalogue"})["version"] == body["version"]


# -- the file viewer ---------------------------------------------------------------

@pytest.fixture
def browsable(client, auth, shop):
    (shop / "data").mkdir()
    (shop / "data" / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00binary")
    # 1 MiB - 1 bytes of random letters, then a two-byte character across the limit
    rng = random.Random(7)
    head = "".join(rng.choice(string.ascii_letters) for _ in range(1024 * 1024 - 1))
    (shop / "big.txt").write_text(head + "é" + "tail" * 1000)
    body = upload(client, auth.admin, zip_folder(shop, top="shop")).get_json()
    assert "version" in body, body
    return body["version"]


def test_file_tree_lists_paths_and_sizes(client, auth, shop, browsable):
    body = client.get(f"/api/v1/projects/shop/versions/{browsable}/files",
                      headers=auth.viewer).get_json()
    files = {f["path"]: f["size"] for f in body["files"]}
    assert set(files) == {"crawlfleet.json", "main.py", "data/logo.png", "big.txt"}
    assert files["main.py"] == (shop / "main.py").stat().st_size


def test_file_content_as_text(client, auth, shop, browsable):
    body = client.get(f"/api/v1/projects/shop/versions/{browsable}/files/main.py",
                      headers=auth.viewer).get_json()
    assert body["content"] == (shop / "main.py").read_text()
    assert body["truncated"] is False and body["size"] == (shop / "main.py").stat().st_size


def test_large_file_is_cut_at_the_limit_on_a_character_boundary(client, auth, browsable):
    body = client.get(f"/api/v1/projects/shop/versions/{browsable}/files/big.txt",
                      headers=auth.viewer).get_json()
    assert body["truncated"] is True and body["size"] == 1024 * 1024 + 1 + 4000
    assert len(body["content"]) == 1024 * 1024 - 1 and body["content"].isascii()


@pytest.mark.parametrize("path, status, message", [
    ("nope.py", 404, "has no file"),
    ("data/logo.png", 400, "binary file"),
    ("data/../main.py", 400, "invalid file path"),
    ("./main.py", 400, "invalid file path"),
    ("data//logo.png", 400, "invalid file path"),
])
def test_file_viewer_refusals(client, auth, browsable, path, status, message):
    response = client.get(f"/api/v1/projects/shop/versions/{browsable}/files/{path}",
                          headers=auth.viewer)
    assert response.status_code == status
    assert message in response.get_json()["error"]


def test_file_viewer_unknown_version_is_404(client, auth, browsable):
    response = client.get("/api/v1/projects/shop/versions/0000000000000000/files",
                          headers=auth.viewer)
    assert response.status_code == 404
