"""Each ledger transition happens from the states it names, and only from them."""

import pytest

from crawlfleet import ledger
from crawlfleet.models import TaskStatus, new_task, next_attempt

SPIDER = {"_id": "s", "project": "p", "version": "v1", "kind": "scrapy",
          "results_collection": "results_s"}


def make(store, status=TaskStatus.PENDING, **fields):
    """A task in `status`, written straight to the store as a fixture would."""
    doc = new_task(SPIDER, target=fields.pop("target", "any"))
    ledger.create(store, [doc])
    if status is not TaskStatus.PENDING:
        store.tasks.update_one({"_id": doc["_id"]},
                               {"$set": {"status": TaskStatus(status).value, **fields}})
    elif fields:
        store.tasks.update_one({"_id": doc["_id"]}, {"$set": fields})
    return doc["_id"]


def status(store, task_id):
    return store.tasks.find_one({"_id": task_id})["status"]


def test_statuses_carry_their_sets():
    """ACTIVE and FINAL split the statuses; failures are final and retryable."""
    assert TaskStatus.ACTIVE | TaskStatus.FINAL == set(TaskStatus)
    assert not TaskStatus.ACTIVE & TaskStatus.FINAL
    assert TaskStatus.FAILED <= TaskStatus.FINAL
    assert TaskStatus.RETRYABLE == {TaskStatus.ERROR, TaskStatus.TIMEOUT, TaskStatus.ABNORMAL}
    assert all(s.is_final for s in TaskStatus.FINAL)


def test_create_refuses_a_task_that_is_not_pending(store):
    doc = dict(new_task(SPIDER, target="any"), status="running")
    with pytest.raises(ValueError):
        ledger.create(store, [doc])
    assert store.tasks.find_one({"_id": doc["_id"]}) is None


def test_claim_once_and_only_for_its_target(store):
    """A pending task is claimed by one node session; a second claim, or a node
    the task is not meant for, gets nothing."""
    task_id = make(store)
    mine = make(store, target="n2")
    assert ledger.claim(store, mine, "n1", "s1") is None
    claimed = ledger.claim(store, task_id, "n1", "s1")
    assert claimed["status"] == "running" and claimed["node_id"] == "n1"
    assert claimed["session"] == "s1" and claimed["started_at"]
    assert ledger.claim(store, task_id, "n2", "s2") is None
    assert store.tasks.find_one({"_id": task_id})["node_id"] == "n1"


def test_start_and_finish_only_by_the_claiming_session(store):
    task_id = make(store)
    ledger.claim(store, task_id, "n1", "s1")
    assert not ledger.start(store, task_id, "other", pid=1, hostname="h")
    assert ledger.start(store, task_id, "s1", pid=42, hostname="h")
    assert store.tasks.find_one({"_id": task_id})["pid"] == 42
    assert not ledger.finish(store, task_id, "other", TaskStatus.FINISHED)
    assert status(store, task_id) == "running"
    assert ledger.finish(store, task_id, "s1", TaskStatus.ERROR, error="exit code 1",
                         exit_code=1, log_lines=7)
    doc = store.tasks.find_one({"_id": task_id})
    assert (doc["status"], doc["exit_code"], doc["error"], doc["log_lines"]) == (
        "error", 1, "exit code 1", 7)
    assert doc["finished_at"] >= doc["started_at"]
    # final is final: no second finish, no abnormal, no cancel
    assert not ledger.finish(store, task_id, "s1", TaskStatus.FINISHED)
    assert not ledger.mark_abnormal(store, task_id, "s1", "late")
    assert not ledger.cancel_pending(store, task_id)
    assert status(store, task_id) == "error"


def test_finish_needs_a_final_status(store):
    task_id = make(store)
    ledger.claim(store, task_id, "n1", "s1")
    with pytest.raises(ValueError):
        ledger.finish(store, task_id, "s1", TaskStatus.PENDING)
    assert status(store, task_id) == "running"


def test_mark_abnormal_only_the_silent_session(store):
    """The reconciler gives up the session it judged, not a newer claim."""
    task_id = make(store)
    ledger.claim(store, task_id, "n1", "s1")
    assert not ledger.mark_abnormal(store, task_id, "s0", "node n1 stopped heartbeating")
    assert ledger.mark_abnormal(store, task_id, "s1", "node n1 stopped heartbeating")
    doc = store.tasks.find_one({"_id": task_id})
    assert doc["status"] == "abnormal" and doc["error"] == "node n1 stopped heartbeating"


def test_sweep_node_restart_takes_only_older_sessions_of_that_node(store):
    old = make(store, TaskStatus.RUNNING, node_id="n1", session="s0")
    current = make(store, TaskStatus.RUNNING, node_id="n1", session="s1")
    other = make(store, TaskStatus.RUNNING, node_id="n2", session="s0")
    waiting = make(store)
    assert ledger.sweep_node_restart(store, "n1", "s1") == 1
    assert [status(store, t) for t in (old, current, other, waiting)] == [
        "abnormal", "running", "running", "pending"]


def test_cancel_pending_and_request_cancel(store):
    pending = make(store)
    running = make(store, TaskStatus.RUNNING, node_id="n1", session="s1")
    assert not ledger.cancel_pending(store, running)
    assert ledger.cancel_pending(store, pending)
    doc = store.tasks.find_one({"_id": pending})
    assert doc["status"] == "cancelled" and doc["cancel_requested"] and doc["finished_at"]
    assert not ledger.request_cancel(store, pending)  # already final
    assert ledger.request_cancel(store, running)
    doc = store.tasks.find_one({"_id": running})
    assert doc["status"] == "running" and doc["cancel_requested"]


def test_mark_published_only_while_pending(store):
    task_id = make(store)
    assert ledger.mark_published(store, task_id, 123.0)
    doc = store.tasks.find_one({"_id": task_id})
    assert doc["published_at"] == 123.0 and doc["publish_count"] == 1
    ledger.claim(store, task_id, "n1", "s1")
    assert not ledger.mark_published(store, task_id, 456.0)


def test_add_attempt_once_then_supersede(store):
    """Two masters making the same retry write one attempt; the failed task
    then names it, once."""
    task_id = make(store, TaskStatus.ERROR)
    failed = store.tasks.find_one({"_id": task_id})
    attempt = next_attempt(failed, 0)
    assert ledger.add_attempt(store, attempt)
    assert not ledger.add_attempt(store, next_attempt(failed, 0))
    assert store.tasks.count_documents({"retry_of": task_id}) == 1
    assert ledger.supersede(store, task_id, attempt["_id"])
    assert not ledger.supersede(store, task_id, "someone-else")
    doc = store.tasks.find_one({"_id": task_id})
    assert doc["retried_by"] == attempt["_id"] and "retry_pending" not in doc


def test_supersede_waits_for_a_final_status(store):
    task_id = make(store, TaskStatus.RUNNING, node_id="n1", session="s1")
    assert not ledger.supersede(store, task_id, None)
    assert store.tasks.find_one({"_id": task_id})["retry_pending"] is True


def test_every_transition_is_declared():
    """The table in the module's docstring and TRANSITIONS name the same operations."""
    for name, (sources, targets) in ledger.TRANSITIONS.items():
        assert callable(getattr(ledger, name)), name
        assert targets, name
        assert name in ledger.__doc__
