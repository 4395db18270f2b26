"""Schedules: the model, its validation, and when a cron expression fires.

A schedule runs a spider at the times of a cron expression read in an IANA
time zone. The web API writes schedules; the master's scheduler fires them
(master/scheduler.py). Both use this module, so they agree on what is valid
and on every fire time.

Cron syntax (croniter): five fields ``minute hour day-of-month month
day-of-week`` with ranges, lists, steps and names (``*/15 9-17 * * MON-FRI``),
``L`` and ``#`` (``0 3 * * 5#2``), or a macro (@yearly, @monthly, @weekly,
@daily, @hourly). An optional sixth field is seconds, last as croniter reads
it: ``* * * * * */10`` fires every ten seconds. When both day fields are
restricted, a day matching either fires (classic cron).

Time zones and DST. Fire times are wall-clock times in the schedule's zone
(default UTC), with two rules for the days clocks change:

- A schedule whose hour field is every hour (``*``) follows elapsed time: a
  wall time skipped by a spring-forward does not fire (that real hour did
  not happen), and in the repeated hour of a fall-back it fires on both
  passes (two real hours went by).
- Any other schedule fires once per matching wall time: a time skipped by a
  spring-forward (02:30 on the night clocks go from 02:00 to 03:00) fires
  once, at the moment the clocks jump (03:00 local); a time that occurs
  twice in a fall-back fires once, on its first occurrence.

Fire times are whole seconds, UTC epoch floats, like every ledger timestamp.
"""

import re
import secrets
import time
from datetime import datetime, timedelta, timezone
from urllib.parse import urlparse
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from croniter.croniter import CroniterBadDateError, CroniterError

from crawlfleet.errors import BadRequest, NotFound
from crawlfleet.models import NODE_ID_RE, now
# The run-request validators are the dispatcher's: a schedule stores what a
# run would be given, so it is checked by the same rules when it is saved.
from master.dispatch import (validate_args, validate_options, validate_retry,
                             validate_settings)

