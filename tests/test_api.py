"""Tests for the JSON API (web/api.py, web/export.py, web/openapi.py) through
Flask's test client, against a real store and the embedded broker."""

import csv
import datetime
import io
import json
import math
import re
import stat

import pymongo
import pytest
from bson import ObjectId

from crawlfleet.broker import Topology, connect
from crawlfleet.models import new_task, now
from crawlfleet.store import Store
from helpers import scan  # discovery.scan, each `scrapy list` answer remembered
import web
from web import create_app, export


@pytest.fixture
def spiders(store, config):
    """The bundled spider projects, registered by a real scan."""
    report = scan(store, config)
    assert not report["errors"], report
    return store.spiders.find_one({"_id": "books"})


def fake_spider(name):
    """A spider document as discovery writes it, for tests that need no real project."""
    return {"_id": name, "project": name, "version": "v1", "kind": "scrapy",
            "results_collection": f"results_{name}"}


def make_task(spider_doc, task_id, **fields):
    task = new_task(spider_doc, target="any")
    task["_id"] = task_id
    task.update(fields)
    return task


def shared_queue_messages(config):
    with connect(config) as conn:
        queue = Topology(config.queue_prefix).shared_queue(conn.default_channel)
        out = []
        while (message := queue.get(no_ack=True)) is not None:
            out.append(message.payload)
        return out


# -- authentication and roles ----------------------------------------------------

