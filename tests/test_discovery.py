"""master.discovery: finding projects, listing their spiders, registering versions."""

import hashlib
import io
import json
import os
import shutil
import threading
import time
import zipfile
from pathlib import Path

import pytest

from crawlfleet import packaging
from crawlfleet.errors import ProjectError
from crawlfleet.models import SpiderKind
from master import discovery

ROOT = Path(__file__).resolve().parent.parent
BUNDLED = ROOT / "spiders"
PROJECTS = Path(__file__).resolve().parent / "fixtures" / "projects"


def copy_project(src, base, name=None):
    """Copy a project folder into `base` (as `name`), leaving caches behind."""
    dest = Path(base) / (name or Path(src).name)
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".scrapy"))
    return dest


def write_manifest(folder, spiders):
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "crawlfleet.json").write_text(json.dumps({"spiders": spiders}))
    for spider in spiders:
        (folder / f"{spider['name']}.py").write_text(f"print({spider['name']!r})\n")
    return folder


def cmd(name):
    return {"name": name, "command": ["python", f"{name}.py"]}


def errors_by_project(report):
    return {Path(e["path"]).name: e["error"] for e in report["errors"]}


def gridfs_bytes(store, file_id):
    return store.files.open_download_stream(file_id).read()


def pid_gone(pid):
    """True when `pid` no longer runs (gone, or a zombie nobody reaped yet)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state in ("Z", "X")


@pytest.fixture
def folder(tmp_path):
    """An empty spiders folder for a test to fill."""
    path = tmp_path / "spiders"
    path.mkdir()
    return path


LIST_TIMEOUT = 15


@pytest.fixture
def cfg(config, folder):
    """The test's config, pointed at its own spiders folder with a short list
    timeout (long enough for Scrapy's imports on a busy 2-core machine)."""
    return config.replace(spiders_path=str(folder), scrapy_list_timeout=LIST_TIMEOUT)


# -- inspecting one project ---------------------------------------------------


def _marked(marker):
    """PIDs of the processes whose command line holds `marker`."""
    found = []
    for entry in os.listdir("/proc"):
        try:
            if entry.isdigit() and marker in open(f"/proc/{entry}/cmdline", "rb").read():
                found.append(int(entry))
        except OSError:
            pass
    return found


def test_list_hangs_is_killed_after_timeout(cfg):
    """A `scrapy list` that never ends is killed (with its children) after scrapy_list_timeout."""
    marker = b"list-hangs-grandchild"
    before = set(_marked(marker))
    outcome = {}

    def inspect():
        started = time.monotonic()
        try:
            discovery.inspect(PROJECTS / "list_hangs", cfg)
        except ProjectError as exc:
            outcome["error"] = str(exc)
        outcome["elapsed"] = time.monotonic() - started

    thread = threading.Thread(target=inspect)
    thread.start()
    # the grandchild it started, seen from here (the sandbox has its own PIDs)
    grandchildren = []
    deadline = time.monotonic() + 60
    while not grandchildren and thread.is_alive() and time.monotonic() < deadline:
        grandchildren = [p for p in _marked(marker) if p not in before]
        time.sleep(0.05)
    thread.join(60)
    assert f"did not finish within {LIST_TIMEOUT} s" in outcome.get("error", ""), outcome
    assert LIST_TIMEOUT - 0.1 <= outcome["elapsed"] < LIST_TIMEOUT + 15, outcome
    assert grandchildren, "the project's grandchild was never seen"
    deadline = time.monotonic() + 5
    while not all(pid_gone(p) for p in grandchildren) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert all(pid_gone(p) for p in grandchildren), f"still running: {grandchildren}"


def test_list_crashes_reports_exit_code_and_traceback(cfg):
    """A settings module that raises gives a ProjectError with the exit code and traceback tail."""
    with pytest.raises(ProjectError) as info:
        discovery.inspect(PROJECTS / "list_crashes", cfg)
    message = str(info.value)
    assert "`scrapy list` failed with exit code 1" in message
    assert "RuntimeError: list_crashes settings module fails on purpose" in message
    assert len(message.splitlines()) <= 16  # the tail, not the whole output


def test_no_spiders_is_refused(cfg):
    """A valid Scrapy project without any spider is refused: 'defines no spiders'."""
    with pytest.raises(ProjectError, match="defines no spiders"):
        discovery.inspect(PROJECTS / "no_spiders", cfg)


def test_bad_manifest_is_refused(cfg):
    """A crawlfleet.json that is not JSON is a ProjectError saying so."""
    assert discovery.project_kind(PROJECTS / "bad_manifest") is SpiderKind.COMMAND
    with pytest.raises(ProjectError, match="crawlfleet.json is not valid JSON"):
        discovery.inspect(PROJECTS / "bad_manifest", cfg)


def test_two_command_spiders_are_read(cfg):
    """A manifest with two command spiders gives both, commands as lists."""
    kind, spiders = discovery.inspect(PROJECTS / "two_spiders_cmd", cfg)
    assert kind is SpiderKind.COMMAND
    assert spiders == [
        {"name": "cmd_first", "command": ["python", "first.py"],
         "description": "First of two.", "results_collection": None, "retry": None},
        {"name": "cmd_second", "command": ["python", "second.py"],
         "description": "", "results_collection": "results_second_items", "retry": None},
    ]


def test_bundled_scrapy_project_is_listed(cfg):
    """`scrapy list` on the bundled books project finds the books spider."""
    kind, spiders = discovery.inspect(BUNDLED / "books", cfg)
    assert kind is SpiderKind.SCRAPY
    assert [s["name"] for s in spiders] == ["books"]
    assert spiders[0]["command"] is None


def test_folder_of_neither_kind(cfg, tmp_path):
    """A folder with neither scrapy.cfg nor crawlfleet.json is not a project."""
    (tmp_path / "plain").mkdir()
    assert discovery.project_kind(tmp_path / "plain") is None
    with pytest.raises(ProjectError, match="neither scrapy.cfg nor crawlfleet.json"):
        discovery.inspect(tmp_path / "plain", cfg)


@pytest.mark.parametrize("manifest,message", [
    ([], "must hold"),
    ({"spiders": []}, "must hold"),
    ({"spiders": "x"}, "must hold"),
    ({"spiders": ["x"]}, "each spider must be an object"),
    ({"spiders": [{"name": "a"}]}, "needs a command list"),
    ({"spiders": [{"name": "a", "command": []}]}, "needs a command list"),
    ({"spiders": [{"name": "a", "command": ["python", 3]}]}, "needs a command list"),
    ({"spiders": [{"name": "../a", "command": ["x"]}]}, "invalid spider name"),
    ({"spiders": [{"command": ["x"]}]}, "invalid spider name"),
    ({"spiders": [cmd("twin"), {"name": "twin", "command": ["other"]}]}, "more than once"),
])
def test_malformed_manifests_are_refused(cfg, tmp_path, manifest, message):
    """Manifests of the wrong shape, bad commands, bad or repeated names are ProjectErrors."""
    project = tmp_path / "p"
    project.mkdir()
    (project / "crawlfleet.json").write_text(json.dumps(manifest))
    with pytest.raises(ProjectError, match=message):
        discovery.inspect(project, cfg)


def test_single_spider_manifest_shape(cfg, tmp_path):
    """A manifest that is one spider object (no "spiders" list) is accepted."""
    project = tmp_path / "p"
    project.mkdir()
    (project / "crawlfleet.json").write_text(json.dumps({"name": "solo", "command": "sh run.sh"}))
    _kind, spiders = discovery.inspect(project, cfg)
    assert [(s["name"], s["command"]) for s in spiders] == [("solo", ["sh", "run.sh"])]


# -- scanning the bundled spiders ---------------------------------------------


def test_scan_registers_bundled_projects(store, config):
    """The bundled folder registers books, plain_catalogue and node_catalogue, each with a verified GridFS zip."""
    report = discovery.scan(store, config)
    assert report["errors"] == []
    by_project = {p["project"]: p for p in report["projects"]}
    assert set(by_project) == {"books", "plain_catalogue", "node_catalogue"}
    assert by_project["books"]["spiders"] == ["books"]
    assert by_project["plain_catalogue"]["spiders"] == ["plain_catalogue"]

    spiders = {d["_id"]: d for d in store.spiders.find()}
    assert set(spiders) == {"books", "plain_catalogue", "node_catalogue"}
    assert spiders["books"]["kind"] == "scrapy"
    assert spiders["plain_catalogue"]["kind"] == "command"
    assert spiders["plain_catalogue"]["command"] == ["python", "main.py"]
    assert spiders["books"]["results_collection"] == "results_books"

    for name, result in by_project.items():
        version = store.versions.find_one({"_id": result["version"]})
        assert version["project"] == name
        assert spiders[name]["version"] == version["_id"]
        assert spiders[name]["project"] == name
        assert store.projects.find_one({"_id": name})["current_version"] == version["_id"]
        data = gridfs_bytes(store, version["file_id"])
        assert hashlib.sha256(data).hexdigest() == version["sha256"]
        assert len(data) == version["size"]
        # the stored zip is exactly what packing the folder gives
        version_id, packed, sha, files = packaging.pack(name, BUNDLED / name)
        assert (version_id, sha, len(files)) == (version["_id"], version["sha256"], version["files"])
        assert packed == data
        names = zipfile.ZipFile(io.BytesIO(data)).namelist()
        assert not any("__pycache__" in n for n in names)


def test_scan_again_creates_no_new_version(store, config):
    """A second scan of unchanged folders adds no version and no GridFS file."""
    first = discovery.scan(store, config)
    versions = sorted(d["_id"] for d in store.versions.find())
    files = store.db["files.files"].estimated_document_count()
    second = discovery.scan(store, config)
    assert [(p["project"], p["version"]) for p in second["projects"]] == \
        [(p["project"], p["version"]) for p in first["projects"]]
    assert sorted(d["_id"] for d in store.versions.find()) == versions
    assert len(versions) == 3  # books, plain_catalogue, node_catalogue
    assert store.db["files.files"].estimated_document_count() == files


# -- scanning folders a test controls -----------------------------------------


def test_changed_file_creates_new_version_and_moves_spider(store, cfg, folder):
    """Changing one file gives a new version; the spider moves to it; the old one is kept."""
    project = copy_project(BUNDLED / "plain_catalogue", folder)
    old = discovery.scan(store, cfg)["projects"][0]["version"]
    with open(project / "main.py", "a") as f:
        f.write("\n# changed\n")
    report = discovery.scan(store, cfg)
    assert report["errors"] == []
    new = report["projects"][0]["version"]
    assert new != old
    assert store.spiders.find_one({"_id": "plain_catalogue"})["version"] == new
    assert store.projects.find_one({"_id": "plain_catalogue"})["current_version"] == new
    assert {d["_id"] for d in store.versions.find({"project": "plain_catalogue"})} == {old, new}
    new_zip = zipfile.ZipFile(io.BytesIO(gridfs_bytes(
        store, store.versions.find_one({"_id": new})["file_id"])))
    assert new_zip.read("main.py").endswith(b"# changed\n")


def test_changed_scrapy_project_creates_new_version(store, cfg, folder):
    """A copied Scrapy project registers, and an edit to its spider makes a new version."""
    project = copy_project(BUNDLED / "books", folder)
    old = discovery.scan(store, cfg)["projects"][0]["version"]
    spider_file = project / "books" / "spiders" / "books.py"
    spider_file.write_text(spider_file.read_text() + "\n# changed\n")
    report = discovery.scan(store, cfg)
    assert report["errors"] == []
    new = report["projects"][0]["version"]
    assert new != old
    assert store.spiders.find_one({"_id": "books"})["version"] == new


def test_unchanged_scrapy_project_is_not_listed_again(store, cfg, folder, monkeypatch):
    """A master restart finds content it registered before: the version is
    immutable, so its spiders come from it instead of running the project's
    code again; an edited project is listed afresh."""
    project = copy_project(BUNDLED / "books", folder)
    first = discovery.scan(store, cfg)["projects"][0]

    def must_not_run(*args):
        raise AssertionError("listed again")

    monkeypatch.setattr(discovery, "inspect", must_not_run)
    again = discovery.scan(store, cfg)
    assert again["errors"] == [] and again["projects"][0]["version"] == first["version"]
    assert again["projects"][0]["spiders"] == ["books"]
    spider_file = project / "books" / "spiders" / "books.py"
    spider_file.write_text(spider_file.read_text() + "\n# changed\n")
    with pytest.raises(AssertionError, match="listed again"):
        discovery.scan(store, cfg)


def test_spider_name_of_another_project_is_not_stolen(store, cfg, folder):
    """A spider name already owned by another project is reported and keeps its owner."""
    write_manifest(folder / "alpha", [cmd("shared"), cmd("alpha_only")])
    write_manifest(folder / "beta", [cmd("shared"), cmd("beta_only")])
    report = discovery.scan(store, cfg)
    assert errors_by_project(report) == {
        "beta": "spider 'shared' already belongs to project 'alpha'"}
    by_project = {p["project"]: p for p in report["projects"]}
    assert by_project["alpha"]["spiders"] == ["shared", "alpha_only"]
    assert by_project["beta"]["spiders"] == ["beta_only"]
    shared = store.spiders.find_one({"_id": "shared"})
    assert shared["project"] == "alpha"
    assert shared["version"] == by_project["alpha"]["version"]
    assert store.spiders.find_one({"_id": "beta_only"})["project"] == "beta"
    # a second scan, and a change to beta, still leave 'shared' with alpha
    (folder / "beta" / "shared.py").write_text("print('beta wants it')\n")
    again = discovery.scan(store, cfg)
    assert errors_by_project(again) == {
        "beta": "spider 'shared' already belongs to project 'alpha'"}
    assert store.spiders.find_one({"_id": "shared"})["project"] == "alpha"
    assert store.spiders.find_one({"_id": "shared"})["version"] == by_project["alpha"]["version"]


def test_failing_projects_are_reported_while_others_register(store, cfg, folder):
    """Projects that fail discovery land in report['errors']; the good ones still register."""
    for name in ("list_crashes", "no_spiders", "bad_manifest", "two_spiders_cmd"):
        copy_project(PROJECTS / name, folder)
    copy_project(BUNDLED / "plain_catalogue", folder)
    (folder / "not_a_project").mkdir()
    (folder / "stray_file.txt").write_text("ignored")
    report = discovery.scan(store, cfg)
    errors = errors_by_project(report)
    assert set(errors) == {"list_crashes", "no_spiders", "bad_manifest"}
    assert "exit code 1" in errors["list_crashes"]
    assert "defines no spiders" in errors["no_spiders"]
    assert "not valid JSON" in errors["bad_manifest"]
    assert {p["project"] for p in report["projects"]} == {"two_spiders_cmd", "plain_catalogue"}
    assert {d["_id"] for d in store.spiders.find()} == {"cmd_first", "cmd_second",
                                                         "plain_catalogue"}
    # a spider's own collection is kept in the results namespace (issue 16, item 4)
    assert store.spiders.find_one({"_id": "cmd_second"})["results_collection"] \
        == "results_second_items"
    assert store.spiders.find_one({"_id": "cmd_first"})["results_collection"] == "results_cmd_first"
    assert store.projects.count_documents({}) == 2
    assert {d["project"] for d in store.versions.find()} == {"two_spiders_cmd", "plain_catalogue"}


def test_unpackable_project_does_not_stop_the_scan(store, cfg, folder):
    """A project that lists fine but cannot be packed (non-UTF-8 file name) is only reported."""
    broken = write_manifest(folder / "alpha", [cmd("a1")])
    with open(os.path.join(os.fsencode(broken), b"bad\xff.txt"), "wb") as f:
        f.write(b"x")
    write_manifest(folder / "beta", [cmd("b1")])
    report = discovery.scan(store, cfg)
    assert "not valid UTF-8" in errors_by_project(report)["alpha"]
    assert [p["project"] for p in report["projects"]] == ["beta"]
    assert [d["_id"] for d in store.spiders.find()] == ["b1"]


def test_hanging_project_does_not_stop_the_scan(store, cfg, folder):
    """A project whose `scrapy list` hangs is reported after the timeout; the rest registers."""
    copy_project(PROJECTS / "list_hangs", folder)
    copy_project(PROJECTS / "two_spiders_cmd", folder)
    started = time.monotonic()
    report = discovery.scan(store, cfg)
    assert time.monotonic() - started < LIST_TIMEOUT + 15
    assert "did not finish" in errors_by_project(report)["list_hangs"]
    assert [p["project"] for p in report["projects"]] == ["two_spiders_cmd"]


def test_removed_spider_stops_being_listed(store, cfg, folder):
    """A spider dropped from a manifest is deleted; the remaining one moves to the new version."""
    project = copy_project(PROJECTS / "two_spiders_cmd", folder)
    discovery.scan(store, cfg)
    assert {d["_id"] for d in store.spiders.find()} == {"cmd_first", "cmd_second"}
    manifest = json.loads((project / "crawlfleet.json").read_text())
    manifest["spiders"] = manifest["spiders"][:1]
    (project / "crawlfleet.json").write_text(json.dumps(manifest))
    report = discovery.scan(store, cfg)
    assert report["errors"] == []
    assert [d["_id"] for d in store.spiders.find()] == ["cmd_first"]
    assert store.spiders.find_one({"_id": "cmd_first"})["version"] == report["projects"][0]["version"]
    version = store.versions.find_one({"_id": report["projects"][0]["version"]})
    assert [s["name"] for s in version["spiders"]] == ["cmd_first"]


def test_removing_a_spider_leaves_other_projects_alone(store, cfg, folder):
    """Pruning a project's dropped spiders never touches another project's spiders."""
    write_manifest(folder / "alpha", [cmd("a1")])
    write_manifest(folder / "beta", [cmd("b1"), cmd("b2")])
    discovery.scan(store, cfg)
    write_manifest(folder / "beta", [cmd("b2")])
    discovery.scan(store, cfg)
    assert {d["_id"]: d["project"] for d in store.spiders.find()} == {"a1": "alpha", "b2": "beta"}


def test_missing_spiders_folder_is_reported(store, config, tmp_path, folder):
    """A spiders_path entry that does not exist is an error; the other folders still scan."""
    write_manifest(folder / "alpha", [cmd("a1")])
    missing = tmp_path / "missing"
    cfg = config.replace(spiders_path=f"{missing}:{folder}", scrapy_list_timeout=LIST_TIMEOUT)
    report = discovery.scan(store, cfg)
    assert report["errors"] == [{"path": str(missing), "error": "folder does not exist"}]
    assert [p["project"] for p in report["projects"]] == ["alpha"]


def test_ignored_files_do_not_make_a_new_version(store, cfg, folder):
    """Caches written next to a project (__pycache__, .scrapy) do not create a version."""
    project = copy_project(PROJECTS / "two_spiders_cmd", folder)
    first = discovery.scan(store, cfg)["projects"][0]["version"]
    (project / "__pycache__").mkdir()
    (project / "__pycache__" / "first.cpython-311.pyc").write_bytes(b"\0" * 16)
    (project / ".scrapy").mkdir()
    (project / ".scrapy" / "state").write_text("x")
    assert discovery.scan(store, cfg)["projects"][0]["version"] == first
    assert store.versions.count_documents({}) == 1


def test_register_same_content_twice_keeps_one_version(store, folder, cfg):
    """Registering identical content twice stores one version and one GridFS file."""
    project = copy_project(PROJECTS / "two_spiders_cmd", folder)
    kind, spiders = discovery.inspect(project, cfg)
    first = discovery.register(store, "two_spiders_cmd", project, kind, spiders, source="test")
    second = discovery.register(store, "two_spiders_cmd", project, kind, spiders, source="test")
    assert first == second
    assert store.versions.count_documents({}) == 1
    assert store.db["files.files"].estimated_document_count() == 1
