"""Tests for the client verbs (crawlfleet/cli/client.py) and the API client
(crawlfleet/client.py), against the real app served by werkzeug in a thread."""

import csv
import io
import json
import threading
import time

import pytest
from click.testing import CliRunner
from werkzeug.serving import WSGIRequestHandler, make_server

from helpers import free_port
from crawlfleet.cli import main
from crawlfleet.client import ApiClient, ApiUnreachable, ClientError
from crawlfleet.tokens import create_token, verify_token
from helpers import scan  # discovery.scan, each `scrapy list` answer remembered
from web import create_app


class QuietHandler(WSGIRequestHandler):
    def log(self, *args, **kwargs):
        pass


@pytest.fixture
def api(config, store, monkeypatch):
    """The API on a free port, with the environment pointing client verbs at it."""
    scan(store, config)
    app = create_app(config)
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=QuietHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}"
    token = create_token(store, "cli-test", "admin")
    for name, value in config.as_environ().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("CRAWLFLEET_CONFIG", raising=False)
    monkeypatch.setenv("CRAWLFLEET_API_URL", url)
    monkeypatch.setenv("CRAWLFLEET_TOKEN", token)
    yield ApiClient(url, token)
    server.shutdown()
    thread.join(5)
    app.extensions["crawlfleet"].close()


