"""Tests for /api/v1/schedules (web/schedules_api.py) through Flask's test
client, and for `crawlfleet schedule …` (crawlfleet/cli/schedules.py) against
the same app served by werkzeug in a thread."""

import json
import threading
import time

import pytest
from click.testing import CliRunner
from werkzeug.serving import WSGIRequestHandler, make_server

from crawlfleet.cli import main
from crawlfleet.tokens import create_token

BASE = "/api/v1/schedules"


def add_spider(store, name):
    store.spiders.insert_one({"_id": name, "project": name, "version": "v1", "kind": "command",
                              "results_collection": f"results_{name}"})


@pytest.fixture(autouse=True)
def books(store):
    add_spider(store, "books")


@pytest.fixture
def admin(store):
    return {"Authorization": "Bearer " + create_token(store, "t-admin", "admin")}


@pytest.fixture
def viewer(store):
    return {"Authorization": "Bearer " + create_token(store, "t-view", "viewer")}


def create(client, admin, **body):
    response = client.post(BASE, json={"spider": "books", "cron": "0 3 * * *", **body},
                           headers=admin)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_create_get_list_and_defaults(client, admin):
    """POST makes an enabled schedule with its next 5 fire times; GET and the
    list show it."""
    doc = create(client, admin, timezone="Europe/Paris", args={"max_pages": 2},
                 description="nightly")
    assert doc["enabled"] and doc["overlap"] == "skip" and doc["nodes"] == "any"
    assert len(doc["upcoming"]) == 5 and doc["upcoming"][0].endswith(("+01:00", "+02:00"))
    assert "T03:00:00" in doc["upcoming"][0] and doc["next_fire_time"] == doc["upcoming"][0]
    got = client.get(f"{BASE}/{doc['id']}", headers=admin).get_json()
    assert got["args"] == {"max_pages": "2"} and got["description"] == "nightly"
    listed = client.get(BASE, headers=admin).get_json()
    assert [s["id"] for s in listed["schedules"]] == [doc["id"]] and listed["next"] is None
    assert client.get(BASE + "?enabled=false", headers=admin).get_json()["schedules"] == []
    assert client.get(BASE + "?spider=other", headers=admin).get_json()["schedules"] == []


@pytest.mark.parametrize("body, message", [
    ({"spider": "books", "cron": "61 * * * *"}, "invalid cron expression"),
    ({"spider": "books", "cron": "* * *"}, "expected 5 fields"),
    ({"spider": "books", "cron": "0 0 31 2 *"}, "never fires"),
    ({"spider": "books", "cron": "* * * * *", "timezone": "Europe/Atlantis"},
     "unknown timezone 'Europe/Atlantis'"),
    ({"spider": "ghost", "cron": "* * * * *"}, "unknown spider 'ghost'; known spiders: books"),
    ({"spider": "books", "cron": "* * * * *", "args": {"a b": 1}}, "invalid argument name"),
    ({"spider": "books", "cron": "* * * * *", "args": {"x": [1]}}, "string or a number"),
    ({"spider": "books", "cron": "* * * * *", "overlap": "sometimes"}, "overlap must be"),
    ({"spider": "books", "cron": "* * * * *", "extra": 1}, "unknown field(s) extra"),
    ({"cron": "* * * * *"}, "spider is required"),
])
def test_invalid_input_is_400_with_a_clear_message(client, admin, body, message):
    response = client.post(BASE, json=body, headers=admin)
    assert response.status_code == 400
    assert message in response.get_json()["error"]


def test_body_must_be_a_json_object(client, admin):
    response = client.post(BASE, data="[1]", headers=admin, content_type="application/json")
    assert response.status_code == 400 and "JSON object" in response.get_json()["error"]


