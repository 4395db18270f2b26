"""Alert channels, rules and history configured in the store (crawlfleet/alerting/,
web/alerts_api.py, web/alerts_ui.py, master/alerts.py, master/node_alerts.py):
channels are Apprise URLs, here ``json://`` to the loopback receiver of
tests/test_alerts.py; stored encrypted, shown redacted, admins only; rules
per spider, schedule or every task, and node resource rules; every delivery
in the history."""

import json

import pytest

from crawlfleet.models import now
from test_alerts import SPIDER, Receiver, alerter, final_task  # noqa: F401
from test_alerts import receiver  # noqa: F401  the fixture
from test_ui import PASSWORD, Browser
from web import create_app

SECRET = "s3cr3tT0ken"


@pytest.fixture
def app(config, store, monkeypatch):
    monkeypatch.setenv("CRAWLFLEET_ADMIN_PASSWORD", PASSWORD)
    app = create_app(config.replace(alert_allow_private=True))  # the receiver is on loopback
    app.config["TESTING"] = True
    yield app
    app.extensions["crawlfleet"].close()


def json_url(receiver, secret=SECRET):
    return receiver.url.replace("http://", "json://") + f"/{secret}"


def closed_port_url():
    from helpers import free_port

    return f"json://127.0.0.1:{free_port()}/hook"


def make_channel(client, auth, url, name="ops"):
    made = client.post("/api/v1/alerts/channels", headers=auth.admin,
                       json={"name": name, "url": url})
    assert made.status_code == 201, made.get_json()
    return made.get_json()


def test_channels_are_stored_encrypted_shown_redacted_and_tested(client, auth, store,
                                                                  receiver):
    """The URL never comes back in full, nor sits in the store in clear; "send test"
    reaches the receiver; a channel nobody listens on answers 422 with one line."""
    made = make_channel(client, auth, json_url(receiver))
    assert made["service"] == "JSON" and SECRET not in json.dumps(made)
    assert made["url"].startswith("json://127.0.0.1:")
    listed = client.get("/api/v1/alerts/channels", headers=auth.admin).get_json()
    assert [c["id"] for c in listed["channels"]] == [made["id"]]
    assert SECRET not in json.dumps(listed)
    assert SECRET not in json.dumps(store.db.alert_channels.find_one(), default=str)

    tested = client.post(f"/api/v1/alerts/channels/{made['id']}/test", headers=auth.admin)
    assert tested.status_code == 200 and tested.get_json()["ok"], tested.get_json()
    [body] = receiver.bodies
    assert "test of alert channel ops" in body["message"]
    last = client.get(f"/api/v1/alerts/channels/{made['id']}", headers=auth.admin).get_json()
    assert last["last_test"]["ok"] is True

    dead = make_channel(client, auth, closed_port_url(), name="dead")
    failed = client.post(f"/api/v1/alerts/channels/{dead['id']}/test", headers=auth.admin)
    assert failed.status_code == 422
    error = failed.get_json()["error"]
    assert error.startswith("test to dead failed:") and "\n" not in error, error
    history = client.get("/api/v1/alerts/history", headers=auth.admin).get_json()["alerts"]
    assert [h["ok"] for h in history] == [False, True]  # newest first


def test_bad_channels_and_rules_are_4xx_with_one_line(client, auth, receiver):
    for body, status, words in (
            ({"name": "x", "url": "nope://what"}, 400, "Apprise cannot use"),
            ({"name": "x", "url": "just text"}, 400, "not an Apprise URL"),
            ({"name": "", "url": json_url(receiver)}, 400, "name"),
            ({"name": "x", "url": 5}, 400, "url"),
            ({"name": "x", "url": json_url(receiver), "colour": 1}, 400, "unknown field")):
        answer = client.post("/api/v1/alerts/channels", headers=auth.admin, json=body)
        assert answer.status_code == status and words in answer.get_json()["error"], (
            body, answer.get_json())
    channel = make_channel(client, auth, json_url(receiver))
    assert client.post("/api/v1/alerts/channels", headers=auth.admin, json={
        "name": "ops", "url": json_url(receiver)}).status_code == 409
    for body, words in (
            ({"on": ["error"], "channels": ["nope"]}, "unknown channel"),
            ({"on": ["explosion"], "channels": [channel["id"]]}, "outcomes"),
            ({"channels": [channel["id"]]}, "say when"),
            ({"on": ["error"], "items_below": -1, "channels": [channel["id"]]}, "items_below"),
            ({"on": ["error"], "spider": "a", "schedule_id": "b", "channels": [channel["id"]]},
             "not both"),
            ({"kind": "node", "metric": "swap", "above": 90, "channels": [channel["id"]]},
             "metric must be one of cpu, memory, disk"),
            ({"kind": "node", "metric": "cpu", "above": 190, "channels": [channel["id"]]},
             "above"),
            ({"kind": "node", "metric": "cpu", "above": 90, "on": ["error"],
              "channels": [channel["id"]]}, "no field")):
        answer = client.post("/api/v1/alerts/rules", headers=auth.admin, json=body)
        assert answer.status_code == 400 and words in answer.get_json()["error"], (
            body, answer.get_json())
    rule = client.post("/api/v1/alerts/rules", headers=auth.admin, json={
        "on": ["error"], "channels": [channel["id"]]}).get_json()
    deleted = client.delete(f"/api/v1/alerts/channels/{channel['id']}", headers=auth.admin)
    assert deleted.status_code == 409 and rule["id"] in deleted.get_json()["error"]
    assert client.get("/api/v1/alerts/history?before=nan",
                      headers=auth.admin).status_code == 400
    assert client.post("/api/v1/alerts/channels/nope/test",
                       headers=auth.admin).status_code == 404


