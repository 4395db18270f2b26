"""Git imports (master/gitimport.py through POST /api/v1/projects and
/projects/<name>/pull) against a local bare repository made by the test;
hostile URLs and refs are refused before git runs."""

import os
import socket
import subprocess
import threading
import time

import pytest

from crawlfleet.errors import BadRequest
from deploy_helpers import (BUNDLED, app, assert_nothing_deployed, auth, client,  # noqa: F401
                            copy_project, sandbox_tmp)
from master import gitimport

GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid",
           "GIT_CONFIG_NOSYSTEM": "1", "HOME": "/nonexistent"}


def git(*args, cwd):
    env = dict(os.environ, **GIT_ENV)
    subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, timeout=60,
                   start_new_session=True)


@pytest.fixture
def config(tmp_path, mongo_server):
    """Local repositories allowed under this test's folder only."""
    from helpers import make_config

    return make_config(tmp_path, mongo_server, git_local_roots=str(tmp_path / "repos"))




class Repo:
    """A bare repository and a work tree that pushes to it."""

    def __init__(self, root):
        self.bare = root / "repos" / "shop.git"
        self.work = root / "work"
        self.bare.parent.mkdir(parents=True)
        git("init", "--quiet", "--bare", "-b", "main", str(self.bare), cwd=root)
        copy_project(BUNDLED / "plain_catalogue", self.work)
        git("init", "--quiet", "-b", "main", cwd=self.work)
        self.commit("first")
        git("tag", "v1", cwd=self.work)
        git("push", "--quiet", str(self.bare), "main", "v1", cwd=self.work)

    def commit(self, message):
        git("add", "-A", cwd=self.work)
        git("commit", "--quiet", "-m", message, cwd=self.work)

    def push_change(self, name="CHANGES.txt", text="more\n"):
        (self.work / name).write_text(text)
        self.commit("change")
        git("push", "--quiet", str(self.bare), "main", cwd=self.work)


@pytest.fixture
def repo(tmp_path):
    return Repo(tmp_path)


def deploy_git(client, headers, **body):
    return client.post("/api/v1/projects", json=body, headers=headers)


def test_import_from_a_bare_repository(client, auth, store, repo, config, sandbox_tmp):
    """A branch of a local repository becomes a version labelled branch@commit."""
    response = deploy_git(client, auth.operator, git=str(repo.bare), ref="main", project="shop")
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["spiders"] == ["plain_catalogue"] and body["kind"] == "command"
    assert body["label"] == f"main@{body['commit'][:10]}"
    project = store.projects.find_one({"_id": "shop"})
    assert project["source"] == "git" and project["current_version"] == body["version"]
    assert project["git"]["url"] == str(repo.bare) and project["git"]["ref"] == "main"
    assert store.versions.find_one({"_id": body["version"]})["source"] == "git"
    files = client.get(f"/api/v1/projects/shop/versions/{body['version']}/files",
                       headers=auth.viewer).get_json()["files"]
    assert sorted(f["path"] for f in files) == ["crawlfleet.json", "main.py"]  # no .git
    assert list((config.home_path / "tmp").iterdir()) == []
    assert list(sandbox_tmp.iterdir()) == []


def test_name_defaults_to_the_repository_and_ref_to_its_head(client, auth, repo):
    body = deploy_git(client, auth.admin, git=str(repo.bare)).get_json()
    assert body["project"] == "shop" and body["label"].startswith("HEAD@")


def test_a_tag_can_be_imported(client, auth, store, repo):
    repo.push_change()
    tagged = deploy_git(client, auth.admin, git=str(repo.bare), ref="v1", project="shop")
    assert tagged.status_code == 201 and tagged.get_json()["label"].startswith("v1@")
    files = client.get(f"/api/v1/projects/shop/versions/{tagged.get_json()['version']}/files",
                       headers=auth.viewer).get_json()["files"]
    assert "CHANGES.txt" not in [f["path"] for f in files]


def test_pull_makes_a_new_version_only_when_the_branch_changed(client, auth, store, repo):
    first = deploy_git(client, auth.admin, git=str(repo.bare), ref="main",
                       project="shop").get_json()
    same = client.post("/api/v1/projects/shop/pull", headers=auth.operator)
    assert same.status_code == 200
    assert same.get_json()["changed"] is False and same.get_json()["version"] == first["version"]
    repo.push_change()
    pulled = client.post("/api/v1/projects/shop/pull", headers=auth.operator).get_json()
    assert pulled["changed"] is True and pulled["previous_version"] == first["version"]
    assert store.projects.find_one({"_id": "shop"})["current_version"] == pulled["version"]
    assert store.versions.count_documents({"project": "shop"}) == 2
    assert store.projects.find_one({"_id": "shop"})["git"]["commit"] == pulled["commit"]