def test_requests_without_or_with_a_bad_token_get_401_json(client):
    """Every API route refuses a missing, malformed or unknown token with 401 JSON."""
    for headers in ({}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer nope"}):
        response = client.get("/api/v1/spiders", headers=headers)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert "error" in response.get_json()
    assert client.post("/api/v1/spiders/books/run").status_code == 401


def test_viewer_may_read_but_not_write(client, auth, spiders):
    """A viewer token can GET but gets 403 JSON on every POST."""
    assert client.get("/api/v1/spiders", headers=auth.viewer).status_code == 200
    for path in ("/api/v1/spiders/books/run", "/api/v1/spiders/rescan",
                 "/api/v1/tasks/x/cancel"):
        response = client.post(path, headers=auth.viewer)
        assert response.status_code == 403, path
        assert "viewer" in response.get_json()["error"]
    assert client.post("/api/v1/spiders/books/run", headers=auth.operator).status_code == 201


def test_unknown_routes_wrong_methods_and_bad_json_answer_json(client, auth):
    """404, 405 and malformed bodies are JSON errors with their real status."""
    response = client.get("/api/v1/nothing-here", headers=auth.admin)
    assert response.status_code == 404 and "error" in response.get_json()
    response = client.delete("/api/v1/spiders", headers=auth.admin)
    assert response.status_code == 405 and "error" in response.get_json()
    assert "GET" in response.headers["Allow"]
    for body in (b"{not json", b"[1, 2]", b'{"args": {}, "colour": "red"}'):
        response = client.post("/api/v1/spiders/books/run", data=body, headers=auth.admin,
                               content_type="application/json")
        assert response.status_code == 400, body
        assert response.get_json()["error"]


# -- nodes and spiders -----------------------------------------------------------

def test_nodes_lists_nodes_with_liveness(client, auth, store):
    """GET /nodes shows each node as written, with `id` and computed `online`."""
    store.nodes.insert_many([
        {"_id": "alive", "hostname": "h1", "heartbeat_at": now(), "max_runners": 2,
         "running": ["t1"], "status": "online"},
        {"_id": "silent", "hostname": "h2", "heartbeat_at": now() - 3600, "max_runners": 4,
         "running": [], "status": "online"},
    ])
    nodes = client.get("/api/v1/nodes", headers=auth.viewer).get_json()["nodes"]
    assert [(n["id"], n["online"], n["running"]) for n in nodes] == [
        ("alive", True, ["t1"]), ("silent", False, [])]


def test_spiders_list_detail_and_unknown(client, auth, spiders, store):
    """Spiders are listed by name; the detail has last_task; an unknown name
    is a 404 that lists the known spiders."""
    listed = client.get("/api/v1/spiders", headers=auth.viewer).get_json()["spiders"]
    by_name = {s["name"]: s for s in listed}
    assert {"books", "plain_catalogue"} <= set(by_name)
    assert by_name["books"]["kind"] == "scrapy"
    assert by_name["plain_catalogue"]["kind"] == "command"
    for key in ("project", "version", "description", "results_collection"):
        assert key in by_name["books"]

    detail = client.get("/api/v1/spiders/books", headers=auth.viewer).get_json()
    assert detail["name"] == "books" and detail["last_task"] is None
    store.tasks.insert_many([make_task(spiders, "00000000001aa"),
                             make_task(spiders, "00000000002bb")])
    detail = client.get("/api/v1/spiders/books", headers=auth.viewer).get_json()
    assert detail["last_task"]["id"] == "00000000002bb"

    response = client.get("/api/v1/spiders/nope", headers=auth.viewer)
    assert response.status_code == 404
    message = response.get_json()["error"]
    assert "nope" in message and "books" in message and "plain_catalogue" in message


def test_rescan_returns_the_scan_report(client, auth):
    """POST /spiders/rescan registers the bundled projects and reports them."""
    report = client.post("/api/v1/spiders/rescan", headers=auth.operator).get_json()
    assert {p["project"] for p in report["projects"]} >= {"books", "plain_catalogue"}
    assert report["errors"] == []


# -- run -------------------------------------------------------------------------

def test_run_writes_a_pending_task_and_announces_it(client, auth, spiders, store, config):
    """A run answers 201 with the task, which is pending in the ledger and
    announced on the shared queue."""
    response = client.post("/api/v1/spiders/books/run", headers=auth.admin, json={
        "args": {"max_pages": 2, "category": "poetry"}, "settings": {"DOWNLOAD_DELAY": 0},
        "timeout": 30, "priority": 5})
    assert response.status_code == 201
    body = response.get_json()
    [task_id] = body["task_ids"]
    assert body["tasks"][0]["id"] == task_id
    task = store.tasks.find_one({"_id": task_id})
    assert task["status"] == "pending" and task["trigger"] == "api"
    assert task["args"] == {"max_pages": "2", "category": "poetry"}
    assert task["settings"] == {"DOWNLOAD_DELAY": "0"}
    assert (task["timeout"], task["priority"], task["target"]) == (30, 5, "any")
    assert shared_queue_messages(config) == [{"task_id": task_id}]


def test_run_with_an_empty_body_uses_defaults(client, auth, spiders, store):
    response = client.post("/api/v1/spiders/plain_catalogue/run", headers=auth.operator)
    assert response.status_code == 201
    task = store.tasks.find_one({"_id": response.get_json()["task_ids"][0]})
    assert (task["target"], task["priority"], task["args"]) == ("any", 0, {})


INVALID_RUNS = [
    {"args": ["a"]},
    {"args": {"bad name": "x"}},
    {"args": {"x": {"nested": 1}}},
    {"settings": {"lowercase": 1}},
    {"settings": "DOWNLOAD_DELAY=1"},
    {"priority": 10},
    {"priority": "high"},
    {"timeout": -1},
    {"timeout": "soon"},
    {"nodes": 5},
    {"nodes": ["bad id!"]},
]


def test_run_rejects_invalid_input_with_400(client, auth, spiders, store):
    """Invalid args, settings, priority, timeout or nodes are a 400 and no task."""
    for body in INVALID_RUNS:
        response = client.post("/api/v1/spiders/books/run", headers=auth.admin, json=body)
        assert response.status_code == 400, (body, response.get_json())
        assert response.get_json()["error"]
    assert store.tasks.find_one({}) is None


def test_run_on_unknown_node_is_404_and_all_nodes_with_none_online_is_409(
        client, auth, spiders, store):
    response = client.post("/api/v1/spiders/books/run", headers=auth.admin,
                           json={"nodes": ["ghost"]})
    assert response.status_code == 404 and "ghost" in response.get_json()["error"]
    response = client.post("/api/v1/spiders/books/run", headers=auth.admin,
                           json={"nodes": "all"})
    assert response.status_code == 409 and "online" in response.get_json()["error"]
    response = client.post("/api/v1/spiders/ghost/run", headers=auth.admin)
    assert response.status_code == 404 and "books" in response.get_json()["error"]
    assert store.tasks.find_one({}) is None


def test_run_on_all_nodes_makes_one_task_per_online_node(client, auth, spiders, store):
    store.nodes.insert_many([{"_id": n, "heartbeat_at": now(), "status": "online"}
                             for n in ("n1", "n2")])
    body = client.post("/api/v1/spiders/books/run", headers=auth.admin,
                       json={"nodes": "all"}).get_json()
    assert sorted(t["target"] for t in body["tasks"]) == ["n1", "n2"]


# -- tasks -----------------------------------------------------------------------

@pytest.fixture
def many_tasks(store):
    """120 tasks with ids in creation order; every third is finished, every
    fifth belongs to plain_catalogue, even ones ran on node n1."""
    plain, books = fake_spider("plain_catalogue"), fake_spider("books")
    tasks = []
    for i in range(120):
        spider = plain if i % 5 == 0 else books
        status = "finished" if i % 3 == 0 else ("error" if i % 3 == 1 else "pending")
        tasks.append(make_task(spider, f"{1_000_000 + i:011x}{i:010x}", status=status,
                               node_id="n1" if i % 2 == 0 else None))
    store.tasks.insert_many(tasks)
    return [t["_id"] for t in tasks]


def test_tasks_are_paged_newest_first_by_keyset(client, auth, many_tasks):
    """Pages of 50 walk all 120 tasks newest first, then `next` is null."""
    seen, cursor, pages = [], None, 0
    while True:
        query = {"limit": 50} | ({"before": cursor} if cursor else {})
        page = client.get("/api/v1/tasks", headers=auth.viewer, query_string=query).get_json()
        seen += [t["id"] for t in page["tasks"]]
        pages += 1
        cursor = page["next"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == list(reversed(many_tasks))
    default = client.get("/api/v1/tasks", headers=auth.viewer).get_json()
    assert len(default["tasks"]) == 50 and default["next"] == many_tasks[-50]
    capped = client.get("/api/v1/tasks?limit=100000", headers=auth.viewer).get_json()
    assert len(capped["tasks"]) == 120 and capped["next"] is None


def test_tasks_filters(client, auth, many_tasks):
    """status (comma-separated), spider and node filters combine with paging."""
    def ids(**query):
        out, cursor = [], None
        while True:
            q = dict(query, limit=7) | ({"before": cursor} if cursor else {})
            page = client.get("/api/v1/tasks", headers=auth.viewer, query_string=q).get_json()
            out += page["tasks"]
            if not (cursor := page["next"]):
                return out

    finished = ids(status="finished")
    assert len(finished) == 40 and {t["status"] for t in finished} == {"finished"}
    done = ids(status="finished,error")
    assert len(done) == 80 and {t["status"] for t in done} == {"finished", "error"}
    plain = ids(spider="plain_catalogue")
    assert len(plain) == 24 and {t["spider"] for t in plain} == {"plain_catalogue"}
    on_n1 = ids(node="n1", status="pending")
    assert len(on_n1) == 20 and {t["node_id"] for t in on_n1} == {"n1"}
    for bad in ("status=sleeping", "limit=0", "limit=x"):
        assert client.get(f"/api/v1/tasks?{bad}", headers=auth.viewer).status_code == 400


def test_task_detail_and_404(client, auth, many_tasks, store):
    store.tasks.update_one({"_id": many_tasks[0]},
                           {"$set": {"started_at": 100.0, "finished_at": 104.25}})
    task = client.get(f"/api/v1/tasks/{many_tasks[0]}", headers=auth.viewer).get_json()
    assert task["id"] == many_tasks[0] and task["duration"] == 4.25
    response = client.get("/api/v1/tasks/nope", headers=auth.viewer)
    assert response.status_code == 404 and "nope" in response.get_json()["error"]


def test_cancel_a_pending_task_then_again_is_409(client, auth, spiders):
    """Cancelling a pending task makes it cancelled at once; a second cancel is 409."""
    task_id = client.post("/api/v1/spiders/books/run", headers=auth.admin).get_json()["task_ids"][0]
    response = client.post(f"/api/v1/tasks/{task_id}/cancel", headers=auth.operator)
    assert response.status_code == 200
    assert response.get_json()["status"] == "cancelled"
    again = client.post(f"/api/v1/tasks/{task_id}/cancel", headers=auth.operator)
    assert again.status_code == 409 and "cancelled" in again.get_json()["error"]
    assert client.post("/api/v1/tasks/nope/cancel", headers=auth.admin).status_code == 404


# -- logs ------------------------------------------------------------------------

@pytest.fixture
def logged_task(store):
    """A running task with 25 log lines stored in chunks of 10, 10 and 5."""
    task = make_task(fake_spider("books"), "0000000000aaaaaaaaaa", status="running", log_lines=25)
    store.tasks.insert_one(task)
    store.task_logs.insert_many([
        {"task_id": task["_id"], "seq": seq, "start": start, "end": start + size,
         "lines": [f"line {n}" for n in range(start, start + size)]}
        for seq, (start, size) in enumerate([(0, 10), (10, 10), (20, 5)])
    ])
    return task["_id"]


def test_log_pages_by_offset(client, auth, logged_task, store):
    """The log endpoint trims the first chunk to the offset and limits the page."""
    def page(**q):
        return client.get(f"/api/v1/tasks/{logged_task}/log", headers=auth.viewer,
                          query_string=q).get_json()

    whole = page()
    assert whole["lines"] == [f"line {n}" for n in range(25)]
    assert (whole["offset"], whole["next_offset"], whole["total"], whole["finished"]) == (
        0, 25, 25, False)
    middle = page(offset=7, limit=6)
    assert middle["lines"] == [f"line {n}" for n in range(7, 13)]
    assert middle["next_offset"] == 13
    tail = page(offset=23)
    assert tail["lines"] == ["line 23", "line 24"] and tail["next_offset"] == 25
    past = page(offset=25)
    assert past["lines"] == [] and past["next_offset"] == 25
    store.tasks.update_one({"_id": logged_task}, {"$set": {"status": "finished"}})
    assert page(offset=25)["finished"] is True
    assert client.get(f"/api/v1/tasks/{logged_task}/log?offset=-1",
                      headers=auth.viewer).status_code == 400


def test_log_as_text_download(client, auth, logged_task):
    response = client.get(f"/api/v1/tasks/{logged_task}/log?format=text", headers=auth.viewer)
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    assert "attachment" in response.headers["Content-Disposition"]
    assert response.get_data(as_text=True) == "".join(f"line {n}\n" for n in range(25))


# -- results ---------------------------------------------------------------------

TRICKY = 'a "quoted", comma\nnew line <script>alert(1)</script> é'


@pytest.fixture
def results_task(store):
    """A finished task with 250 items (one with tricky text, one nested, one
    with a null), plus another task's item in the same collection."""
    task = make_task(fake_spider("books"), "0000000000bbbbbbbbbb", status="finished")
    store.tasks.insert_one(task)
    items = [{"_tid": task["_id"], "task_id": task["_id"], "n": i, "title": f"book {i}",
              "price": i + 0.5} for i in range(250)]
    items[3]["title"] = TRICKY
    items[4]["tags"] = ["a", "b"]
    items[4]["meta"] = {"k": 1}
    items[5]["price"] = None
    items.append({"_tid": "other", "n": -1})
    store.results(task["results_collection"]).insert_many(items)
    return task["_id"]


def test_results_json_pages_by_item_id(client, auth, results_task):
    """format=json pages with `after`; ids are strings; no other task's items."""
    seen, after = [], None
    while True:
        q = {"limit": 100} | ({"after": after} if after else {})
        response = client.get(f"/api/v1/tasks/{results_task}/results", headers=auth.viewer,
                              query_string=q)
        page = response.get_json()
        seen += page["items"]
        if not (after := page["next"]):
            break
    assert [i["n"] for i in seen] == list(range(250))
    assert all(ObjectId.is_valid(i["_id"]) for i in seen)
    assert seen[3]["title"] == TRICKY and seen[5]["price"] is None


def test_results_csv_export(client, auth, results_task):
    """CSV: union of keys, no _id, nested values as JSON, tricky text intact."""
    response = client.get(f"/api/v1/tasks/{results_task}/results?format=csv",
                          headers=auth.viewer)
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"] == (
        f"attachment; filename={results_task}.csv")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert len(rows) == 250
    assert list(rows[0]) == ["_tid", "task_id", "n", "title", "price", "tags", "meta"]
    assert rows[3]["title"] == TRICKY
    assert json.loads(rows[4]["tags"]) == ["a", "b"] and json.loads(rows[4]["meta"]) == {"k": 1}
    assert rows[5]["price"] == "" and rows[0]["tags"] == ""
    assert rows[249]["n"] == "249" and rows[249]["price"] == "249.5"


def test_results_jsonl_export(client, auth, results_task):
    response = client.get(f"/api/v1/tasks/{results_task}/results?format=jsonl",
                          headers=auth.viewer)
    assert response.status_code == 200 and response.mimetype == "application/x-ndjson"
    items = [json.loads(line) for line in response.get_data(as_text=True).splitlines()]
    assert [i["n"] for i in items] == list(range(250))
    assert items[3]["title"] == TRICKY and items[5]["price"] is None
    assert client.get(f"/api/v1/tasks/{results_task}/results?format=xml",
                      headers=auth.viewer).status_code == 400
    assert client.get("/api/v1/tasks/nope/results", headers=auth.viewer).status_code == 404


def test_json_encoding_of_bson_types_and_non_finite_floats():
    """API JSON is strict: ObjectId and dates become strings, NaN and ±inf null.
    (nx-27017 cannot store NaN, so this is checked on the encoder itself.)"""
    oid = ObjectId()
    stamp = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    text = export.dumps({"_id": oid, "at": stamp, "x": [math.nan, 1.5, -math.inf],
                         "raw": b"\x00\xff"})
    assert json.loads(text, parse_constant=pytest.fail) == {
        "_id": str(oid), "at": "2026-01-02T03:04:05+00:00", "x": [None, 1.5, None],
        "raw": "AP8="}
    assert export.csv_cell(math.nan) == "" and export.csv_cell(True) == "true"


# -- meta ------------------------------------------------------------------------

def test_openapi_document_lists_every_route(app, client):
    """openapi.json needs no token, is OpenAPI 3.1 with bearer auth, and
    describes exactly the routes the app serves."""
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    doc = json.loads(response.get_data())
    assert doc["openapi"].startswith("3.1")
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    served = set()
    for rule in app.url_map.iter_rules():
        path = re.sub(r"<(?:[^<>:]+:)?([^<>]+)>", r"{\1}", rule.rule)  # <path:p> -> {p}
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            if path.startswith("/api/v1/"):
                served.add((path[len("/api/v1"):], method.lower()))
            elif path == "/healthz":
                served.add((path, method.lower()))
    documented = {(path, method) for path, item in doc["paths"].items()
                  for method in item if method in ("get", "post", "put", "patch", "delete")}
    assert documented == served
    refs = json.dumps(doc)
    for name in doc["components"]["schemas"]:
        assert f"#/components/schemas/{name}" in refs or name == "Error"


def test_healthz(client, app, config, monkeypatch):
    """healthz answers ok while the store answers, 503 when it does not."""
    assert client.get("/healthz").get_json() == {"ok": True}
    dead_uri = "mongodb://127.0.0.1:1"
    dead = Store(config.replace(mongo_uri=dead_uri),
                 client=pymongo.MongoClient(dead_uri, serverSelectionTimeoutMS=200))
    monkeypatch.setattr(app.extensions["crawlfleet"], "store", dead)
    monkeypatch.setattr(web, "HEALTH_TIMEOUT", 0.3)
    response = client.get("/healthz")
    assert response.status_code == 503 and response.get_json()["ok"] is False
    dead.close()


def test_secret_key_is_made_once_and_private(config, store):
    first = create_app(config)
    second = create_app(config)
    path = config.home_path / "secret-key"
    assert first.secret_key == second.secret_key == path.read_text().strip()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert create_app(config.replace(secret_key="s3cret")).secret_key == "s3cret"
