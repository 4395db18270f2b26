"""Task actions (master/taskactions.py, web/tasks_api.py, the list's bulk form in
web/tasks_ui.py), the `cancelling` state, the trigger filter, and the
dashboard's success rate, through Flask's test client against a real store
and the embedded broker."""

import re

import pytest

from crawlfleet import ledger, users
from crawlfleet.models import new_task, now
from web import create_app

PASSWORD = "correct horse battery"


def fake_spider(name="books"):
    return {"_id": name, "project": name, "version": "v1", "kind": "scrapy",
            "results_collection": f"results_{name}"}


def add(store, status, **fields):
    """A task in `status`, written straight to the ledger (as a node would leave it)."""
    task = new_task(fake_spider(), target="any")
    task.update(status=status, **fields)
    if status not in ("pending", "running"):
        task.setdefault("finished_at", now())
    store.tasks.insert_one(task)
    return task["_id"]


@pytest.fixture
def spider(store):
    store.spiders.insert_one(fake_spider())


def bulk(client, headers, action, ids):
    return client.post("/api/v1/tasks/bulk", json={"action": action, "ids": ids},
                       headers=headers)


# -- the API ------------------------------------------------------------------------

def test_bulk_cancel_answers_each_task(client, auth, store, spider):
    """Pending tasks are cancelled at once, running ones become cancelling, ended
    and unknown ones are refused with a reason, and the rest still happen."""
    pending, running = add(store, "pending"), add(store, "running", node_id="n1")
    done = add(store, "finished")
    response = bulk(client, auth.operator, "cancel", [pending, running, done, "nope", pending])
    assert response.status_code == 200
    body = response.get_json()
    by_id = {r["id"]: r for r in body["results"]}
    assert len(body["results"]) == 4 and body["ok"] == 2 and body["failed"] == 2
    assert by_id[pending] == {"id": pending, "ok": True, "status": "cancelled",
                              "cancelling": False}
    assert by_id[running]["ok"] and by_id[running]["cancelling"] is True
    assert "already finished" in by_id[done]["error"] and not by_id["nope"]["ok"]
    shown = client.get(f"/api/v1/tasks/{running}", headers=auth.viewer).get_json()
    assert shown["status"] == "running" and shown["cancelling"] is True
    assert shown["cancel_requested_at"] > 0


def test_bulk_retry_runs_ended_tasks_again_and_refuses_active_ones(client, auth, store, spider):
    failed = add(store, "error", args={"page": "2"})
    running = add(store, "running", node_id="n1")
    body = bulk(client, auth.operator, "retry", [failed, running]).get_json()
    ok, refused = body["results"]
    assert ok["ok"] and not refused["ok"] and "only a task that has ended" in refused["error"]
    new = store.tasks.find_one({"_id": ok["new_task_id"]})
    assert new["retry_of"] == failed and new["args"] == {"page": "2"}
    assert new["trigger"] == "api" and new["status"] == "pending"


def test_bulk_delete_needs_admin_and_ended_tasks(client, auth, store, spider):
    done, running = add(store, "finished"), add(store, "running", node_id="n1")
    store.task_logs.insert_one({"task_id": done, "seq": 0, "line": "x"})
    response = bulk(client, auth.operator, "delete", [done])
    assert response.status_code == 403 and "admin" in response.get_json()["error"]
    body = bulk(client, auth.admin, "delete", [done, running]).get_json()
    assert [r["ok"] for r in body["results"]] == [True, False]
    assert store.tasks.find_one({"_id": done}) is None
    assert store.task_logs.find_one({"task_id": done}) is None
    assert store.tasks.find_one({"_id": running})["status"] == "running"


@pytest.mark.parametrize("body, message", [
    ({"action": "explode", "ids": ["a"]}, "action must be one of"),
    ({"action": "cancel", "ids": []}, "non-empty list"),
    ({"action": "cancel", "ids": "abc"}, "non-empty list"),
    ({"action": "cancel", "ids": [1, 2]}, "non-empty string"),
    ({"action": "cancel", "ids": ["a"] * 501}, "at most 500"),
    ({"action": "cancel", "ids": ["a"], "extra": 1}, "unknown field"),
    ([], "JSON object"),
])
def test_bulk_bad_input_is_one_readable_400(client, auth, body, message):
    response = client.post("/api/v1/tasks/bulk", json=body, headers=auth.operator)
    assert response.status_code == 400 and message in response.get_json()["error"]


def test_viewers_may_not_act_on_tasks(client, auth, store, spider):
    done = add(store, "finished")
    assert bulk(client, auth.viewer, "retry", [done]).status_code == 403
    assert client.post(f"/api/v1/tasks/{done}/retry", headers=auth.viewer).status_code == 403


def test_retry_and_delete_one_task(client, auth, store, spider):
    done, running = add(store, "timeout"), add(store, "running", node_id="n1")
    response = client.post(f"/api/v1/tasks/{done}/retry", headers=auth.operator)
    assert response.status_code == 201 and response.get_json()["retry_of"] == done
    assert client.post(f"/api/v1/tasks/{running}/retry",
                       headers=auth.operator).status_code == 409
    assert client.delete(f"/api/v1/tasks/{running}", headers=auth.admin).status_code == 409
    assert client.delete(f"/api/v1/tasks/{done}", headers=auth.admin).get_json() == {
        "id": done, "deleted": True}
    assert client.delete(f"/api/v1/tasks/{done}", headers=auth.admin).status_code == 404


