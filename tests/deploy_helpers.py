"""Fixtures and helpers shared by the deploy tests (uploads, versions, git,
Scrapyd, CLI): an app on the test's store, role tokens, a live HTTP server in
a thread, zips made from folders, and the check that a refused deploy left
nothing behind."""

import io
import shutil
import tempfile
import threading
import zipfile
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from conftest import auth, client  # noqa: F401  (fixtures re-exported for the deploy tests)
from helpers import Tokens  # noqa: F401
from crawlfleet import packaging

ROOT = Path(__file__).resolve().parent.parent
BUNDLED = ROOT / "spiders"
PROJECTS = Path(__file__).resolve().parent / "fixtures" / "projects"


@pytest.fixture
def sandbox_tmp(tmp_path, monkeypatch):
    """The process-wide temporary folder, pointed at an empty folder of the test,
    so a test can prove nothing was written there."""
    folder = tmp_path / "system-tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


@pytest.fixture
def app(sandbox_tmp, app):
    """The application, with the process-wide temporary folder sandboxed first."""
    return app


class LiveServer:
    def __init__(self, app):
        self.app = app
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.port = self.server.server_port
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


@pytest.fixture
def live(app):
    """The app served over real HTTP (werkzeug, threaded) on a free port."""
    server = LiveServer(app)
    yield server
    server.stop()


def copy_project(src, dest):
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return dest


def zip_folder(folder, top=None, extra=()):
    """Zip bytes of a project folder (optionally inside a top folder `top`)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for rel in packaging.project_files(folder):
            zf.write(Path(folder) / rel, f"{top}/{rel}" if top else rel)
        for name, data in extra:
            zf.writestr(name, data)
    return buf.getvalue()


def upload(client, headers, data, **fields):
    form = {"file": (io.BytesIO(data), "project.zip"), **fields}
    return client.post("/api/v1/projects", data=form, headers=headers,
                       content_type="multipart/form-data")


def assert_nothing_deployed(store, config, sandbox=None):
    """A refused deploy wrote nothing: no project, version, spider or GridFS
    file, and no file left in HOME/tmp (or in the system temp folder)."""
    assert store.projects.count_documents({}) == 0
    assert store.versions.count_documents({}) == 0
    assert store.spiders.count_documents({}) == 0
    assert len(list(store.db["files.files"].find({}, {"_id": 1}))) == 0
    assert len(list(store.db["files.chunks"].find({}, {"_id": 1}))) == 0
    scratch = config.home_path / "tmp"
    assert not scratch.exists() or list(scratch.iterdir()) == []
    if sandbox is not None:
        assert list(Path(sandbox).iterdir()) == []
