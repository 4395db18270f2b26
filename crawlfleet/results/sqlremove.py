"""Removing results from the SQL data sources too, so that they and MongoDB
never disagree: deleting a task's results (API, CLI, UI), dropping a results
collection, and a finished retry superseding the attempts it replaced.

The sources are those the spiders writing the collection name now (a source
detached from a spider keeps what it was given). Each removal runs before
MongoDB's: a source that cannot be reached stops it with
`SourceUnavailable` (503, one line naming the source) and nothing is
removed anywhere, so the request can simply be repeated.
"""

from __future__ import annotations

from typing import Callable, Mapping

import sqlalchemy.exc
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from crawlfleet.errors import CrawlfleetError
from crawlfleet.results.delivery import short, table_for
from crawlfleet.secretbox import SecretBox


class SourceUnavailable(CrawlfleetError, status_code=503):
    """A data source could not be reached (or refused) while results were removed."""


def sources_of(store, collection: str) -> list[str]:
    """The data sources of the spiders whose results go to `collection`."""
    names: list[str] = []
    for spider in store.spiders.find({"results_collection": collection}, {"datasources": 1}):
        names += [n for n in spider.get("datasources") or [] if n not in names]
    return names


def _each_table(store, config, collection: str, names: list[str],
                act: Callable, attempts: int = 1) -> dict[str, int]:
    """{source: act(table)} over the named sources' tables for `collection`."""
    box = SecretBox.for_config(config)
    done: dict[str, int] = {}
    for name in names:
        source = store.db.datasources.find_one({"_id": name})
        if source is None:  # deleted since: nothing of ours is reachable there
            continue
        retrying = Retrying(stop=stop_after_attempt(max(1, attempts)),
                            wait=wait_exponential(multiplier=1, max=30),
                            retry=retry_if_exception_type(sqlalchemy.exc.OperationalError),
                            reraise=True)
        try:
            done[name] = retrying(act, table_for(source, box, collection))
        except sqlalchemy.exc.SQLAlchemyError as exc:
            raise SourceUnavailable(f"data source {name!r} ({source['kind']}): {short(exc)}; "
                                    "no results were removed") from None
    return done


def delete_rows(store, config, collection: str, task_ids: list[str], *,
                first_since: float | None = None, sources: list[str] | None = None,
                attempts: int = 1) -> dict[str, int]:
    """Delete the rows `task_ids` wrote from each source; {source: rows deleted}."""
    names = sources_of(store, collection) if sources is None else sources
    return _each_table(store, config, collection, names,
                       lambda table: table.delete_tasks(task_ids, first_since), attempts)


def drop_tables(store, config, collection: str) -> dict[str, int]:
    """Drop the collection's table in each source; {source: rows it held}."""
    return _each_table(store, config, collection, sources_of(store, collection),
                       lambda table: table.drop())


def describe(removed: Mapping[str, int]) -> str:
    return ", ".join(f"{rows} in {name}" for name, rows in removed.items())
