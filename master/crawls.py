"""Distributed and resumable crawls: one crawl, N worker tasks, one frontier.

A crawl is a document of its own (collection ``crawls``); its workers are
ordinary tasks carrying ``crawl_id``, so nodes claim, run, log, time out and
cancel them like any task. The workers share the crawl's frontier and
seen-set in Redis (``crawlfleet.frontier``; the Scrapy side is
``crawlfleet.sdk.frontier``) and end by themselves once the whole crawl is
done. Every reconciler pass calls `supervise`, which, for each active crawl:

- gives the requests of a worker that stopped without finishing (node died,
  cancelled, scaled down, failed) back to the frontier, and frees its
  per-domain slots and an unfinished seeding;
- replaces a worker whose node died (``abnormal``; and ``error``/``timeout``
  when the crawl's retry policy names them), at most ``max_attempts`` - 1
  times per worker slot;
- sums the workers' live stats with the frontier's sizes into the crawl;
- gives the crawl its final status once no worker is left: ``finished`` when
  the frontier is empty, else the workers' (cancelled, timeout, error,
  abnormal); the frontier of a finished crawl is deleted, that of a stopped
  persistent crawl kept (with its TTL) for `resume`, any other deleted.
"""

import logging

from crawlfleet import frontier_acl, ledger
from crawlfleet.errors import BadRequest, Conflict, NotFound
from crawlfleet.frontier import Frontier, require_frontier
from crawlfleet.models import TaskStatus, new_task, new_task_id, now, public_task
from master import dispatch
from master.nodes import online_node_ids

log = logging.getLogger(__name__)

MAX_WORKERS = 64
ACTIVE = (TaskStatus.PENDING.value, TaskStatus.RUNNING.value)
# When no worker is left, the crawl takes the first of these its workers ended with.
STOPPED_ORDER = ("cancelled", "timeout", "abnormal", "error")


def validate_workers(workers):
    if workers is None:
        return None
    if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= MAX_WORKERS:
        raise BadRequest(f"workers must be an integer from 1 to {MAX_WORKERS}")
    return workers


def set_crawl_status(store, crawl_id, status, **fields):
    """The one place a crawl's status changes."""
    update = {"status": status, **fields}
    if TaskStatus(status).is_final:
        update.setdefault("finished_at", now())
    store.crawls.update_one({"_id": crawl_id}, {"$set": update})


def worker_targets(store, config, count, nodes, labels=None):
    """One worker per node while nodes last (the least busy first), then any node
    (any node carrying `labels`, when the crawl asks for labels)."""
    if nodes not in (None, "", "any", ["any"]):
        chosen = dispatch.resolve_targets(store, config, nodes, labels)
    else:
        online = set(online_node_ids(store, config, labels=labels, accepting=True))
        docs = store.nodes.find({"_id": {"$in": sorted(online)}}, {"free": 1, "busy": 1})
        chosen = [d["_id"] for d in sorted(docs, key=lambda d: (-(d.get("free") or 0),
                                                                d.get("busy") or 0, d["_id"]))]
    if not chosen:
        return ["any"] * count
    return [chosen[k] if k < len(chosen) else "any" for k in range(count)]


def start_crawl(store, broker, config, name, *, workers=1, persist=False, args=None,
                settings=None, nodes="any", timeout=None, priority=0, trigger="api",
                retry=None, extra=None, version=None, labels=None):
    """Create a crawl of `workers` worker tasks sharing one frontier; returns
    (crawl, tasks)."""
    workers = validate_workers(workers) or 1
    require_frontier(config, "a crawl with workers or persist")
    spider = dispatch.get_spider(store, name)
    if version is not None:
        spider = dispatch.pin_version(store, spider, version)
    if spider["kind"] != "scrapy":
        raise BadRequest(f"spider {name!r} is not a Scrapy spider: only Scrapy spiders can "
                         "share a frontier (--workers, --persist)")
    args = dispatch.validate_args(args)
    settings = dispatch.validate_settings(settings)
    timeout, priority = dispatch.validate_options(timeout, priority)
    wanted = dispatch.check_labels(store, labels)
    if wanted and nodes not in (None, "", "any", ["any"]):
        dispatch.resolve_targets(store, config, nodes, wanted)  # refuses the mix
    retry = (dispatch.validate_retry(retry) or dispatch.validate_retry(spider.get("retry"))
             or dispatch.default_retry(config))
    if timeout is None and config.task_timeout:
        timeout = config.task_timeout
    crawl = {
        "_id": new_task_id(), "spider": spider["_id"], "project": spider["project"],
        "version": spider["version"], "results_collection": spider["results_collection"],
        "status": TaskStatus.PENDING.value, "workers": workers, "persist": bool(persist),
        "args": args, "settings": settings, "timeout": timeout, "priority": priority,
        "trigger": trigger, "retry": retry, "nodes": nodes, "labels": wanted,
        "created_at": now(),
        "started_at": None, "finished_at": None, "cancel_requested": False, "resumed": 0,
        "stats": {"items": 0, "pages": 0, "errors": 0}, "frontier": {}, "error": None,
        **(extra or {}),
    }
    store.crawls.insert_one(crawl)
    # the workers' own Redis user: only this crawl's keys (issue 10). Made once
    # the crawl exists, so housekeeping never takes it for a user of a crawl gone.
    try:
        access = frontier_acl.create(config, crawl["_id"])
    except Conflict:
        store.crawls.delete_one({"_id": crawl["_id"]})
        raise
    store.crawls.update_one({"_id": crawl["_id"]}, {"$set": access})
    crawl.update(access)
    tasks = add_workers(store, broker, config, crawl, workers, trigger=trigger, extra=extra,
                        granted=True)
    return crawl, tasks


