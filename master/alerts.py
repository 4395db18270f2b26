"""Alerts: tell someone when a crawl fails, by webhook and email.

Run by the scheduler leader only (the ``scheduler`` lease), every
`INTERVAL` seconds. It reads the tasks that reached a final status since its
last pass (through the ``finished_at`` index) and sends an alert for each
whose outcome matches a destination:

- global destinations from the settings (``alert_webhook``,
  ``alert_email_to`` and the SMTP settings), for the outcomes in
  ``alert_on``, for every task;
- a schedule's own ``alerts`` (``{"on": [...], "webhook": url, "email":
  [...]}``), for that schedule's tasks, in addition to the global ones.

- the alert rules admins keep in the store (crawlfleet/alerting/rules.py), each
  for every task, a spider's or a schedule's, sending to channels (Apprise
  URLs, crawlfleet/alerting/channels.py); besides the outcomes below, a rule
  may fire on ``items_below`` N or ``duration_above`` N seconds. Node rules
  (CPU, memory above a threshold for N minutes) are watched by the same loop
  (master/node_alerts.py).

Every delivery is also written to the alert history (``alert_history``).

Outcomes: ``error``, ``timeout``, ``abnormal``, ``finished``, and
``zero_items`` (finished with no item scraped). A failed attempt whose retry
policy promises another attempt is not alerted: the last attempt is (if the
retry does not appear within its backoff plus `RETRY_WAIT`, the failed one
is alerted after all).

Each task is alerted at most once: it is claimed by an atomic update
(``alerted_at`` from null to now) before anything is sent, and what was
sent is recorded under ``alert`` on the task. The webhook gets a JSON POST
(`payload`; its ``text`` field makes it work as a Slack-style incoming
webhook), tried as `crawlfleet.retrying.ALERT_DELIVERY` says on connection
errors, 5xx and 429; emails go through ``smtplib``, tried the same way;
channels go through Apprise (crawlfleet/alerting/delivery.py), any failure
tried the same way, generic webhooks (json://, xml://, form://) checked
like the settings' webhook first.
"""

import logging
import socket
import time
from urllib.parse import urlparse

import requests

from crawlfleet.alerting import channels as alert_channels
from crawlfleet.alerting import history
from crawlfleet.alerting import rules as alert_rules
from crawlfleet.errors import ConfigError
from crawlfleet.models import FAILED_VALUES, FINAL_VALUES, now
from crawlfleet.schedules import ALERT_EVENTS, iso_time
# the sending half, and names callers and tests know from here
from master.alert_delivery import (ATTEMPTS, MAX_REDIRECTS, SMTP_TIMEOUT,  # noqa: F401
                                   WEBHOOK_TIMEOUT, Deliveries, Permanent, Transient, title)
from master.node_alerts import NodeWatch, send_node_alerts

log = logging.getLogger(__name__)

INTERVAL = 1.0        # seconds between passes
NODE_INTERVAL = 5.0   # seconds between looks at the nodes' figures (heartbeats come every few)
LOOKBACK = 600.0      # a new leader looks this far back for tasks not yet alerted
OVERLAP = 60.0        # each pass re-reads this much before the last (clocks of nodes differ)
PAGE = 500
RETRY_WAIT = 120.0
FAILURES = tuple(FAILED_VALUES)
SMTP_SECURITY = ("none", "starttls", "ssl")


def split_list(value):
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def task_events(task):
    """The alert events a final task stands for."""
    status = task.get("status")
    if status == "finished":
        items = (task.get("stats") or {}).get("items") or 0
        return ["finished", "zero_items"] if items == 0 else ["finished"]
    return [status] if status in FAILURES else []


def summary(task):
    stats = task.get("stats") or {}
    duration = None
    if task.get("started_at") and task.get("finished_at"):
        duration = round(task["finished_at"] - task["started_at"], 3)
    return {
        "id": task["_id"], "spider": task.get("spider"), "status": task.get("status"),
        "node_id": task.get("node_id"), "exit_code": task.get("exit_code"),
        "error": task.get("error"), "attempt": task.get("attempt", 1),
        "trigger": task.get("trigger"), "schedule_id": task.get("schedule_id"),
        "fire_time": task.get("fire_time"), "args": task.get("args") or {},
        "created_at": task.get("created_at"), "started_at": task.get("started_at"),
        "finished_at": task.get("finished_at"), "duration": duration,
        "stats": {k: stats.get(k) for k in ("items", "pages", "errors") if k in stats},
    }


