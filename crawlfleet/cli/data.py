"""Client verbs of scraped data: a spider's results settings (`spider set`),
data sources (`datasource ...`), and removing results (`results-delete`,
`results-drop`). Each is one call of the JSON API (web/results_api.py)."""

import json

import click

from crawlfleet.cli.client import api_client, api_command, print_json, print_table
from crawlfleet.client import _segment


def register(main):
    @main.group()
    def spider():
        """A spider's results settings."""

    @spider.command("set")
    @click.argument("name")
    @click.option("--dedup-key", "dedup_keys", multiple=True, metavar="FIELD",
                  help="Deduplicate items by this field (repeat for a compound key).")
    @click.option("--dedup-mode", type=click.Choice(["overwrite", "ignore"]),
                  help="overwrite: the newest copy replaces the stored one; ignore: the first stays.")
    @click.option("--no-dedup", is_flag=True, help="Keep every item (drops the unique index).")
    @click.option("--keep-newest", is_flag=True,
                  help="If the collection holds duplicates already, delete all but the newest of each.")
    @click.option("--keep-partial/--drop-partial", default=None,
                  help="Keep the items of attempts a retry replaced (marked) or remove them.")
    @click.option("--datasource", "sources", multiple=True, metavar="NAME",
                  help="Also deliver items to this data source (repeat; '' for none).")
    @click.option("--feeds", metavar="JSON", help="Scrapy FEEDS setting, as JSON ('' for none).")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @api_command
    def spider_set(name, dedup_keys, dedup_mode, no_dedup, keep_newest, keep_partial, sources,
                   feeds, as_json):
        """Change how NAME's items are stored: dedup, attempts, data sources, feeds."""
        body = {}
        if no_dedup:
            body["dedup_keys"] = []
        elif dedup_keys:
            body["dedup_keys"] = list(dedup_keys)
        if dedup_mode:
            body["dedup_mode"] = dedup_mode
        if keep_newest:
            body["keep_newest"] = True
        if keep_partial is not None:
            body["keep_partial_attempts"] = keep_partial
        if sources:
            body["datasources"] = [s for s in sources if s]
        if feeds is not None:
            try:
                body["feeds"] = json.loads(feeds) if feeds.strip() else None
            except ValueError as exc:
                raise click.BadParameter(f"not JSON: {exc}", param_hint="--feeds") from None
        if not body:
            raise click.UsageError("nothing to change: give --dedup-key, --no-dedup, "
                                   "--keep-partial, --datasource or --feeds")
        doc = api_client().request("PATCH", f"/spiders/{_segment(name)}", json=body).json()
        if as_json:
            print_json(doc)
            return
        settings = doc["results_settings"]
        dedup = settings["dedup"]
        click.echo(f"{name}: dedup "
                   + (f"on {', '.join(dedup['keys'])} ({dedup['mode']})" if dedup else "off")
                   + f"; partial attempts {'kept' if settings['keep_partial_attempts'] else 'removed'}"
                   + f"; data sources {', '.join(settings['datasources']) or 'none'}")
        if doc.get("duplicates_removed"):
            click.echo(f"{doc['duplicates_removed']} older duplicates removed")

    @main.group()
    def datasource():
        """Named data sources (PostgreSQL, MySQL/MariaDB) items are delivered to."""

    @datasource.command("list")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @api_command
    def datasource_list(as_json):
        """List data sources (never their passwords)."""
        docs = api_client().get("/datasources")["datasources"]
        if as_json:
            print_json(docs)
            return
        print_table(["NAME", "KIND", "SERVER", "DATABASE", "USER", "PASSWORD"],
                    [[d["name"], d["kind"], f"{d['host']}:{d['port']}", d["database"], d["user"],
                      "set" if d["has_password"] else "none"] for d in docs])

    @datasource.command("add")
    @click.argument("name")
    @click.option("--kind", type=click.Choice(["postgresql", "mysql", "mariadb"]), required=True)
    @click.option("--host", default="127.0.0.1", show_default=True)
    @click.option("--port", type=int, help="Default: 5432 or 3306.")
    @click.option("--database", required=True)
    @click.option("--user", required=True)
    @click.option("--password", envvar="CRAWLFLEET_DS_PASSWORD",
                  help="The password (or CRAWLFLEET_DS_PASSWORD); stored encrypted, never shown.")
    @click.option("--update", is_flag=True, help="Change an existing source.")
    @api_command
    def datasource_add(name, kind, host, port, database, user, password, update):
        """Add (or with --update change) data source NAME (admin)."""
        body = {"kind": kind, "host": host, "database": database, "user": user}
        if port:
            body["port"] = port
        if password is not None:
            body["password"] = password
        client = api_client()
        if update:
            doc = client.request("PATCH", f"/datasources/{_segment(name)}", json=body).json()
        else:
            doc = client.post("/datasources", {"name": name, **body})
        click.echo(f"data source {doc['name']}: {doc['kind']} {doc['host']}:{doc['port']}/"
                   f"{doc['database']} as {doc['user']}"
                   f" (password {'set' if doc['has_password'] else 'none'})")

    @datasource.command("test")
    @click.argument("name")
    @api_command
    def datasource_test(name):
        """Connect to data source NAME and run SELECT 1."""
        out = api_client().post(f"/datasources/{_segment(name)}/test")
        if not out["ok"]:
            raise click.ClickException(f"data source {name}: {out['error']}")
        click.echo(f"data source {name}: connected")

    @datasource.command("remove")
    @click.argument("name")
    @api_command
    def datasource_remove(name):
        """Delete data source NAME (spiders using it stop delivering to it)."""
        out = api_client().request("DELETE", f"/datasources/{_segment(name)}").json()
        click.echo(f"data source {name} deleted"
                   + (f"; was used by {', '.join(out['detached_from'])}"
                      if out["detached_from"] else ""))

    @main.command("results-delete")
    @click.argument("task_id")
    @click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
    @api_command
    def results_delete(task_id, yes):
        """Delete the items a task's crawl stored (admin)."""
        if not yes:
            click.confirm(f"Delete every item of task {task_id}'s crawl?", abort=True)
        out = api_client().request("DELETE", f"/tasks/{_segment(task_id)}/results").json()
        click.echo(f"{out['removed']} items of task {task_id} deleted" + in_sources(out))

    @main.command("results-drop")
    @click.argument("collection")
    @click.option("--confirm", "confirm", metavar="COLLECTION",
                  help="The collection's name again (asked for when not given).")
    @api_command
    def results_drop(collection, confirm):
        """Drop a whole results collection (admin)."""
        if confirm is None:
            confirm = click.prompt(f"Type {collection} to drop it")
        out = api_client().request("DELETE", f"/results/{_segment(collection)}",
                                   params={"confirm": confirm}).json()
        click.echo(f"results collection {collection} dropped ({out['rows']} rows)"
                   + in_sources(out))


def in_sources(out) -> str:
    """What a removal did in the SQL data sources (older servers do not say)."""
    sources = out.get("data_sources") or {}
    return "".join(f"; {rows} rows in data source {name}" for name, rows in sources.items())
