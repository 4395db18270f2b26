"""Turn a request to run a spider into ledger entries and broker messages.

The task document is written first (status ``pending``): MongoDB is the ledger
of record. Only then is the task id published. If publishing fails the task
stays pending with no ``published_at`` and the reconciler publishes it later,
so a broker outage delays a task but never loses it.
"""

import logging
import re

from crawlfleet.errors import BadRequest, Conflict, NotFound
from crawlfleet.models import NODE_ID_RE, TaskStatus, new_task, now, results_collection_for
from master.nodes import online_node_ids

log = logging.getLogger(__name__)

ARG_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")
SETTING_NAME_RE = re.compile(r"^[A-Z][A-Z0-9_]{0,99}$")
MAX_VALUE_LEN = 10_000


def validate_args(args):
    if args is None:
        return {}
    if not isinstance(args, dict):
        raise BadRequest("args must be an object of name → string")
    out = {}
    for key, value in args.items():
        if not isinstance(key, str) or not ARG_NAME_RE.match(key):
            raise BadRequest(f"invalid argument name {key!r}: use letters, digits and _")
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise BadRequest(f"argument {key!r} must be a string or a number")
        value = str(value)
        if len(value) > MAX_VALUE_LEN or "\x00" in value:
            raise BadRequest(f"argument {key!r} is too long or holds a NUL byte")
        out[key] = value
    return out


def validate_settings(settings):
    if settings is None:
        return {}
    if not isinstance(settings, dict):
        raise BadRequest("settings must be an object of NAME → value")
    out = {}
    for key, value in settings.items():
        if not isinstance(key, str) or not SETTING_NAME_RE.match(key):
            raise BadRequest(f"invalid setting name {key!r}: Scrapy settings are UPPER_CASE")
        if not isinstance(value, (str, int, float, bool)):
            raise BadRequest(f"setting {key!r} must be a string, number or boolean")
        value = str(value)
        if len(value) > MAX_VALUE_LEN or "\x00" in value:
            raise BadRequest(f"setting {key!r} is too long or holds a NUL byte")
        out[key] = value
    return out


MAX_TIMEOUT = 366 * 86400


def validate_options(timeout, priority):
    if timeout is not None:
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) \
                or not 0 <= timeout <= MAX_TIMEOUT:
            # (NaN fails both comparisons; past a year a deadline overflows timers)
            raise BadRequest(f"timeout must be a number of seconds from 0 to {MAX_TIMEOUT}")
    if priority is None:
        priority = 0
    if isinstance(priority, bool) or not isinstance(priority, int) or not 0 <= priority <= 9:
        raise BadRequest("priority must be an integer from 0 to 9")
    return timeout or None, priority


def resolve_targets(store, config, nodes):
    """The list of targets: ["any"], one per online node for "all", or chosen ids."""
    if nodes in (None, "", "any", ["any"]):
        return ["any"]
    if nodes in ("all", ["all"]):
        online = online_node_ids(store, config)
        if not online:
            raise Conflict("no node is online to run on all nodes")
        return online
    if isinstance(nodes, str):
        nodes = [n for n in nodes.split(",") if n]
    if not isinstance(nodes, list) or not nodes or not all(isinstance(n, str) for n in nodes):
        # (a dict in the list would reach the store as a query operator)
        raise BadRequest('nodes must be "any", "all" or a list of node ids')
    known = {n["_id"] for n in store.nodes.find({"_id": {"$in": nodes}}, {"_id": 1})}
    for node_id in nodes:
        if not isinstance(node_id, str) or not NODE_ID_RE.match(node_id):
            raise BadRequest(f"invalid node id {node_id!r}")
        if node_id not in known:
            raise NotFound(f"unknown node {node_id!r}")
    return list(dict.fromkeys(nodes))


def get_spider(store, name):
    spider = store.spiders.find_one({"_id": name}) if isinstance(name, str) else None
    if spider is None:
        known = sorted(d["_id"] for d in store.spiders.find({}, {"_id": 1}))
        raise NotFound(f"unknown spider {name!r}; known spiders: {', '.join(known) or 'none'}")
    return spider


RETRYABLE = ("error", "timeout", "abnormal")