def test_pull_of_a_project_not_from_git_is_409(client, auth, store, repo, tmp_path):
    from deploy_helpers import upload, zip_folder

    upload(client, auth.admin, zip_folder(repo.work, top="zipped"))
    response = client.post("/api/v1/projects/zipped/pull", headers=auth.admin)
    assert response.status_code == 409 and "not imported from git" in response.get_json()["error"]
    assert client.post("/api/v1/projects/nope/pull", headers=auth.admin).status_code == 404


def test_unknown_ref_is_400_and_changes_nothing(client, auth, store, config, repo, sandbox_tmp):
    response = deploy_git(client, auth.admin, git=str(repo.bare), ref="no-such-branch",
                          project="shop")
    assert response.status_code == 400
    assert "no-such-branch not found" in response.get_json()["error"]
    assert_nothing_deployed(store, config, sandbox_tmp)


@pytest.mark.parametrize("url", [
    "https://example.invalid/repo.git;touch /tmp/pwned",
    "https://example.invalid/$(touch /tmp/pwned).git",
    "git@example.invalid:repo.git`touch /tmp/pwned`",
    "-oProxyCommand=touch /tmp/pwned",
    "--upload-pack=touch /tmp/pwned",
    "ext::sh -c touch% /tmp/pwned",
    "ext::sh",
    "http://example.invalid/repo.git",
    "git://example.invalid/repo.git",
    "file:///etc",
    "/etc",
    "relative/path",
    "https://example.invalid/repo.git\n--upload-pack=x",
])
def test_hostile_or_unsupported_urls_are_refused(client, auth, store, config, sandbox_tmp, url,
                                                 monkeypatch):
    """Refused with 400 before any git process starts."""
    started = []
    monkeypatch.setattr(gitimport.subprocess, "Popen",
                        lambda *a, **k: started.append(a) or pytest.fail("git ran"))
    response = deploy_git(client, auth.admin, git=url, project="shop")
    assert response.status_code == 400, response.get_json()
    assert "refused git URL" in response.get_json()["error"]
    assert started == []
    assert_nothing_deployed(store, config, sandbox_tmp)


@pytest.mark.parametrize("ref", ["--upload-pack=touch /tmp/pwned", "-b", "main;id", "a..b",
                                 "main lock", "$(id)", "x.lock"])
def test_hostile_refs_are_refused(client, auth, store, config, repo, ref):
    response = deploy_git(client, auth.admin, git=str(repo.bare), ref=ref, project="shop")
    assert response.status_code == 400 and "refused git ref" in response.get_json()["error"]
    assert_nothing_deployed(store, config)


def test_local_paths_need_an_allowed_root(store, config, repo, tmp_path):
    """Local repositories only inside git_local_roots; none at all when it is empty."""
    outside = tmp_path / "elsewhere.git"
    with pytest.raises(BadRequest, match="not inside an allowed local folder"):
        gitimport.check_url(str(outside), config)
    with pytest.raises(BadRequest, match="git_local_roots setting is empty"):
        gitimport.check_url(str(repo.bare), config.replace(git_local_roots=""))
    with pytest.raises(BadRequest, match="not inside"):
        gitimport.check_url(str(repo.bare.parent / ".." / "work"), config)
    assert gitimport.check_url(str(repo.bare), config) == (f"file://{repo.bare}", "file")


@pytest.mark.parametrize("url, protocol", [
    ("https://github.com/owner/repo.git", "https"),
    ("https://token@git.example.com:8443/group/sub/repo", "https"),
    ("ssh://git@git.example.com:2222/owner/repo.git", "ssh"),
    ("git@github.com:owner/repo.git", "ssh"),
])
def test_remote_urls_accepted(config, url, protocol):
    assert gitimport.check_url(url, config) == (url, protocol)


def test_credentials_in_a_url_are_never_shown():
    assert gitimport.redact("https://user:secret@host/r.git") == "https://***@host/r.git"
    assert gitimport.redact("https://tok@host/r.git") == "https://***@host/r.git"
    assert gitimport.redact("git@github.com:o/r.git") == "git@github.com:o/r.git"


def test_a_clone_that_hangs_is_killed_at_the_timeout(client, auth, store, config, app,
                                                    sandbox_tmp):
    """A server that accepts and never answers: git is killed after git_timeout,
    with its whole process group, and the import is a 400."""
    app.extensions["crawlfleet"].config = config.replace(git_timeout=2.0)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(5)
    held = []
    stop = threading.Event()

    def accept():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        started = time.monotonic()
        response = deploy_git(client, auth.admin, project="shop",
                              git=f"https://127.0.0.1:{listener.getsockname()[1]}/slow.git")
        elapsed = time.monotonic() - started
    finally:
        stop.set()
        thread.join(5)
        for conn in held:
            conn.close()
        listener.close()
    assert response.status_code == 400
    assert "did not finish within 2 s" in response.get_json()["error"]
    assert elapsed < 20
    assert_nothing_deployed(store, config, sandbox_tmp)
