"""Tests for master/alerts.py: webhook alerts to a local HTTP receiver and
email alerts to a local SMTP server (aiosmtpd), both started by the test;
which outcomes alert, retries with backoff, at most one alert per task even
with two masters, and the wait for a task's retry."""

import email
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller

from helpers import free_port
from crawlfleet.errors import ConfigError
from crawlfleet.models import new_task, now
from master.alerts import ATTEMPTS, RETRY_WAIT, Alerter

SPIDER = {"_id": "books", "project": "books", "version": "v1", "kind": "scrapy",
          "results_collection": "results_books"}


class Receiver:
    """An HTTP server in a thread that records JSON POSTs and answers with the
    next status of `statuses` (200 once they run out)."""

    def __init__(self):
        self.bodies = []
        self.statuses = []
        self.reply = b"ok"
        self.location = None  # a Location header to send (with a 3xx status)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                receiver.bodies.append(json.loads(self.rfile.read(length)))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", str(len(receiver.reply)))
                if receiver.location:
                    self.send_header("Location", receiver.location)
                self.end_headers()
                self.wfile.write(receiver.reply)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True,
                                       kwargs={"poll_interval": 0.05})
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class Mailbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.rcpt_tos, email.message_from_bytes(envelope.content)))
        return "250 OK"


@pytest.fixture
def receiver():
    receiver = Receiver()
    yield receiver
    receiver.close()


@pytest.fixture
def mailbox():
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=free_port())
    controller.start()
    box.port = controller.port
    yield box
    controller.stop()


def alerter(config, store, sleeps=None, **settings):
    settings.setdefault("alert_allow_private", True)  # the test receivers are on loopback
    return Alerter(config.replace(**settings), store, master_id="m1",
                   sleep=(sleeps.append if sleeps is not None else (lambda s: None)))


def final_task(store, task_id, status="error", items=0, **fields):
    task = new_task(SPIDER, target="any")
    task.update({"_id": task_id, "status": status, "started_at": now() - 5,
                 "finished_at": now(), "exit_code": 1 if status == "error" else 0,
                 "error": "Traceback: boom" if status == "error" else None,
                 "stats": {"items": items, "pages": 3, "errors": 0}, "retry": None})
    task.update(fields)
    store.tasks.insert_one(task)
    return task


def test_failed_task_alerts_by_webhook_and_email_once(config, store, receiver, mailbox):
    """An `error` task: one JSON POST (with a Slack-style `text`) and one email;
    recorded on the task; a second pass, or a second master, sends nothing."""
    settings = dict(alert_webhook=receiver.url, alert_email_to="ops@example.com, dev@example.com",
                    alert_email_from="crawlfleet@example.com", alert_smtp_host="127.0.0.1",
                    alert_smtp_port=mailbox.port)
    final_task(store, "t-err")
    sent = alerter(config, store, **settings).run_once()
    assert set(sent) == {"t-err"} and all(d["ok"] for d in sent["t-err"])
    [body] = receiver.bodies
    assert body["event"] == "error" and body["task"]["id"] == "t-err"
    assert body["task"]["exit_code"] == 1 and body["task"]["duration"] > 0
    assert "books task t-err error" in body["text"] and "boom" in body["text"]
    [(rcpts, message)] = mailbox.messages
    assert rcpts == ["ops@example.com", "dev@example.com"]
    assert message["Subject"] == "[crawlfleet] books error: task t-err"
    assert "Traceback: boom" in message.get_payload()
    doc = store.tasks.find_one({"_id": "t-err"})
    assert doc["alerted_at"] and {d["kind"] for d in doc["alert"]["deliveries"]} == {
        "webhook", "email"}
    assert alerter(config, store, **settings).run_once() == {}
    assert len(receiver.bodies) == 1 and len(mailbox.messages) == 1


@pytest.mark.parametrize("status, items, alerted", [
    ("error", 0, True), ("timeout", 5, True), ("abnormal", 0, True),
    ("finished", 10, False), ("finished", 0, False), ("cancelled", 0, False),
    ("running", 0, False),
])
def test_default_outcomes_that_alert(config, store, receiver, status, items, alerted):
    final_task(store, "t1", status=status, items=items)
    alerter(config, store, alert_webhook=receiver.url).run_once()
    assert len(receiver.bodies) == (1 if alerted else 0)


