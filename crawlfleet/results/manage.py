"""Results settings of a spider (dedup, partial attempts, data sources, feeds)
and removing results: what the API, the CLI (through the API) and the UI share."""

from __future__ import annotations

from typing import Any, Mapping

from crawlfleet import datasources
from crawlfleet.errors import BadRequest, Conflict, NotFound
from crawlfleet.models import now
from crawlfleet.results import dedup, sqlremove
from crawlfleet.results.attempts import final_attempt

SPIDER_FIELDS = ("dedup_keys", "dedup_mode", "keep_newest", "keep_partial_attempts",
                 "datasources", "feeds")


def _bool(body: Mapping, name: str) -> bool:
    value = body.get(name, False)
    if not isinstance(value, bool):
        raise BadRequest(f"{name} must be true or false")
    return value


def update_spider(store, name: str, body: Mapping) -> dict:
    """Apply the results settings in `body` to spider `name`; returns what changed.

    Turning dedup on over a collection that holds duplicates is refused (409)
    with their count, unless ``keep_newest`` asks to delete all but the
    newest of each key first."""
    spider = store.spiders.find_one({"_id": name})
    if spider is None:
        raise NotFound(f"unknown spider {name!r}")
    unknown = set(body) - set(SPIDER_FIELDS)
    if unknown:
        raise BadRequest(f"unknown fields: {', '.join(sorted(unknown))}; "
                         f"known: {', '.join(SPIDER_FIELDS)}")
    changes: dict[str, Any] = {}
    report: dict[str, Any] = {}
    if "dedup_keys" in body or "dedup_mode" in body:
        current = dedup.for_spider(spider)
        keys = body.get("dedup_keys", list(current.keys) if current else None)
        mode = body.get("dedup_mode") or (current.mode if current else None)
        policy = dedup.parse(keys, mode)
        collection = store.db[spider["results_collection"]]
        if policy is None:
            dedup.drop_indexes(collection)
            changes["dedup"] = {"keys": [], "mode": None}
        else:
            duplicates = dedup.count_duplicates(collection, policy.keys)
            if duplicates and not _bool(body, "keep_newest"):
                raise Conflict(f"{collection.name} already holds {duplicates} duplicate rows "
                               f"over {', '.join(policy.keys)}; send keep_newest=true "
                               "(CLI: --keep-newest) to keep the newest of each")
            if duplicates:
                report["duplicates_removed"] = dedup.keep_newest(collection, policy.keys)
            dedup.ensure_index(collection, policy)
            changes["dedup"] = policy.as_doc()
    if "keep_partial_attempts" in body:
        changes["keep_partial_attempts"] = _bool(body, "keep_partial_attempts")
    if "datasources" in body:
        changes["datasources"] = datasources.check_spider_sources(store, body["datasources"])
    if "feeds" in body:
        changes["feeds"] = check_feeds(body["feeds"])
    if changes:
        changes["results_updated_at"] = now()
        store.spiders.update_one({"_id": name}, {"$set": changes})
    return {**report, "changed": sorted(k for k in changes if k != "results_updated_at")}


def check_feeds(feeds: Any) -> dict | None:
    """Scrapy's FEEDS setting: {uri: {"format": ..., ...}}, passed to Scrapy as is."""
    if feeds in (None, {}):
        return None
    if not isinstance(feeds, dict) or not all(
            isinstance(uri, str) and uri and isinstance(opts, dict) and isinstance(
                opts.get("format"), str) for uri, opts in feeds.items()):
        raise BadRequest('feeds must be Scrapy\'s FEEDS: {"<uri>": {"format": "jsonlines"}, ...}')
    return feeds


def spider_settings(spider: Mapping) -> dict:
    """A spider's results settings as answers show them."""
    policy = dedup.for_spider(spider)
    return {"dedup": policy.as_doc() if policy else None,
            "dedup_from": ("spider" if spider.get("dedup") is not None
                           else "manifest" if spider.get("manifest_dedup") else None),
            "keep_partial_attempts": bool(spider.get("keep_partial_attempts")),
            "datasources": list(spider.get("datasources") or []),
            "feeds": spider.get("feeds")}


def delete_task_results(store, config, task: Mapping) -> dict:
    """Remove the items of a task's crawl (its final attempt's and any earlier),
    from the spider's SQL data sources first, then from MongoDB:
    {"removed": MongoDB rows, "data_sources": {source: rows}}."""
    root = task.get("root_id") or task["_id"]
    ids = [t["_id"] for t in store.tasks.find({"root_id": root}, {"_id": 1})] or [task["_id"]]
    in_sql = sqlremove.delete_rows(store, config, task["results_collection"], ids)
    collection = store.db[task["results_collection"]]
    removed = collection.delete_many({"_tid": {"$in": ids}}).deleted_count
    store.tasks.update_many({"_id": {"$in": ids}}, {"$set": {"results_deleted_at": now()}})
    return {"removed": removed, "data_sources": in_sql}


def drop_collection(store, config, name: str, confirm: str | None) -> dict:
    """Drop a whole results collection, and its table in the spiders' SQL data
    sources first; `confirm` must repeat its name.
    {"rows": MongoDB rows, "data_sources": {source: rows}}."""
    if not name.startswith("results_") and store.spiders.find_one(
            {"results_collection": name}, {"_id": 1}) is None:
        raise NotFound(f"no results collection named {name!r}")
    if name not in store.db.list_collection_names():
        raise NotFound(f"no results collection named {name!r}")
    if confirm != name:
        raise BadRequest(f"to drop {name}, confirm by sending its name (confirm={name})")
    in_sql = sqlremove.drop_tables(store, config, name)
    rows = store.db[name].estimated_document_count()
    store.db[name].drop()
    return {"rows": rows, "data_sources": in_sql}


__all__ = ["update_spider", "spider_settings", "delete_task_results", "drop_collection",
           "final_attempt"]