def cli(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_spiders_table_and_json(api):
    """`spiders` prints a table with a header; --json the list of spiders."""
    result = cli("spiders")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["NAME", "PROJECT", "KIND", "VERSION"]
    assert any(line.split()[:3] == ["books", "books", "scrapy"] for line in lines)
    assert any(line.split()[:3] == ["plain_catalogue", "plain_catalogue", "command"]
               for line in lines)
    result = cli("spiders", "--json")
    assert {s["name"] for s in json.loads(result.output)} >= {"books", "plain_catalogue"}


def test_nodes_and_rescan(api, store):
    store.nodes.insert_one({"_id": "n1", "hostname": "box", "heartbeat_at": time.time(),
                            "max_runners": 4, "running": ["t1"], "status": "online"})
    table = cli("nodes").output.splitlines()
    assert table[1].split()[:4] == ["n1", "box", "online", "1/4"]
    assert json.loads(cli("nodes", "--json").output)[0]["online"] is True
    result = cli("rescan")
    assert result.exit_code == 0 and "books: version" in result.output


def test_run_json_then_tasks_task_and_cancel(api, store):
    """run --json makes a pending task that tasks/task show and cancel ends."""
    result = cli("run", "books", "-a", "max_pages=2", "-s", "DOWNLOAD_DELAY=0",
                 "--priority", "3", "--json")
    assert result.exit_code == 0, result.output
    answer = json.loads(result.output)
    [task_id] = answer["task_ids"]
    assert answer["tasks"][0]["status"] == "pending"
    task = store.tasks.find_one({"_id": task_id})
    assert (task["args"], task["settings"], task["priority"], task["trigger"]) == (
        {"max_pages": "2"}, {"DOWNLOAD_DELAY": "0"}, 3, "api")

    listed = json.loads(cli("tasks", "--json").output)
    assert [(t["id"], t["status"]) for t in listed] == [(task_id, "pending")]
    table = cli("tasks", "--spider", "books").output.splitlines()
    assert table[0].split()[:3] == ["ID", "SPIDER", "STATUS"]
    assert table[1].split()[:3] == [task_id, "books", "pending"]

    assert json.loads(cli("task", task_id, "--json").output)["id"] == task_id
    shown = cli("task", task_id).output
    assert f"id:         {task_id}" in shown and "max_pages=2" in shown

    result = cli("cancel", task_id)
    assert result.exit_code == 0 and "cancelled" in result.output
    result = cli("cancel", task_id)
    assert result.exit_code == 1
    assert result.output.startswith(f"error: task {task_id} is already cancelled")


def test_run_prints_task_ids(api):
    result = cli("run", "plain_catalogue")
    assert result.exit_code == 0
    [task_id] = result.output.split()
    assert api.task(task_id)["status"] == "pending"


def test_unknown_spider_is_one_error_line_and_exit_1(api):
    result = cli("run", "nosuch")
    assert result.exit_code == 1
    assert result.output == (
        "error: unknown spider 'nosuch'; known spiders: books, node_catalogue, plain_catalogue\n")
    result = cli("run", "books", "-a", "no-equals-sign")
    assert result.exit_code == 2 and "NAME=VALUE" in result.output


def test_results_export_formats(api, store):
    """results streams CSV, JSON lines and a JSON array of every item."""
    task_id = api.run("books")["task_ids"][0]
    rows = [{"_tid": task_id, "title": f"t{i}", "price": i, "note": 'a,"b"\nc'}
            for i in range(1200)]
    store.results("results_books").insert_many(rows)

    result = cli("results", task_id, "--format", "csv")
    assert result.exit_code == 0
    parsed = list(csv.DictReader(io.StringIO(result.output)))
    assert len(parsed) == 1200 and parsed[7] == {
        "_tid": task_id, "title": "t7", "price": "7", "note": 'a,"b"\nc'}
    lines = cli("results", task_id).output.splitlines()
    assert [json.loads(line)["title"] for line in lines] == [f"t{i}" for i in range(1200)]
    items = json.loads(cli("results", task_id, "--format", "json").output)
    assert [i["price"] for i in items] == list(range(1200))


def test_logs_prints_the_whole_log(api, store):
    task_id = api.run("books")["task_ids"][0]
    store.task_logs.insert_many([
        {"task_id": task_id, "seq": 0, "start": 0, "end": 2, "lines": ["one", "two"]},
        {"task_id": task_id, "seq": 1, "start": 2, "end": 3, "lines": ["three"]}])
    store.tasks.update_one({"_id": task_id}, {"$set": {"log_lines": 3, "status": "error"}})
    assert cli("logs", task_id).output == "one\ntwo\nthree\n"
    assert cli("logs", "-f", task_id).output == "one\ntwo\nthree\n"


def test_run_wait_follows_the_log_until_the_task_ends(api, store):
    """--wait prints log lines as a (simulated) node stores them, then the
    summary; the exit code says whether the task finished."""
    def fake_node(status, exit_code):
        def work():
            doc = None
            while doc is None:
                time.sleep(0.02)
                doc = store.tasks.find_one({"status": "pending"})
            store.tasks.update_one({"_id": doc["_id"]}, {"$set": {
                "status": "running", "started_at": 1000.0, "node_id": "n1"}})
            for seq in range(3):
                store.task_logs.insert_one({"task_id": doc["_id"], "seq": seq, "start": seq,
                                            "end": seq + 1, "lines": [f"log {seq}"]})
            store.tasks.update_one({"_id": doc["_id"]}, {"$set": {
                "status": status, "finished_at": 1004.2, "log_lines": 3, "exit_code": exit_code,
                "stats": {"items": 300, "pages": 15, "errors": 0}}})
        thread = threading.Thread(target=work, daemon=True)
        thread.start()
        return thread

    thread = fake_node("finished", 0)
    result = cli("run", "books", "--wait")
    thread.join(5)
    assert result.exit_code == 0, result.output
    task_id = result.stderr.split()[1]
    assert result.stdout.splitlines() == [
        "log 0", "log 1", "log 2", f"task {task_id} finished: 300 items, 15 pages in 4.2 s"]

    thread = fake_node("error", 3)
    result = cli("run", "books", "--wait", "--json")
    thread.join(5)
    assert result.exit_code == 1
    final = json.loads(result.stdout)
    assert final["status"] == "error" and final["exit_code"] == 3


def test_unreachable_api_says_what_to_start(api, monkeypatch):
    url = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("CRAWLFLEET_API_URL", url)
    result = cli("spiders")
    assert result.exit_code == 1
    assert result.output == (f"error: cannot reach the crawlfleet API at {url} — "
                             "is `crawlfleet up` or `crawlfleet web` running?\n")
    with pytest.raises(ApiUnreachable):
        ApiClient(url, "x").spiders()


def test_bad_token_is_a_client_error_with_a_hint(api, monkeypatch):
    with pytest.raises(ClientError) as caught:
        ApiClient(api.base_url, "cft_wrong").spiders()
    assert caught.value.status_code == 401 and "token" in str(caught.value)
    monkeypatch.setenv("CRAWLFLEET_TOKEN", "cft_wrong")
    result = cli("tasks")
    assert result.exit_code == 1 and result.output.startswith("error: invalid or revoked token")


def test_from_config_falls_back_to_the_admin_token_file(config):
    (config.home_path / "admin-token").write_text("cft_from_file\n")
    client = ApiClient.from_config(config)
    assert client.token == "cft_from_file" and client.base_url == config.api_url
    assert ApiClient.from_config(config.replace(token="cft_set")).token == "cft_set"


def test_token_create_prints_a_token_that_verifies(api, store):
    """`token create` talks to the store and prints only the new token."""
    result = cli("token", "create", "--name", "ci", "--role", "viewer")
    assert result.exit_code == 0
    token = result.output.strip()
    assert result.output == token + "\n"
    doc = verify_token(store, token)
    assert (doc["name"], doc["role"]) == ("ci", "viewer")
    assert ApiClient(api.base_url, token).spiders()
