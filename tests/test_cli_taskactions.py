"""`crawlfleet tasks cancel|retry|delete ID...` (crawlfleet/cli/taskactions.py)
and `tasks --trigger`, against the real app served in a thread."""

import json

from test_cli_client import api, cli  # noqa: F401  (the served app, the runner)

from crawlfleet.models import new_task, now


def add(store, status, **fields):
    spider = store.spiders.find_one({"_id": "books"})
    task = new_task(spider, target="any")
    task.update(status=status, **fields)
    if status not in ("pending", "running"):
        task["finished_at"] = now()
    store.tasks.insert_one(task)
    return task["_id"]


def test_tasks_cancel_retry_delete_many(api, store):  # noqa: F811
    """Each task gets a line; a refused one says why on stderr and exits 1."""
    pending, running = add(store, "pending"), add(store, "running", node_id="n1")
    result = cli("tasks", "cancel", pending, running)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        f"{pending} cancelled", f"{running} cancelling (its node stops it shortly)"]
    listed = cli("tasks", "--status", "running").output.splitlines()
    assert listed[1].split()[:3] == [running, "books", "cancelling"]
    assert "status:     running (cancelling)" in cli("task", running).output

    result = cli("tasks", "retry", pending, running)
    assert result.exit_code == 1
    new_id = store.tasks.find_one({"retry_of": pending})["_id"]
    assert f"{pending} retried as {new_id}" in result.output
    assert f"error: {running}: task {running} is running" in result.output

    answer = json.loads(cli("tasks", "delete", pending, "--json").output)
    assert answer["ok"] == 1 and store.tasks.find_one({"_id": pending}) is None
    assert cli("tasks", "delete").exit_code == 2  # at least one id


def test_tasks_list_by_trigger(api, store):  # noqa: F811
    scheduled = add(store, "finished", trigger="schedule")
    add(store, "finished", trigger="api")
    table = cli("tasks", "--trigger", "schedule").output.splitlines()
    assert table[0].split()[:4] == ["ID", "SPIDER", "STATUS", "TRIGGER"]
    assert [line.split()[0] for line in table[1:]] == [scheduled]