def test_patch_put_enable_disable_delete(client, admin, store):
    doc = create(client, admin, args={"q": "x"}, priority=3)
    sid = doc["id"]
    patched = client.patch(f"{BASE}/{sid}", json={"cron": "30 4 * * *"}, headers=admin)
    assert patched.status_code == 200
    body = patched.get_json()
    assert body["cron"] == "30 4 * * *" and body["args"] == {"q": "x"} and body["priority"] == 3
    assert "T04:30:00" in body["upcoming"][0]
    put = client.put(f"{BASE}/{sid}", json={"spider": "books", "cron": "0 5 * * *"},
                     headers=admin).get_json()
    assert put["args"] == {} and put["priority"] == 0
    bad = client.patch(f"{BASE}/{sid}", json={"timezone": "Nope/Nope"}, headers=admin)
    assert bad.status_code == 400
    off = client.post(f"{BASE}/{sid}/disable", headers=admin).get_json()
    assert not off["enabled"] and off["next_fire_time"] is None
    on = client.post(f"{BASE}/{sid}/enable", headers=admin).get_json()
    assert on["enabled"] and on["next_fire_time"]
    # the spider deleted meanwhile: enabling again is refused with the reason
    client.post(f"{BASE}/{sid}/disable", headers=admin)
    store.spiders.delete_one({"_id": "books"})
    refused = client.post(f"{BASE}/{sid}/enable", headers=admin)
    assert refused.status_code == 400 and "unknown spider 'books'" in refused.get_json()["error"]
    assert client.delete(f"{BASE}/{sid}", headers=admin).get_json() == {"id": sid,
                                                                         "deleted": True}
    for method in (client.get, client.delete, client.patch):
        response = method(f"{BASE}/{sid}", headers=admin)
        assert response.status_code == 404 and "unknown schedule" in response.get_json()["error"]


def test_preview_shows_the_next_fire_times(client, admin):
    response = client.post(f"{BASE}/preview", headers=admin,
                           json={"cron": "*/15 * * * *", "timezone": "Asia/Kolkata",
                                 "count": 3})
    body = response.get_json()
    assert response.status_code == 200 and len(body["fire_times"]) == 3
    assert all(t.endswith("+05:30") for t in body["fire_times"])
    assert [int(t[14:16]) % 15 for t in body["fire_times"]] == [0, 0, 0]
    for bad, message in (({"cron": "bad"}, "invalid cron"),
                         ({"cron": "* * * * *", "timezone": "X/Y"}, "unknown timezone"),
                         ({"cron": "* * * * *", "count": 500}, "count")):
        response = client.post(f"{BASE}/preview", headers=admin, json=bad)
        assert response.status_code == 400 and message in response.get_json()["error"]


def test_history_route(client, admin, store):
    doc = create(client, admin)
    store.schedule_fires.insert_many([
        {"schedule_id": doc["id"], "fire_time": 1000.0 + i, "state": "skipped",
         "reason": "test", "task_ids": []} for i in range(3)])
    page = client.get(f"{BASE}/{doc['id']}/history?limit=2", headers=admin).get_json()
    assert [f["fire_time"] for f in page["fires"]] == [1002.0, 1001.0] and page["next"] == 1001.0
    rest = client.get(f"{BASE}/{doc['id']}/history?before=1001", headers=admin).get_json()
    assert [f["fire_time"] for f in rest["fires"]] == [1000.0]
    bad = client.get(f"{BASE}/{doc['id']}/history?before=soon", headers=admin)
    assert bad.status_code == 400


def test_tokens_and_roles(client, admin, viewer):
    """No token: 401; a viewer may list and read but not create or change."""
    assert client.get(BASE).status_code == 401
    doc = create(client, admin)
    assert client.get(BASE, headers=viewer).status_code == 200
    assert client.get(f"{BASE}/{doc['id']}/history", headers=viewer).status_code == 200
    for response in (client.post(BASE, json={"spider": "books", "cron": "* * * * *"},
                                 headers=viewer),
                     client.post(f"{BASE}/{doc['id']}/disable", headers=viewer),
                     client.delete(f"{BASE}/{doc['id']}", headers=viewer)):
        assert response.status_code == 403 and "error" in response.get_json()