def add_workers(store, broker, config, crawl, count, *, trigger, extra=None, slots=None,
                granted=False):
    """Create and publish `count` worker tasks of `crawl` (slot numbers `slots`)."""
    if not granted:
        # the crawl's Redis user again: a Redis restarted since forgot it (ACL
        # users live in its configuration, not with the keys it persisted)
        frontier_acl.grant(config, crawl)
    spider = {"_id": crawl["spider"], "project": crawl["project"], "version": crawl["version"],
              "kind": "scrapy", "results_collection": crawl["results_collection"]}
    if slots is None:
        top = max([t.get("worker", -1) for t in store.tasks.find(
            {"crawl_id": crawl["_id"]}, {"worker": 1})] or [-1])
        slots = list(range(top + 1, top + 1 + count))
    wanted = crawl.get("labels") or {}
    targets = worker_targets(store, config, len(slots), crawl.get("nodes"), wanted)
    # The crawl replaces its workers itself (it must also return their requests
    # to the frontier), so the generic per-task retry is off for them.
    no_retry = {"max_attempts": 1, "backoff": 0.0, "on": ["abnormal"]}
    tasks = [new_task(spider, target=target, args=crawl["args"], settings=crawl["settings"],
                      timeout=crawl["timeout"], priority=crawl["priority"], trigger=trigger,
                      retry=no_retry, labels=wanted,
                      extra={**(extra or {}), "crawl_id": crawl["_id"], "worker": slot})
             for slot, target in zip(slots, targets)]
    if tasks:
        ledger.create(store, tasks)
        for task in tasks:
            dispatch.publish(store, broker, task)
    return tasks


def get_crawl(store, crawl_id):
    """A crawl by its id, or by the id of one of its worker tasks."""
    crawl = store.crawls.find_one({"_id": crawl_id}) if isinstance(crawl_id, str) else None
    if crawl is None and isinstance(crawl_id, str):
        task = store.tasks.find_one({"_id": crawl_id}, {"crawl_id": 1})
        if task and task.get("crawl_id"):
            crawl = store.crawls.find_one({"_id": task["crawl_id"]})
    if crawl is None:
        raise NotFound(f"unknown crawl {crawl_id!r}")
    return crawl


def workers_of(store, crawl_id):
    return list(store.tasks.find({"crawl_id": crawl_id}).sort([("created_at", 1), ("_id", 1)]))


def without_secret(crawl):
    """A crawl without its workers' sealed Redis password (never shown)."""
    out = dict(crawl)
    out.pop(frontier_acl.SECRET_FIELD, None)
    if frontier_acl.ISOLATION_FIELD in out:  # (a JSON-backed store may keep true as 1)
        out[frontier_acl.ISOLATION_FIELD] = bool(out[frontier_acl.ISOLATION_FIELD])
    return out


def public_crawl(store, crawl):
    """A crawl as the API shows it: its worker tasks next to it."""
    out = without_secret(crawl)
    out["id"] = crawl["_id"]
    tasks = workers_of(store, crawl["_id"])
    out["tasks"] = [public_task(t) for t in tasks]
    out["task_ids"] = [t["_id"] for t in tasks]
    out["nodes_used"] = sorted({t["node_id"] for t in tasks if t.get("node_id")})
    if crawl.get("started_at"):
        out["duration"] = round((crawl.get("finished_at") or now()) - crawl["started_at"], 3)
    return out