def test_tasks_filter_by_trigger(client, auth, store, spider):
    scheduled = add(store, "finished", trigger="schedule")
    add(store, "finished", trigger="api")
    body = client.get("/api/v1/tasks?trigger=schedule", headers=auth.viewer).get_json()
    assert [t["id"] for t in body["tasks"]] == [scheduled]
    assert client.get("/api/v1/tasks?trigger=nothing",
                      headers=auth.viewer).get_json()["tasks"] == []


def test_cancel_request_time_is_the_first_ones(store, spider):
    """A second cancel request keeps the first request's time."""
    running = add(store, "running", node_id="n1")
    assert ledger.request_cancel(store, running)
    first = store.tasks.find_one({"_id": running})["cancel_requested_at"]
    assert ledger.request_cancel(store, running)
    assert store.tasks.find_one({"_id": running})["cancel_requested_at"] == first


# -- the UI -------------------------------------------------------------------------

@pytest.fixture
def ui(config, store, monkeypatch):
    monkeypatch.setenv("CRAWLFLEET_ADMIN_PASSWORD", PASSWORD)
    app = create_app(config)
    app.config["TESTING"] = True
    yield app
    app.extensions["crawlfleet"].close()


def sign_in(app, store, role):
    client = app.test_client()
    name = "admin" if role == "admin" else f"u-{role}"
    if role != "admin":
        users.create_user(store, name, PASSWORD, role)
    token = csrf(client, "/login")
    assert client.post("/login", data={"username": name, "password": PASSWORD,
                                       "csrf_token": token}).status_code == 302
    return client


def csrf(client, path="/account"):
    page = client.get(path)
    return re.search(rb'name="csrf_token" value="([^"]+)"', page.data).group(1).decode()


def test_task_list_shows_trigger_cancelling_and_filters(ui, store, spider):
    viewer = sign_in(ui, store, "viewer")
    scheduled = add(store, "running", node_id="n1", trigger="schedule", cancel_requested=True)
    by_hand = add(store, "finished", trigger="ui")
    page = viewer.get("/tasks").data.decode()
    assert '<td class="trigger">schedule</td>' in page and "badge cancelling" in page
    assert 'for="f-trigger"' in page and "bulk-form" not in page  # viewers pick nothing
    only = viewer.get("/tasks?trigger=schedule").data.decode()
    assert scheduled in only and by_hand not in only
    cancelling = viewer.get("/tasks?status=cancelling").data.decode()
    assert scheduled in cancelling and by_hand not in cancelling


def test_task_page_offers_only_what_makes_sense(ui, store, spider):
    operator = sign_in(ui, store, "operator")
    running = operator.get(f"/tasks/{add(store, 'running', node_id='n1')}").data.decode()
    assert 'id="cancel-button"' in running and 'id="retry-button"' not in running
    assert 'id="pace-chart"' in running
    ended = operator.get(f"/tasks/{add(store, 'error')}").data.decode()
    assert 'id="cancel-button"' not in ended and 'id="retry-button"' in ended
    assert 'id="pace-chart"' not in ended and 'id="delete-task"' not in ended  # admins only
    stopping = add(store, "running", node_id="n1", cancel_requested=True,
                   cancel_requested_at=now())
    page = operator.get(f"/tasks/{stopping}").data.decode()
    assert "badge cancelling" in page and "Cancelling…" in page


def test_bulk_form_of_the_list(ui, store, spider):
    operator = sign_in(ui, store, "operator")
    pending, done = add(store, "pending"), add(store, "finished")
    token = csrf(operator, "/tasks")
    response = operator.post("/tasks/bulk", data={
        "csrf_token": token, "action": "cancel", "ids": [pending, done],
        "back": "/tasks?status=pending"})
    assert response.status_code == 302 and response.location.endswith("/tasks?status=pending")
    page = operator.get("/tasks").data.decode()
    assert "Cancel requested for 1 task." in page and "already finished" in page
    assert store.tasks.find_one({"_id": pending})["status"] == "cancelled"
    refused = operator.post("/tasks/bulk", data={"csrf_token": token, "action": "delete",
                                                 "ids": [done]})
    assert refused.status_code == 403 and store.tasks.find_one({"_id": done})
    away = operator.post("/tasks/bulk", data={"csrf_token": token, "action": "retry",
                                              "ids": [done], "back": "//evil.example/"})
    assert away.location.endswith("/tasks")


def test_success_rate_leaves_cancelled_out(ui, store, spider):
    """finished / (finished + error + timeout + abnormal); cancelled is neither."""
    admin = sign_in(ui, store, "admin")
    for status in ("finished", "finished", "finished", "error", "cancelled", "cancelled",
                   "timeout", "running"):
        add(store, status)
    body = admin.get("/").data.decode()
    assert re.search(r'id="stat-success">60\.0 %<', body)
    assert "finished of 5 finished or failed" in body


def test_cancel_button_says_what_happened(ui, store, spider):
    """A pending task is cancelled at once; a running one is left to its node."""
    operator = sign_in(ui, store, "operator")
    pending, running = add(store, "pending"), add(store, "running", node_id="n1")
    token = csrf(operator, "/tasks")
    page = operator.post(f"/tasks/{pending}/cancel", data={"csrf_token": token},
                         follow_redirects=True).data.decode()
    assert "Task cancelled." in page and 'id="retry-button"' in page
    page = operator.post(f"/tasks/{running}/cancel", data={"csrf_token": token},
                         follow_redirects=True).data.decode()
    assert "the node is stopping the task" in page and "badge cancelling" in page
