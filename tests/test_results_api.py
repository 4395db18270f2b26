"""Results settings and results management through the API, the CLI and the
UI's forms: dedup turned on (409 over duplicates, keep-newest), data sources
chosen, a crawl's results answered by its final attempt, a task's results
deleted, a collection dropped (admin, confirmed), and Excel exports."""

import io

import pytest
from openpyxl import load_workbook

from crawlfleet.models import new_task, next_attempt
from helpers import scan  # discovery.scan, each `scrapy list` answer remembered
from test_cli_client import api, cli  # noqa: F401  (the live API fixture and CLI runner)


def books_task(store, status="finished", task=None):
    task = task or new_task({"_id": "books", "project": "books", "version": "v", "kind": "scrapy",
                             "results_collection": "results_books"}, target="any")
    task["status"] = status
    store.tasks.insert_one(task)
    return task


def stored(store, task, items):
    store.db.results_books.insert_many([{**i, "_tid": task["_id"], "task_id": task["_id"],
                                         "_at": 1000.0 + n} for n, i in enumerate(items)])


def test_patch_spider_dedup_refuses_over_duplicates_then_keeps_the_newest(client, auth, store,
                                                                           config):
    scan(store, config)
    task = books_task(store)
    stored(store, task, [{"url": "a", "v": 1}, {"url": "a", "v": 2}, {"url": "b", "v": 1}])
    path = "/api/v1/spiders/books"
    assert client.patch(path, headers=auth.viewer, json={"dedup_keys": ["url"]}).status_code == 403
    refused = client.patch(path, headers=auth.operator, json={"dedup_keys": ["url"]})
    assert refused.status_code == 409
    assert "1 duplicate rows" in refused.json["error"] and "keep_newest" in refused.json["error"]
    assert store.db.results_books.count_documents({}) == 3  # nothing touched
    done = client.patch(path, headers=auth.operator,
                        json={"dedup_keys": "url", "dedup_mode": "ignore", "keep_newest": True})
    assert done.status_code == 200, done.json
    assert done.json["duplicates_removed"] == 1
    assert done.json["results_settings"]["dedup"] == {"keys": ["url"], "mode": "ignore"}
    assert sorted((d["url"], d["v"]) for d in store.db.results_books.find()) == [("a", 2), ("b", 1)]
    shown = client.get(path, headers=auth.viewer).json
    assert shown["results_settings"]["dedup"]["keys"] == ["url"]
    for body, word in (({"dedup_keys": ["_id"]}, "invalid"), ({"dedup_mode": "merge"}, "mode"),
                       ({"datasources": ["nope"]}, "unknown data sources"),
                       ({"feeds": {"x": 1}}, "FEEDS"), ({"colour": 1}, "unknown")):
        answer = client.patch(path, headers=auth.operator, json=body)
        assert answer.status_code == 400 and word in answer.json["error"], (body, answer.json)
    off = client.patch(path, headers=auth.operator, json={"dedup_keys": []})
    assert off.json["results_settings"]["dedup"] is None
    assert client.patch("/api/v1/spiders/nope", headers=auth.operator,
                        json={"dedup_keys": ["url"]}).status_code == 404


def test_a_crawl_answers_with_its_final_attempt_and_exports_excel(client, auth, store, app):
    root = books_task(store, status="abnormal")
    retry = next_attempt(root, 0)
    store.tasks.update_one({"_id": root["_id"]}, {"$set": {"retried_by": retry["_id"]}})
    books_task(store, task=retry)
    stored(store, root, [{"url": "only-in-the-first"}])
    stored(store, retry, [{"url": f"u{n}", "price": n + 0.5, "title": "=cmd()"} for n in range(3)])
    page = client.get(f"/api/v1/tasks/{root['_id']}/results", headers=auth.viewer).json
    assert page["task_id"] == retry["_id"] and len(page["items"]) == 3
    xlsx = client.get(f"/api/v1/tasks/{root['_id']}/results?format=xlsx", headers=auth.viewer)
    assert xlsx.status_code == 200 and xlsx.mimetype.endswith("spreadsheetml.sheet")
    sheet = load_workbook(io.BytesIO(xlsx.data)).active
    rows = list(sheet.values)
    assert rows[0][:3] == ("url", "price", "title") and len(rows) == 4
    assert rows[1][1] == 0.5  # numbers stay numbers
    assert rows[1][2] == "=cmd()" and sheet.cell(2, 3).data_type == "s"  # text, never a formula
    assert client.get(f"/api/v1/tasks/{root['_id']}/results?format=xls",
                      headers=auth.viewer).status_code == 400
    from test_ui import Browser

    page = Browser(app, store, "viewer").get(f"/tasks/{root['_id']}").get_data(as_text=True)
    assert "of the crawl&#39;s final attempt" in page or "of the crawl's final attempt" in page
    assert "u2" in page and "only-in-the-first" not in page


