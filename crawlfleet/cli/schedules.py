"""`crawlfleet schedule …`: cron schedules through the JSON API.

    crawlfleet schedule add books --cron "0 3 * * *" --tz Europe/Paris -a max_pages=5
    crawlfleet schedule ls
    crawlfleet schedule show ID          # next 5 fire times and recent history
    crawlfleet schedule history ID
    crawlfleet schedule preview --cron "*/10 * * * * *"
    crawlfleet schedule run ID           # now, with the schedule's options
    crawlfleet schedule enable|disable|rm ID
"""

import click

from crawlfleet.cli.client import (api_client, api_command, parse_labels, parse_pairs,
                                   print_json, print_table)

HISTORY_SHOWN = 10


def short_time(iso):
    """2024-03-31T03:00:00+02:00 → 2024-03-31 03:00:00+02:00"""
    return iso.replace("T", " ") if iso else "-"


def targets(nodes):
    return nodes if isinstance(nodes, str) else ",".join(nodes)


def print_fires(fires):
    print_table(["FIRE TIME", "STATE", "TASKS", "REASON"],
                [[short_time(f.get("fire_iso")), f["state"],
                  " ".join(f"{t['id']}:{t.get('status') or '?'}" for t in f.get("tasks", []))
                  or "-", f.get("reason") or ""] for f in fires])