OVERLAP_POLICIES = ("skip", "queue", "allow")
ALERT_EVENTS = ("error", "timeout", "abnormal", "finished", "zero_items")
DEFAULT_ALERT_EVENTS = ["error", "timeout", "abnormal"]
MACROS = {
    "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
FIELDS = ("spider", "cron", "timezone", "args", "settings", "nodes", "priority", "timeout",
          "retry", "description", "enabled", "overlap", "misfire_grace", "alerts", "workers",
          "persist")
DEFAULTS = {"timezone": "UTC", "args": {}, "settings": {}, "nodes": "any", "priority": 0,
            "timeout": None, "retry": None, "description": "", "enabled": True,
            "overlap": "skip", "misfire_grace": None, "alerts": None, "workers": None,
            "persist": False}
MAX_WORKERS = 64
MAX_DESCRIPTION = 2000
MAX_PREVIEW = 50
EMAIL_RE = re.compile(r"^[^@\s,;]+@[^@\s,;]+$")
_SLOW_PATH = object()
# Fire states recorded in `schedule_fires`.
DISPATCHING, FIRED, SKIPPED, QUEUED, FAILED = "dispatching", "fired", "skipped", "queued", "failed"


# -- when a cron expression fires ----------------------------------------------

class CronSpec:
    """A validated cron expression in a time zone; computes fire times.

    Not thread-safe (it reuses one croniter iterator): make one per thread.
    """

    def __init__(self, cron, tz="UTC"):
        if not isinstance(cron, str) or not cron.strip():
            raise BadRequest("cron must be a cron expression such as '*/5 * * * *'")
        expr = " ".join(cron.split())
        expr = MACROS.get(expr.lower(), expr)
        fields = expr.split(" ")
        if len(fields) not in (5, 6):
            raise BadRequest(
                f"invalid cron expression {cron!r}: expected 5 fields (minute hour "
                "day-of-month month day-of-week) or 6 (the sixth is seconds), "
                f"got {len(fields)}")
        try:
            self._iter = croniter(expr, datetime(2000, 1, 1), ret_type=datetime)
        except (CroniterError, ValueError, KeyError, TypeError) as exc:
            raise BadRequest(f"invalid cron expression {cron!r}: {exc}") from None
        self.cron = expr
        self.tz_name, self.tz = load_timezone(tz)
        hours = self._iter.expanded[1]
        self.every_hour = hours == ["*"] or len(hours) == 24
        if self.next_after(now()) is None:
            raise BadRequest(f"cron expression {cron!r} never fires")

    # -- public ------------------------------------------------------------------
    def next_after(self, t):
        """The first fire time strictly after epoch `t`, or None if there is none."""
        if self.every_hour:
            found = self._next_elapsed(t)
            if found is not _SLOW_PATH:
                return found
        return self._next_wall(t)

    def _next_elapsed(self, t):
        """Hour field `*`: the first instant after `t` whose local reading matches.

        Walks the offset segments: within one, local time is the instant plus
        the offset; at a transition, it goes on from the new local reading."""
        u, inclusive = t, False
        for _ in range(4):
            offset = datetime.fromtimestamp(u, self.tz).utcoffset()
            wall = datetime.fromtimestamp(u, self.tz).replace(tzinfo=None, fold=0)
            self._iter.set_current(wall - timedelta(microseconds=1) if inclusive else wall,
                                   force=True)
            try:
                match = self._iter.get_next(datetime)
            except CroniterBadDateError:
                return None
            instant = match.replace(tzinfo=timezone.utc).timestamp() - offset.total_seconds()
            if instant - u > 30 * 86400:
                return _SLOW_PATH  # several transitions may lie between: walk wall times
            if datetime.fromtimestamp(instant, self.tz).utcoffset() == offset:
                return instant
            u, inclusive = self._jump(u, instant), True  # the offset changes on the way
        return _SLOW_PATH

    def _next_wall(self, t):
        """Walk matching wall times, mapping each to its instants (see module doc)."""
        local = datetime.fromtimestamp(t, self.tz)
        wall = local.replace(tzinfo=None, fold=0)
        if self.every_hour:
            # In the first pass of a fall-back, earlier wall times still have a
            # second occurrence ahead: start as far back as the offset drops.
            later = datetime.fromtimestamp(t + 3 * 3600, self.tz).utcoffset()
            drop = local.utcoffset() - later
            if drop > timedelta(0):
                wall -= drop
        self._iter.set_current(wall, force=True)
        best = None
        for _ in range(100_000):  # bounds the walk; never reached in practice
            try:
                candidate = self._iter.get_next(datetime)
            except CroniterBadDateError:
                return best
            instants = self._instants(candidate)
            if not instants:
                continue
            if best is not None and instants[0] >= best:
                break
            for instant in instants:
                if instant > t and (best is None or instant < best):
                    best = instant
        return best

    def first_at_or_after(self, t):
        return self.next_after(t - 0.001)

    def next_times(self, t, count):
        out = []
        while len(out) < count:
            t = self.next_after(t)
            if t is None:
                break
            out.append(t)
        return out

    def between(self, lo, hi, limit):
        """Fire times in [lo, hi], at most `limit`; and whether more were left out."""
        out = []
        t = self.first_at_or_after(lo)
        while t is not None and t <= hi:
            if len(out) >= limit:
                return out, True
            out.append(t)
            t = self.next_after(t)
        return out, False

    def latest_between(self, floor, t):
        """The last fire time in [floor, t] (None if there is none), without
        walking every fire time since `floor`."""
        span = 1.0
        while True:
            lo = max(floor, t - span)
            first = self.first_at_or_after(lo)
            if first is not None and first <= t:
                while True:
                    following = self.next_after(first)
                    if following is None or following > t:
                        return first
                    first = following
            if lo <= floor:
                return None
            span *= 4

    def iso(self, t):
        return iso_time(t, self.tz)

    # -- DST -----------------------------------------------------------------------
    def _instants(self, wall):
        """The epoch instants a matching wall time fires at (see module doc)."""
        first = wall.replace(tzinfo=self.tz, fold=0).timestamp()
        second = wall.replace(tzinfo=self.tz, fold=1).timestamp()
        if first == second:
            return [first]
        exists = datetime.fromtimestamp(first, self.tz).replace(tzinfo=None) == wall
        if exists:  # ambiguous: fold 0 is the first occurrence
            return [first, second] if self.every_hour else [first]
        if self.every_hour:  # skipped by a spring-forward
            return []
        return [self._jump(min(first, second), max(first, second))]

    def _jump(self, lo, hi):
        """The instant in (lo, hi] at which the zone's offset changes."""
        after = datetime.fromtimestamp(hi, self.tz).utcoffset()
        lo, hi = int(lo), int(hi)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if datetime.fromtimestamp(mid, self.tz).utcoffset() == after:
                hi = mid
            else:
                lo = mid
        return float(hi)


def load_timezone(name):
    """(name, ZoneInfo) of an IANA zone name; BadRequest when it is unknown."""
    if name in (None, ""):
        name = "UTC"
    if not isinstance(name, str) or len(name) > 100:
        raise BadRequest("timezone must be an IANA time zone name such as 'Europe/Paris'")
    try:
        return name, ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise BadRequest(f"unknown timezone {name!r}: use an IANA name such as "
                         "'Europe/Paris', 'America/New_York' or 'UTC'") from None


def iso_time(t, tz=timezone.utc):
    """ISO 8601 with the zone's offset, e.g. 2024-03-31T03:00:00+02:00."""
    if t is None:
        return None
    return datetime.fromtimestamp(t, tz).isoformat()


def preview(cron, tz="UTC", count=5, start=None):
    """The next `count` fire times of an expression, for a user choosing one."""
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_PREVIEW:
        raise BadRequest(f"count must be an integer from 1 to {MAX_PREVIEW}")
    spec = CronSpec(cron, tz)
    times = spec.next_times(now() if start is None else start, count)
    return {"cron": spec.cron, "timezone": spec.tz_name,
            "fire_times": [spec.iso(t) for t in times], "fire_at": times}


# -- validation ------------------------------------------------------------------

def validate_nodes(store, nodes):
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


def validate_alerts(alerts):
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


def validate(store, body):
    """A complete schedule (every field of FIELDS) checked and normalised."""
    out = {}
    spider = body.get("spider")
    if not isinstance(spider, str) or not spider:
        raise BadRequest("spider is required: the name of a spider to run")
    if store.spiders.find_one({"_id": spider}, {"_id": 1}) is None:
        known = sorted(d["_id"] for d in store.spiders.find({}, {"_id": 1}))
        raise BadRequest(f"unknown spider {spider!r}; known spiders: {', '.join(known) or 'none'}")
    out["spider"] = spider
    if body.get("cron") is None:
        raise BadRequest("cron is required, e.g. '0 3 * * *' (every day at 03:00)")
    spec = CronSpec(body["cron"], body.get("timezone"))
    out["cron"], out["timezone"] = spec.cron, spec.tz_name
    out["args"] = validate_args(body.get("args"))
    out["settings"] = validate_settings(body.get("settings"))
    out["nodes"] = validate_nodes(store, body.get("nodes"))
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


def check_fields(body):
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        raise BadRequest(f"unknown field(s) {', '.join(unknown)}; expected {', '.join(FIELDS)}")


# -- the schedules collection ------------------------------------------------------

def new_schedule_id():
    return f"{int(time.time() * 1000):011x}{secrets.token_hex(3)}"


def timing(spec, enabled, at):
    """The fields that tell the scheduler when to look at a schedule next."""
    next_fire = spec.next_after(at) if enabled else None
    return {"next_fire_at": next_fire, "due_at": next_fire, "queued_fire": None}


def public_schedule(doc, upcoming=0):
    """A schedule as the API shows it: `id`, ISO times, optionally the next fires."""
    if doc is None:
        return None
    out = dict(doc)
    out["id"] = doc["_id"]
    try:
        spec = CronSpec(doc["cron"], doc.get("timezone"))
    except BadRequest:
        spec = None
    tz = spec.tz if spec else timezone.utc
    out["next_fire_time"] = iso_time(doc.get("next_fire_at"), tz)
    if upcoming and spec and doc.get("enabled"):
        out["upcoming"] = [spec.iso(t) for t in spec.next_times(now(), upcoming)]
    elif upcoming:
        out["upcoming"] = []
    return out


def get(store, schedule_id):
    doc = store.schedules.find_one({"_id": schedule_id}) if isinstance(schedule_id, str) else None
    if doc is None:
        raise NotFound(f"unknown schedule {schedule_id!r}")
    return doc


def create(store, body, *, at=None):
    check_fields(body)
    values, spec = validate(store, {**DEFAULTS, **body})
    at = now() if at is None else at
    doc = {"_id": new_schedule_id(), **values, **timing(spec, values["enabled"], at),
           "disabled_reason": None, "created_at": at, "updated_at": at,
           "last_fire_time": None, "last_outcome": None, "last_task_ids": []}
    store.schedules.insert_one(doc)
    return doc


def update(store, schedule_id, changes, *, replace=False, at=None):
    """PATCH (only the fields given) or PUT (`replace`: every other field to its default)."""
    check_fields(changes)
    current = get(store, schedule_id)
    base = DEFAULTS if replace else {k: current.get(k, DEFAULTS.get(k)) for k in FIELDS}
    values, spec = validate(store, {**base, **changes})
    at = now() if at is None else at
    update_doc = {**values, "updated_at": at}
    when_changed = ("cron", "timezone", "enabled")
    if any(values[k] != current.get(k) for k in when_changed) or (
            values["enabled"] and current.get("next_fire_at") is None):
        update_doc.update(timing(spec, values["enabled"], at))
    if values["enabled"]:
        update_doc["disabled_reason"] = None
    store.schedules.update_one({"_id": schedule_id}, {"$set": update_doc})
    if "queued_fire" in update_doc and current.get("queued_fire") is not None:
        store.schedule_fires.update_one(  # the fire that waited will not run now
            {"schedule_id": schedule_id, "fire_time": current["queued_fire"], "state": QUEUED},
            {"$set": {"state": SKIPPED, "done_at": at,
                      "reason": "the schedule was changed or disabled while it waited"}})
    return get(store, schedule_id)


def set_enabled(store, schedule_id, enabled, *, at=None):
    current = get(store, schedule_id)
    if bool(current.get("enabled")) == enabled and not (enabled and current.get("due_at") is None):
        return current
    return update(store, schedule_id, {"enabled": enabled}, at=at)


def delete(store, schedule_id):
    get(store, schedule_id)
    store.schedules.delete_one({"_id": schedule_id})
    store.schedule_fires.delete_many({"schedule_id": schedule_id})


def history(store, schedule_id, *, limit=50, before=None):
    """Fire records, newest first, each with the status of the task(s) it made."""
    doc = get(store, schedule_id)
    query = {"schedule_id": schedule_id}
    if before is not None:
        query["fire_time"] = {"$lt": before}
    fires = list(store.schedule_fires.find(query).sort("fire_time", -1).limit(limit + 1))
    more = len(fires) > limit
    fires = fires[:limit]
    task_ids = [t for f in fires for t in f.get("task_ids") or []]
    tasks = {t["_id"]: t for t in store.tasks.find(
        {"_id": {"$in": task_ids}},
        {"status": 1, "node_id": 1, "stats": 1, "started_at": 1, "finished_at": 1,
         "exit_code": 1, "error": 1})} if task_ids else {}
    try:
        tz = load_timezone(doc.get("timezone"))[1]
    except BadRequest:
        tz = timezone.utc
    out = []
    for fire in fires:
        fire.pop("_id", None)
        fire["fire_iso"] = iso_time(fire["fire_time"], tz)
        fire["tasks"] = [{"id": t, "status": (tasks.get(t) or {}).get("status"),
                          "node_id": (tasks.get(t) or {}).get("node_id"),
                          "items": ((tasks.get(t) or {}).get("stats") or {}).get("items"),
                          "finished_at": (tasks.get(t) or {}).get("finished_at")}
                         for t in fire.get("task_ids") or []]
        out.append(fire)
    return {"fires": out, "next": fires[-1]["fire_time"] if more else None}