def text_line(task, events):
    info = summary(task)
    stats = info["stats"]
    line = (f"crawlfleet: spider {info['spider']} task {info['id']} {info['status']}"
            + (" with no item" if "zero_items" in events else ""))
    details = []
    if info["exit_code"] not in (None, 0):
        details.append(f"exit code {info['exit_code']}")
    if info["error"]:
        details.append(str(info["error"])[:300])
    details.append(f"{stats.get('items', 0)} items, {stats.get('pages', 0)} pages"
                   + (f" in {info['duration']:.1f} s" if info["duration"] is not None else ""))
    if info["schedule_id"]:
        details.append(f"schedule {info['schedule_id']}, fire time {iso_time(info['fire_time'])}")
    return f"{line} ({'; '.join(details)})"


class Alerter(Deliveries):
    def __init__(self, config, store, lease=None, *, clock=now, master_id="master",
                 session=None, sleep=time.sleep):
        self.config = config
        self.store = store
        self.lease = lease
        self.clock = clock
        self.master_id = master_id
        self.session = session or requests.Session()
        self.sleep = sleep
        self.events = split_list(config.alert_on)
        unknown = [e for e in self.events if e not in ALERT_EVENTS]
        if unknown:
            raise ConfigError(f"alert_on: unknown outcome(s) {', '.join(unknown)}; "
                              f"choose among {', '.join(ALERT_EVENTS)}")
        if config.alert_webhook:
            parsed = urlparse(config.alert_webhook)
            if parsed.scheme not in ("http", "https") or not parsed.netloc:
                raise ConfigError("alert_webhook must be an http:// or https:// URL")
        if config.alert_smtp_security not in SMTP_SECURITY:
            raise ConfigError(f"alert_smtp_security must be one of {', '.join(SMTP_SECURITY)}")
        self.sender = config.alert_email_from or f"crawlfleet@{socket.gethostname()}"
        self._since = None
        self._waiting = {}  # task id → when to stop waiting for its retry
        self.node_watch = NodeWatch(config, store)

    # -- the loop ------------------------------------------------------------------
    def leading(self):
        return self.lease is None or self.lease.is_leader()

    def run(self, stopped):
        last_nodes = 0.0
        while not stopped.is_set():
            if self.leading():
                try:
                    self.run_once()
                    if time.monotonic() - last_nodes >= NODE_INTERVAL:
                        last_nodes = time.monotonic()
                        self.check_nodes()
                except Exception:
                    log.exception("alert pass failed")
            else:
                self._since = None
                self.node_watch = NodeWatch(self.config, self.store)
            stopped.wait(INTERVAL)

    def run_once(self, at=None):
        """One pass; returns {task id: deliveries} of the alerts sent."""
        at = self.clock() if at is None else at
        since = at - LOOKBACK if self._since is None else self._since - OVERLAP
        tasks = list(self.store.tasks.find(
            {"finished_at": {"$gte": since}, "alerted_at": None}).sort("finished_at", 1)
            .limit(PAGE))
        self._since = tasks[-1]["finished_at"] if len(tasks) == PAGE else at
        waiting = [t for t in self._waiting if t not in {d["_id"] for d in tasks}]
        if waiting:
            tasks += list(self.store.tasks.find({"_id": {"$in": waiting}, "alerted_at": None}))
        schedules = {}
        sent = {}
        rules = alert_rules.task_rules(self.store) if tasks else []
        channels = ({d["_id"]: d for d in self.store.db.alert_channels.find({"enabled": True})}
                    if rules else {})
        for task in tasks:
            if task.get("status") not in FINAL_VALUES:
                continue
            deliveries = self.consider(task, at, schedules, rules, channels)
            if deliveries is not None:
                sent[task["_id"]] = deliveries
        return sent

    # -- one task --------------------------------------------------------------------
    def destinations(self, task, schedules):
        """[(kind, target, events)]: where alerts of this task go, for which events."""
        out = {}

        def add(kind, target, events):
            key = (kind, target)
            out[key] = sorted(set(out.get(key, ())) | set(events))

        if self.config.alert_webhook:
            add("webhook", self.config.alert_webhook, self.events)
        to = split_list(self.config.alert_email_to)
        if to:
            add("email", tuple(to), self.events)
        sid = task.get("schedule_id")
        if sid:
            if sid not in schedules:
                schedules[sid] = self.store.schedules.find_one({"_id": sid})
            alerts = (schedules[sid] or {}).get("alerts")
            if alerts:
                on = alerts.get("on") or []
                if alerts.get("webhook"):
                    add("webhook", alerts["webhook"], on)
                if alerts.get("email"):
                    add("email", tuple(alerts["email"]), on)
        return [(kind, target, events) for (kind, target), events in out.items()]

    def consider(self, task, at, schedules, rules=(), channels=None):
        events = task_events(task)
        matching = [(kind, target, [e for e in events if e in on])
                    for kind, target, on in self.destinations(task, schedules)]
        matching = [m for m in matching if m[2]]
        for channel_id, matched in alert_rules.channel_events(rules, task, events).items():
            if channel_id in (channels or {}):
                matching.append(("channel", channels[channel_id], matched))
                events = list(dict.fromkeys(events + matched))
        if not matching:
            self._waiting.pop(task["_id"], None)
            return None
        if self.retry_follows(task, at):
            return None
        self._waiting.pop(task["_id"], None)
        claimed = self.store.tasks.update_one(
            {"_id": task["_id"], "alerted_at": None},
            {"$set": {"alerted_at": at, "alert": {"by": self.master_id, "events": events}}})
        if not claimed.modified_count:
            return None  # another master alerted it
        schedule = schedules.get(task.get("schedule_id")) if task.get("schedule_id") else None
        deliveries = []
        for kind, target, matched in matching:
            body = self.payload(task, matched, schedule)
            if kind == "webhook":
                result = self.retrying(lambda b=body, t=target: self.post(t, b))
                shown, channel = target, "settings webhook"
            elif kind == "email":
                result = self.retrying(lambda b=body, t=target: self.mail(t, task, b))
                shown, channel = ", ".join(target), "settings email"
            else:
                result = self.to_channel(target, title(body), body["text"])
                shown, channel = f"channel {target['name']}", target["name"]
            deliveries.append({"kind": kind, "target": shown, "events": matched, **result})
            history.record(self.store, kind="task", subject=task["_id"],
                           spider=task.get("spider"), events=matched, channel=channel,
                           target=(target["redacted"] if kind == "channel" else
                                   alert_channels.redact(shown) if kind == "webhook" else shown),
                           text=body["text"], ok=result["ok"], attempts=result["attempts"],
                           error=result["error"])
            level = logging.INFO if result["ok"] else logging.WARNING
            log.log(level, "alert for task %s by %s to %s: %s", task["_id"], kind,
                    deliveries[-1]["target"], "sent" if result["ok"] else result["error"])
        self.store.tasks.update_one(
            {"_id": task["_id"]},
            {"$set": {"alert": {"by": self.master_id, "events": events,
                                "deliveries": deliveries, "sent_at": self.clock()}}})
        return deliveries

    def retry_follows(self, task, at):
        """True while another attempt of this failed task is due (alert that one instead)."""
        policy = task.get("retry") or {}
        if task.get("status") not in FAILURES or not policy:
            return False
        attempt = task.get("attempt") or 1
        if attempt >= (policy.get("max_attempts") or 1):
            return False
        if task.get("status") not in (policy.get("on") or FAILURES):
            return False
        # the next attempt's id is derived from the first's (crawlfleet.models.next_attempt)
        root = task.get("root_id") or task["_id"]
        retry = (self.store.tasks.find_one({"_id": f"{root}-a{attempt + 1}"}, {"_id": 1})
                 or self.store.tasks.find_one({"retry_of": task["_id"]}, {"_id": 1}))
        if retry is not None:
            self._waiting.pop(task["_id"], None)
            self.store.tasks.update_one(
                {"_id": task["_id"], "alerted_at": None},
                {"$set": {"alerted_at": at, "alert": {"by": self.master_id,
                                                      "superseded_by": retry["_id"]}}})
            return True
        backoff = (policy.get("backoff") or 0) * 2 ** (attempt - 1)
        deadline = (task.get("finished_at") or at) + backoff + RETRY_WAIT
        if at < deadline:
            self._waiting[task["_id"]] = deadline
            return True
        return False

    def payload(self, task, events, schedule):
        return {
            "event": events[0], "events": events, "text": text_line(task, events),
            "task": summary(task),
            "schedule": ({"id": schedule["_id"], "spider": schedule.get("spider"),
                          "cron": schedule.get("cron"), "timezone": schedule.get("timezone"),
                          "description": schedule.get("description")}
                         if schedule else None),
            "master": self.master_id, "sent_at": self.clock(),
        }

    # -- nodes ---------------------------------------------------------------------
    def check_nodes(self, at=None):
        """Send the node resource alerts due now; returns their history records."""
        return send_node_alerts(self, self.clock() if at is None else at)