# -- the CLI ----------------------------------------------------------------------------

class QuietHandler(WSGIRequestHandler):
    def log(self, *args, **kwargs):
        pass


@pytest.fixture
def served(app, config, store, monkeypatch):
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=QuietHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    for name, value in config.as_environ().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("CRAWLFLEET_CONFIG", raising=False)
    monkeypatch.setenv("CRAWLFLEET_API_URL", f"http://127.0.0.1:{server.server_port}")
    monkeypatch.setenv("CRAWLFLEET_TOKEN", create_token(store, "cli", "admin"))
    yield store
    server.shutdown()
    thread.join(5)


def cli(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_cli_add_ls_show_disable_enable_rm(served):
    store = served
    store.nodes.insert_one({"_id": "n1", "heartbeat_at": time.time(), "status": "online"})
    result = cli("schedule", "add", "books", "--cron", "0 3 * * *", "--tz", "Europe/Paris",
                 "-a", "max_pages=2", "-s", "DOWNLOAD_DELAY=1", "--node", "n1",
                 "--overlap", "queue", "--retries", "2", "--backoff", "30",
                 "--timeout", "600", "--description", "nightly books",
                 "--alert-webhook", "http://hooks.example/x", "--alert-on", "error,zero_items")
    assert result.exit_code == 0, result.output
    sid = result.stdout.strip()
    doc = store.schedules.find_one({"_id": sid})
    assert doc["args"] == {"max_pages": "2"} and doc["settings"] == {"DOWNLOAD_DELAY": "1"}
    assert doc["nodes"] == ["n1"] and doc["overlap"] == "queue" and doc["timeout"] == 600
    assert doc["retry"]["max_attempts"] == 3 and doc["retry"]["backoff"] == 30
    assert doc["alerts"]["on"] == ["error", "zero_items"]
    assert "T03:00:00" not in result.stderr and "03:00:00+0" in result.stderr

    table = cli("schedule", "ls").output.splitlines()
    assert table[0].split()[:3] == ["ID", "SPIDER", "CRON"]
    assert table[1].startswith(sid) and "enabled" in table[1]
    assert json.loads(cli("schedule", "ls", "--json").output)[0]["id"] == sid

    store.schedule_fires.insert_one({"schedule_id": sid, "fire_time": 1000.0,
                                     "state": "skipped", "reason": "previous run still running",
                                     "task_ids": []})
    shown = cli("schedule", "show", sid).output
    assert "timezone:      Europe/Paris" in shown and "next fire times:" in shown
    assert shown.count("03:00:00+0") == 5 and "previous run still running" in shown
    assert json.loads(cli("schedule", "show", sid, "--json").output)["history"][0]["state"] == \
        "skipped"

    assert "disabled" in cli("schedule", "disable", sid).output
    assert not store.schedules.find_one({"_id": sid})["enabled"]
    assert "enabled; next fire" in cli("schedule", "enable", sid).output
    assert "deleted" in cli("schedule", "rm", sid).output
    gone = cli("schedule", "show", sid)
    assert gone.exit_code == 1 and "unknown schedule" in gone.output


def test_cli_errors_are_one_line_and_preview_works(served):
    bad = cli("schedule", "add", "books", "--cron", "0 25 * * *")
    assert bad.exit_code == 1 and bad.output.startswith("error: invalid cron expression")
    bad = cli("schedule", "add", "nobody", "--cron", "0 1 * * *")
    assert bad.exit_code == 1 and "unknown spider 'nobody'" in bad.output
    usage = cli("schedule", "add", "books", "--cron", "0 1 * * *", "--node", "a", "--all-nodes")
    assert usage.exit_code == 2
    lines = cli("schedule", "preview", "--cron", "* * * * * */20", "--count", "3").output.splitlines()
    assert lines[0] == "Every 20 seconds (UTC)" and "is seconds" in lines[1]
    assert len(lines) == 5 and all(len(line.split()) == 2 for line in lines[2:])  # date, time
