"""A task's log as the Scrapy log file Scrapyd would have written for the job.

Scrapyd runs a crawl with ``LOG_FILE`` set, so its log file holds Scrapy's
own lines (``2024-06-01 12:00:00 [scrapy.core.engine] INFO: Spider opened``),
and tools such as LogParser and ScrapydWeb read the crawl's stats from them
(the ``Dumping Scrapy stats`` block, the ``Crawled N pages`` lines). A
crawlfleet task log is the spider's output as the node saw it: those same
lines, plus the platform's own, marked ``[crawlfleet] ``. Here the platform's
lines take Scrapy's format, stamped with the time their batch was stored,
so every line of the file parses as a Scrapy log line or continues one.
"""

import time
from collections.abc import Iterator

PLATFORM_PREFIX = "[crawlfleet] "  # node/logship.py's mark on the platform's lines
LOGGER = "crawlfleet"
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"  # Scrapy's LOG_DATEFORMAT


def scrapy_line(line: str, at: float | None) -> str:
    if not line.startswith(PLATFORM_PREFIX):
        return line
    text = line[len(PLATFORM_PREFIX):]
    level = "ERROR" if text.lower().startswith(("error", "failed", "killed")) else "INFO"
    stamp = time.strftime(TIME_FORMAT, time.localtime(at or time.time()))
    return f"{stamp} [{LOGGER}] {level}: {text}"


def scrapy_log(task_logs, task_id: str) -> Iterator[str]:
    """The log of `task_id`, one chunk per stored batch, as text."""
    chunks = task_logs.find({"task_id": task_id}).sort("seq", 1).batch_size(50)
    for chunk in chunks:
        lines = chunk.get("lines") or []
        if lines:
            yield "".join(scrapy_line(line, chunk.get("at")) + "\n" for line in lines)
