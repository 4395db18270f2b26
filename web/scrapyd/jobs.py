"""Scrapyd's view of the ledger: one job per crawl, as its latest attempt.

A crawlfleet run may have several attempts (retries: ``<root>-a2``, ...);
Scrapyd knows one job per schedule.json call. So a job is a crawl (its root
task id, or the client's job id mapped to it in `jobids`), and its state is
its latest attempt's: ``pending``, ``running``, or ``finished`` for every
final status. Like Scrapyd's ``finished_to_keep``, only the last 100
finished jobs are listed and counted.
"""

import datetime

from crawlfleet.models import FINAL_VALUES, TaskStatus
from web.scrapyd import jobids

FINISHED_TO_KEEP = 100
PENDING = TaskStatus.PENDING.value
RUNNING = TaskStatus.RUNNING.value
FIELDS = {"root_id": 1, "attempt": 1, "spider": 1, "project": 1, "version": 1, "status": 1,
          "scrapyd_version": 1,
          "args": 1, "settings": 1, "pid": 1, "created_at": 1, "started_at": 1,
          "finished_at": 1, "results_collection": 1}


def state_of(task: dict | None) -> str | None:
    if task is None:
        return None
    if task["status"] in (PENDING, RUNNING):
        return task["status"]
    return "finished"


def root_of(task: dict) -> str:
    return task.get("root_id") or task["_id"]


def latest(tasks) -> list:
    """Each crawl once, as its latest attempt, in the order first seen."""
    best = {}
    for task in tasks:
        root = root_of(task)
        if root not in best or task.get("attempt", 1) > best[root].get("attempt", 1):
            best[root] = task
    return list(best.values())


def find_job(store, jobid: str, project: str | None = None) -> dict | None:
    """The latest attempt of the job `jobid` (in `project`, if given), or None."""
    root = jobids.root_task_of(store, jobid)
    if root is None:
        return None
    query = {"root_id": root}
    if project is not None:
        query["project"] = project
    found = list(store.tasks.find(query, FIELDS).sort("attempt", -1).limit(1))
    return found[0] if found else None


def list_jobs(store, project: str | None = None) -> dict:
    """{"pending": [...], "running": [...], "finished": [...]} of latest attempts,
    each task carrying its Scrapyd job id as ``jobid``."""
    query = {} if project is None else {"project": project}
    pending = list(store.tasks.find(dict(query, status=PENDING), FIELDS).sort("created_at", 1))
    running = list(store.tasks.find(dict(query, status=RUNNING), FIELDS).sort("started_at", 1))
    # a job cancelled before it started left Scrapyd's queue without a trace
    finished = list(store.tasks.find(dict(query, status={"$in": FINAL_VALUES},
                                          started_at={"$ne": None}), FIELDS)
                    .sort("finished_at", -1).limit(FINISHED_TO_KEEP))
    finished.reverse()  # Scrapyd lists the oldest finished job first
    # a crawl whose retry waits or runs is not finished: show only its latest attempt
    current = {id(t) for t in latest(pending + running + finished)}
    groups = {name: [t for t in tasks if id(t) in current]
              for name, tasks in (("pending", pending), ("running", running),
                                  ("finished", finished))}
    ids = jobids.jobids_of(store, [root_of(t) for ts in groups.values() for t in ts])
    for tasks in groups.values():
        for task in tasks:
            task["jobid"] = ids[root_of(task)]
    return groups


def counts(store) -> dict:
    """daemonstatus.json's counts, the same jobs listjobs.json shows."""
    groups = list_jobs(store)
    return {name: len(groups[name]) for name in ("pending", "running", "finished")}


def stamp(value: float | None) -> str | None:
    """Scrapyd's `str(datetime)`: local time, microseconds when there are any."""
    if not value:
        return None
    return str(datetime.datetime.fromtimestamp(value))
