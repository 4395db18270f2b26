"""A deploy while its new version's spiders are listed, as people see it.

Listing a Scrapy project's spiders builds its environment first
(crawlfleet/inspection.py): seconds, or minutes for heavy requirements,
longer than a request should be held. Each deploy therefore writes one
``inspections`` document when it starts (``status`` ``inspecting``) and its
outcome when it ends: ``done`` with the version and its spiders, or
``failed`` with the readable error. The UI, the API and the CLI read it
while the version is being listed; an upload answers at once when the
listing outlasts ``deploy_wait`` (`run_in_background`).

Nothing else reads these documents: the project, its version and its
spiders are written only when the listing succeeded, as before. Records are
dropped a day after they end (a TTL index); one whose process died before
it ended reads as failed once its deadline has passed.
"""

from __future__ import annotations

import datetime
import logging
import secrets
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from crawlfleet.errors import CrawlfleetError, NotFound
from crawlfleet.models import Doc, now

if TYPE_CHECKING:
    from crawlfleet.config import Config
    from crawlfleet.store import Store

log = logging.getLogger(__name__)

INSPECTING, DONE, FAILED = "inspecting", "done", "failed"
KEPT = 24 * 3600  # seconds a finished record stays readable
# pip's own limit (crawlfleet/venvs.py) plus `scrapy list`, plus room for a busy machine
INSTALL_BUDGET = 600.0
INTERRUPTED = ("the inspection was interrupted before it ended (the server restarted?); "
               "deploy again")
PUBLIC_FIELDS = ("project", "label", "source", "status", "started_at", "ended_at", "error",
                 "version", "spiders", "new")


def _drop_after(stamp: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(stamp + KEPT, datetime.timezone.utc)


def begin(store: Store, config: Config, project: str, *, label: str | None,
          source: str) -> str:
    """Record that `project`'s new version is being inspected; its id."""
    started = now()
    inspection_id = secrets.token_hex(8)
    store.inspections.insert_one({
        "_id": inspection_id, "project": project, "label": label, "source": source,
        "status": INSPECTING, "started_at": started,
        "deadline": started + INSTALL_BUDGET + 2 * config.scrapy_list_timeout,
        # a record left by a killed process is dropped too
        "drop_after": _drop_after(started + INSTALL_BUDGET),
    })
    return inspection_id


def succeed(store: Store, inspection_id: str, result: Doc) -> None:
    ended = now()
    store.inspections.update_one({"_id": inspection_id}, {"$set": {
        "status": DONE, "ended_at": ended, "drop_after": _drop_after(ended),
        "version": result.get("version"), "label": result.get("label"),
        "spiders": result.get("spiders"), "new": result.get("new")}})


def fail(store: Store, inspection_id: str, error: str) -> None:
    ended = now()
    store.inspections.update_one({"_id": inspection_id}, {"$set": {
        "status": FAILED, "ended_at": ended, "drop_after": _drop_after(ended), "error": error}})


def public(doc: Doc) -> Doc:
    """What the API shows; a record past its deadline reads as failed."""
    out: Doc = {k: doc.get(k) for k in PUBLIC_FIELDS}
    out["id"] = doc["_id"]
    if out["new"] is not None:
        out["new"] = bool(out["new"])  # some MongoDB-wire servers give booleans back as 0/1
    if out["status"] == INSPECTING and now() > doc.get("deadline", 0):
        out.update(status=FAILED, error=INTERRUPTED)
    return out


def get(store: Store, project: str, inspection_id: Any) -> Doc:
    doc = (store.inspections.find_one({"_id": inspection_id, "project": project})
           if isinstance(inspection_id, str) else None)
    if doc is None:
        raise NotFound(f"project {project!r} has no inspection {inspection_id!r} "
                       "(records are kept for a day)")
    return public(doc)


def shown(store: Store, project: str | None = None, limit: int = 20) -> list[Doc]:
    """Inspections still worth showing, newest first: those running, and those
    that failed since their project's last successful deploy."""
    query: Doc = {} if project is None else {"project": project}
    docs = [public(d) for d in store.inspections.find(query).sort("started_at", -1)
            .limit(limit * 5)]
    out, succeeded = [], set()
    for doc in docs:  # newest first: a success hides the failures before it
        if doc["status"] == DONE:
            succeeded.add(doc["project"])
        elif doc["status"] == INSPECTING or doc["project"] not in succeeded:
            out.append(doc)
    return out[:limit]


def tracked(store: Store, config: Config, project: str, *, label: str | None, source: str,
            work: Callable[[], Doc], inspection_id: str | None = None) -> Doc:
    """Run `work()` (listing and registering) under an inspection record (begun
    here unless given), which ends `done` with its result or `failed` with
    its error."""
    if inspection_id is None:
        inspection_id = begin(store, config, project, label=label, source=source)
    try:
        result = work()
    except CrawlfleetError as exc:
        fail(store, inspection_id, str(exc))
        raise
    except BaseException:
        fail(store, inspection_id, "the inspection failed on the server (see its log)")
        raise
    succeed(store, inspection_id, result)
    return dict(result, inspection=inspection_id, status=DONE)


class Background:
    """A deploy run in a thread of this process, awaited for a while: its result
    (or its error, raised again) when it ends in time, else None."""

    def __init__(self, work: Callable[[], Doc]) -> None:
        self.result: Doc | None = None
        self.error: BaseException | None = None
        self.ended = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(work,), daemon=True,
                                       name="deploy-inspection")

    def _run(self, work: Callable[[], Doc]) -> None:
        try:
            self.result = work()
        except CrawlfleetError as exc:
            self.error = exc
        except BaseException as exc:  # recorded as failed by `tracked`; logged here
            log.exception("deploy inspection failed")
            self.error = exc
        finally:
            self.ended.set()

    def start(self) -> Background:
        self.thread.start()
        return self

    def wait(self, seconds: float) -> Doc | None:
        if not self.ended.wait(max(seconds, 0)):
            return None
        if self.error is not None:
            raise self.error
        return self.result
