"""`crawlfleet tasks cancel|retry|delete ID...`: one action on many tasks at
once, through ``POST /api/v1/tasks/bulk``. Each task gets a line; a refused
one says why (on stderr), and any refusal makes the exit status 1."""

import sys

import click

from crawlfleet.cli.client import api_client, api_command, print_json

SAID = {"cancel": "cancelled", "retry": "retried", "delete": "deleted"}
# each action's command help (`crawlfleet tasks ACTION --help`)
HELP = {
    "cancel": "Cancel pending or running tasks (a running one stops through its node).",
    "retry": "Run ended tasks again (same spider, arguments, settings and target).",
    "delete": "Delete ended tasks and their logs (admin); their items stay in the results.",
}


def outcome(action, result):
    """One task's line: `ID cancelled`, `ID cancelling (...)`, `ID retried as NEW`."""
    if action == "cancel" and result.get("cancelling"):
        return f"{result['id']} cancelling (its node stops it shortly)"
    if action == "retry":
        return f"{result['id']} retried as {result['new_task_id']}"
    return f"{result['id']} {SAID[action]}"


def act(action, task_ids, as_json):
    answer = api_client().bulk(action, task_ids)
    if as_json:
        print_json(answer)
    else:
        for result in answer["results"]:
            if result["ok"]:
                click.echo(outcome(action, result))
            else:
                click.echo(f"error: {result['id']}: {result['error']}", err=True)
    if answer["failed"]:
        sys.exit(1)


def action_command(action):
    """`crawlfleet tasks ACTION ID... [--json]`: the three actions take the same
    arguments and differ only in what they ask the API for."""

    @click.argument("task_ids", nargs=-1, required=True)
    @click.option("--json", "as_json", is_flag=True, help="Print the API's answer.")
    @api_command
    def command(task_ids, as_json):
        act(action, task_ids, as_json)

    return click.command(action, help=HELP[action])(command)


def register(main):
    tasks = main.commands["tasks"]
    for action in HELP:
        tasks.add_command(action_command(action))
