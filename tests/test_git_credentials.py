"""Git credentials (master/gitimport.py): an https token reaches the git
server as an Authorization header through git's environment, is refused
for other URLs, is stored sealed and never shown back."""

import base64
import http.server
import subprocess
import threading

import pytest

from crawlfleet.errors import BadRequest
from crawlfleet.secretbox import SecretBox
from master import gitimport, versions


class Recorder(http.server.BaseHTTPRequestHandler):
    seen: list = []

    def do_GET(self):  # noqa: N802  (http.server's name)
        Recorder.seen.append(self.headers.get("Authorization"))
        self.send_response(404)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def recorder():
    server = http.server.HTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Recorder.seen = []
    yield f"http://127.0.0.1:{server.server_port}/repo.git"
    server.shutdown()
    server.server_close()


def test_the_token_reaches_the_server_as_a_header_not_in_argv(recorder):
    env = gitimport._git_env("http", "alice:s3cret-token")
    done = subprocess.run(["git", "ls-remote", "--", recorder], env=env, capture_output=True,
                          text=True, timeout=60, start_new_session=True)
    assert done.returncode != 0  # the stand-in server has no repository
    assert "Basic " + base64.b64encode(b"alice:s3cret-token").decode() in Recorder.seen
    assert "s3cret" not in done.stderr


def test_a_bare_token_gets_a_user_name():
    header = gitimport.auth_header("tok123")
    assert header == "Authorization: Basic " + base64.b64encode(b"x-access-token:tok123").decode()


@pytest.mark.parametrize("credentials, url, words", [
    ("tok", "ssh://git@example.org/r.git", "https://"),
    ("tok", "/srv/repos/r", "https://"),
    ("two words", "https://example.org/r.git", "no spaces"),
])
def test_credentials_are_refused_where_they_do_not_belong(credentials, url, words):
    with pytest.raises(BadRequest, match=words):
        gitimport.check_credentials(credentials, url)


def test_stored_sealed_and_never_shown(config, store):
    sealed = SecretBox.for_config(config).seal("tok123")
    store.projects.insert_one({"_id": "p", "kind": "command", "git": {
        "url": "https://example.org/r.git", "ref": "main", "commit": "c" * 40,
        "credentials": sealed}})
    shown = versions.public_project(store, store.projects.find_one({"_id": "p"}))
    assert shown["git"]["credentials"] is True
    assert "tok123" not in repr(shown) and sealed not in repr(shown)
    assert SecretBox.for_config(config).open(sealed) == "tok123"