def test_only_admins_configure_alerts(app, client, auth, store, receiver):
    for headers in (auth.operator, auth.viewer):
        for method, path in (("GET", "/api/v1/alerts/channels"),
                             ("POST", "/api/v1/alerts/channels"),
                             ("GET", "/api/v1/alerts/rules"),
                             ("GET", "/api/v1/alerts/history")):
            answer = client.open(path, method=method, headers=headers,
                                 json={"name": "x", "url": json_url(receiver)})
            assert answer.status_code == 403, (method, path, answer.get_json())
    assert store.db.alert_channels.count_documents({}) == 0
    assert Browser(app, store, "operator").get("/alerts/").status_code == 403
    assert Browser(app, store, "viewer").post("/alerts/channels", data={
        "name": "x", "url": json_url(receiver)}).status_code == 403
    admin = Browser(app, store, "admin")
    page = admin.get("/alerts/")
    assert page.status_code == 200 and b"No channel yet" in page.data
    added = admin.post("/alerts/channels", data={"name": "ui", "url": json_url(receiver)},
                       follow_redirects=True)
    assert b"Channel ui added (JSON)" in added.data and SECRET.encode() not in added.data


def rule(client, auth, **body):
    made = client.post("/api/v1/alerts/rules", headers=auth.admin, json=body)
    assert made.status_code == 201, made.get_json()
    return made.get_json()


def test_rules_send_matching_tasks_to_their_channels_once(config, client, auth, store,
                                                           receiver):
    """Per spider, per schedule, items below N, duration above N; a task matches
    once per channel even through two rules; a second pass sends nothing."""
    other = Receiver()
    try:
        ops = make_channel(client, auth, json_url(receiver), "ops")
        team = make_channel(client, auth, json_url(other), "team")
        store.schedules.insert_one({"_id": "s1", "spider": "books", "cron": "0 3 * * *"})
        rule(client, auth, spider="books", on=["error"], channels=[ops["id"]])
        rule(client, auth, on=["error", "timeout"], channels=[ops["id"]])
        rule(client, auth, schedule_id="s1", items_below=10, channels=[team["id"]])
        rule(client, auth, spider="quotes", duration_above=1, channels=[team["id"]])
        final_task(store, "t-err")                                    # ops (two rules)
        final_task(store, "t-few", status="finished", items=3, schedule_id="s1")  # team
        final_task(store, "t-many", status="finished", items=30, schedule_id="s1")  # none
        final_task(store, "t-slow", status="finished", items=30, spider="quotes")  # team
        final_task(store, "t-fast", status="finished", items=30, spider="quotes",
                   started_at=now() - 0.5)                            # none
        a = alerter(config, store)
        sent = a.run_once()
        assert set(sent) == {"t-err", "t-few", "t-slow"}
        assert [d["target"] for d in sent["t-err"]] == ["channel ops"]
        assert sent["t-few"][0]["events"] == ["items_below"]
        assert sent["t-slow"][0]["events"] == ["duration_above"]
        assert len(receiver.bodies) == 1 and "t-err" in receiver.bodies[0]["title"]
        assert sorted(b["title"].split("task ")[1].split(" ")[0] for b in other.bodies) == [
            "t-few", "t-slow"]
        assert a.run_once() == {} and alerter(config, store).run_once() == {}
        history = client.get("/api/v1/alerts/history", headers=auth.admin).get_json()["alerts"]
        assert sorted(h["subject"] for h in history) == ["t-err", "t-few", "t-slow"]
        assert all(h["ok"] and SECRET not in h["target"] for h in history)
    finally:
        other.close()


