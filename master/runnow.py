"""Run a schedule's spider now, with the schedule's options, outside its cron.

The "run now" button of the schedule page and ``POST
/api/v1/schedules/<id>/run`` use this. The tasks carry the schedule's id (so
the scheduler's overlap policy sees them as that schedule's runs) but no
fire time and no entry in the fire history: nothing fired; a person asked.
Their trigger is who asked (``ui`` or ``api``), like any run request.
"""

from typing import Any

from crawlfleet import schedules
from crawlfleet.broker import Broker
from crawlfleet.config import Config
from crawlfleet.models import Doc
from crawlfleet.store import Store
from master.dispatch import run_spider


def run_schedule_now(store: Store, broker: Broker, config: Config, schedule_id: str, *,
                     trigger: str, extra: Doc | None = None) -> list[Doc]:
    """Start the schedule's spider as its next fire would (same arguments,
    settings, nodes, labels, timeout, priority, retry, workers); returns the tasks."""
    doc = schedules.get(store, schedule_id)
    marks = {**(extra or {}), "schedule_id": doc["_id"], "run_now": True}
    options: dict[str, Any] = dict(args=doc.get("args"), settings=doc.get("settings"),
                   nodes=doc.get("nodes") or "any", timeout=doc.get("timeout"),
                   priority=doc.get("priority") or 0, trigger=trigger, retry=doc.get("retry"),
                   labels=doc.get("labels") or None, extra=marks)
    if doc.get("workers") or doc.get("persist"):
        from master import crawls  # a distributed crawl, as the scheduler starts one

        _, tasks = crawls.start_crawl(store, broker, config, doc["spider"],
                                      workers=doc.get("workers") or 1,
                                      persist=bool(doc.get("persist")), **options)
        return tasks
    return run_spider(store, broker, config, doc["spider"], **options)