def register(main):
    @main.group()
    def schedule():
        """Cron schedules: run spiders unattended."""

    @schedule.command("add")
    @click.argument("spider")
    @click.option("--cron", required=True,
                  help='5 fields ("0 3 * * *"), or 6 with seconds last ("* * * * * */10"), '
                       "or @daily, @hourly…")
    @click.option("--tz", "timezone", default="UTC", show_default=True,
                  help="IANA time zone the cron expression is read in.")
    @click.option("-a", "args", multiple=True, metavar="NAME=VALUE", help="Spider argument.")
    @click.option("-s", "settings", multiple=True, metavar="NAME=VALUE", help="Scrapy setting.")
    @click.option("--node", "node_ids", multiple=True, metavar="ID",
                  help="Run on this node (repeat for several). Default: any node.")
    @click.option("--all-nodes", is_flag=True, help="One task on every online node.")
    @click.option("--label", "labels", multiple=True, metavar="KEY=VALUE",
                  help="Only nodes carrying this label (repeat: all must match).")
    @click.option("--overlap", type=click.Choice(["skip", "queue", "allow"]), default="skip",
                  show_default=True, help="When the previous run is still going.")
    @click.option("--description", default="", help="What this schedule is for.")
    @click.option("--retries", type=click.IntRange(0, 19), default=None,
                  help="Attempts after a failed one (error, timeout, abnormal).")
    @click.option("--backoff", type=click.FloatRange(min=0), default=None,
                  help="Seconds before the first retry (doubling after).")
    @click.option("--timeout", type=click.FloatRange(min=0), help="Time limit in seconds.")
    @click.option("--priority", type=click.IntRange(0, 9), default=0, show_default=True)
    @click.option("--misfire-grace", type=click.FloatRange(min=0),
                  help="Seconds a missed fire may still run on recovery (default: setting).")
    @click.option("--alert-webhook", metavar="URL", help="POST alerts of this schedule here.")
    @click.option("--alert-email", multiple=True, metavar="ADDRESS",
                  help="Email alerts of this schedule here (repeat for several).")
    @click.option("--alert-on", default="error,timeout,abnormal", show_default=True,
                  help="Outcomes that alert: error, timeout, abnormal, finished, zero_items.")
    @click.option("--disabled", is_flag=True, help="Create it disabled.")
    @click.option("--workers", type=click.IntRange(1, 64),
                  help="Fire one crawl of N workers sharing a Redis frontier.")
    @click.option("--persist", is_flag=True, help="Fire resumable crawls.")
    @click.option("--json", "as_json", is_flag=True, help="Print the schedule as JSON.")
    @api_command
    def add(spider, cron, timezone, args, settings, node_ids, all_nodes, labels, overlap,
            description,
            retries, backoff, timeout, priority, misfire_grace, alert_webhook, alert_email,
            alert_on, disabled, workers, persist, as_json):
        """Schedule SPIDER; prints its id and next fire times."""
        if node_ids and all_nodes:
            raise click.UsageError("--node and --all-nodes exclude each other")
        if backoff is not None and retries is None:
            raise click.UsageError("--backoff needs --retries")
        if node_ids and labels:
            raise click.UsageError("--node and --label exclude each other")
        body = {"spider": spider, "cron": cron, "timezone": timezone,
                "args": parse_pairs(args, "-a"), "settings": parse_pairs(settings, "-s"),
                "nodes": "all" if all_nodes else (list(node_ids) if node_ids else "any"),
                "overlap": overlap, "description": description, "priority": priority,
                "enabled": not disabled}
        if labels:
            body["labels"] = parse_labels(labels)
        if workers or persist:
            body["workers"] = workers
            body["persist"] = persist
        if retries is not None:
            body["retry"] = {"max_attempts": retries + 1, "backoff": backoff or 0}
        if timeout is not None:
            body["timeout"] = timeout
        if misfire_grace is not None:
            body["misfire_grace"] = misfire_grace
        if alert_webhook or alert_email:
            body["alerts"] = {"on": alert_on.split(","), "webhook": alert_webhook,
                              "email": list(alert_email)}
        doc = api_client().create_schedule(body)
        if as_json:
            return print_json(doc)
        click.echo(doc["id"])
        state = "enabled" if doc["enabled"] else "disabled"
        click.echo(f"{state}; next fire times ({doc['timezone']}):", err=True)
        for iso in doc.get("upcoming") or []:
            click.echo(f"  {short_time(iso)}", err=True)

    @schedule.command("ls")
    @click.option("--spider", help="Only this spider's schedules.")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
    @api_command
    def ls(spider, as_json):
        """List schedules."""
        items = api_client().schedules(spider=spider)
        if as_json:
            return print_json(items)
        print_table(["ID", "SPIDER", "CRON", "TZ", "STATE", "NEXT FIRE", "LAST"],
                    [[s["id"], s["spider"], s["cron"], s.get("timezone"),
                      "enabled" if s.get("enabled") else "disabled",
                      short_time(s.get("next_fire_time")), s.get("last_outcome") or "-"]
                     for s in items])

    @schedule.command("show")
    @click.argument("schedule_id")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @api_command
    def show(schedule_id, as_json):
        """One schedule: its settings, next 5 fire times and recent history."""
        client = api_client()
        doc = client.schedule(schedule_id)
        fires = client.schedule_history(schedule_id, limit=HISTORY_SHOWN)["fires"]
        if as_json:
            return print_json({**doc, "history": fires})
        retry = doc.get("retry") or {}
        fields = [
            ("id", doc["id"]), ("spider", doc["spider"]), ("cron", doc["cron"]),
            ("timezone", doc.get("timezone")),
            ("state", "enabled" if doc.get("enabled") else
             "disabled" + (f" ({doc['disabled_reason']})" if doc.get("disabled_reason") else "")),
            ("description", doc.get("description") or "-"),
            ("args", " ".join(f"{k}={v}" for k, v in (doc.get("args") or {}).items()) or "-"),
            ("settings",
             " ".join(f"{k}={v}" for k, v in (doc.get("settings") or {}).items()) or "-"),
            ("nodes", targets(doc.get("nodes") or "any")),
            ("labels", ",".join(f"{k}={v}" for k, v in sorted((doc.get("labels") or {}).items()))
             or "-"),
            ("overlap", doc.get("overlap")),
            ("priority", doc.get("priority")), ("timeout", doc.get("timeout") or "-"),
            ("retry", f"{retry['max_attempts']} attempts, backoff {retry.get('backoff', 0):g} s"
             if retry else "-"),
            ("misfire grace", doc.get("misfire_grace") if doc.get("misfire_grace") is not None
             else "default"),
            ("alerts", ", ".join(filter(None, [(doc.get("alerts") or {}).get("webhook"),
                                               *((doc.get("alerts") or {}).get("email") or [])]))
             or "-"),
        ]
        for name, value in fields:
            click.echo(f"{name + ':':<14} {value}")
        click.echo("next fire times:")
        for iso in doc.get("upcoming") or ["-"]:
            click.echo(f"  {short_time(iso)}")
        click.echo("recent history:")
        if fires:
            print_fires(fires)
        else:
            click.echo("  (none yet)")

    @schedule.command("history")
    @click.argument("schedule_id")
    @click.option("--limit", type=click.IntRange(1, 500), default=20, show_default=True)
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @api_command
    def history(schedule_id, limit, as_json):
        """Fire times, newest first: the tasks each made, or why it was skipped."""
        fires = api_client().schedule_history(schedule_id, limit=limit)["fires"]
        if as_json:
            return print_json(fires)
        print_fires(fires)

    @schedule.command("preview")
    @click.option("--cron", required=True, help="The cron expression to try.")
    @click.option("--tz", "timezone", default="UTC", show_default=True)
    @click.option("--count", type=click.IntRange(1, 50), default=5, show_default=True)
    @api_command
    def preview(cron, timezone, count):
        """The expression in words and its next fire times, before you save it."""
        answer = api_client().preview_schedule(cron, timezone, count)
        if answer.get("description"):
            click.echo(answer["description"])
        if answer.get("seconds"):
            click.echo(answer["seconds"])
        for iso in answer["fire_times"]:
            click.echo(short_time(iso))

    @schedule.command("run")
    @click.argument("schedule_id")
    @api_command
    def run_now(schedule_id):
        """Run the schedule's spider now with its options (its cron times are unchanged)."""
        answer = api_client().run_schedule(schedule_id)
        for task_id in answer["task_ids"]:
            click.echo(task_id)

    @schedule.command("rm")
    @click.argument("schedule_id")
    @api_command
    def rm(schedule_id):
        """Delete a schedule and its history (its tasks stay)."""
        api_client().delete_schedule(schedule_id)
        click.echo(f"schedule {schedule_id} deleted")

    @schedule.command("enable")
    @click.argument("schedule_id")
    @api_command
    def enable(schedule_id):
        """Enable a schedule; it fires next at its next fire time (missed ones are not run)."""
        doc = api_client().enable_schedule(schedule_id)
        click.echo(f"schedule {doc['id']} enabled; next fire {short_time(doc['next_fire_time'])}")

    @schedule.command("disable")
    @click.argument("schedule_id")
    @api_command
    def disable(schedule_id):
        """Disable a schedule (a run in progress is not stopped)."""
        doc = api_client().disable_schedule(schedule_id)
        click.echo(f"schedule {doc['id']} disabled")
