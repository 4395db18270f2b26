"""The MongoDB store: every collection and every index, declared in one place.

Same code path for the embedded MongoDB-wire server and a real MongoDB.
Collections:

- ``spiders``       one document per runnable spider (``_id`` = spider name)
- ``projects``      one per project, naming its current version
- ``versions``      immutable project versions (``_id`` = content hash); the
                    zip itself is in the GridFS bucket ``files``
- ``inspections``   one per deploy while its spiders are listed, then its
                    outcome (master/inspections.py); dropped a day after
- ``tasks``         the ledger: one document per task attempt
- ``task_logs``     a task's output, in batches of lines
- ``nodes``         registered nodes and their heartbeats
- ``node_samples``  a node's load, memory and busy runners once a minute
                    (crawlfleet/nodehistory.py), dropped after node_history_days
- ``masters``       running masters, their heartbeats and last discovery
- ``tokens``        API tokens (only their SHA-256 is kept)
- ``users``         web UI users (``_id`` = name), roles and password hashes
- ``web_sessions``  signed-in web sessions (``_id`` = the id the cookie holds)
- ``rate_limits``   failed-password counters (web/limitstore.py) when not in Redis
- ``schedules``     cron schedules (crawlfleet/schedules/), ordered by ``due_at``
- ``schedule_fires``  one record per schedule and fire time: the task(s)
                    it made or why it was skipped (unique key)
- ``leases``        short leases, e.g. which master is the scheduler leader
- ``scrapyd_jobs``  Scrapyd job ids (``_id`` = ``job:<id>``, unique) and the
                    crawl (root task id) each names (web/scrapyd/jobids.py)
- ``label_selectors``  each set of labels a run has asked for (``_id`` = its
                    queue key): nodes consume the queues of those they carry
- ``crawls``        distributed and resumable crawls (master/crawls.py); their
                    workers are tasks carrying ``crawl_id``
- ``alert_channels``  where alerts go: Apprise URLs, encrypted (crawlfleet/alerting/)
- ``alert_rules``   which outcome (or node figure) alerts which channels
- ``alert_history`` every alert sent, with its result, newest first
- ``results_<spider>``  scraped items, each with ``_tid``, ``task_id`` and
                    ``_at`` (when it was stored: the results browser's order)
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import gridfs
import pymongo
from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.collection import Collection

from crawlfleet.errors import BadRequest, NotFound
from crawlfleet.models import Doc

if TYPE_CHECKING:
    from crawlfleet.config import Config

log = logging.getLogger(__name__)

INDEXES = {
    "spiders": [IndexModel([("project", ASCENDING)])],
    "versions": [IndexModel([("project", ASCENDING), ("created_at", DESCENDING)])],
    # a deploy being inspected, shown as "inspecting…"; its record kept for a day
    "inspections": [IndexModel([("project", ASCENDING), ("started_at", DESCENDING)]),
                    IndexModel([("started_at", DESCENDING)]),
                    IndexModel([("drop_after", ASCENDING)], expireAfterSeconds=0)],
    "tasks": [
        # nx-27017 0.8 cannot index `_id` inside a compound index (it fails every
        # insert with "JSON path error near '_id'"), so creation time stands in.
        IndexModel([("status", ASCENDING), ("created_at", DESCENDING)]),
        IndexModel([("spider", ASCENDING), ("created_at", DESCENDING)]),
        IndexModel([("node_id", ASCENDING), ("status", ASCENDING)]),
        IndexModel([("finished_at", ASCENDING)]),
        # the UI's task list pages by creation time: nx-27017 scans the whole
        # collection for a range on `_id`, not for a range on an indexed field
        IndexModel([("created_at", DESCENDING)]),
        IndexModel([("retry_pending", ASCENDING)], sparse=True),
        # a crawl's attempts (crawlfleet/results/attempts.py)
        IndexModel([("root_id", ASCENDING)]),
        # a schedule's running tasks (overlap policy)
        IndexModel([("schedule_id", ASCENDING), ("status", ASCENDING)]),
        # the workers of a distributed crawl
        IndexModel([("crawl_id", ASCENDING)], sparse=True),
        # the task list filtered by what asked for the task
        IndexModel([("trigger", ASCENDING), ("created_at", DESCENDING)]),
        # a node's recent tasks (crawlfleet/nodehistory.py)
        IndexModel([("node_id", ASCENDING), ("started_at", DESCENDING)]),
    ],
    # distributed and resumable crawls (master/crawls.py): the active ones are supervised
    "crawls": [IndexModel([("status", ASCENDING)]), IndexModel([("created_at", DESCENDING)])],
    "task_logs": [
        IndexModel([("task_id", ASCENDING), ("seq", ASCENDING)], unique=True),
    ],
    "nodes": [IndexModel([("heartbeat_at", DESCENDING)])],
    # a node's history over a window; each sample dropped at its drop_after
    "node_samples": [IndexModel([("node_id", ASCENDING), ("at", ASCENDING)]),
                     IndexModel([("drop_after", ASCENDING)], expireAfterSeconds=0)],
    "scrapyd_jobs": [IndexModel([("task", ASCENDING)])],
    "tokens": [IndexModel([("name", ASCENDING)])],
    # web UI sessions (crawlfleet/users.py): ended by user, dropped once expired
    "web_sessions": [IndexModel([("user", ASCENDING)]),
                     IndexModel([("drop_after", ASCENDING)], expireAfterSeconds=0)],
    # the scheduler reads only the schedules that are due: no scan of them all
    "schedules": [IndexModel([("due_at", ASCENDING)]),
                  IndexModel([("spider", ASCENDING)])],
    # alerts configured in the UI (crawlfleet/alerting/): the pass reads enabled rules
    # by kind, the history lists newest first
    "alert_channels": [IndexModel([("name", ASCENDING)])],
    "alert_rules": [IndexModel([("kind", ASCENDING), ("enabled", ASCENDING)]),
                    IndexModel([("channels", ASCENDING)])],
    "alert_history": [IndexModel([("at", DESCENDING)]),
                      IndexModel([("drop_after", ASCENDING)], expireAfterSeconds=0)],
    # the unique key that makes a second firing of one tick impossible
    "schedule_fires": [
        IndexModel([("schedule_id", ASCENDING), ("fire_time", ASCENDING)], unique=True),
        IndexModel([("state", ASCENDING), ("claimed_at", ASCENDING)]),
        IndexModel([("fire_time", ASCENDING)]),  # retention
    ],
}

RESULTS_INDEXES = [
    IndexModel([("_tid", ASCENDING)]),
    # insertion order (epoch seconds, strictly increasing within a batch): the
    # results browser pages by it, as nx-27017 scans the whole collection for a
    # range on `_id` but not for a range on an indexed field
    IndexModel([("_at", ASCENDING)]),
]


class Store:
    """A pymongo client and the collections of one crawlfleet database."""

    def __init__(self, config: Config, *, client: pymongo.MongoClient[Doc] | None = None) -> None:
        self.config = config
        self.client: pymongo.MongoClient[Doc] = client or pymongo.MongoClient(
            config.mongo_uri,
            serverSelectionTimeoutMS=10_000,
            connectTimeoutMS=5_000,
            appname="crawlfleet",
        )
        self.db = self.client[config.mongo_db]
        self._results_indexed: set[str] = set()

    # the ledger's collections, by name, so call sites read like the design
    @property
    def spiders(self) -> Collection[Doc]:
        return self.db.spiders

    @property
    def projects(self) -> Collection[Doc]:
        return self.db.projects

    @property
    def versions(self) -> Collection[Doc]:
        return self.db.versions

    @property
    def inspections(self) -> Collection[Doc]:
        return self.db.inspections

    @property
    def tasks(self) -> Collection[Doc]:
        return self.db.tasks

    @property
    def task_logs(self) -> Collection[Doc]:
        return self.db.task_logs

    @property
    def nodes(self) -> Collection[Doc]:
        return self.db.nodes

    @property
    def masters(self) -> Collection[Doc]:
        return self.db.masters

    @property
    def tokens(self) -> Collection[Doc]:
        return self.db.tokens

    @property
    def schedules(self) -> Collection[Doc]:
        return self.db.schedules

    @property
    def schedule_fires(self) -> Collection[Doc]:
        return self.db.schedule_fires

    @property
    def crawls(self) -> Collection[Doc]:
        return self.db.crawls

    @property
    def label_selectors(self) -> Collection[Doc]:
        return self.db.label_selectors

    @property
    def leases(self) -> Collection[Doc]:
        return self.db.leases

    @property
    def scrapyd_jobs(self) -> Collection[Doc]:
        return self.db.scrapyd_jobs

    @property
    def users(self) -> Collection[Doc]:
        return self.db.users

    @property
    def files(self) -> gridfs.GridFSBucket:
        return gridfs.GridFSBucket(self.db, bucket_name="files")

    def results(self, collection_name: str) -> Collection[Doc]:
        """A results collection, its indexes made the first time this process uses it."""
        coll = self.db[collection_name]
        if collection_name not in self._results_indexed:
            coll.create_indexes(RESULTS_INDEXES)
            self._results_indexed.add(collection_name)
        return coll

    def ensure_indexes(self) -> None:
        for name, indexes in INDEXES.items():
            self.db[name].create_indexes(indexes)

    def ping(self) -> None:
        self.client.admin.command("ping")

    def close(self) -> None:
        self.client.close()


def known_ids(collection: Collection[Doc]) -> str:
    """Every `_id` of `collection`, sorted and comma-joined ("none" when empty):
    what an "unknown ..." error lists, so that a typo meets the right spelling."""
    return ", ".join(sorted(d["_id"] for d in collection.find({}, {"_id": 1}))) or "none"


def get_named(collection: Collection[Doc], name: Any, what: str) -> Doc:
    """The document of `collection` whose `_id` is the string `name` (a spider, a
    project), or NotFound naming every known one."""
    doc = collection.find_one({"_id": name}) if isinstance(name, str) else None
    if doc is None:
        raise NotFound(f"unknown {what} {name!r}; known {what}s: {known_ids(collection)}")
    return doc


def require_known(collection: Collection[Doc], ids: list[str], unknown: str) -> list[str]:
    """`ids` without repeats, in their order, when each is an `_id` of `collection`
    (the channels a rule sends to, a spider's data sources); else BadRequest:
    `unknown` followed by the missing ones."""
    known = {d["_id"] for d in collection.find({"_id": {"$in": ids}}, {"_id": 1})}
    missing = [i for i in ids if i not in known]
    if missing:
        raise BadRequest(f"{unknown}{', '.join(missing)}")
    return list(dict.fromkeys(ids))
