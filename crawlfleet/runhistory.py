"""A spider's run history: one point per ended run (items, pages, errors,
duration, success), oldest first, and a summary of them.

The spider page draws its charts from this, the JSON API answers
``GET /api/v1/spiders/<name>/history`` with it and ``crawlfleet spider
history NAME`` prints it, so all three show the same numbers.
"""

from typing import Any

from crawlfleet.models import FINAL_VALUES, Doc, TaskStatus

DEFAULT_RUNS = 30
MAX_RUNS = 200
FIELDS = {"_id": 1, "status": 1, "trigger": 1, "created_at": 1, "started_at": 1,
          "finished_at": 1, "stats": 1, "node_id": 1, "attempt": 1}


def run_point(task: Doc) -> Doc:
    """One ended task as a point of the history."""
    stats = task.get("stats") or {}
    started, finished = task.get("started_at"), task.get("finished_at")
    duration = (round(finished - started, 3)
                if isinstance(started, (int, float)) and isinstance(finished, (int, float))
                else None)
    return {
        "task_id": task["_id"], "status": task.get("status"), "trigger": task.get("trigger"),
        "node_id": task.get("node_id"), "attempt": task.get("attempt", 1),
        "created_at": task.get("created_at"), "started_at": started, "finished_at": finished,
        "duration": duration,
        "items": int(stats.get("items") or 0), "pages": int(stats.get("pages") or 0),
        "errors": int(stats.get("errors") or 0),
        # cancelled is neither a success nor a failure: the run did not get to decide
        "success": (True if task.get("status") == TaskStatus.FINISHED.value
                    else None if task.get("status") == TaskStatus.CANCELLED.value else False),
    }


def summarize(runs: list[Doc]) -> Doc:
    """Totals and means over the runs; success rate counts finished vs failed only."""
    decided = [r for r in runs if r["success"] is not None]
    durations = [r["duration"] for r in runs if r["duration"] is not None]
    count = len(runs)
    return {
        "runs": count,
        "succeeded": sum(1 for r in decided if r["success"]),
        "failed": sum(1 for r in decided if not r["success"]),
        "success_rate": (round(sum(1 for r in decided if r["success"]) / len(decided), 4)
                         if decided else None),
        "items_mean": round(sum(r["items"] for r in runs) / count, 1) if count else None,
        "pages_mean": round(sum(r["pages"] for r in runs) / count, 1) if count else None,
        "errors_total": sum(r["errors"] for r in runs),
        "duration_mean": round(sum(durations) / len(durations), 3) if durations else None,
    }


def spider_history(store: Any, spider: str, limit: int = DEFAULT_RUNS) -> Doc:
    """The last `limit` ended runs of `spider` (oldest first) and their summary."""
    limit = max(1, min(int(limit), MAX_RUNS))
    docs = list(store.tasks.find({"spider": spider, "status": {"$in": FINAL_VALUES}}, FIELDS)
                .sort("created_at", -1).limit(limit))
    runs = [run_point(d) for d in reversed(docs)]
    return {"spider": spider, "limit": limit, "runs": runs, "summary": summarize(runs)}