def test_channel_deliveries_are_retried_and_failures_recorded(config, client, auth, store,
                                                              receiver):
    ops = make_channel(client, auth, json_url(receiver))
    rule(client, auth, on=["error"], channels=[ops["id"]])
    receiver.statuses = [500, 503]
    final_task(store, "t1")
    sleeps = []
    [delivery] = alerter(config, store, sleeps).run_once()["t1"]
    assert delivery["ok"] and delivery["attempts"] == 3 and sleeps == [1.0, 2.0]
    receiver.statuses = [500, 500, 500]
    final_task(store, "t2")
    [delivery] = alerter(config, store).run_once()["t2"]
    assert not delivery["ok"] and delivery["attempts"] == 3 and "500" in delivery["error"]
    [latest] = client.get("/api/v1/alerts/history?limit=1",
                          headers=auth.admin).get_json()["alerts"]
    assert latest["subject"] == "t2" and latest["ok"] is False and latest["error"]


def test_a_failed_attempt_with_a_retry_due_waits_for_the_last_one(config, client, auth, store,
                                                                  receiver):
    ops = make_channel(client, auth, json_url(receiver))
    rule(client, auth, spider="books", on=["error"], channels=[ops["id"]])
    policy = {"max_attempts": 2, "backoff": 5.0, "on": ["error"]}
    final_task(store, "r", retry=policy, root_id="r")
    a = alerter(config, store)
    assert a.run_once() == {} and receiver.bodies == []
    final_task(store, "r-a2", retry=policy, root_id="r", attempt=2, retry_of="r")
    assert set(a.run_once()) == {"r-a2"} and len(receiver.bodies) == 1


def test_private_webhook_channels_are_refused_unless_allowed(config, client, auth, store,
                                                             receiver):
    ops = make_channel(client, auth, json_url(receiver))
    rule(client, auth, on=["error"], channels=[ops["id"]])
    final_task(store, "t1")
    [delivery] = alerter(config, store, alert_allow_private=False).run_once()["t1"]
    assert not delivery["ok"] and "CRAWLFLEET_ALERT_ALLOW_PRIVATE" in delivery["error"]
    assert receiver.bodies == []


def test_node_resource_alerts_after_n_minutes_above(config, client, auth, store, receiver):
    """memory above 80 % for 2 minutes: one alert, then none until it went below once;
    CPU is the load per CPU; an offline node is not watched."""
    ops = make_channel(client, auth, json_url(receiver))
    rule(client, auth, kind="node", metric="memory", above=80, minutes=2, channels=[ops["id"]])
    rule(client, auth, kind="node", metric="cpu", above=90, minutes=0, node="n2",
         channels=[ops["id"]])
    t0 = now()
    store.nodes.insert_many([
        {"_id": "n1", "heartbeat_at": t0, "status": "online", "memory_percent": 93.5,
         "load": 0.1, "cpus": 4},
        {"_id": "n2", "heartbeat_at": t0, "status": "online", "memory_percent": 10.0,
         "load": 7.9, "cpus": 4},
        {"_id": "n3", "heartbeat_at": t0 - 3600, "status": "online", "memory_percent": 99.0}])
    a = alerter(config, store)

    def check(at):
        store.nodes.update_many({"_id": {"$in": ["n1", "n2"]}}, {"$set": {"heartbeat_at": at}})
        return a.check_nodes(at=at)

    first = check(t0)
    assert [(h["subject"], h["events"]) for h in first] == [("n2", ["cpu"])]
    assert check(t0 + 60) == []
    [late] = check(t0 + 121)
    assert late["subject"] == "n1" and "memory at 93.5%" in late["text"] and late["ok"]
    assert check(t0 + 125) == []
    store.nodes.update_one({"_id": "n1"}, {"$set": {"memory_percent": 50.0}})
    assert check(t0 + 126) == []
    store.nodes.update_one({"_id": "n1"}, {"$set": {"memory_percent": 95.0}})
    assert check(t0 + 127) == []  # above again: the two minutes start over
    assert check(t0 + 200) == []
    assert [h["subject"] for h in check(t0 + 250)] == ["n1"]
    assert len(receiver.bodies) == 3


def test_the_settings_destinations_go_to_the_history_too(config, client, auth, store,
                                                        receiver):
    """The webhook setting keeps working beside the channels; its delivery is in
    the history with its URL redacted (no query, no long path segment)."""
    final_task(store, "t1")
    [delivery] = alerter(config, store, alert_webhook=receiver.url + "?key=abcdef").run_once()[
        "t1"]
    assert delivery["ok"] and len(receiver.bodies) == 1
    [record] = client.get("/api/v1/alerts/history", headers=auth.admin).get_json()["alerts"]
    assert record["channel"] == "settings webhook" and record["subject"] == "t1"
    assert "abcdef" not in record["target"] and record["target"].startswith("http://127.0.0.1")
    assert "drop_after" not in record and store.db.alert_history.find_one()["drop_after"]


