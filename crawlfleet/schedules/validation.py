"""What makes a schedule valid: its fields, their defaults and their checks.

A schedule stores what its runs will be given, so its run options are checked
by the same rules as a run request (`crawlfleet.runrequest`).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from crawlfleet import labels as labelling
from crawlfleet.errors import BadRequest, Conflict
from crawlfleet.models import NODE_ID_RE, Doc
from crawlfleet.runrequest import (validate_args, validate_options, validate_retry,
                                   validate_settings)
from crawlfleet.schedules.cron import CronSpec
from crawlfleet.store import known_ids

if TYPE_CHECKING:
    from crawlfleet.store import Store

OVERLAP_POLICIES = ("skip", "queue", "allow")
ALERT_EVENTS = ("error", "timeout", "abnormal", "finished", "zero_items")
DEFAULT_ALERT_EVENTS = ["error", "timeout", "abnormal"]
FIELDS = ("spider", "cron", "timezone", "args", "settings", "nodes", "priority", "timeout",
          "retry", "description", "enabled", "overlap", "misfire_grace", "alerts", "workers",
          "persist", "labels")
DEFAULTS: dict[str, Any] = {
    "timezone": "UTC", "args": {}, "settings": {}, "nodes": "any", "priority": 0,
    "timeout": None, "retry": None, "description": "", "enabled": True,
    "overlap": "skip", "misfire_grace": None, "alerts": None, "workers": None,
    "persist": False, "labels": {}}
MAX_WORKERS = 64
MAX_DESCRIPTION = 2000
EMAIL_RE = re.compile(r"^[^@\s,;]+@[^@\s,;]+$")


def validate_labels(store: Store, labels: Any, nodes: Any) -> dict[str, str]:
    """The labels a node needs to take the schedule's tasks (not with node ids)."""
    wanted = labelling.validate(labels)
    if wanted and isinstance(nodes, list):
        raise BadRequest('give nodes or labels, not both: labels choose among any nodes '
                         '(nodes "any") or all nodes (nodes "all")')
    return wanted


def require_carriers(store: Store, wanted: dict[str, str]) -> None:
    """Refuse labels no node carries when they are set (a typo would otherwise show
    only at the next fire, which fails with the same message)."""
    if wanted and store.nodes.find_one({f"labels.{k}": v for k, v in wanted.items()},
                                       {"_id": 1}) is None:
        selector = labelling.describe(wanted)
        raise Conflict(f"no node carries the labels {selector}; label one first "
                       f"(crawlfleet node label NODE {selector.replace(',', ' ')})")


def validate_nodes(store: Store, nodes: Any) -> str | list[str]:
    """"any", "all", or a list of known node ids."""
    if nodes in (None, "", "any", ["any"]):
        return "any"
    if nodes in ("all", ["all"]):
        return "all"
    if not isinstance(nodes, list) or not nodes:
        raise BadRequest('nodes must be "any", "all" or a list of node ids')
    for node_id in nodes:
        if not isinstance(node_id, str) or not NODE_ID_RE.match(node_id):
            raise BadRequest(f"invalid node id {node_id!r}")
    nodes = list(dict.fromkeys(nodes))
    known = {n["_id"] for n in store.nodes.find({"_id": {"$in": nodes}}, {"_id": 1})}
    unknown = [n for n in nodes if n not in known]
    if unknown:
        raise BadRequest(f"unknown node(s) {', '.join(unknown)}")
    return nodes