def validate_retry(retry):
    """A retry policy ``{"max_attempts": 1-20, "backoff": s, "on": [statuses]}``, or None.

    `max_attempts` counts every attempt (1 = no retry); attempt k+1 waits
    `backoff` × 2^(k-1) seconds; `on` defaults to error, timeout and abnormal.
    """
    if retry is None:
        return None
    if not isinstance(retry, dict) or set(retry) - {"max_attempts", "backoff", "on"}:
        raise BadRequest('retry must be {"max_attempts": n, "backoff": seconds, "on": [statuses]}')
    attempts = retry.get("max_attempts", 1)
    backoff = retry.get("backoff", 0)
    on = retry.get("on", list(RETRYABLE))
    if isinstance(attempts, bool) or not isinstance(attempts, int) or not 1 <= attempts <= 20:
        raise BadRequest("retry.max_attempts must be an integer from 1 to 20")
    if isinstance(backoff, bool) or not isinstance(backoff, (int, float)) or backoff < 0:
        raise BadRequest("retry.backoff must be a number of seconds ≥ 0")
    if isinstance(on, str):
        on = [x for x in on.split(",") if x]
    if not isinstance(on, list) or not on or any(x not in RETRYABLE for x in on):
        raise BadRequest(f"retry.on must list statuses among {', '.join(RETRYABLE)}")
    return {"max_attempts": attempts, "backoff": float(backoff), "on": sorted(set(on))}


def default_retry(config):
    """Without a policy only platform failures (`abnormal`) are retried."""
    return {"max_attempts": config.retry_abnormal_attempts, "backoff": config.retry_backoff,
            "on": ["abnormal"]}


def pin_version(store, spider, version_id):
    """The spider as version `version_id` of its project defines it."""
    version = (store.versions.find_one({"_id": version_id, "project": spider["project"]})
               if isinstance(version_id, str) else None)
    if version is None:
        raise NotFound(f"unknown version {version_id!r} of project {spider['project']!r}")
    entry = next((s for s in version.get("spiders") or []
                  if isinstance(s, dict) and s.get("name") == spider["_id"]), None)
    if entry is None:
        raise NotFound(f"version {version_id} of project {spider['project']!r} "
                       f"has no spider {spider['_id']!r}")
    return dict(spider, version=version_id, kind=version["kind"],
                results_collection=entry.get("results_collection")
                or results_collection_for(spider["_id"]))


def run_spider(store, broker, config, name, *, args=None, settings=None, nodes="any",
               timeout=None, priority=0, trigger="api", retry=None, extra=None,
               version=None):
    """Create and announce the tasks of one run request; returns the task documents.

    `extra` adds caller-owned fields to each task (e.g. schedule id, fire time);
    `version` runs that version of the spider's project instead of the current one.
    """
    spider = get_spider(store, name)
    if version is not None:
        spider = pin_version(store, spider, version)
    args = validate_args(args)
    settings = validate_settings(settings)
    timeout, priority = validate_options(timeout, priority)
    retry = validate_retry(retry) or validate_retry(spider.get("retry")) or default_retry(config)
    if timeout is None and config.task_timeout:
        timeout = config.task_timeout
    targets = resolve_targets(store, config, nodes)
    tasks = [new_task(spider, target=t, args=args, settings=settings, timeout=timeout,
                      priority=priority, trigger=trigger, retry=retry, extra=extra)
             for t in targets]
    store.tasks.insert_many(tasks)
    for task in tasks:
        publish(store, broker, task)
    return tasks


def publish(store, broker, task):
    """Announce a pending task on the broker; failures are left to the reconciler."""
    try:
        broker.publish_task(task["_id"], task["target"], task.get("priority", 0))
    except Exception as exc:  # the broker is down: the ledger keeps the task
        log.warning("could not publish task %s (%s); the reconciler will retry", task["_id"], exc)
        return False
    stamp = now()
    store.tasks.update_one(
        {"_id": task["_id"], "status": TaskStatus.PENDING.value},
        {"$set": {"published_at": stamp}, "$inc": {"publish_count": 1}},
    )
    task["published_at"] = stamp
    return True


def request_cancel(store, broker, task_id):
    """Cancel a task: a pending one at once, a running one through its node."""
    task = store.tasks.find_one({"_id": task_id})
    if task is None:
        raise NotFound(f"unknown task {task_id!r}")
    if TaskStatus(task["status"]).is_final:
        raise Conflict(f"task {task_id} is already {task['status']}")
    stamp = now()
    done = store.tasks.find_one_and_update(
        {"_id": task_id, "status": TaskStatus.PENDING.value},
        {"$set": {"status": TaskStatus.CANCELLED.value, "cancel_requested": True,
                  "finished_at": stamp, "error": "cancelled before it started"}},
    )
    if done is None:
        store.tasks.update_one({"_id": task_id, "status": TaskStatus.RUNNING.value},
                               {"$set": {"cancel_requested": True}})
        try:
            broker.publish_control({"op": "cancel", "task_id": task_id})
        except Exception as exc:
            # The node also polls the ledger's cancel flag, so this only slows it.
            log.warning("cancel message for %s not sent: %s", task_id, exc)
    return store.tasks.find_one({"_id": task_id})
