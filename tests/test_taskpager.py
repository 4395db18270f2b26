"""One keyset pager for the task list (web/taskpager.py), used by the JSON API
and the UI with the same cursor: the id of the last task shown."""

import re
import secrets

import pytest

from crawlfleet.errors import BadRequest
from crawlfleet.models import new_task, now
from test_ui import PASSWORD, Browser
from web import taskpager

SPIDER = {"_id": "books", "project": "books", "version": "v1", "kind": "scrapy",
          "results_collection": "results_books"}


def add(store, created_at, **fields):
    task = new_task(SPIDER, target="any")
    # A real id begins with its creation time in milliseconds. Ids made here in
    # one millisecond for different created_at values would sort by their random
    # part instead, which a gone cursor's "older ids" cannot tell apart.
    task["_id"] = f"{int(created_at * 1000):011x}{secrets.token_hex(5)}"
    task.update(created_at=created_at, **fields)
    store.tasks.insert_one(task)
    return task["_id"]


def test_pages_cover_every_task_once_across_ties_and_a_deleted_cursor(store):
    stamp = now() - 100
    # (ids sort by creation time, as real ones do: the older stamps first)
    ids = [add(store, stamp - n) for n in range(5, 0, -1)] + [add(store, stamp) for _ in range(7)]
    seen, cursor = [], None
    while True:
        docs, cursor = taskpager.page(store.tasks, {}, 4, cursor)
        seen += [d["_id"] for d in docs]
        if cursor is None:
            break
        if len(seen) == 8:  # the cursor's task is deleted meanwhile: older ids stand in
            store.tasks.delete_one({"_id": cursor})
    assert len(seen) == len(set(seen)) == 12 and set(seen) == set(ids)
    with pytest.raises(BadRequest):
        taskpager.page(store.tasks, {}, 4, "nonsense")


def test_the_api_and_the_ui_page_with_the_same_cursor(app, store, monkeypatch):
    from conftest import Tokens
    from crawlfleet import users

    users.create_user(store, "val", PASSWORD, "viewer")
    for n in range(60):
        add(store, now() - n, status="finished")
    api = app.test_client().get("/api/v1/tasks?status=finished",
                                headers=Tokens(store).viewer).get_json()
    page = Browser(app, store, None)
    assert page.login("val", PASSWORD).status_code == 302
    body = page.get("/tasks?status=finished").data.decode()
    more = re.search(r'id="next-page" href="([^"]+)"', body).group(1)
    assert f"before={api['next']}" in more
