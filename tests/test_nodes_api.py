"""The node control API (web/nodes_api.py): labels, modes, run slots, labelled runs,
and the `crawlfleet node ...` verbs against a real node."""

import json
from pathlib import Path

import pytest

from helpers import ROOT, make_config, wait_for, wait_task
from test_cli_client import api, cli  # noqa: F401  (the CLI's fixture: the API served)
from crawlfleet.models import now
from helpers import scan  # discovery.scan, each `scrapy list` answer remembered

FIXTURES = Path(__file__).parent / "fixtures" / "spiders"


@pytest.fixture
def config(tmp_path, mongo_server):
    """The bundled spiders and the test fixtures' (napper)."""
    return make_config(tmp_path, mongo_server, spiders_path=f"{ROOT / 'spiders'}:{FIXTURES}")


@pytest.fixture
def nodes(store, config):
    assert not scan(store, config)["errors"]
    store.nodes.insert_many([
        {"_id": "n1", "hostname": "h1", "heartbeat_at": now(), "max_runners": 2,
         "running": [], "status": "online"},
        {"_id": "n2", "hostname": "h2", "heartbeat_at": now(), "max_runners": 2,
         "running": [], "status": "online"},
    ])


def post(client, path, body=None, headers=None):
    return client.post(f"/api/v1{path}", data=json.dumps(body) if body is not None else "",
                       headers=headers, content_type="application/json")


def test_labels_set_removed_and_shown(client, auth, nodes):
    """Labels are set and removed by key; GET shows them with the mode."""
    answer = post(client, "/nodes/n1/labels", {"set": {"region": "eu", "proxy": "yes"}},
                  auth.operator)
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["labels"] == {"region": "eu", "proxy": "yes"}
    answer = post(client, "/nodes/n1/labels", {"set": {"region": "us"}, "remove": ["proxy"]},
                  auth.admin)
    assert answer.get_json()["labels"] == {"region": "us"}
    answer = client.delete("/api/v1/nodes/n1/labels/region", headers=auth.admin)
    assert answer.status_code == 200 and answer.get_json()["labels"] == {}
    shown = client.get("/api/v1/nodes/n1", headers=auth.viewer).get_json()
    assert (shown["id"], shown["mode"], shown["labels"], shown["run_slots"]) == (
        "n1", "enabled", {}, None)
    listed = client.get("/api/v1/nodes", headers=auth.viewer).get_json()["nodes"]
    assert listed[0]["labels"] == {} and listed[0]["mode"] == "enabled"


@pytest.mark.parametrize("body, message", [
    ({"set": {"re gion": "eu"}}, "invalid label key"),
    ({"set": {"region": ""}}, "invalid value"),
    ({"set": {"region": "e,u"}}, "invalid value"),
    ({"set": {"a.b": "x"}}, "invalid label key"),
    ({"set": {"$where": "x"}}, "invalid label key"),
    ({"set": {"region": 3}}, "invalid value"),
    ({"set": ["region"]}, "expected KEY=VALUE"),
    ({"set": {"region": "eu"}, "remove": ["region"]}, "both set and removed"),
    ({"remove": "x" * 70}, "invalid label key"),
    ({"remove": {"k": 1}}, "remove must be a list"),
    ({"colour": "red"}, "unknown field"),
    ([1], "must be a JSON object"),
])
def test_bad_labels_are_400(client, auth, nodes, body, message):
    answer = post(client, "/nodes/n1/labels", body, auth.admin)
    assert answer.status_code == 400, answer.get_json()
    assert message in answer.get_json()["error"]


def test_modes_and_slots(client, auth, nodes, store):
    """Enable, drain, disable and run slots are written for the node to obey."""
    for verb, mode in (("drain", "draining"), ("disable", "disabled"), ("enable", "enabled")):
        answer = post(client, f"/nodes/n2/{verb}", None, auth.operator)
        assert answer.status_code == 200 and answer.get_json()["mode"] == mode
        assert store.nodes.find_one({"_id": "n2"})["mode"] == mode
    post(client, "/nodes/n2/drain", None, auth.operator)
    assert client.get("/api/v1/nodes/n2", headers=auth.viewer).get_json()["drained"] is True
    answer = post(client, "/nodes/n2/slots", {"run_slots": 5}, auth.operator)
    assert answer.get_json()["run_slots"] == 5
    assert post(client, "/nodes/n2/slots", {"run_slots": None},
                auth.operator).get_json()["run_slots"] is None
    for bad in ({"run_slots": 0}, {"run_slots": "4"}, {"run_slots": True}, {"run_slots": 10**9},
                {}):
        answer = post(client, "/nodes/n2/slots", bad, auth.operator)
        assert answer.status_code == 400, bad
    assert post(client, "/nodes/n2/drain", {"now": True}, auth.operator).status_code == 400
    assert post(client, "/nodes/nope/drain", None, auth.operator).status_code == 404
    assert client.get("/api/v1/nodes/nope", headers=auth.viewer).status_code == 404
    # a viewer may look, not change
    assert post(client, "/nodes/n2/enable", None, auth.viewer).status_code == 403
    assert post(client, "/nodes/n2/labels", {"set": {"a": "b"}}, auth.viewer).status_code == 403