def test_patching_channels_and_rules(config, client, auth, store, receiver):
    """A disabled channel or rule sends nothing (the task is not even claimed);
    a channel's URL can be replaced and is re-encrypted and re-redacted."""
    other = Receiver()
    try:
        ops = make_channel(client, auth, json_url(receiver))
        made = rule(client, auth, on=["error"], channels=[ops["id"]])
        off = client.patch(f"/api/v1/alerts/rules/{made['id']}", headers=auth.admin,
                           json={"enabled": False})
        assert off.status_code == 200 and off.get_json()["enabled"] is False
        final_task(store, "t1")
        assert alerter(config, store).run_once() == {}
        assert store.tasks.find_one({"_id": "t1"}).get("alerted_at") is None
        client.patch(f"/api/v1/alerts/rules/{made['id']}", headers=auth.admin,
                     json={"enabled": True})
        client.patch(f"/api/v1/alerts/channels/{ops['id']}", headers=auth.admin,
                     json={"enabled": False})
        assert alerter(config, store).run_once() == {}
        moved = client.patch(f"/api/v1/alerts/channels/{ops['id']}", headers=auth.admin,
                             json={"enabled": True, "url": json_url(other, "N3wS3cret")})
        assert moved.status_code == 200 and "N3wS3cret" not in json.dumps(moved.get_json())
        assert set(alerter(config, store).run_once()) == {"t1"}
        assert receiver.bodies == [] and len(other.bodies) == 1
        bad = client.patch(f"/api/v1/alerts/rules/{made['id']}", headers=auth.admin,
                           json={"items_below": "many"})
        assert bad.status_code == 400 and "items_below" in bad.get_json()["error"]
    finally:
        other.close()


def test_disk_rules_read_the_heartbeats_disk_figure(config, client, auth, store, receiver, tmp_path):
    """A node's heartbeat says how full its home's file system is; a disk rule
    alerts on it like on memory."""
    from node.agent import disk_percent

    measured = disk_percent(tmp_path)
    assert measured is not None and 0.0 <= measured <= 100.0
    assert disk_percent(tmp_path / "missing") is None
    ops = make_channel(client, auth, json_url(receiver))
    rule(client, auth, kind="node", metric="disk", above=90, minutes=0, channels=[ops["id"]])
    t0 = now()
    store.nodes.insert_many([
        {"_id": "full", "heartbeat_at": t0, "status": "online", "disk_percent": 97.2},
        {"_id": "roomy", "heartbeat_at": t0, "status": "online", "disk_percent": 40.0}])
    [sent] = alerter(config, store).check_nodes(at=t0)
    assert sent["subject"] == "full" and "disk at 97.2%" in sent["text"] and sent["ok"]


def test_the_alerts_pages_buttons_switch_and_delete_channels_and_rules(app, client, auth, store,
                                                                      receiver):
    """Enable/Disable and Delete on the Alerts page change the stored channel or
    rule and say so; a refusal (a channel a rule still sends to) is said as an error."""
    admin = Browser(app, store, "admin")
    ops = make_channel(client, auth, json_url(receiver))
    made = rule(client, auth, on=["error"], channels=[ops["id"]])
    said = admin.post(f"/alerts/channels/{ops['id']}/enabled", {"enabled": "0"},
                      follow_redirects=True).get_data(as_text=True)
    assert "Channel ops disabled." in said
    assert store.db.alert_channels.find_one({"_id": ops["id"]})["enabled"] is False
    said = admin.post(f"/alerts/rules/{made['id']}/enabled", {"enabled": "0"},
                      follow_redirects=True).get_data(as_text=True)
    assert "Rule disabled: every task: error." in said
    said = admin.post(f"/alerts/rules/{made['id']}/enabled", {"enabled": "1"},
                      follow_redirects=True).get_data(as_text=True)
    assert "Rule enabled: every task: error." in said
    said = admin.post(f"/alerts/channels/{ops['id']}/delete",
                      follow_redirects=True).get_data(as_text=True)
    assert 'class="flash error"' in said and "Channel deleted." not in said
    said = admin.post(f"/alerts/rules/{made['id']}/delete",
                      follow_redirects=True).get_data(as_text=True)
    assert "Rule deleted." in said and store.db.alert_rules.count_documents({}) == 0
    said = admin.post(f"/alerts/channels/{ops['id']}/delete",
                      follow_redirects=True).get_data(as_text=True)
    assert "Channel deleted." in said and store.db.alert_channels.count_documents({}) == 0