def test_delete_a_tasks_results_and_drop_a_collection(client, auth, store):
    keep, gone = books_task(store), books_task(store)
    stored(store, keep, [{"url": "k"}])
    stored(store, gone, [{"url": "g1"}, {"url": "g2"}])
    path = f"/api/v1/tasks/{gone['_id']}/results"
    assert client.delete(path, headers=auth.operator).status_code == 403
    answer = client.delete(path, headers=auth.admin)
    assert answer.status_code == 200 and answer.json["removed"] == 2
    assert [d["url"] for d in store.db.results_books.find()] == ["k"]
    refused = client.delete("/api/v1/results/results_books", headers=auth.admin)
    assert refused.status_code == 400 and "confirm" in refused.json["error"]
    assert client.delete("/api/v1/results/tasks?confirm=tasks",
                         headers=auth.admin).status_code == 404  # never the ledger
    dropped = client.delete("/api/v1/results/results_books?confirm=results_books",
                            headers=auth.admin)
    assert dropped.status_code == 200 and dropped.json["rows"] == 1
    assert "results_books" not in store.db.list_collection_names()


def test_cli_spider_set_datasources_and_results_verbs(api, store):  # noqa: F811
    task = books_task(store)
    stored(store, task, [{"url": "a"}, {"url": "a"}])
    out = cli("spider", "set", "books", "--dedup-key", "url", "--dedup-mode", "overwrite")
    assert out.exit_code == 1 and "1 duplicate rows" in out.output and "keep" in out.output
    out = cli("spider", "set", "books", "--dedup-key", "url", "--keep-newest")
    assert out.exit_code == 0, out.output
    assert "dedup on url (overwrite)" in out.output and "1 older duplicates removed" in out.output
    out = cli("datasource", "add", "pg", "--kind", "postgresql", "--database", "test",
              "--user", "postgres", "--password", "pw-123")
    assert out.exit_code == 0 and "password set" in out.output, out.output
    out = cli("datasource", "list")
    assert "pg" in out.output and "pw-123" not in out.output
    assert cli("datasource", "test", "pg").exit_code == 0
    out = cli("spider", "set", "books", "--datasource", "pg", "--keep-partial")
    assert "data sources pg" in out.output and "partial attempts kept" in out.output
    out = cli("results", task["_id"], "--format", "xlsx")
    assert out.exit_code == 0 and out.stdout_bytes[:2] == b"PK"  # a zip: the workbook
    out = cli("results-delete", task["_id"], "--yes")  # in the spider's source too
    assert out.exit_code == 0 and "1 items" in out.output
    assert "rows in data source pg" in out.output, out.output
    out = cli("results-drop", "results_books", "--confirm", "results_books")
    assert out.exit_code == 0 and "dropped" in out.output
    assert "rows in data source pg" in out.output, out.output
    out = cli("datasource", "remove", "pg")
    assert "was used by books" in out.output


def test_ui_data_settings_offer_keep_newest_over_duplicates(app, store, config):
    from test_ui import Browser  # signs in and posts forms with the CSRF token

    scan(store, config)
    task = books_task(store)
    stored(store, task, [{"url": "a"}, {"url": "a"}])
    browser = Browser(app, store, "operator")
    page = browser.get("/spiders/books/data")
    assert page.status_code == 200 and b"Deduplicate by" in page.data
    assert b"/spiders/books/data" in browser.get("/spiders/books").data
    form = {"dedup_keys": "url", "dedup_mode": "overwrite"}
    answer = browser.post("/spiders/books/data", data=form)
    assert answer.status_code == 409
    assert b"1 duplicate rows" in answer.data and b"keep-newest" in answer.data
    answer = browser.post("/spiders/books/data", data={**form, "keep_newest": "on"})
    assert answer.status_code == 302
    assert store.db.results_books.count_documents({}) == 1
    assert store.spiders.find_one({"_id": "books"})["dedup"] == {"keys": ["url"],
                                                                 "mode": "overwrite"}
    page = browser.get("/spiders/books/data")
    assert page.status_code == 200 and b'value="url"' in page.data
