"""`crawlfleet alerts`: alert channels, rules and history, through the API
(web/alerts_api.py; an admin's token).

    crawlfleet alerts channels                       list (URLs redacted)
    crawlfleet alerts add-channel NAME [URL]         an Apprise URL (asked without echo if left out)
    crawlfleet alerts test CHANNEL                   send a test notification
    crawlfleet alerts enable|disable CHANNEL
    crawlfleet alerts rm-channel CHANNEL
    crawlfleet alerts rules
    crawlfleet alerts add-rule --channel ID [--spider S | --schedule ID] [--on error,timeout]
                               [--items-below N] [--duration-above SECONDS]
    crawlfleet alerts add-node-rule --channel ID --metric cpu|memory|disk --above PCT [--minutes N]
    crawlfleet alerts rm-rule RULE
    crawlfleet alerts history [--limit N]
"""

from urllib.parse import quote

import click

from crawlfleet.cli.client import api_client, api_command, print_json, print_table, when

BASE = "/alerts"


def split(value):
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def register(main):
    @main.group()
    def alerts():
        """Alert channels (Apprise URLs), rules and the history of sent alerts (admins)."""

    @alerts.command("channels")
    @click.option("--json", "as_json", is_flag=True, help="Print the server's JSON answer.")
    @api_command
    def channels(as_json):
        """List the channels; their URLs show redacted."""
        result = api_client().get(f"{BASE}/channels")
        if as_json:
            return print_json(result)
        print_table(["ID", "NAME", "SERVICE", "URL", "ENABLED", "LAST TEST"],
                    [[c["id"], c["name"], c["service"], c["url"], "yes" if c["enabled"] else "no",
                      (("ok " if c["last_test"]["ok"] else "failed ") + when(c["last_test"]["at"]))
                      if c.get("last_test") else "-"] for c in result["channels"]])

    @alerts.command("add-channel")
    @click.argument("name")
    @click.argument("url", required=False)
    @api_command
    def add_channel(name, url):
        """Add channel NAME sending to an Apprise URL (json://, mailtos://, slack://, ...)."""
        if url is None:
            url = click.prompt(f"Apprise URL of {name}", hide_input=True, err=True)
        made = api_client().post(f"{BASE}/channels", {"name": name, "url": url})
        click.echo(f"channel {made['id']}: {made['name']} ({made['service']}) {made['url']}")

    @alerts.command("test")
    @click.argument("channel")
    @api_command
    def test(channel):
        """Send a test notification to CHANNEL (its id) and say how it went."""
        result = api_client().post(f"{BASE}/channels/{quote(channel, safe='')}/test")
        click.echo(result["message"])

    def switch(channel, enabled):
        done = api_client().request("PATCH", f"{BASE}/channels/{quote(channel, safe='')}",
                                    json={"enabled": enabled}).json()
        click.echo(f"channel {done['name']} {'enabled' if done['enabled'] else 'disabled'}")

    @alerts.command("enable")
    @click.argument("channel")
    @api_command
    def enable(channel):
        """Let CHANNEL send alerts again."""
        switch(channel, True)

    @alerts.command("disable")
    @click.argument("channel")
    @api_command
    def disable(channel):
        """Stop CHANNEL sending alerts (its rules stay)."""
        switch(channel, False)

    @alerts.command("rm-channel")
    @click.argument("channel")
    @api_command
    def rm_channel(channel):
        """Delete CHANNEL (refused while a rule sends to it)."""
        api_client().request("DELETE", f"{BASE}/channels/{quote(channel, safe='')}")
        click.echo(f"deleted channel {channel}")

    @alerts.command("rules")
    @click.option("--json", "as_json", is_flag=True, help="Print the server's JSON answer.")
    @api_command
    def rules(as_json):
        """List the alert rules."""
        result = api_client().get(f"{BASE}/rules")
        if as_json:
            return print_json(result)
        print_table(["ID", "KIND", "WHEN", "CHANNELS", "ENABLED"],
                    [[r["id"], r["kind"], r["summary"], ",".join(r["channels"]),
                      "yes" if r["enabled"] else "no"] for r in result["rules"]])

    @alerts.command("add-rule")
    @click.option("--channel", "channels_", multiple=True, required=True,
                  help="Channel id to send to (repeat for more).")
    @click.option("--spider", help="Only this spider's tasks.")
    @click.option("--schedule", help="Only this schedule's tasks.")
    @click.option("--on", "on", default="",
                  help="Outcomes, comma-separated: error, timeout, abnormal, finished, zero_items.")
    @click.option("--items-below", type=int, help="Finished with fewer items than this.")
    @click.option("--duration-above", type=float, help="Ran longer than this many seconds.")
    @api_command
    def add_rule(channels_, spider, schedule, on, items_below, duration_above):
        """Alert on task outcomes of every spider, one --spider or one --schedule."""
        made = api_client().post(f"{BASE}/rules", {
            "kind": "task", "channels": list(channels_), "spider": spider,
            "schedule_id": schedule, "on": split(on), "items_below": items_below,
            "duration_above": duration_above})
        click.echo(f"rule {made['id']}: {made['summary']}")

    @alerts.command("add-node-rule")
    @click.option("--channel", "channels_", multiple=True, required=True,
                  help="Channel id to send to (repeat for more).")
    @click.option("--metric", type=click.Choice(["cpu", "memory", "disk"]), required=True)
    @click.option("--above", type=float, required=True, help="Percent.")
    @click.option("--minutes", type=float, default=5.0, show_default=True,
                  help="How long it must stay above.")
    @click.option("--node", help="Only this node (default: any).")
    @api_command
    def add_node_rule(channels_, metric, above, minutes, node):
        """Alert when a node's CPU or memory stays above a percentage."""
        made = api_client().post(f"{BASE}/rules", {
            "kind": "node", "channels": list(channels_), "metric": metric, "above": above,
            "minutes": minutes, "node": node})
        click.echo(f"rule {made['id']}: {made['summary']}")

    @alerts.command("rm-rule")
    @click.argument("rule")
    @api_command
    def rm_rule(rule):
        """Delete an alert rule."""
        api_client().request("DELETE", f"{BASE}/rules/{quote(rule, safe='')}")
        click.echo(f"deleted rule {rule}")

    @alerts.command("history")
    @click.option("--limit", type=int, default=20, show_default=True)
    @click.option("--json", "as_json", is_flag=True, help="Print the server's JSON answer.")
    @api_command
    def history(limit, as_json):
        """The alerts sent, newest first, with their result."""
        result = api_client().get(f"{BASE}/history", limit=limit)
        if as_json:
            return print_json(result)
        print_table(["WHEN", "KIND", "SUBJECT", "EVENTS", "CHANNEL", "RESULT"],
                    [[when(h["at"]), h["kind"], h["subject"], ",".join(h["events"]),
                      h["channel"], "sent" if h["ok"] else f"failed: {h['error']}"]
                     for h in result["alerts"]])
