"""Retention: delete what an installation that runs for years must not keep.

Redis ACL users of crawls that are gone, or whose frontier is (its keys
expired), go too (``crawlfleet.frontier_acl``).

Tasks that ended more than ``task_retention_days`` ago go, with their logs;
logs alone go after ``log_retention_days``. Results are the user's data and
are never deleted here. Label selectors no run has asked for in
``SELECTOR_IDLE_DAYS`` go too (nodes stop consuming their queues), unless a
pending task still asks for one.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from crawlfleet.models import FINAL_VALUES, TaskStatus, now

if TYPE_CHECKING:
    from crawlfleet.config import Config
    from crawlfleet.store import Store

log = logging.getLogger(__name__)

DAY = 86400.0
BATCH = 1000
SELECTOR_IDLE_DAYS = 7.0


def prune_ledger(store: Store, config: Config, at: float | None = None) -> dict[str, int]:
    at = at or now()
    report = {"tasks": 0, "logs_of_tasks": 0}
    if config.task_retention_days > 0:
        cutoff = at - config.task_retention_days * DAY
        while True:
            ids = [t["_id"] for t in store.tasks.find(
                {"status": {"$in": FINAL_VALUES}, "finished_at": {"$lt": cutoff}},
                {"_id": 1}).limit(BATCH)]
            if not ids:
                break
            store.task_logs.delete_many({"task_id": {"$in": ids}})
            report["tasks"] += store.tasks.delete_many({"_id": {"$in": ids}}).deleted_count
    if config.log_retention_days > 0:
        cutoff = at - config.log_retention_days * DAY
        while True:
            ids = [t["_id"] for t in store.tasks.find(
                {"status": {"$in": FINAL_VALUES}, "finished_at": {"$lt": cutoff},
                 "logs_pruned": {"$ne": True}}, {"_id": 1}).limit(BATCH)]
            if not ids:
                break
            store.task_logs.delete_many({"task_id": {"$in": ids}})
            store.tasks.update_many({"_id": {"$in": ids}},
                                    {"$set": {"logs_pruned": True, "log_lines": 0}})
            report["logs_of_tasks"] += len(ids)
    if report["tasks"] or report["logs_of_tasks"]:
        log.info("retention: deleted %(tasks)d tasks and the logs of %(logs_of_tasks)d more", report)
    return report


def prune_label_selectors(store: Store, at: float | None = None) -> list[str]:
    """Forget the label selectors (master/nodes.py) unused for a week and wanted by no
    pending task; returns their ids."""
    cutoff = (at or now()) - SELECTOR_IDLE_DAYS * DAY
    removed = []
    for selector in store.label_selectors.find({"used_at": {"$lt": cutoff}}).limit(BATCH):
        wanted = selector.get("labels") or {}
        query = {"status": TaskStatus.PENDING.value,
                 **{f"labels.{k}": v for k, v in wanted.items()}}
        if any((t.get("labels") or {}) == wanted
               for t in store.tasks.find(query, {"labels": 1}).limit(BATCH)):
            continue
        store.label_selectors.delete_one({"_id": selector["_id"], "used_at": {"$lt": cutoff}})
        removed.append(selector["_id"])
    if removed:
        log.info("retention: forgot %d unused label selector(s)", len(removed))
    return removed


def prune_crawl_users(store: Store, config: Config) -> list[str]:
    """Delete the frontier ACL users of crawls gone from the ledger, and of
    stopped crawls whose frontier has expired; returns their crawl ids."""
    import redis

    from crawlfleet import frontier_acl
    from crawlfleet.frontier import Frontier, frontier_url

    if not frontier_url(config):
        return []
    removed = []
    try:
        for crawl_id in frontier_acl.crawl_users(config).values():
            crawl = store.crawls.find_one({"_id": crawl_id}, {"status": 1})
            if crawl is not None and crawl["status"] not in FINAL_VALUES:
                continue
            if crawl is not None:
                frontier = Frontier.open(config, crawl_id)
                try:
                    if frontier.exists():
                        continue  # a stopped persistent crawl, kept for resume
                finally:
                    frontier.close()
            frontier_acl.revoke(config, crawl_id)
            removed.append(crawl_id)
    except redis.RedisError as exc:
        log.warning("retention: frontier users not pruned (%s); next time", exc)
    if removed:
        log.info("retention: deleted the frontier users of %d crawl(s) gone", len(removed))
    return removed
