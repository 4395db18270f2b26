"""Turn a request to run a spider into ledger entries and broker messages.

The task document is written first (status ``pending``): MongoDB is the ledger
of record. Only then is the task id published. If publishing fails the task
stays pending with no ``published_at`` and the reconciler publishes it later,
so a broker outage delays a task but never loses it.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from crawlfleet import labels as labelling
from crawlfleet import ledger
from crawlfleet.errors import BadRequest, Conflict, NotFound
from crawlfleet.models import (NODE_ID_RE, Doc, NodeMode, TaskStatus, new_task, now,
                               results_collection_for)
# The checks of a run request live in the shared package (schedules use them too);
# imported here under their old names for callers of `master.dispatch`.
from crawlfleet.runrequest import (RETRYABLE, default_retry, validate_args,  # noqa: F401
                                   validate_options, validate_retry, validate_settings)
from crawlfleet.store import get_named
from master.nodes import mode_of, nodes_with_labels, online_node_ids, record_selector

if TYPE_CHECKING:
    from crawlfleet.broker import Broker
    from crawlfleet.config import Config
    from crawlfleet.store import Store

log = logging.getLogger(__name__)


def check_labels(store: Store, labels: Any) -> dict[str, str]:
    """The run's label selector, refused when no node at all carries it (a typo, or
    nodes not labelled yet, would otherwise leave its tasks pending for ever)."""
    wanted = labelling.validate(labels)
    if wanted and not nodes_with_labels(store, wanted):
        selector = labelling.describe(wanted)
        raise Conflict(f"no node carries the labels {selector}; label one first "
                       f"(crawlfleet node label NODE {selector.replace(',', ' ')})")
    return wanted


def resolve_targets(store: Store, config: Config, nodes: Any,
                    labels: dict[str, str] | None = None) -> list[str]:
    """The list of targets: ["any"], one per enabled online node for "all" (carrying
    `labels`), or chosen ids."""
    if nodes in (None, "", "any", ["any"]):
        return ["any"]
    if nodes in ("all", ["all"]):
        online = online_node_ids(store, config, labels=labels, accepting=True)
        if not online:
            which = f", labelled {labelling.describe(labels)}" if labels else ""
            raise Conflict(f"no node is online (and enabled{which}) to run on all nodes")
        return online
    if labels:
        raise BadRequest("give nodes or labels, not both: labels choose among any nodes "
                         '(nodes "any") or all nodes (nodes "all")')
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
    for node in store.nodes.find({"_id": {"$in": nodes}}, {"mode": 1}):
        if mode_of(node) != NodeMode.ENABLED.value:
            raise Conflict(f"node {node['_id']} is {mode_of(node)}: it takes no new task "
                           f"(crawlfleet node enable {node['_id']})")
    return list(dict.fromkeys(nodes))


def get_spider(store: Store, name: Any) -> Doc:
    return get_named(store.spiders, name, "spider")


def pin_version(store: Store, spider: Doc, version_id: Any) -> Doc:
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


def run_spider(store: Store, broker: Broker, config: Config, name: Any, *, args: Any = None,
               settings: Any = None, nodes: Any = "any", timeout: Any = None,
               priority: Any = 0, trigger: str = "api", retry: Any = None,
               extra: Doc | None = None, version: Any = None,
               labels: Any = None) -> list[Doc]:
    """Create and announce the tasks of one run request; returns the task documents.

    `extra` adds caller-owned fields to each task (e.g. schedule id, fire time);
    `version` runs that version of the spider's project instead of the current one;
    `labels` ({key: value}) lets only nodes carrying them take its tasks.
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
    wanted = check_labels(store, labels)
    targets = resolve_targets(store, config, nodes, wanted)
    tasks = [new_task(spider, target=t, args=args, settings=settings, timeout=timeout,
                      priority=priority, trigger=trigger, retry=retry, extra=extra,
                      labels=wanted)
             for t in targets]
    ledger.create(store, tasks)
    for task in tasks:
        publish(store, broker, task)
    return tasks


def publish(store: Store, broker: Broker, task: Doc) -> bool:
    """Announce a pending task on the broker; failures are left to the reconciler."""
    wanted = task.get("labels") or {}
    try:
        if wanted and task["target"] == "any":
            record_selector(store, wanted)  # before the message: carriers subscribe
        broker.publish_task(task["_id"], task["target"], task.get("priority", 0), wanted)
    except Exception as exc:  # the broker is down: the ledger keeps the task
        log.warning("could not publish task %s (%s); the reconciler will retry", task["_id"], exc)
        return False
    stamp = now()
    ledger.mark_published(store, task["_id"], stamp)
    task["published_at"] = stamp
    return True


def request_cancel(store: Store, broker: Broker, task_id: str) -> Doc | None:
    """Cancel a task: a pending one at once, a running one through its node."""
    task = store.tasks.find_one({"_id": task_id})
    if task is None:
        raise NotFound(f"unknown task {task_id!r}")
    if TaskStatus(task["status"]).is_final:
        raise Conflict(f"task {task_id} is already {task['status']}")
    if not ledger.cancel_pending(store, task_id):
        # Running (or claimed a moment ago): its node stops it.
        ledger.request_cancel(store, task_id)
        try:
            broker.publish_control({"op": "cancel", "task_id": task_id})
        except Exception as exc:
            # The node also polls the ledger's cancel flag, so this only slows it.
            log.warning("cancel message for %s not sent: %s", task_id, exc)
    return store.tasks.find_one({"_id": task_id})
