"""Client verbs of distributed and resumable crawls: `crawl list|show|scale|cancel`
and `resume` (a crawl is started by `crawlfleet run SPIDER --workers N`)."""

import sys
import time

import click

from crawlfleet.cli.client import (api_client, api_command, print_json, print_table, seconds,
                                   when)
from crawlfleet.client import FOLLOW_INTERVAL

FINAL = {"finished", "error", "cancelled", "timeout", "abnormal"}


def wait_crawl(client, crawl_id, interval=FOLLOW_INTERVAL):
    """Print one line each time the crawl's status or counts change; returns it at its end."""
    last = None
    while True:
        crawl = client.crawl(crawl_id)
        stats = crawl.get("stats") or {}
        frontier = crawl.get("frontier") or {}
        line = (f"crawl {crawl_id}: {crawl['status']}, "
                f"{sum(t['status'] in ('pending', 'running') for t in crawl['tasks'])} "
                f"worker(s) active, {stats.get('pages', 0)} pages, {stats.get('items', 0)} "
                f"items, {frontier.get('queued', 0)} queued")
        if line != last:
            click.echo(line, err=True)
            last = line
        if crawl["status"] in FINAL:
            return crawl
        time.sleep(interval)


def show(crawl):
    stats = crawl.get("stats") or {}
    frontier = crawl.get("frontier") or {}
    fields = [
        ("id", crawl["id"]), ("spider", crawl["spider"]), ("status", crawl["status"]),
        ("workers", crawl.get("workers")), ("persist", crawl.get("persist")),
        ("nodes", ", ".join(crawl.get("nodes_used") or []) or "-"),
        ("started", when(crawl.get("started_at"))), ("finished", when(crawl.get("finished_at"))),
        ("duration", seconds(crawl.get("duration"))), ("resumed", crawl.get("resumed", 0)),
        ("items", stats.get("items", 0)), ("pages", stats.get("pages", 0)),
        ("errors", stats.get("errors", 0)), ("queued", frontier.get("queued", "-")),
        ("seen", frontier.get("seen", "-")), ("in flight", frontier.get("in_flight", "-")),
        ("error", crawl.get("error")),
    ]
    for name, value in fields:
        click.echo(f"{name + ':':<11} {'-' if value is None else value}")
    click.echo("")
    print_table(["TASK", "WORKER", "STATUS", "NODE", "PAGES", "ITEMS", "TRIGGER"],
                [[t["id"], t.get("worker"), t["status"], t.get("node_id") or t.get("target"),
                  (t.get("stats") or {}).get("pages", 0), (t.get("stats") or {}).get("items", 0),
                  t.get("trigger")] for t in crawl["tasks"]])


def register(main):
    @main.group()
    def crawl():
        """Distributed and resumable crawls (started with `run --workers N` or `--persist`)."""

    @crawl.command("list")
    @click.option("--status", help="Only crawls with this status.")
    @click.option("--spider", help="Only this spider's crawls.")
    @click.option("--limit", type=click.IntRange(1, 500), default=20, show_default=True)
    @click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
    @api_command
    def list_crawls(status, spider, limit, as_json):
        """List crawls, newest first."""
        items = api_client().crawls(status=status, spider=spider, limit=limit)["crawls"]
        if as_json:
            return print_json(items)
        print_table(["ID", "SPIDER", "STATUS", "WORKERS", "PAGES", "ITEMS", "QUEUED", "STARTED"],
                    [[c["id"], c["spider"], c["status"], c.get("workers"),
                      (c.get("stats") or {}).get("pages", 0),
                      (c.get("stats") or {}).get("items", 0),
                      (c.get("frontier") or {}).get("queued", "-"), when(c.get("started_at"))]
                     for c in items])

    @crawl.command("show")
    @click.argument("crawl_id")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @api_command
    def show_crawl(crawl_id, as_json):
        """Show a crawl: status, combined stats, frontier sizes and its workers."""
        doc = api_client().crawl(crawl_id)
        if as_json:
            return print_json(doc)
        show(doc)

    @crawl.command("scale")
    @click.argument("crawl_id")
    @click.argument("workers", type=click.IntRange(1, 64))
    @api_command
    def scale(crawl_id, workers):
        """Run WORKERS workers of a running crawl from now on (adds or stops workers)."""
        doc = api_client().scale_crawl(crawl_id, workers)
        click.echo(f"crawl {doc['id']}: {doc['workers']} worker(s)")

    @crawl.command("cancel")
    @click.argument("crawl_id")
    @api_command
    def cancel(crawl_id):
        """Stop every worker of a crawl (a persistent crawl can be resumed)."""
        doc = api_client().cancel_crawl(crawl_id)
        click.echo(f"crawl {doc['id']}: cancel requested")

    @main.command()
    @click.argument("crawl_id")
    @click.option("--wait", is_flag=True, help="Wait until the crawl ends.")
    @api_command
    def resume(crawl_id, wait):
        """Continue a stopped persistent crawl from its frontier (CRAWL_ID, or a worker's task id)."""
        client = api_client()
        doc = client.resume_crawl(crawl_id)
        click.echo(doc["id"])
        if wait and wait_crawl(client, doc["id"])["status"] != "finished":
            sys.exit(1)