def validate_alerts(alerts: Any) -> Doc | None:
    """None, or {"on": [events], "webhook": url|None, "email": [addresses]}."""
    if alerts is None:
        return None
    if not isinstance(alerts, dict) or set(alerts) - {"on", "webhook", "email"}:
        raise BadRequest('alerts must be {"on": [events], "webhook": url, "email": [addresses]}')
    events = alerts.get("on", DEFAULT_ALERT_EVENTS)
    if isinstance(events, str):
        events = [e.strip() for e in events.split(",") if e.strip()]
    if not isinstance(events, list) or not events or any(e not in ALERT_EVENTS for e in events):
        raise BadRequest(f"alerts.on must list events among {', '.join(ALERT_EVENTS)}")
    webhook = alerts.get("webhook") or None
    if webhook is not None:
        parsed = urlparse(webhook) if isinstance(webhook, str) else None
        if parsed is None or parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise BadRequest("alerts.webhook must be an http:// or https:// URL")
    email = alerts.get("email") or []
    if isinstance(email, str):
        email = [e.strip() for e in email.split(",") if e.strip()]
    if not isinstance(email, list) or any(
            not isinstance(e, str) or not EMAIL_RE.match(e) for e in email):
        raise BadRequest("alerts.email must be a list of email addresses")
    if not webhook and not email:
        raise BadRequest("alerts needs a webhook or at least one email address")
    return {"on": list(dict.fromkeys(events)), "webhook": webhook, "email": email}


def validate(store: Store, body: Doc) -> tuple[Doc, CronSpec]:
    """A complete schedule (every field of FIELDS) checked and normalised."""
    out: Doc = {}
    spider = body.get("spider")
    if not isinstance(spider, str) or not spider:
        raise BadRequest("spider is required: the name of a spider to run")
    if store.spiders.find_one({"_id": spider}, {"_id": 1}) is None:
        raise BadRequest(f"unknown spider {spider!r}; known spiders: {known_ids(store.spiders)}")
    out["spider"] = spider
    if body.get("cron") is None:
        raise BadRequest("cron is required, e.g. '0 3 * * *' (every day at 03:00)")
    spec = CronSpec(body["cron"], body.get("timezone"))
    out["cron"], out["timezone"] = spec.cron, spec.tz_name
    out["args"] = validate_args(body.get("args"))
    out["settings"] = validate_settings(body.get("settings"))
    out["nodes"] = validate_nodes(store, body.get("nodes"))
    out["labels"] = validate_labels(store, body.get("labels"), out["nodes"])
    out["timeout"], out["priority"] = validate_options(body.get("timeout"), body.get("priority"))
    out["retry"] = validate_retry(body.get("retry"))
    description = body.get("description") or ""
    if not isinstance(description, str) or len(description) > MAX_DESCRIPTION:
        raise BadRequest(f"description must be text of at most {MAX_DESCRIPTION} characters")
    out["description"] = description
    enabled = body.get("enabled", True)
    if not isinstance(enabled, bool):
        raise BadRequest("enabled must be true or false")
    out["enabled"] = enabled
    overlap = body.get("overlap") or "skip"
    if overlap not in OVERLAP_POLICIES:
        raise BadRequest(f"overlap must be one of {', '.join(OVERLAP_POLICIES)}")
    out["overlap"] = overlap
    grace = body.get("misfire_grace")
    if grace is not None and (isinstance(grace, bool) or not isinstance(grace, (int, float))
                              or not 0 <= grace <= 366 * 86400):
        raise BadRequest("misfire_grace must be a number of seconds ≥ 0, or null for the default")
    out["misfire_grace"] = None if grace is None else float(grace)
    out["alerts"] = validate_alerts(body.get("alerts"))
    # a distributed crawl of N workers sharing one frontier (master/crawls.py)
    workers = body.get("workers")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int)
                                or not 1 <= workers <= MAX_WORKERS):
        raise BadRequest(f"workers must be an integer from 1 to {MAX_WORKERS}, or null")
    out["workers"] = workers
    persist = body.get("persist") or False  # schedules made before this field have none
    if not isinstance(persist, bool):
        raise BadRequest("persist must be true or false")
    out["persist"] = persist
    return out, spec


def check_fields(body: Doc) -> None:
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        raise BadRequest(f"unknown field(s) {', '.join(unknown)}; expected {', '.join(FIELDS)}")
