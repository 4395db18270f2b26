"""The node delivers a finished attempt's items to the spider's data sources.

MongoDB is the record: every item is stored there first (the results
browser reads it). When an attempt finishes, and after it superseded the
attempts before it, the node reads that attempt's items back in batches and
writes them to each data source the spider names — so a SQL table receives
a crawl's final items once, and never a half crawl that a retry replaced.
The node writes, never the spider: spiders hold no database credential.

Each batch is retried (tenacity, exponential backoff) ``sink_attempts``
times; a source still down then fails the task loudly, naming it. Nothing
is lost: the items stay in MongoDB, and delivering the same items again is
an upsert (with dedup) or another copy (without).
"""

from __future__ import annotations

import logging
import threading
from typing import Callable, Mapping

import sqlalchemy.exc
from tenacity import (RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt,
                      wait_exponential)

from crawlfleet import datasources
from crawlfleet.errors import CrawlfleetError
from crawlfleet.results.dedup import DedupPolicy
from crawlfleet.results.sql import SqlTable
from crawlfleet.secretbox import SecretBox

log = logging.getLogger(__name__)


class DeliveryFailed(CrawlfleetError):
    """Raised when a data source refused a batch after every retry."""


_TABLES: dict[tuple, SqlTable] = {}
_TABLES_LOCK = threading.Lock()


def table_for(source: Mapping, box: SecretBox, name: str) -> SqlTable:
    """One engine (connection pool) per source version per node process."""
    key = (source["_id"], source.get("updated_at"), name)
    with _TABLES_LOCK:
        if key not in _TABLES:
            _TABLES[key] = SqlTable(datasources.engine(source, box), name)
        return _TABLES[key]


def deliver(store, config, task: Mapping, source_names: list[str],
            policy: DedupPolicy | None, say: Callable[[str], None]) -> int:
    """Copy the items of `task` to each named source; returns rows written."""
    if not source_names:
        return 0
    box = SecretBox.for_config(config)
    collection = store.db[task["results_collection"]]
    written = 0
    for name in source_names:
        source = store.db.datasources.find_one({"_id": name})
        if source is None:
            raise DeliveryFailed(f"data source {name!r} no longer exists")
        table = table_for(source, box, task["results_collection"])
        retrying = Retrying(
            stop=stop_after_attempt(max(1, config.sink_attempts)),
            wait=wait_exponential(multiplier=1, max=30),
            retry=retry_if_exception_type(sqlalchemy.exc.OperationalError),
            before_sleep=_say_retry(say, name),
            reraise=True)
        batch, rows = [], 0
        cursor = collection.find({"_tid": task["_id"]}).sort("_at", 1).batch_size(config.sink_batch)
        try:
            for item in cursor:
                batch.append(item)
                if len(batch) >= config.sink_batch:
                    rows += retrying(table.write, batch, policy)
                    batch = []
            rows += retrying(table.write, batch, policy)
        except sqlalchemy.exc.SQLAlchemyError as exc:
            raise DeliveryFailed(f"data source {name!r} ({source['kind']}): {rows} rows "
                                 f"delivered, then {short(exc)}") from None
        say(f"data source {name}: {rows} rows written to {task['results_collection']}")
        written += rows
    return written


def short(exc: BaseException | None) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return (text[0] if text else exc.__class__.__name__)[:300]


def _say_retry(say: Callable[[str], None], name: str) -> Callable[[RetryCallState], None]:
    """What the task log says before a delivery is tried again."""
    def before_sleep(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        say(f"data source {name}: {short(error)}; retry {state.attempt_number}")
    return before_sleep
