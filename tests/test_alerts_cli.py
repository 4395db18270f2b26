"""`crawlfleet alerts` (crawlfleet/cli/alerts.py) against the real app served by
werkzeug in a thread, sending to the loopback receiver of tests/test_alerts.py."""

import threading

import pytest
from click.testing import CliRunner
from werkzeug.serving import make_server

from helpers import free_port
from crawlfleet.cli import main
from crawlfleet.tokens import create_token
from test_alerts import receiver  # noqa: F401  the fixture
from test_cli_client import QuietHandler
from web import create_app


@pytest.fixture
def api(config, store, monkeypatch):
    config = config.replace(alert_allow_private=True)  # the receiver is on loopback
    app = create_app(config)
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=QuietHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    for name, value in config.as_environ().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("CRAWLFLEET_CONFIG", raising=False)
    monkeypatch.setenv("CRAWLFLEET_API_URL", f"http://127.0.0.1:{server.server_port}")
    monkeypatch.setenv("CRAWLFLEET_TOKEN", create_token(store, "cli-admin", "admin"))
    yield
    server.shutdown()
    thread.join(5)
    app.extensions["crawlfleet"].close()


def cli(*args, stdin=None):
    return CliRunner().invoke(main, list(args), input=stdin, catch_exceptions=False)


def test_channels_rules_test_and_history_from_the_cli(api, store, receiver, monkeypatch):
    url = receiver.url.replace("http://", "json://") + "/T0pS3cret"
    made = cli("alerts", "add-channel", "ops", stdin=url + "\n")  # asked without echo
    assert made.exit_code == 0 and "(JSON)" in made.output and "T0pS3cret" not in made.output
    channel = store.db.alert_channels.find_one()["_id"]
    listed = cli("alerts", "channels")
    assert "ops" in listed.output and "T0pS3cret" not in listed.output

    tested = cli("alerts", "test", channel)
    assert tested.exit_code == 0 and "test sent to ops" in tested.output
    assert len(receiver.bodies) == 1

    dead = cli("alerts", "add-channel", "dead", f"json://127.0.0.1:{free_port()}/x")
    dead_id = dead.output.split()[1].rstrip(":")
    failed = cli("alerts", "test", dead_id)
    assert failed.exit_code == 1 and failed.output.startswith("error: test to dead failed:")
    assert failed.output.count("\n") == 1

    rule = cli("alerts", "add-rule", "--channel", channel, "--spider", "books",
               "--on", "error,timeout", "--items-below", "5")
    assert rule.exit_code == 0 and "spider books: error, timeout, items below 5" in rule.output
    node = cli("alerts", "add-node-rule", "--channel", channel, "--metric", "memory",
               "--above", "90", "--minutes", "3")
    assert "any node: memory above 90% for 3 min" in node.output
    bad = cli("alerts", "add-rule", "--channel", "nope", "--on", "error")
    assert bad.exit_code == 1 and "unknown channel(s) nope" in bad.output
    assert "memory above 90%" in cli("alerts", "rules").output

    busy = cli("alerts", "rm-channel", channel)
    assert busy.exit_code == 1 and "send to this channel" in busy.output
    assert "disabled" in cli("alerts", "disable", channel).output

    history = cli("alerts", "history").output.splitlines()
    assert "failed:" in history[1] and "dead" in history[1] and "sent" in history[2]
    for line in (rule.output, node.output):
        assert cli("alerts", "rm-rule", line.split()[1].rstrip(":")).exit_code == 0
    assert cli("alerts", "rm-channel", channel).exit_code == 0


def test_a_viewer_token_is_refused(api, store, monkeypatch):
    monkeypatch.setenv("CRAWLFLEET_TOKEN", create_token(store, "cli-viewer", "viewer"))
    result = cli("alerts", "channels")
    assert result.exit_code == 1 and "only an admin" in result.output
