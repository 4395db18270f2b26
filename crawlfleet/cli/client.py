"""Client verbs: talk to the JSON API (spiders, run, tasks, logs, results,
cancel, nodes), plus `token create`, which an admin runs against the store.

API URL and token come from the config (CRAWLFLEET_API_URL, CRAWLFLEET_TOKEN),
else from what a running `crawlfleet up` recorded in CRAWLFLEET_HOME.
"""

import functools
import getpass
import io
import json
import os
import socket
import sys
import time

import click

from crawlfleet.client import FOLLOW_INTERVAL, ApiClient
from crawlfleet import labels as labelling
from crawlfleet.errors import CrawlfleetError


class ApiError(click.ClickException):
    """One line on stderr, `error: <message>`, and exit status 1."""

    def show(self, file=None):
        click.echo(f"error: {self.format_message()}", err=True, file=file)


def api_command(func):
    """Turn the API's errors into one clear line instead of a traceback."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except CrawlfleetError as exc:
            raise ApiError(str(exc)) from None
        except BrokenPipeError:
            # The reader went away (`crawlfleet results T | head`): stop quietly,
            # and keep Python from complaining again when it flushes stdout at exit.
            try:
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, sys.stdout.fileno())
            except (OSError, ValueError, io.UnsupportedOperation):
                pass
            sys.exit(1)

    return wrapper


def api_client():
    from crawlfleet.cli import load_config

    return ApiClient.from_config(load_config())


def print_json(value):
    click.echo(json.dumps(value, indent=2, ensure_ascii=False, default=str))


def print_table(headers, rows):
    rows = [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(headers)]
    for row in [list(headers), *rows]:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())


def when(stamp):
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp)) if stamp else "-"


def seconds(value):
    return f"{value:.1f} s" if isinstance(value, (int, float)) else "-"


def node_of(task):
    if task.get("node_id"):
        return task["node_id"]
    return task.get("target") if task.get("target") not in (None, "any") else "-"


def summary(task):
    """`task <id> finished: 300 items, 15 pages in 4.2 s` (+ exit code and error)."""
    stats = task.get("stats") or {}
    line = (f"task {task['id']} {task['status']}: {stats.get('items', 0)} items, "
            f"{stats.get('pages', 0)} pages in {seconds(task.get('duration', 0.0))}")
    extra = []
    if task.get("exit_code") not in (None, 0):
        extra.append(f"exit code {task['exit_code']}")
    if task.get("error"):
        extra.append(task["error"])
    return line + (f" ({'; '.join(extra)})" if extra else "")


def parse_labels(pairs, what="--label"):
    """Repeated KEY=VALUE options as a labels dict, checked before any request."""
    try:
        return labelling.parse_pairs(pairs, what) or None
    except CrawlfleetError as exc:
        raise click.BadParameter(str(exc), param_hint=what) from None


def describe_labels(labels):
    return labelling.describe(labels)


def node_mode(node):
    mode = node.get("mode") or "enabled"
    return "drained" if node.get("drained") else mode


def parse_pairs(pairs, what):
    out = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"expected NAME=VALUE, got {pair!r}", param_hint=what)
        out[name] = value
    return out


def register(main):
    @main.command()
    @click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
    @api_command
    def spiders(as_json):
        """List the spiders that can be run."""
        items = api_client().spiders()
        if as_json:
            return print_json(items)
        print_table(["NAME", "PROJECT", "KIND", "VERSION"],
                    [[s["name"], s.get("project"), s.get("kind"), s.get("version")]
                     for s in items])

    @main.command()
    @api_command
    def rescan():
        """Scan the spider folders again and register what changed."""
        report = api_client().rescan()
        for project in report.get("projects", []):
            click.echo(f"{project['project']}: version {project['version']}, "
                       f"spiders {', '.join(project['spiders']) or '-'}")
        for error in report.get("errors", []):
            click.echo(f"skipped {error['path']}: {error['error']}", err=True)

    @main.command()
    @click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
    @api_command
    def nodes(as_json):
        """List the nodes and whether they are online."""
        items = api_client().nodes()
        if as_json:
            return print_json(items)
        print_table(["ID", "HOST", "STATE", "RUNNING", "MODE", "LABELS", "LAST HEARTBEAT"],
                    [[n["id"], n.get("hostname"), "online" if n.get("online") else "offline",
                      f"{len(n.get('running') or [])}/{n.get('max_runners', '?')}", node_mode(n),
                      describe_labels(n.get("labels")) or "-",
                      when(n.get("heartbeat_at"))] for n in items])

    @main.command()
    @click.argument("spider")
    @click.option("-a", "args", multiple=True, metavar="NAME=VALUE", help="Spider argument.")
    @click.option("-s", "settings", multiple=True, metavar="NAME=VALUE",
                  help="Scrapy setting for this run.")
    @click.option("--node", "node_ids", multiple=True, metavar="ID",
                  help="Run on this node (repeat for several). Default: any node.")
    @click.option("--all-nodes", is_flag=True, help="Run one task on every online node.")
    @click.option("--label", "labels", multiple=True, metavar="KEY=VALUE",
                  help="Only nodes carrying this label (repeat: all must match).")
    @click.option("--timeout", type=click.FloatRange(min=0), help="Time limit in seconds.")
    @click.option("--priority", type=click.IntRange(0, 9), help="0 (default) to 9 (first).")
    @click.option("--workers", type=click.IntRange(1, 64),
                  help="One crawl of N worker tasks on up to N nodes, sharing one frontier "
                       "in Redis (needs CRAWLFLEET_FRONTIER_URL or a Redis broker).")
    @click.option("--persist", is_flag=True,
                  help="Keep the crawl's frontier when it stops, so `crawlfleet resume` "
                       "continues it.")
    @click.option("--wait", is_flag=True, help="Follow the log until the task ends.")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @api_command
    def run(spider, args, settings, node_ids, all_nodes, labels, timeout, priority, workers,
            persist, wait, as_json):
        """Run SPIDER and print the task id(s).

        With --workers or --persist, print the crawl's id instead (its tasks
        with `crawlfleet crawl show`). With --wait, print the log as it comes
        and end with the task's result; the exit status is 0 only if every
        task (or the crawl) finished.
        """
        if node_ids and all_nodes:
            raise click.UsageError("--node and --all-nodes exclude each other")
        if all_nodes and (workers or persist):
            raise click.UsageError("--all-nodes runs one task per node; use --workers N instead")
        if node_ids and labels:
            raise click.UsageError("--node and --label exclude each other (labels choose "
                                   "among any nodes, or with --all-nodes among all)")
        nodes = "all" if all_nodes else (list(node_ids) if node_ids else "any")
        client = api_client()
        answer = client.run(spider, args=parse_pairs(args, "-a"),
                            settings=parse_pairs(settings, "-s"), nodes=nodes,
                            timeout=timeout, priority=priority, workers=workers,
                            persist=persist, labels=parse_labels(labels))
        if answer.get("crawl_id"):
            from crawlfleet.cli.crawls import wait_crawl

            if as_json and not wait:
                return print_json(answer)
            click.echo(answer["crawl_id"])
            if wait:
                final = wait_crawl(client, answer["crawl_id"])
                if as_json:
                    print_json(final)
                if final["status"] != "finished":
                    sys.exit(1)
            return
        task_ids = answer["task_ids"]
        if not wait:
            if as_json:
                return print_json(answer)
            for task_id in task_ids:
                click.echo(task_id)
            return
        try:
            if as_json:
                final = [client.wait(t) for t in task_ids]
                print_json(final[0] if len(final) == 1 else final)
            else:
                for task_id in task_ids:
                    click.echo(f"task {task_id} pending; following its log "
                               "(Ctrl-C stops following, not the task)", err=True)
                final = follow(client, task_ids)
        except KeyboardInterrupt:
            click.echo(f"\nstopped waiting; the task(s) keep running. Follow again with: "
                       f"{' ; '.join(f'crawlfleet logs -f {t}' for t in task_ids)}", err=True)
            sys.exit(130)
        if not all(t["status"] == "finished" for t in final):
            sys.exit(1)

    @main.group(invoke_without_command=True)
    @click.option("--status", help="Only these statuses (comma-separated).")
    @click.option("--spider", help="Only this spider's tasks.")
    @click.option("--node", help="Only tasks run by this node.")
    @click.option("--trigger", help="Only tasks asked for by this (ui, api, schedule, "
                  "scrapyd, retry, ...).")
    @click.option("--limit", type=click.IntRange(1, 500), default=20, show_default=True)
    @click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
    @click.pass_context
    @api_command
    def tasks(ctx, status, spider, node, trigger, limit, as_json):
        """List tasks, newest first; or act on many (tasks cancel|retry|delete ID...)."""
        if ctx.invoked_subcommand is not None:
            return
        items = api_client().tasks(status=status, spider=spider, node=node, limit=limit,
                                   trigger=trigger)["tasks"]
        if as_json:
            return print_json(items)
        print_table(["ID", "SPIDER", "STATUS", "TRIGGER", "NODE", "ITEMS", "STARTED",
                     "DURATION"],
                    [[t["id"], t["spider"], "cancelling" if t.get("cancelling") else t["status"],
                      t.get("trigger") or "-", node_of(t),
                      (t.get("stats") or {}).get("items", 0), when(t.get("started_at")),
                      seconds(t.get("duration"))] for t in items])

    @main.command()
    @click.argument("task_id")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @api_command
    def task(task_id, as_json):
        """Show one task."""
        doc = api_client().task(task_id)
        if as_json:
            return print_json(doc)
        stats = doc.get("stats") or {}
        fields = [
            ("id", doc["id"]), ("spider", doc["spider"]), ("project", doc.get("project")),
            ("version", doc.get("version")),
            ("status", doc["status"] + (" (cancelling)" if doc.get("cancelling") else "")),
            ("node", node_of(doc)), ("trigger", doc.get("trigger")),
            ("args", " ".join(f"{k}={v}" for k, v in (doc.get("args") or {}).items()) or "-"),
            ("settings",
             " ".join(f"{k}={v}" for k, v in (doc.get("settings") or {}).items()) or "-"),
            ("created", when(doc.get("created_at"))), ("started", when(doc.get("started_at"))),
            ("finished", when(doc.get("finished_at"))), ("duration", seconds(doc.get("duration"))),
            ("items", stats.get("items", 0)), ("pages", stats.get("pages", 0)),
            ("errors", stats.get("errors", 0)), ("log lines", doc.get("log_lines", 0)),
            ("exit code", doc.get("exit_code")), ("error", doc.get("error")),
        ]
        for name, value in fields:
            click.echo(f"{name + ':':<11} {'-' if value is None else value}")

    @main.command()
    @click.argument("task_id")
    @click.option("-f", "--follow", is_flag=True, help="Keep printing until the task ends.")
    @api_command
    def logs(task_id, follow):
        """Print a task's log."""
        client = api_client()
        if not follow:
            out = click.get_binary_stream("stdout")
            for chunk in client.log_text(task_id):
                out.write(chunk)
            out.flush()
            return
        try:
            for line in client.follow_log(task_id):
                click.echo(line)
        except KeyboardInterrupt:
            click.echo(f"\nstopped following; the task keeps running "
                       f"(crawlfleet logs -f {task_id} to follow again)", err=True)
            sys.exit(130)

    @main.command()
    @click.argument("task_id")
    @click.option("--format", "fmt", type=click.Choice(["jsonl", "csv", "json", "xlsx"]),
                  default="jsonl", show_default=True)
    @api_command
    def results(task_id, fmt):
        """Write every item a task's crawl scraped to stdout (its final attempt's)."""
        client = api_client()
        out = click.get_binary_stream("stdout")
        if fmt == "json":
            # A JSON array, written item by item so memory stays flat.
            out.write(b"[")
            for n, item in enumerate(client.iter_results(task_id)):
                out.write((",\n" if n else "\n").encode()
                          + json.dumps(item, ensure_ascii=False).encode())
            out.write(b"\n]\n")
        else:
            for chunk in client.export(task_id, fmt):
                out.write(chunk)
        out.flush()

    @main.command()
    @click.argument("task_id")
    @api_command
    def cancel(task_id):
        """Cancel a pending or running task."""
        doc = api_client().cancel(task_id)
        if doc["status"] == "cancelled":
            click.echo(f"task {doc['id']} cancelled")
        else:
            click.echo(f"task {doc['id']} is {doc['status']} on node {node_of(doc)}; "
                       "cancel requested, it will stop shortly")

    @main.group()
    def token():
        """API tokens (admin: talks to the store directly)."""

    @token.command("create")
    @click.option("--name", default=None, help="Who or what the token is for.")
    @click.option("--role", type=click.Choice(["admin", "operator", "viewer"]),
                  default="admin", show_default=True)
    def token_create(name, role):
        """Make an API token and print it (it is shown only this once)."""
        import pymongo.errors

        from crawlfleet.cli import load_config
        from crawlfleet.store import Store
        from crawlfleet.tokens import create_token

        config = load_config()
        store = Store(config)
        try:
            made = create_token(store, name or f"{getpass.getuser()}@{socket.gethostname()}",
                                role)
        except pymongo.errors.PyMongoError as exc:
            raise ApiError(f"cannot reach the store at {config.mongo_uri}: {exc}") from None
        finally:
            store.close()
        click.echo(made)


def follow(client, task_ids):
    """Print the logs of `task_ids` as they come, then one summary line each;
    returns the final task documents. With several tasks, lines are prefixed
    with their task id."""
    offsets = dict.fromkeys(task_ids, 0)
    final = {}
    while len(final) < len(task_ids):
        progressed = False
        for task_id in task_ids:
            if task_id in final:
                continue
            page = client.log(task_id, offsets[task_id])
            offsets[task_id] = page["next_offset"]
            for line in page["lines"]:
                click.echo(f"[{task_id}] {line}" if len(task_ids) > 1 else line)
            if page["lines"]:
                progressed = True
            elif page["finished"]:
                final[task_id] = client.task(task_id)
                click.echo(summary(final[task_id]))
        if not progressed and len(final) < len(task_ids):
            time.sleep(FOLLOW_INTERVAL)
    return [final[t] for t in task_ids]