def test_schedule_alerts_on_finish_and_on_zero_items(config, store, receiver):
    """A schedule's own alerts: `zero_items` fires for a finished task with no
    item, not for one with items; nothing global is configured."""
    store.schedules.insert_one({"_id": "s1", "spider": "books", "cron": "0 3 * * *",
                                "alerts": {"on": ["zero_items"], "webhook": receiver.url,
                                           "email": []}})
    final_task(store, "t-empty", status="finished", items=0, schedule_id="s1", fire_time=1.0)
    final_task(store, "t-full", status="finished", items=7, schedule_id="s1", fire_time=2.0)
    final_task(store, "t-other", status="error")  # no destination for it
    alerter(config, store).run_once()
    [body] = receiver.bodies
    assert body["task"]["id"] == "t-empty" and body["events"] == ["zero_items"]
    assert body["schedule"]["id"] == "s1" and "with no item" in body["text"]


def test_webhook_is_retried_with_backoff(config, store, receiver):
    """500, 500, then 200: delivered on the third attempt after 1 s and 2 s."""
    receiver.statuses = [500, 503]
    final_task(store, "t1")
    sleeps = []
    sent = alerter(config, store, sleeps, alert_webhook=receiver.url).run_once()
    assert sent["t1"][0]["ok"] and sent["t1"][0]["attempts"] == 3
    assert sleeps == [1.0, 2.0] and len(receiver.bodies) == 3


def test_webhook_failures_are_recorded(config, store, receiver):
    """Always 500: ATTEMPTS tries, then the error is recorded on the task; a
    4xx is not retried."""
    receiver.statuses = [500] * ATTEMPTS + [404]
    final_task(store, "t1")
    sent = alerter(config, store, alert_webhook=receiver.url).run_once()
    assert not sent["t1"][0]["ok"] and sent["t1"][0]["error"] == "Transient: HTTP 500"
    final_task(store, "t2")
    sent = alerter(config, store, alert_webhook=receiver.url).run_once()
    assert sent["t2"][0]["attempts"] == 1 and "HTTP 404" in sent["t2"][0]["error"]
    assert store.tasks.find_one({"_id": "t1"})["alert"]["deliveries"][0]["ok"] is False


def test_two_masters_alerting_at_once_send_one_alert_per_task(config, store, receiver):
    for i in range(20):
        final_task(store, f"t{i:02d}")
    alerters = [alerter(config, store, alert_webhook=receiver.url) for _ in range(2)]
    threads = [threading.Thread(target=a.run_once) for a in alerters]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ids = sorted(b["task"]["id"] for b in receiver.bodies)
    assert ids == [f"t{i:02d}" for i in range(20)]


def test_a_failed_attempt_with_a_retry_due_waits_for_the_last_attempt(config, store, receiver):
    """attempt 1 of 2 failed: no alert while its retry is due; once the retry
    exists the first is marked superseded; the retry's own failure alerts."""
    policy = {"max_attempts": 2, "backoff": 5.0, "on": ["error"]}
    final_task(store, "r", retry=policy, root_id="r")
    a = alerter(config, store, alert_webhook=receiver.url)
    assert a.run_once() == {} and receiver.bodies == []
    final_task(store, "r-a2", retry=policy, root_id="r", attempt=2, retry_of="r")
    sent = a.run_once()
    assert set(sent) == {"r-a2"} and receiver.bodies[0]["task"]["attempt"] == 2
    assert store.tasks.find_one({"_id": "r"})["alert"]["superseded_by"] == "r-a2"
    # a retry that never comes: alerted once the wait is over
    final_task(store, "lonely", retry=policy)
    assert a.run_once() == {}
    assert set(a.run_once(at=now() + 5 + RETRY_WAIT + 1)) == {"lonely"}


def test_bad_alert_settings_stop_the_master(config, store):
    for settings, message in (({"alert_on": "error,explosion"}, "unknown outcome"),
                              ({"alert_webhook": "hooks.example"}, "http"),
                              ({"alert_smtp_security": "tls13"}, "starttls")):
        with pytest.raises(ConfigError, match=message):
            alerter(config, store, **settings)


# -- where alerts may go, and who sees it (issue 16, item 5) -----------------------------

def test_webhooks_to_internal_addresses_are_refused_by_default(config, store, receiver):
    """Loopback, the cloud metadata address, private and link-local hosts: refused
    before any connection, recorded with the setting that allows them."""
    for n, url in enumerate([receiver.url, "http://localhost:9/x", "http://169.254.169.254/",
                             "http://10.1.2.3/hook", "http://[::1]:9/", "http://0.0.0.0/",
                             "http://[::ffff:127.0.0.1]/"]):
        final_task(store, f"t{n}")
        sent = alerter(config, store, alert_webhook=url, alert_allow_private=False).run_once()
        [delivery] = sent[f"t{n}"]
        assert not delivery["ok"] and delivery["attempts"] == 1, (url, delivery)
        assert "CRAWLFLEET_ALERT_ALLOW_PRIVATE" in delivery["error"], delivery
    assert receiver.bodies == []


