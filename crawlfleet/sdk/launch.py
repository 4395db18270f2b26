"""Run a Scrapy spider the way `scrapy crawl` does, with crawlfleet's item
pipeline and stats extension added to the project's own settings.

    python -m crawlfleet.sdk.launch SPIDER [-a NAME=VALUE]... [-s NAME=VALUE]...

Adding to ITEM_PIPELINES and EXTENSIONS, rather than passing them with -s,
keeps the project's own pipelines and extensions running.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import TYPE_CHECKING

from crawlfleet.sdk import frontier
from crawlfleet.sdk import scrapy as cf_scrapy

if TYPE_CHECKING:
    from scrapy.settings import Settings


def project_settings() -> Settings:
    from scrapy.utils.project import get_project_settings

    settings = get_project_settings()
    for name, component, order in (
        ("ITEM_PIPELINES", cf_scrapy.PIPELINE, cf_scrapy.PIPELINE_ORDER),
        ("EXTENSIONS", cf_scrapy.EXTENSION, cf_scrapy.EXTENSION_ORDER),
    ):
        components = dict(settings.getdict(name))
        components[component] = order
        settings.set(name, components, priority="project")
    return settings


# The platform's own loggers in a spider process: Scrapy logs at DEBUG by
# default, which would fill the task log with pymongo's command lines (item
# payloads included) from crawlfleet's own connection.
PLATFORM_LOGGERS = ("pymongo", "crawlfleet")


def quiet_platform_loggers() -> None:
    """The platform's loggers write INFO and above only, whatever the project's
    LOG_LEVEL (the spider's own loggers keep it)."""
    for name in PLATFORM_LOGGERS:
        logging.getLogger(name).setLevel(logging.INFO)


def main(argv: list[str] | None = None, settings: Settings | None = None) -> None:
    """Run `scrapy crawl` with `argv`; `settings` are the project settings when
    the caller already has them (a warm process computed them once)."""
    from scrapy.cmdline import execute

    quiet_platform_loggers()

    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0].startswith("-"):
        sys.exit("usage: python -m crawlfleet.sdk.launch SPIDER [-a NAME=VALUE]... [-s NAME=VALUE]...")
    # A worker of a distributed or resumable crawl shares its frontier in Redis.
    settings = frontier.configure(settings or project_settings(), os.environ)
    try:
        execute(["scrapy", "crawl", *argv], settings=settings)
    except SystemExit as exc:
        if cf_scrapy.STORE_FAILED:
            sys.exit("crawlfleet: items could not be stored; the task failed (see the log)")
        if frontier.FRONTIER_LOST:
            sys.exit("crawlfleet: the crawl's frontier is gone from Redis; the task failed")
        raise


if __name__ == "__main__":
    main()
