"""Alert rules, in the ``alert_rules`` collection: which outcome sends an alert
to which channels (crawlfleet/alerting/channels.py).

A task rule (``kind: "task"``) applies to every task, to one spider's, or to
one schedule's, and fires on any of its conditions:

- ``on``: outcomes ``error``, ``timeout``, ``abnormal``, ``finished``,
  ``zero_items`` (finished with no item);
- ``items_below``: finished with fewer items than that;
- ``duration_above``: ran (finished or failed) longer than that many seconds.

A node rule (``kind: "node"``) fires when a node's ``cpu``, ``memory`` or
``disk`` use, as its heartbeat reports it, stays above ``above`` percent for
``minutes`` (master/node_alerts.py).
"""

from __future__ import annotations

import uuid
from typing import Any

from crawlfleet.errors import BadRequest, NotFound
from crawlfleet.models import Doc, now
from crawlfleet.schedules import ALERT_EVENTS
from crawlfleet.store import require_known

KINDS = ("task", "node")
METRICS = ("cpu", "memory", "disk")
TASK_FIELDS = ("kind", "spider", "schedule_id", "on", "items_below", "duration_above",
               "channels", "enabled")
NODE_FIELDS = ("kind", "metric", "above", "minutes", "node", "channels", "enabled")
FIELDS = tuple(dict.fromkeys(TASK_FIELDS + NODE_FIELDS))
MAX_NAME = 200
FAILURES = ("error", "timeout", "abnormal")


def _number(body: Doc, name: str, *, low: float, high: float | None = None,
            integer: bool = False) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or (integer and not isinstance(value, int)) or value != value \
            or value < low or (high is not None and value > high):
        kind = "a whole number" if integer else "a number"
        limit = f"from {low:g} to {high:g}" if high is not None else f"of at least {low:g}"
        raise BadRequest(f"{name} must be {kind} {limit}")
    return value


def _optional_name(body: Doc, name: str) -> str | None:
    value = body.get(name)
    if value in (None, ""):
        return None
    if not isinstance(value, str) or len(value) > MAX_NAME:
        raise BadRequest(f"{name} must be a name or null")
    return value


def _channels(store: Any, value: Any) -> list[str]:
    if not isinstance(value, list) or not value or not all(isinstance(c, str) for c in value):
        raise BadRequest("channels must be a non-empty list of channel ids")
    return require_known(store.db.alert_channels, value, "unknown channel(s) ")


def validate(store: Any, body: Doc) -> Doc:
    """A rule document from `body` (the API's or the form's), or BadRequest."""
    kind = body.get("kind", "task")
    if kind not in KINDS:
        raise BadRequest(f"kind must be one of {', '.join(KINDS)}")
    allowed = TASK_FIELDS if kind == "task" else NODE_FIELDS
    stray = sorted(k for k in body if k not in allowed and body[k] not in (None, "", []))
    if stray:
        raise BadRequest(f"a {kind} rule has no field(s) {', '.join(stray)}")
    enabled = body.get("enabled", True)
    if not isinstance(enabled, bool):
        raise BadRequest("enabled must be true or false")
    rule: Doc = {"kind": kind, "channels": _channels(store, body.get("channels")),
                 "enabled": enabled}
    if kind == "node":
        if body.get("metric") not in METRICS:
            raise BadRequest(f"metric must be one of {', '.join(METRICS)}")
        rule.update(metric=body["metric"], above=_number(body, "above", low=0, high=100),
                    minutes=_number(body, "minutes", low=0, high=7 * 24 * 60) or 0,
                    node=_optional_name(body, "node"))
        if rule["above"] is None:
            raise BadRequest("above (a percentage) is required")
        return rule
    on = body.get("on") or []
    if not isinstance(on, list) or any(e not in ALERT_EVENTS for e in on):
        raise BadRequest(f"on must be a list of outcomes among {', '.join(ALERT_EVENTS)}")
    rule.update(spider=_optional_name(body, "spider"),
                schedule_id=_optional_name(body, "schedule_id"),
                on=list(dict.fromkeys(on)),
                items_below=_number(body, "items_below", low=1, integer=True),
                duration_above=_number(body, "duration_above", low=0))
    if rule["spider"] and rule["schedule_id"]:
        raise BadRequest("a rule is for a spider or for a schedule, not both")
    if rule["schedule_id"] and not store.schedules.find_one({"_id": rule["schedule_id"]},
                                                            {"_id": 1}):
        raise BadRequest(f"unknown schedule {rule['schedule_id']!r}")
    if not on and rule["items_below"] is None and rule["duration_above"] is None:
        raise BadRequest("say when the rule fires: on (outcomes), items_below or "
                         "duration_above")
    return rule


