"""`crawlfleet node label|unlabel|enable|drain|disable|slots|show|history NODE`:
control a running node, or read its history, through the API. Bare `crawlfleet node` still starts a node
(crawlfleet/cli/server.py owns that group)."""

import click

from crawlfleet.cli.client import (api_client, api_command, describe_labels, node_mode,
                                   parse_labels, print_json, print_table, seconds, when)


def summary(node):
    """`n1: online, enabled, 1/4 running, labels region=eu`."""
    slots = node.get("max_runners", "?")
    if node.get("run_slots") is not None:
        slots = f"{node['run_slots']} (set)"
    return (f"{node['id']}: {'online' if node.get('online') else 'offline'}, "
            f"{node_mode(node)}, {len(node.get('running') or [])}/{slots} running, "
            f"labels {describe_labels(node.get('labels')) or 'none'}")


def figures(samples, key):
    """`now 0.4, mean 0.31, max 1.2` of one sampled figure, or `-`."""
    values = [s[key] for s in samples if isinstance(s.get(key), (int, float))]
    if not values:
        return "-"
    return (f"now {values[-1]:g}, mean {round(sum(values) / len(values), 2):g}, "
            f"max {max(values):g}")


def answer(node, as_json):
    if as_json:
        return print_json(node)
    click.echo(summary(node))


def register(main):
    group = main.commands["node"]

    def node_command(name, **kwargs):
        """A `crawlfleet node NAME NODE ... [--json]` command: the node argument
        first, the command's own parameters (decorators below this one) after,
        and the API's errors as one line."""
        def decorate(func):
            func = api_command(func)
            func = click.option("--json", "as_json", is_flag=True, help="Print JSON.")(func)
            func = click.argument("node_id", metavar="NODE")(func)
            return group.command(name, **kwargs)(func)

        return decorate

    @node_command("show")
    def show(node_id, as_json):
        """Show one node: state, mode, run slots and labels."""
        node = api_client().node(node_id)
        if as_json:
            return print_json(node)
        click.echo(summary(node))
        click.echo(f"last heartbeat {when(node.get('heartbeat_at'))}; host "
                   f"{node.get('hostname') or '-'}; running {', '.join(node.get('running') or []) or 'nothing'}")

    @node_command("label")
    @click.argument("pairs", nargs=-1, required=True, metavar="KEY=VALUE...")
    def label(node_id, pairs, as_json):
        """Add or change labels of NODE (runs with --label KEY=VALUE go to it)."""
        answer(api_client().label_node(node_id, set_=parse_labels(pairs, "KEY=VALUE")), as_json)

    @node_command("unlabel")
    @click.argument("keys", nargs=-1, required=True, metavar="KEY...")
    def unlabel(node_id, keys, as_json):
        """Remove labels of NODE by key."""
        answer(api_client().label_node(node_id, remove=list(keys)), as_json)

    def mode_command(verb, text):
        @node_command(verb, help=text)
        def command(node_id, as_json):
            answer(api_client().set_node_mode(node_id, verb), as_json)

        return command

    mode_command("enable", "Let NODE take tasks again.")
    mode_command("drain", "NODE takes no new task; its running tasks finish (then it shows "
                          "as drained: safe to stop).")
    mode_command("disable", "NODE takes no new task until enabled; running tasks finish.")

    @node_command("slots")
    @click.argument("slots", metavar="N|default")
    def slots(node_id, slots, as_json):
        """Run N tasks at once on NODE from now on ("default": its own setting)."""
        if slots == "default":
            value = None
        else:
            try:
                value = int(slots)
            except ValueError:
                raise click.BadParameter(f"expected a number or 'default', got {slots!r}",
                                         param_hint="N") from None
        answer(api_client().set_node_slots(node_id, value), as_json)

    @node_command("history")
    @click.option("--hours", type=click.IntRange(1, 168), default=24, show_default=True,
                  help="The window: the last N hours.")
    def history(node_id, hours, as_json):
        """NODE's load, memory and busy runners (sampled once a minute) and its tasks."""
        doc = api_client().node_history(node_id, hours=hours)
        if as_json:
            return print_json(doc)
        samples, tasks = doc["samples"], doc["tasks"]
        click.echo(f"{doc['node']}, last {doc['hours']} h: {len(samples)} sample(s)"
                   + (f" from {when(samples[0]['at'])} to {when(samples[-1]['at'])}"
                      if samples else ""))
        click.echo(f"  CPU load      {figures(samples, 'load')}")
        click.echo(f"  memory %      {figures(samples, 'memory_percent')}")
        click.echo(f"  busy runners  {figures(samples, 'busy')}")
        busiest = max(tasks["per_hour"], key=lambda h: h["tasks"], default=None)
        click.echo(f"{tasks['started']} task(s) started"
                   + (", " + ", ".join(f"{n} {s}" for s, n in sorted(tasks["by_status"].items()))
                      if tasks["by_status"] else "")
                   + (f"; busiest hour {when(busiest['hour'])} with {busiest['tasks']}"
                      if busiest and busiest["tasks"] else ""))
        if tasks["recent"]:
            print_table(["TASK", "SPIDER", "STATUS", "STARTED", "DURATION"],
                        [[t["task_id"], t["spider"], t["status"], when(t.get("started_at")),
                          seconds(t.get("duration"))] for t in tasks["recent"]])
