"""`crawlfleet spider history NAME`: a spider's last ended runs and their
summary, from ``GET /api/v1/spiders/<name>/history`` (the numbers the spider
page charts). A subcommand of the `spider` group that cli/data.py makes."""

import click

from crawlfleet.cli.client import api_client, api_command, print_json, print_table, seconds, when


def success_word(run):
    return {True: "yes", False: "no", None: "-"}[run.get("success")]


def register(main):
    spider = main.commands["spider"]  # the group of cli/data.py

    @spider.command("history")
    @click.argument("name")
    @click.option("--limit", type=click.IntRange(1, 200), default=30, show_default=True,
                  help="How many of the last ended runs.")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @api_command
    def history(name, limit, as_json):
        """NAME's last ended runs: items, pages, errors, duration and success per run."""
        doc = api_client().spider_history(name, limit=limit)
        if as_json:
            return print_json(doc)
        print_table(["TASK", "STATUS", "TRIGGER", "STARTED", "DURATION", "ITEMS", "PAGES",
                     "ERRORS", "OK"],
                    [[r["task_id"], r["status"], r.get("trigger") or "-", when(r.get("started_at")),
                      seconds(r.get("duration")), r["items"], r["pages"], r["errors"],
                      success_word(r)] for r in doc["runs"]])
        summary = doc["summary"]
        rate = summary.get("success_rate")
        click.echo(f"{summary['runs']} runs: {summary['succeeded']} finished, "
                   f"{summary['failed']} failed"
                   + (f" ({rate:.0%} success)" if rate is not None else "")
                   + (f", mean {summary['items_mean']} items" if summary['runs'] else "")
                   + (f", mean {seconds(summary['duration_mean'])}"
                      if summary.get("duration_mean") is not None else ""))