def test_labelled_run_requests(client, auth, nodes, store):
    """A run asks for labels: refused when no node carries them, pending with the reason
    while no carrier takes tasks, and one task per carrier with nodes "all"."""
    answer = post(client, "/spiders/books/run", {"labels": {"region": "eu"}}, auth.operator)
    assert answer.status_code == 409
    assert "no node carries the labels region=eu" in answer.get_json()["error"]
    post(client, "/nodes/n1/labels", {"set": {"region": "eu"}}, auth.operator)
    post(client, "/nodes/n1/disable", None, auth.operator)
    answer = post(client, "/spiders/books/run", {"labels": {"region": "eu"}}, auth.operator)
    assert answer.status_code == 201, answer.get_json()
    task = answer.get_json()["tasks"][0]
    assert task["labels"] == {"region": "eu"} and task["target"] == "any"
    shown = client.get(f"/api/v1/tasks/{task['id']}", headers=auth.viewer).get_json()
    assert shown["waiting"] == ("waiting for a node labelled region=eu: n1 is offline, "
                                "draining or disabled")
    assert store.label_selectors.count_documents({}) == 1
    post(client, "/nodes/n1/enable", None, auth.operator)
    shown = client.get(f"/api/v1/tasks/{task['id']}", headers=auth.viewer).get_json()
    assert shown["waiting"] is None
    answer = post(client, "/spiders/books/run", {"labels": "region=eu", "nodes": "all"},
                  auth.operator)
    assert [t["target"] for t in answer.get_json()["tasks"]] == ["n1"]
    answer = post(client, "/spiders/books/run", {"labels": {"region": "eu"}, "nodes": ["n1"]},
                  auth.operator)
    assert answer.status_code == 400 and "not both" in answer.get_json()["error"]
    answer = post(client, "/spiders/books/run", {"labels": ["region"]}, auth.operator)
    assert answer.status_code == 400
    # a task for one node says it waits for that node while it is disabled
    answer = post(client, "/spiders/books/run", {"nodes": ["n2"]}, auth.operator)
    pinned = answer.get_json()["task_ids"][0]
    post(client, "/nodes/n2/disable", None, auth.operator)
    shown = client.get(f"/api/v1/tasks/{pinned}", headers=auth.viewer).get_json()
    assert shown["waiting"] == "waiting for node n2, which is disabled"
    # and a disabled node is not chosen by id
    answer = post(client, "/spiders/books/run", {"nodes": ["n2"]}, auth.operator)
    assert answer.status_code == 409 and "n2 is disabled" in answer.get_json()["error"]


def test_schedules_keep_labels(client, auth, nodes):
    body = {"spider": "books", "cron": "0 3 * * *", "labels": {"region": "eu"}}
    answer = client.post("/api/v1/schedules", json=body, headers=auth.operator)
    assert answer.status_code == 409 and "region=eu" in answer.get_json()["error"]
    post(client, "/nodes/n1/labels", {"set": {"region": "eu"}}, auth.operator)
    answer = client.post("/api/v1/schedules", json=body, headers=auth.operator)
    assert answer.status_code == 201, answer.get_json()
    assert answer.get_json()["labels"] == {"region": "eu"}
    answer = client.post("/api/v1/schedules", json={**body, "nodes": ["n1"]},
                         headers=auth.operator)
    assert answer.status_code == 400
    answer = client.post("/api/v1/schedules", json={**body, "labels": {"bad key": "x"}},
                         headers=auth.operator)
    assert answer.status_code == 400