def create(store: Any, body: Doc, *, by: str | None = None) -> Doc:
    rule = validate(store, body)
    rule.update(_id=uuid.uuid4().hex[:12], created_at=now(), created_by=by)
    store.db.alert_rules.insert_one(rule)
    return public(rule)


def update(store: Any, rule_id: str, body: Doc) -> Doc:
    """Change a rule: `body` is merged into it and checked whole again."""
    current = get(store, rule_id)
    merged = {k: current.get(k) for k in FIELDS if k in current}
    merged.update(body)
    merged["kind"] = current["kind"]
    rule = validate(store, merged)
    rule.update(_id=rule_id, created_at=current.get("created_at"),
                created_by=current.get("created_by"), updated_at=now())
    # the whole document, not $set: nx-27017 0.8 turns a boolean $set over true into 0
    store.db.alert_rules.replace_one({"_id": rule_id}, rule)
    return public(get(store, rule_id))


def get(store: Any, rule_id: Any) -> Doc:
    doc = store.db.alert_rules.find_one({"_id": rule_id}) if isinstance(rule_id, str) else None
    if doc is None:
        raise NotFound(f"unknown alert rule {rule_id!r}")
    return doc


def delete(store: Any, rule_id: str) -> None:
    get(store, rule_id)
    store.db.alert_rules.delete_one({"_id": rule_id})


def public(doc: Doc) -> Doc:
    out = {k: v for k, v in doc.items() if k != "_id"}
    return {"id": doc["_id"], **out, "summary": describe(doc)}


def list_rules(store: Any, kind: str | None = None) -> list[Doc]:
    query = {"kind": kind} if kind else {}
    return [public(d) for d in store.db.alert_rules.find(query).sort("created_at", 1)]


def describe(rule: Doc) -> str:
    """The rule in words, for the UI and the CLI."""
    if rule.get("kind") == "node":
        where = f"node {rule['node']}" if rule.get("node") else "any node"
        return (f"{where}: {rule.get('metric')} above {rule.get('above'):g}% "
                f"for {rule.get('minutes') or 0:g} min")
    where = (f"spider {rule['spider']}" if rule.get("spider") else
             f"schedule {rule['schedule_id']}" if rule.get("schedule_id") else "every task")
    when = list(rule.get("on") or [])
    if rule.get("items_below") is not None:
        when.append(f"items below {rule['items_below']}")
    if rule.get("duration_above") is not None:
        when.append(f"duration above {rule['duration_above']:g} s")
    return f"{where}: {', '.join(when)}"


# -- evaluation (master/alerts.py) ---------------------------------------------------

def task_rules(store: Any) -> list[Doc]:
    return list(store.db.alert_rules.find({"kind": "task", "enabled": True}))


def node_rules(store: Any) -> list[Doc]:
    return list(store.db.alert_rules.find({"kind": "node", "enabled": True}))


def rule_events(rule: Doc, task: Doc, outcomes: list[str]) -> list[str]:
    """What of `rule` the final `task` (whose outcomes are `outcomes`) sets off."""
    if rule.get("spider") and rule["spider"] != task.get("spider"):
        return []
    if rule.get("schedule_id") and rule["schedule_id"] != task.get("schedule_id"):
        return []
    events = [e for e in outcomes if e in (rule.get("on") or ())]
    status = task.get("status")
    items = (task.get("stats") or {}).get("items") or 0
    if rule.get("items_below") is not None and status == "finished" \
            and items < rule["items_below"]:
        events.append("items_below")
    if rule.get("duration_above") is not None and (status == "finished" or status in FAILURES) \
            and task.get("started_at") and task.get("finished_at") \
            and task["finished_at"] - task["started_at"] > rule["duration_above"]:
        events.append("duration_above")
    return events


def channel_events(rules: list[Doc], task: Doc, outcomes: list[str]) -> dict[str, list[str]]:
    """{channel id: events} the task's alerts go to, merged over the rules."""
    out: dict[str, list[str]] = {}
    for rule in rules:
        events = rule_events(rule, task, outcomes)
        if events:
            for channel in rule.get("channels") or ():
                out[channel] = list(dict.fromkeys(out.get(channel, []) + events))
    return out
