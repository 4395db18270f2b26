"""The Scrapyd-compatible endpoints (web/scrapyd/) under /scrapyd/ over real
HTTP: the real `scrapyd-deploy` (scrapyd-client) builds and uploads an egg of
the bundled books project, schedule.json runs it on a real node under the
client's job id, and every endpoint answers as Scrapyd 1.6 does (errors as
200 {"status": "error"}, Scrapyd's messages). The root listener and Scrapyd's
own integration suite are in test_scrapyd_root.py."""

import io
import json
import os
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import requests

from helpers import task_log, wait_task
from crawlfleet.users import create_user
from deploy_helpers import (BUNDLED, app, assert_nothing_deployed, auth, client,  # noqa: F401
                            copy_project, live, sandbox_tmp)

BIN = Path(sys.executable).parent


def run_deploy(folder, *args, timeout=180, **extra_env):
    """scrapyd-deploy in its own process group, ended with it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRAWLFLEET_")}
    env.update(extra_env)
    proc = subprocess.Popen([str(BIN / "scrapyd-deploy"), *args], cwd=folder, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return proc.returncode, out


class Scrapyd:
    """requests against /scrapyd/ with basic auth (any user name, token as password)."""

    def __init__(self, url, token, user="deployer"):
        self.base = url + "/scrapyd/"
        self.auth = (user, token)

    def get(self, endpoint, **params):
        return requests.get(self.base + endpoint, params=params, auth=self.auth, timeout=60)

    def post(self, endpoint, data=None, files=None):
        return requests.post(self.base + endpoint, data=data, files=files, auth=self.auth,
                             timeout=120)


@pytest.fixture
def scrapyd(live, auth):
    return Scrapyd(live.url, auth.operator_token)


def make_egg(spider="eggspider", package="eggproj", entry_point=True, marker="", requires=None,
             imports=""):
    """An egg as bdist_egg lays it out: the package, compiled files, EGG-INFO
    (with requires.txt when `requires`: its setup.py's install_requires)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"{package}/__init__.py", f"# {marker}\n")
        zf.writestr(f"{package}/__pycache__/__init__.cpython-311.pyc", b"\x00compiled")
        zf.writestr(f"{package}/settings.py",
                    f'BOT_NAME = "{package}"\nSPIDER_MODULES = ["{package}.spiders"]\n')
        zf.writestr(f"{package}/spiders/__init__.py", "")
        zf.writestr(f"{package}/spiders/one.py",
                    f"import scrapy\n{imports}\n\nclass One(scrapy.Spider):\n"
                    f"    name = {spider!r}\n    start_urls = []\n")
        zf.writestr("EGG-INFO/PKG-INFO", "Metadata-Version: 2.1\nName: project\n")
        zf.writestr("EGG-INFO/top_level.txt", f"{package}\n")
        if requires is not None:
            zf.writestr("EGG-INFO/requires.txt", requires)
        if entry_point:
            zf.writestr("EGG-INFO/entry_points.txt",
                        f"[scrapy]\nsettings = {package}.settings\n")
    return buf.getvalue()


def add_egg(scrapyd, project, version, egg):
    return scrapyd.post("addversion.json", {"project": project, "version": version},
                        files={"egg": ("project.egg", egg)})


# -- scrapyd-deploy, schedule.json and a real node -----------------------------------

def test_scrapyd_deploy_then_schedule_runs_on_a_node(live, auth, store, config, tmp_path,
                                                     processes, demo_site, scrapyd):
    """The real scrapyd-deploy builds an egg of books and deploys it; schedule.json
    runs that version on a node with its args and settings; listjobs and
    status.json follow it to the end, and the items land in results_books."""
    folder = copy_project(BUNDLED / "books", tmp_path / "deploy" / "books")
    (folder / "scrapy.cfg").write_text(
        "[settings]\ndefault = books.settings\n\n"
        f"[deploy]\nurl = {live.url}/scrapyd/\nproject = books\n"
        "username = deployer\npassword = ${CRAWLFLEET_TOKEN}\n")  # as the README shows
    code, out = run_deploy(folder, "-v", "1.0", CRAWLFLEET_TOKEN=auth.operator_token)
    assert code == 0, out
    reply = json.loads(out.strip().splitlines()[-1])  # scrapyd-deploy prints the server's reply
    assert reply["status"] == "ok" and reply["spiders"] == 1 and reply["version"] == "1.0", out
    version = store.versions.find_one({"project": "books"})
    assert version["label"] == "1.0" and version["source"] == "scrapyd"

    assert scrapyd.get("listprojects.json").json()["projects"] == ["books"]
    assert scrapyd.get("listversions.json", project="books").json()["versions"] == ["1.0"]
    assert scrapyd.get("listspiders.json", project="books").json()["spiders"] == ["books"]

    processes.node(store)
    response = scrapyd.post("schedule.json", [
        ("project", "books"), ("spider", "books"), ("jobid", "my-job-1"), ("priority", "3"),
        ("setting", "DOWNLOAD_DELAY=0"), ("setting", "LOG_LEVEL=INFO"),
        ("max_pages", "2"), ("base_url", demo_site)])
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ok" and body["node_name"]
    assert body["jobid"] == "my-job-1"  # the client's id is the job's id
    task_id = body["task_id"]
    task = wait_task(store, task_id, timeout=120)
    assert task["status"] == "finished", task_log(store, task_id)
    assert task["version"] == version["_id"] and task["trigger"] == "scrapyd"
    assert task["args"] == {"max_pages": "2", "base_url": demo_site}
    assert task["settings"] == {"DOWNLOAD_DELAY": "0", "LOG_LEVEL": "INFO"}
    assert task["priority"] == 3 and task["scrapyd_jobid"] == "my-job-1"
    assert store.results("results_books").count_documents({"_tid": task_id}) == 40

    assert scrapyd.get("status.json", job="my-job-1").json()["currstate"] == "finished"
    assert scrapyd.get("status.json", job="my-job-1", project="books").json()["currstate"] \
        == "finished"
    jobs = scrapyd.get("listjobs.json", project="books").json()
    assert jobs["status"] == "ok" and jobs["pending"] == [] and jobs["running"] == []
    [finished] = jobs["finished"]
    assert set(finished) == {"id", "project", "spider", "start_time", "end_time", "log_url",
                             "items_url"}
    assert finished["id"] == "my-job-1" and finished["spider"] == "books"
    assert finished["start_time"] and finished["end_time"]
    assert finished["log_url"] == "/scrapyd/logs/books/books/my-job-1.log"
    # the task log, as the Scrapy log file Scrapyd would have written: every line a
    # Scrapy log line (or a continuation), the stats dump included
    log = requests.get(live.url + finished["log_url"], auth=scrapyd.auth, timeout=30)
    assert log.status_code == 200 and log.headers["Content-Type"].startswith("text/plain")
    assert "[scrapy.core.engine] INFO: Spider closed (finished)" in log.text
    assert "[scrapy.statscollectors] INFO: Dumping Scrapy stats:" in log.text
    assert not [line for line in log.text.splitlines() if line.startswith("[crawlfleet] ")]
    assert " [crawlfleet] INFO: task " in log.text  # the platform's lines, in Scrapy's format
    items = requests.get(live.url + finished["items_url"], auth=scrapyd.auth, timeout=30)
    rows = [json.loads(line) for line in items.text.splitlines()]
    assert len(rows) == 40 and not {"_id", "_tid", "task_id", "_at"} & set(rows[0])
    listing = requests.get(live.url + "/scrapyd/logs/books/books/", auth=scrapyd.auth, timeout=30)
    assert 'href="/scrapyd/logs/books/books/my-job-1.log"' in listing.text
    page = requests.get(live.url + "/scrapyd/jobs", auth=scrapyd.auth, timeout=30).text
    assert "my-job-1" in page and 'href="/scrapyd/logs/books/books/my-job-1.log"' in page


# -- addversion.json -------------------------------------------------------------------

def test_addversion_of_an_egg_registers_its_spiders(scrapyd, store):
    """The egg's [scrapy] settings entry point becomes scrapy.cfg; EGG-INFO and
    compiled files are not part of the version."""
    response = add_egg(scrapyd, "eggs", "r1", make_egg())
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ok" and body["project"] == "eggs" and body["version"] == "r1"
    assert body["spiders"] == 1
    version = store.versions.find_one({"_id": body["version_id"]})
    assert version["label"] == "r1" and version["files"] == 5  # 4 .py + scrapy.cfg


def test_an_eggs_install_requires_become_its_requirements(scrapyd, store):
    """A spider importing python-slugify at module top, whose setup.py names it
    in install_requires: the version's environment is built from it, and the
    spider is listed on the first try (extras are not installed)."""
    egg = make_egg(spider="slug_egg", imports="from slugify import slugify\n",
                   requires="python-slugify\n\n[never]\ncrawlfleet-no-such-package-zz9\n")
    response = add_egg(scrapyd, "slugeggs", "r1", egg)
    body = response.json()
    assert body["status"] == "ok" and body["spiders"] == 1, body
    from master import browse

    written = browse.read(store, "slugeggs", body["version_id"], "requirements.txt")
    assert written["content"].splitlines()[1:] == ["python-slugify"]


@pytest.mark.parametrize("data, files, message", [
    ({"version": "1"}, {"egg": ("p.egg", b"x")}, "'project' parameter is required"),
    ({"project": "p"}, {"egg": ("p.egg", b"x")}, "'version' parameter is required"),
    ({"project": "p", "version": "1"}, None, "'egg' parameter is required"),
    ({"project": "p", "version": "1"}, {"egg": ("p.egg", b"not a zip")},
     "egg is not a ZIP file (if using curl, use egg=@path not egg=path)"),
    ({"project": "p", "version": "1"}, {"egg": ("p.egg", make_egg(entry_point=False))},
     "no [scrapy] settings entry point"),
    ({"project": "../p", "version": "1"}, {"egg": ("p.egg", make_egg())},
     "DirectoryTraversalError: ../p"),
    ({"project": "a b", "version": "1"}, {"egg": ("p.egg", make_egg())},
     "invalid project name"),
])
def test_addversion_refusals_leave_nothing(scrapyd, store, config, sandbox_tmp, data, files,
                                           message):
    response = scrapyd.post("addversion.json", data, files=files or {"x": ("x", b"")})
    assert response.status_code == 200, response.text  # Scrapyd's way
    body = response.json()
    assert body["status"] == "error" and message in body["message"]
    assert_nothing_deployed(store, config, sandbox_tmp)


# -- auth ------------------------------------------------------------------------------

def test_basic_auth_maps_onto_tokens_and_users(live, auth, store):
    base = live.url + "/scrapyd/daemonstatus.json"
    anonymous = requests.get(base, timeout=30)
    assert anonymous.status_code == 401 and anonymous.text == "Unauthorized"
    assert anonymous.headers["WWW-Authenticate"] == 'basic realm="Scrapyd"'
    wrong = requests.get(base, auth=("x", "cft_wrong"), timeout=30)
    assert wrong.status_code == 401 and wrong.text == "Unauthorized"
    viewer = requests.get(base, auth=("anyone", auth.viewer_token), timeout=30)
    assert viewer.status_code == 200
    assert set(viewer.json()) == {"node_name", "status", "pending", "running", "finished"}
    bearer = requests.get(base, headers=auth.viewer, timeout=30)
    assert bearer.status_code == 200
    create_user(store, "ops", "a-long-password", "operator")
    assert requests.get(base, auth=("ops", "a-long-password"), timeout=30).status_code == 200
    assert requests.get(base, auth=("ops", "wrong-password"), timeout=30).status_code == 401
    forbidden = requests.post(live.url + "/scrapyd/schedule.json",
                              data={"project": "p", "spider": "s"},
                              auth=("anyone", auth.viewer_token), timeout=30)
    assert forbidden.status_code == 403 and forbidden.json()["status"] == "error"
    assert "operator" in forbidden.json()["message"]


# -- schedule, cancel, jobs, versions ----------------------------------------------------

@pytest.fixture
def two_eggs(scrapyd):
    one = add_egg(scrapyd, "eggs", "1", make_egg(marker="one")).json()
    two = add_egg(scrapyd, "eggs", "2", make_egg(marker="two")).json()
    assert one["version_id"] != two["version_id"]
    return one["version_id"], two["version_id"]


def test_schedule_an_older_version_and_list_it_pending(scrapyd, store, two_eggs):
    v1, v2 = two_eggs
    assert scrapyd.get("listversions.json", project="eggs").json()["versions"] == ["1", "2"]
    body = scrapyd.post("schedule.json", {"project": "eggs", "spider": "eggspider",
                                          "_version": "1", "color": "red"}).json()
    assert len(body["jobid"]) == 32 and body["jobid"] != body["task_id"]  # uuid1().hex
    assert store.tasks.find_one({"_id": body["task_id"]})["version"] == v1
    jobs = scrapyd.get("listjobs.json").json()
    assert jobs["pending"] == [{"id": body["jobid"], "project": "eggs", "spider": "eggspider",
                                "version": "1", "settings": {}, "args": {"color": "red"}}]
    assert scrapyd.get("status.json", job=body["jobid"]).json()["currstate"] == "pending"
    status = scrapyd.get("daemonstatus.json").json()
    assert (status["pending"], status["running"], status["finished"]) == (1, 0, 0)


@pytest.mark.parametrize("data, message", [
    ({"project": "eggs", "spider": "nope"}, "spider 'nope' not found"),
    ({"project": "nope", "spider": "eggspider"}, "project 'nope' not found"),
    ({"project": "eggs", "spider": "eggspider", "_version": "9"}, "version '9' not found"),
    ({"project": "eggs"}, "'spider' parameter is required"),
    ({"project": "eggs", "spider": "eggspider", "setting": "NOVALUE"}, "NAME=VALUE"),
    ({"project": "eggs", "spider": "eggspider", "priority": "high"}, "priority is invalid"),
    ({"project": "eggs", "spider": "eggspider", "bad-arg": "1"}, "invalid argument name"),
    ({"project": "eggs", "spider": "eggspider", "jobid": "a/b"}, "jobid must be"),
])
def test_schedule_errors(scrapyd, store, two_eggs, data, message):
    """Scrapyd answers its errors with 200 and {"status": "error", "message": ...}."""
    response = scrapyd.post("schedule.json", data)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "error" and message in body["message"], body
    assert store.tasks.count_documents({}) == 0
    assert store.scrapyd_jobs.count_documents({}) == 0


def test_a_client_jobid_is_the_jobs_id_and_stays_unique(scrapyd, store, two_eggs):
    """The jobid a client sends finds the job everywhere; sending it again is refused
    and schedules nothing."""
    body = scrapyd.post("schedule.json", {"project": "eggs", "spider": "eggspider",
                                          "jobid": "2024-06-01T12_00_00"}).json()
    assert body["jobid"] == "2024-06-01T12_00_00", body
    assert store.tasks.find_one({"_id": body["task_id"]})["scrapyd_jobid"] == body["jobid"]
    again = scrapyd.post("schedule.json", {"project": "eggs", "spider": "eggspider",
                                           "jobid": "2024-06-01T12_00_00"})
    assert again.status_code == 200 and again.json()["status"] == "error"
    assert "already used" in again.json()["message"]
    # a crawlfleet task id is taken too
    taken = scrapyd.post("schedule.json", {"project": "eggs", "spider": "eggspider",
                                           "jobid": body["task_id"]}).json()
    assert taken["status"] == "error" and "already used" in taken["message"]
    assert store.tasks.count_documents({}) == 1
    assert scrapyd.get("status.json", job="2024-06-01T12_00_00",
                       project="eggs").json()["currstate"] == "pending"
    [pending] = scrapyd.get("listjobs.json", project="eggs").json()["pending"]
    assert pending["id"] == "2024-06-01T12_00_00"
    cancel = scrapyd.post("cancel.json", {"project": "eggs", "job": "2024-06-01T12_00_00"})
    assert cancel.json()["prevstate"] == "pending"
    assert scrapyd.get("status.json", job="2024-06-01T12_00_00").json()["currstate"] == "finished"


def test_a_new_label_on_unchanged_content_labels_that_version_too(scrapyd, store):
    """As with two eggs of the same code in Scrapyd: both names are listed, either
    schedules, and deleting one keeps the other."""
    first = add_egg(scrapyd, "same", "1.0", make_egg(marker="same")).json()
    second = add_egg(scrapyd, "same", "1.1", make_egg(marker="same")).json()
    assert second["version"] == "1.1" and second["version_id"] == first["version_id"]
    assert scrapyd.get("listversions.json", project="same").json()["versions"] == ["1.0", "1.1"]
    other = add_egg(scrapyd, "same", "2.0", make_egg(marker="other")).json()
    assert scrapyd.get("listversions.json", project="same").json()["versions"] == [
        "1.0", "1.1", "2.0"]
    # the same code as 1.0 again: current again, so its labels come last
    assert add_egg(scrapyd, "same", "2.1", make_egg(marker="same")).json()["version_id"] \
        == first["version_id"]
    assert scrapyd.get("listversions.json", project="same").json()["versions"] == [
        "2.0", "1.0", "1.1", "2.1"]
    assert scrapyd.post("delversion.json", {"project": "same", "version": "2.0"}).json()[
        "status"] == "ok"
    assert store.versions.find_one({"_id": other["version_id"]}) is None
    assert scrapyd.post("delversion.json", {"project": "same", "version": "2.1"}).json()[
        "status"] == "ok"
    for label in ("1.0", "1.1"):
        body = scrapyd.post("schedule.json", {"project": "same", "spider": "eggspider",
                                              "_version": label}).json()
        assert store.tasks.find_one({"_id": body["task_id"]})["version"] == first["version_id"]
        assert scrapyd.get("listspiders.json", project="same",
                           _version=label).json()["spiders"] == ["eggspider"]
    assert scrapyd.post("delversion.json", {"project": "same", "version": "1.0"}).json() \
        == {"status": "ok", "node_name": scrapyd.get("daemonstatus.json").json()["node_name"]}
    assert scrapyd.get("listversions.json", project="same").json()["versions"] == ["1.1"]
    assert store.versions.count_documents({"project": "same"}) == 1
    # new code under a label in use takes the label, as a Scrapyd egg of that name is replaced
    newer = add_egg(scrapyd, "same", "1.1", make_egg(marker="newer")).json()
    assert newer["version_id"] != first["version_id"]
    assert scrapyd.get("listversions.json", project="same").json()["versions"] == ["1.1"]
    body = scrapyd.post("schedule.json", {"project": "same", "spider": "eggspider",
                                          "_version": "1.1"}).json()
    assert store.tasks.find_one({"_id": body["task_id"]})["version"] == newer["version_id"]


def test_addversion_takes_a_url_encoded_egg(scrapyd, store):
    """ScrapydWeb and Scrapyd's own tests send the egg as a url-encoded field."""
    response = scrapyd.post("addversion.json", {"project": "plain", "version": "r1",
                                                "egg": make_egg()})
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "ok" and response.json()["spiders"] == 1
    assert scrapyd.get("listspiders.json", project="plain").json()["spiders"] == ["eggspider"]


def test_cancel_a_pending_job(scrapyd, store, two_eggs):
    scheduled = scrapyd.post("schedule.json", {"project": "eggs", "spider": "eggspider"}).json()
    job = scheduled["jobid"]
    body = scrapyd.post("cancel.json", {"project": "eggs", "job": job}).json()
    assert body == {"node_name": body["node_name"], "status": "ok", "prevstate": "pending"}
    assert store.tasks.find_one({"_id": scheduled["task_id"]})["status"] == "cancelled"
    again = scrapyd.post("cancel.json", {"project": "eggs", "job": job}).json()
    assert again["prevstate"] is None
    assert scrapyd.post("cancel.json", {"project": "eggs", "job": "nope"}).json()["prevstate"] is None
    assert scrapyd.get("status.json", job="nope").json()["currstate"] is None
    missing = scrapyd.post("cancel.json", {"project": "nope", "job": job}).json()
    assert missing["status"] == "error" and missing["message"] == "project 'nope' not found"


def test_delversion_of_the_newest_makes_the_one_before_current(scrapyd, store, two_eggs):
    v1, v2 = two_eggs
    assert scrapyd.post("delversion.json", {"project": "eggs", "version": "2"}).json()["status"] == "ok"
    assert store.projects.find_one({"_id": "eggs"})["current_version"] == v1
    assert scrapyd.get("listversions.json", project="eggs").json()["versions"] == ["1"]
    # the last version takes the project with it, as in Scrapyd
    scrapyd.post("delversion.json", {"project": "eggs", "version": "1"})
    assert scrapyd.get("listprojects.json").json()["projects"] == []
    missing = scrapyd.post("delversion.json", {"project": "eggs", "version": "1"})
    assert missing.status_code == 200 and missing.json()["status"] == "error"
    assert missing.json()["message"] == "version '1' not found"


def test_delversion_and_delproject_refuse_while_jobs_wait(scrapyd, store, two_eggs):
    job = scrapyd.post("schedule.json", {"project": "eggs", "spider": "eggspider"}).json()["jobid"]
    busy = scrapyd.post("delversion.json", {"project": "eggs", "version": "2"})
    assert busy.json()["status"] == "error" and job in busy.json()["message"]
    busy = scrapyd.post("delproject.json", {"project": "eggs"})
    assert busy.json()["status"] == "error" and job in busy.json()["message"]
    scrapyd.post("cancel.json", {"project": "eggs", "job": job})
    assert scrapyd.post("delproject.json", {"project": "eggs"}).json()["status"] == "ok"
    assert store.versions.count_documents({}) == 0 and store.spiders.count_documents({}) == 0


def test_listspiders_of_a_version(scrapyd, two_eggs):
    assert scrapyd.get("listspiders.json", project="eggs", _version="1").json()["spiders"] == [
        "eggspider"]
    missing = scrapyd.get("listspiders.json")
    assert missing.status_code == 200
    assert missing.json()["message"] == "'project' parameter is required"


# -- /scrapyd/ on the main port: the same protocol and pages as the root listener ---------

def test_options_pages_and_odd_requests_under_the_prefix(live, scrapyd):
    """OPTIONS is 204 with Allow; the pages link under /scrapyd (after a proxy's
    X-Forwarded-Prefix); a wrong method is a 405; odd input never a 500."""
    base = live.url + "/scrapyd/"
    for endpoint, allow in (("schedule.json", "OPTIONS, HEAD, POST"),
                            ("listjobs.json", "OPTIONS, HEAD, GET")):
        response = requests.options(base + endpoint, auth=scrapyd.auth, timeout=30)
        assert response.status_code == 204 and response.content == b""
        assert response.headers["Allow"] == allow
        assert response.headers["Access-Control-Allow-Origin"] == "*"
    anonymous = requests.options(base + "schedule.json", timeout=30)
    assert anonymous.status_code == 401 and anonymous.text == "Unauthorized"
    home = requests.get(base, auth=scrapyd.auth, timeout=30)
    assert home.status_code == 200 and '"/scrapyd/jobs"' in home.text
    assert '"/scrapyd/logs/"' in home.text and "No Scrapy projects yet." in home.text
    proxied = requests.get(base, auth=scrapyd.auth, timeout=30,
                           headers={"X-Forwarded-Prefix": '/p"><script>'})
    assert '"/p&quot;&gt;&lt;script&gt;/scrapyd/jobs"' in proxied.text
    for path, text in (("jobs", "Cancel"), ("logs", "Last modified"), ("items/", "Directory")):
        page = requests.get(base + path, auth=scrapyd.auth, timeout=30)
        assert page.status_code == 200 and text in page.text, path
    wrong = requests.get(base + "schedule.json", auth=scrapyd.auth, timeout=30)
    assert wrong.status_code == 405 and "POST" in wrong.headers["Allow"]
    long_job = requests.get(base + "status.json", params={"job": "x" * 5000},
                            auth=scrapyd.auth, timeout=30)
    assert long_job.status_code == 200 and long_job.json()["currstate"] is None
    for method, endpoint, data in (
            ("get", "listspiders.json", {"project": ""}),
            ("get", "listspiders.json", {"project": "..", "_version": "%zz"}),
            ("post", "schedule.json", {"project": "", "spider": ""}),
            ("post", "addversion.json", "project=p&version=1&egg=%zz%00%ff"),
            ("post", "cancel.json", {"project": "p"}),
            ("post", "delversion.json", {"project": "/etc", "version": "1"})):
        kwargs = {"params": data} if method == "get" else {"data": data}
        response = getattr(requests, method)(base + endpoint, auth=scrapyd.auth, timeout=30,
                                             **kwargs)
        assert response.status_code == 200, (endpoint, response.text)
        assert response.json()["status"] == "error", (endpoint, response.text)
        assert response.text.endswith("\n")
    missing = requests.get(base + "logs/p/s/nope.log", auth=scrapyd.auth, timeout=30)
    assert missing.status_code == 404