def test_redirects_are_not_followed_by_default_and_checked_when_they_are(config, store,
                                                                         receiver):
    other = Receiver()
    try:
        receiver.statuses, receiver.location = [307], other.url
        final_task(store, "t1")
        [delivery] = alerter(config, store, alert_webhook=receiver.url).run_once()["t1"]
        assert not delivery["ok"] and "redirect, not followed" in delivery["error"]
        assert other.bodies == []

        receiver.statuses = [307]
        final_task(store, "t2")
        [delivery] = alerter(config, store, alert_webhook=receiver.url,
                             alert_follow_redirects=True).run_once()["t2"]
        assert delivery["ok"] and len(other.bodies) == 1

        # followed, but into the private network: refused at the hop
        receiver.statuses, receiver.location = [307], "http://169.254.169.254/latest"
        final_task(store, "t3")
        sent = Alerter(config.replace(alert_webhook=receiver.url, alert_follow_redirects=True),
                       store, master_id="m1", sleep=lambda s: None)
        # the first hop (the loopback receiver) is allowed by pointing the check at a
        # public stand-in: only the redirect's target is judged here
        from master import webhook_target

        real_check = webhook_target.check
        webhook_target.check = lambda url, allow: None if url == receiver.url \
            else real_check(url, allow)
        try:
            [delivery] = sent.run_once()["t3"]
        finally:
            webhook_target.check = real_check
        assert not delivery["ok"] and "169.254.169.254" in delivery["error"]
    finally:
        other.close()


def test_a_targets_reply_body_is_never_stored(config, store, receiver):
    receiver.statuses, receiver.reply = [403], b"internal secret: s3cr3t"
    final_task(store, "t1")
    [delivery] = alerter(config, store, alert_webhook=receiver.url).run_once()["t1"]
    assert delivery["error"] == "HTTP 403"
    assert "s3cr3t" not in json.dumps(store.tasks.find_one({"_id": "t1"}), default=str)


def test_alert_targets_are_shown_to_operators_and_admins_only(config, store, receiver):
    from conftest import Tokens
    from web import create_app

    final_task(store, "t1")
    alerter(config, store, alert_webhook=receiver.url + "?key=abc").run_once()
    app = create_app(config)
    try:
        client, tokens = app.test_client(), Tokens(store)
        viewer = client.get("/api/v1/tasks/t1", headers=tokens.viewer).get_json()
        assert "key=abc" not in json.dumps(viewer)
        assert viewer["alert"]["deliveries"][0]["target"].startswith("(hidden")
        listed = client.get("/api/v1/tasks", headers=tokens.viewer).get_json()
        assert "key=abc" not in json.dumps(listed)
        operator = client.get("/api/v1/tasks/t1", headers=tokens.operator).get_json()
        assert operator["alert"]["deliveries"][0]["target"].endswith("key=abc")

        store.nodes.delete_many({})
        store.spiders.insert_one({"_id": "books", "project": "books", "version": "v1",
                                  "kind": "scrapy", "results_collection": "results_books"})
        made = client.post("/api/v1/schedules", headers=tokens.operator, json={
            "spider": "books", "cron": "0 0 * * *",
            "alerts": {"on": ["error"], "webhook": "https://hooks.example/T0/secret",
                       "email": ["ops@example.com"]}}).get_json()
        sid = made.get("id") or made["_id"]
        for path in (f"/api/v1/schedules/{sid}", "/api/v1/schedules"):
            seen = json.dumps(client.get(path, headers=tokens.viewer).get_json())
            assert "secret" not in seen and "ops@example.com" not in seen, seen
            seen = json.dumps(client.get(path, headers=tokens.operator).get_json())
            assert "hooks.example/T0/secret" in seen and "ops@example.com" in seen
    finally:
        app.extensions["crawlfleet"].close()


def test_global_alert_settings_are_not_in_a_spiders_environment(config):
    from node.environ import task_environment

    task = new_task(SPIDER, target="any")
    env = task_environment(task, config, "n1", home="/tmp/task", base={
        "PATH": "/usr/bin", "CRAWLFLEET_ALERT_WEBHOOK": "https://hooks.example/secret",
        "CRAWLFLEET_ALERT_EMAIL_TO": "ops@example.com", "CRAWLFLEET_ALERT_SMTP_USER": "u"})
    assert not [k for k in env if k.startswith("CRAWLFLEET_ALERT_")]