def cancel_crawl(store, broker, crawl_id):
    crawl = get_crawl(store, crawl_id)
    if TaskStatus(crawl["status"]).is_final:
        raise Conflict(f"crawl {crawl['_id']} is already {crawl['status']}")
    store.crawls.update_one({"_id": crawl["_id"]}, {"$set": {"cancel_requested": True}})
    for task in store.tasks.find({"crawl_id": crawl["_id"], "status": {"$in": list(ACTIVE)}}):
        try:
            dispatch.request_cancel(store, broker, task["_id"])
        except Conflict:
            pass  # it ended meanwhile
    return store.crawls.find_one({"_id": crawl["_id"]})


def scale_crawl(store, broker, config, crawl_id, count):
    """Run `count` workers from now on: add new ones or stop the newest."""
    count = validate_workers(count)
    if count is None:
        raise BadRequest("workers is required")
    crawl = get_crawl(store, crawl_id)
    if TaskStatus(crawl["status"]).is_final or crawl.get("cancel_requested"):
        raise Conflict(f"crawl {crawl['_id']} is {crawl['status']}: resume it to run it again")
    active = [t for t in workers_of(store, crawl["_id"])
              if t["status"] in ACTIVE and not t.get("scaled_down")]
    store.crawls.update_one({"_id": crawl["_id"]}, {"$set": {"workers": count}})
    if count > len(active):
        add_workers(store, broker, config, crawl, count - len(active), trigger="scale")
    else:
        # pending ones first, then the newest: they have the least work in hand
        surplus = sorted(active, key=lambda t: (t["status"] != "pending", -t["created_at"]))
        for task in surplus[:len(active) - count]:
            store.tasks.update_one({"_id": task["_id"]}, {"$set": {"scaled_down": True}})
            try:
                dispatch.request_cancel(store, broker, task["_id"])
            except Conflict:
                pass
    return store.crawls.find_one({"_id": crawl["_id"]})


def resume_crawl(store, broker, config, crawl_id):
    """Run a stopped crawl again from its frontier (what it had queued, seen
    and had in flight), with as many workers as it last had."""
    require_frontier(config, "resume")
    crawl = get_crawl(store, crawl_id)
    if not TaskStatus(crawl["status"]).is_final:
        raise Conflict(f"crawl {crawl['_id']} is still {crawl['status']}")
    if crawl["status"] == TaskStatus.FINISHED.value:
        raise Conflict(f"crawl {crawl['_id']} finished: there is nothing left to resume")
    frontier = Frontier.open(config, crawl["_id"])
    try:
        if not frontier.exists():
            raise Conflict(f"crawl {crawl['_id']} has no frontier left to resume from (it was "
                           "not persistent, or its keys expired after CRAWLFLEET_FRONTIER_TTL)")
        for task in workers_of(store, crawl["_id"]):
            frontier.push_back(task["_id"])
            frontier.unseed_if(task["_id"])
            frontier.release_limits(task["_id"])
        frontier.expire(config.frontier_ttl)
    finally:
        frontier.close()
    store.crawls.update_one({"_id": crawl["_id"]}, {
        "$set": {"cancel_requested": False, "finished_at": None, "error": None},
        "$inc": {"resumed": 1}})
    set_crawl_status(store, crawl["_id"], TaskStatus.PENDING.value, finished_at=None)
    add_workers(store, broker, config, crawl, crawl["workers"], trigger="resume")
    return store.crawls.find_one({"_id": crawl["_id"]})


# -- the supervisor (a step of every reconciler pass) ---------------------------------

# How long a crawl may have no worker task before the supervisor ends it: the
# request that started it died between writing the crawl and its workers.
WORKERLESS_GRACE = 60.0


def supervise(store, broker, config):
    """One pass over the active crawls; returns the ids of those that ended."""
    import redis  # here, not at import: a platform without crawls needs no Redis client

    ended = []
    for crawl in store.crawls.find({"status": {"$in": list(ACTIVE)}}):
        try:
            if supervise_one(store, broker, config, crawl):
                ended.append(crawl["_id"])
        except redis.RedisError as exc:
            log.warning("crawl %s: frontier unreachable (%s); next pass", crawl["_id"], exc)
    return ended