def test_node_verbs_of_the_cli_drive_a_real_node(api, store, config, processes):  # noqa: F811
    """`crawlfleet node label/drain/enable/slots` and `run --label` against a real node."""
    node = processes.node(store, "cli-node", max_runners=1)
    result = cli("node", "label", "cli-node", "region=eu", "proxy=yes")
    assert result.exit_code == 0, result.output
    assert "labels proxy=yes,region=eu" in result.output
    result = cli("node", "label", "cli-node", "bad key=x")
    assert result.exit_code == 2 and "invalid label key" in result.output
    result = cli("run", "napper", "-a", "secs=0.1", "--label", "region=eu", "--label",
                 "proxy=yes")
    assert result.exit_code == 0, result.output
    task = wait_task(store, result.output.split()[0], timeout=60)
    assert task["status"] == "finished" and task["node_id"] == "cli-node"
    result = cli("run", "napper", "--label", "region=mars")
    assert result.exit_code == 1
    assert result.output.startswith("error: no node carries the labels region=mars")
    result = cli("schedule", "add", "napper", "--cron", "0 3 * * *", "--label", "region=eu",
                 "--json")
    assert result.exit_code == 0, result.output
    schedule_id = json.loads(result.stdout)["id"]
    assert json.loads(result.stdout)["labels"] == {"region": "eu"}
    assert "region=eu" in cli("schedule", "show", schedule_id).output
    assert "online, drained" in cli("node", "drain", "cli-node").output  # idle already
    table = cli("nodes").output.splitlines()
    assert table[1].split()[:6] == ["cli-node", table[1].split()[1], "online", "0/1",
                                    "drained", "proxy=yes,region=eu"]
    assert cli("node", "enable", "cli-node").exit_code == 0
    assert "2 (set)" in cli("node", "slots", "cli-node", "2").output
    wait_for(lambda: store.nodes.find_one({"_id": "cli-node"})["max_runners"] == 2
             or node.poll() is not None, what="the node running 2 slots")
    assert node.poll() is None
    assert cli("node", "slots", "cli-node", "many").exit_code == 2
    assert "labels proxy=yes" in cli("node", "unlabel", "cli-node", "region").output


def test_unused_label_selectors_are_forgotten_unless_a_task_waits(store, config):
    """A selector idle for a week goes; one a pending task still asks for stays."""
    from master import dispatch
    from master.housekeeping import SELECTOR_IDLE_DAYS, prune_label_selectors
    from master.nodes import record_selector

    assert not scan(store, config)["errors"]
    store.nodes.insert_one({"_id": "n1", "labels": {"region": "eu", "gpu": "yes"}})
    record_selector(store, {"gpu": "yes"})
    dispatch.run_spider(store, _NoBroker(), config, "books", labels={"region": "eu"})
    later = now() + SELECTOR_IDLE_DAYS * 86400 + 60
    kept = {d["_id"]: d["labels"] for d in store.label_selectors.find()}
    assert sorted(kept.values(), key=str) == [{"gpu": "yes"}, {"region": "eu"}]
    assert len(prune_label_selectors(store, at=now())) == 0
    assert len(prune_label_selectors(store, at=later)) == 1
    assert [d["labels"] for d in store.label_selectors.find()] == [{"region": "eu"}]


class _NoBroker:
    """Publishing fails: the task stays pending (the reconciler's job later)."""

    def publish_task(self, *args, **kwargs):
        raise ConnectionError("no broker in this test")


def test_crawl_workers_go_to_enabled_nodes_carrying_the_labels(store, config):
    """A crawl's workers: one per enabled online carrier, the rest to its label queue."""
    from master.crawls import worker_targets

    store.nodes.insert_many([
        {"_id": "eu1", "heartbeat_at": now(), "status": "online", "labels": {"region": "eu"},
         "free": 1},
        {"_id": "eu2", "heartbeat_at": now(), "status": "online", "labels": {"region": "eu"},
         "free": 3},
        {"_id": "eu3", "heartbeat_at": now(), "status": "online", "labels": {"region": "eu"},
         "mode": "draining", "free": 4},
        {"_id": "us1", "heartbeat_at": now(), "status": "online", "labels": {"region": "us"},
         "free": 4},
    ])
    assert worker_targets(store, config, 3, "any", {"region": "eu"}) == ["eu2", "eu1", "any"]
    assert worker_targets(store, config, 2, "any", None) == ["us1", "eu2"]


def test_a_node_carries_at_most_twenty_labels(client, auth, nodes, store):
    many = {f"k{i}": "v" for i in range(20)}
    assert post(client, "/nodes/n1/labels", {"set": many}, auth.admin).status_code == 200
    answer = post(client, "/nodes/n1/labels", {"set": {"k0": "w", "extra": "x"}}, auth.admin)
    assert answer.status_code == 400 and "at most 20 labels" in answer.get_json()["error"]
    assert store.nodes.find_one({"_id": "n1"})["labels"] == many  # nothing half-written
    answer = post(client, "/nodes/n1/labels", {"set": {"extra": "x"}, "remove": ["k1"]},
                  auth.admin)
    assert answer.status_code == 200 and len(answer.get_json()["labels"]) == 20
