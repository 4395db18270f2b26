"""Scrapyd job ids: the id a client names a job by, mapped to the crawl it started.

ScrapydWeb and Gerapy always send their own ``jobid`` to schedule.json and
then find the job by it (status, cancel, listjobs, log and items links), so
the id a client sends is kept as it is, unique: one document per job id in
``scrapyd_jobs`` (``_id`` = the job id, ``task`` = the crawl's root task id).
A job id is reserved before the task exists, so a clash is refused before
anything runs. Tasks made elsewhere (the UI, schedules) have no entry: their
Scrapyd job id is their root task id.

The stored key is the job id behind a ``job:`` mark: nx-27017 0.8 matches no
document when a query's string looks like a date and time
(``2024-06-01T12_00_00``, ScrapydWeb's kind of job id), so no job id is ever
a query value as it is.
"""

import uuid

import pymongo.errors

from crawlfleet.errors import BadRequest, Conflict
from crawlfleet.models import now

MAX_LENGTH = 200
MARK = "job:"


def key(jobid: str) -> str:
    return MARK + jobid


def new_jobid() -> str:
    """A job id as Scrapyd makes one when the client sends none."""
    return uuid.uuid1().hex


def check_jobid(jobid: str) -> str:
    """A client's job id becomes part of log and items paths: no separators."""
    if (not jobid or len(jobid) > MAX_LENGTH or not jobid.isprintable() or "/" in jobid
            or "\\" in jobid or jobid in (".", "..")):
        raise BadRequest(f"jobid must be 1-{MAX_LENGTH} printable characters without "
                         f"'/' or '\\', got {jobid!r}")
    return jobid


def reserve(store, jobid: str, project: str, spider: str) -> None:
    """Take `jobid` for a job about to be scheduled; Conflict if it is taken."""
    if store.tasks.find_one({"_id": jobid}, {"_id": 1}) is not None:
        raise Conflict(f"jobid {jobid!r} is already used by another job")
    try:
        store.scrapyd_jobs.insert_one({"_id": key(jobid), "task": None, "project": project,
                                       "spider": spider, "created_at": now()})
    except pymongo.errors.DuplicateKeyError:
        raise Conflict(f"jobid {jobid!r} is already used by another job") from None


def attach(store, jobid: str, task_id: str) -> None:
    store.scrapyd_jobs.update_one({"_id": key(jobid)}, {"$set": {"task": task_id}})


def release(store, jobid: str) -> None:
    """Give back a reserved id whose job could not be made."""
    store.scrapyd_jobs.delete_one({"_id": key(jobid), "task": None})


def root_task_of(store, jobid: str) -> str | None:
    """The root task id a job id names: a client's id, else a task id itself."""
    doc = store.scrapyd_jobs.find_one({"_id": key(jobid)}, {"task": 1})
    if doc is not None:
        return doc.get("task")
    return jobid


def jobids_of(store, root_ids) -> dict:
    """{root task id: Scrapyd job id} for these crawls (their own id when unmapped)."""
    root_ids = list(dict.fromkeys(root_ids))
    found = {root: root for root in root_ids}
    if root_ids:
        for doc in store.scrapyd_jobs.find({"task": {"$in": root_ids}}, {"task": 1}):
            found[doc["task"]] = doc["_id"][len(MARK):]
    return found