def supervise_one(store, broker, config, crawl):
    tasks = workers_of(store, crawl["_id"])
    if not tasks and now() - crawl["created_at"] < WORKERLESS_GRACE:
        # start_crawl writes the crawl before its workers (their Redis user
        # comes in between): a pass in that window must not end it
        return False
    frontier = Frontier.open(config, crawl["_id"])
    try:
        for task in tasks:
            if (TaskStatus(task["status"]).is_final and task["status"] != "finished"
                    and not task.get("frontier_returned")):
                returned = frontier.push_back(task["_id"])
                frontier.unseed_if(task["_id"])
                frontier.release_limits(task["_id"])
                store.tasks.update_one({"_id": task["_id"]},
                                       {"$set": {"frontier_returned": returned}})
                task["frontier_returned"] = returned
                if returned:
                    log.warning("crawl %s: worker %s %s; %d request(s) it had in flight went "
                                "back to the frontier", crawl["_id"], task["_id"],
                                task["status"], returned)
        figures = frontier.figures([t["_id"] for t in tasks])
        active = [t for t in tasks if t["status"] in ACTIVE]
        # A worker ends `finished` only once it saw the whole crawl done, so one
        # finished worker is proof enough (the keys may be gone since: a Redis
        # restarted without persistence).
        frontier_done = (figures["seeded"] == "done" and not figures["queued"]
                         and not figures["in_flight"]) or any(
            t["status"] == TaskStatus.FINISHED.value for t in tasks)
        if not crawl.get("cancel_requested") and not frontier_done:
            replacements = replace_lost_workers(store, broker, config, crawl, tasks, active)
            active += replacements
            tasks += replacements
        update = {"stats": combined_stats(tasks), "frontier": figures,
                  "nodes_used": sorted({t["node_id"] for t in tasks if t.get("node_id")})}
        if any(t["status"] == "running" for t in tasks) and not crawl.get("started_at"):
            update["started_at"] = min(t["started_at"] for t in tasks if t.get("started_at"))
        if active:
            status = (TaskStatus.RUNNING.value if any(t["status"] == "running" for t in active)
                      else crawl["status"])
            set_crawl_status(store, crawl["_id"], status, **update)
            return False
        status, error = final_status(crawl, tasks, frontier_done)
        set_crawl_status(store, crawl["_id"], status, error=error, **update)
        if status == TaskStatus.FINISHED.value or not crawl.get("persist"):
            frontier.delete()
            frontier_acl.revoke(config, crawl["_id"])
        else:
            frontier.expire(config.frontier_ttl)
        log.info("crawl %s %s", crawl["_id"], status)
        return True
    finally:
        frontier.close()


def replace_lost_workers(store, broker, config, crawl, tasks, active):
    """New workers for slots whose worker died (or failed, if the policy says so)."""
    policy = crawl.get("retry") or {}
    retry_on = set(policy.get("on") or ["abnormal"]) | {"abnormal"}
    max_attempts = max(policy.get("max_attempts", 1), config.retry_abnormal_attempts)
    wanted = crawl["workers"] - len([t for t in active if not t.get("scaled_down")])
    if wanted <= 0:
        return []
    by_slot = {}
    for task in tasks:
        by_slot.setdefault(task.get("worker", 0), []).append(task)
    slots = []
    for slot, attempts in sorted(by_slot.items()):
        last = attempts[-1]
        if (last["status"] in retry_on and not last.get("scaled_down")
                and len(attempts) < max_attempts and len(slots) < wanted):
            slots.append(slot)
    if not slots:
        return []
    made = add_workers(store, broker, config, crawl, len(slots), trigger="retry", slots=slots)
    log.warning("crawl %s: replaced %d lost worker(s) with %s", crawl["_id"], len(made),
                ", ".join(t["_id"] for t in made))
    return made


def final_status(crawl, tasks, frontier_done):
    """(status, error) of a crawl none of whose workers is active any more."""
    if not tasks:
        return TaskStatus.ERROR.value, "no worker was made for it (the request that started it failed)"
    statuses = {t["status"] for t in tasks}
    if frontier_done and TaskStatus.FINISHED.value in statuses:
        return TaskStatus.FINISHED.value, None
    if crawl.get("cancel_requested"):
        return TaskStatus.CANCELLED.value, "cancelled by request"
    for status in STOPPED_ORDER:
        if status in statuses:
            errors = [t.get("error") for t in tasks if t["status"] == status and t.get("error")]
            return status, errors[-1] if errors else f"its workers ended {status}"
    return TaskStatus.ERROR.value, "its workers ended with requests left in the frontier"


def combined_stats(tasks):
    total = {}
    for task in tasks:
        for key, value in (task.get("stats") or {}).items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                total[key] = total.get(key, 0) + value
    for key in ("items", "pages", "errors"):
        total.setdefault(key, 0)
    return total
