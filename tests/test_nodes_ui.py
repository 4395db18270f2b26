"""The nodes page's controls (web/nodes_ui.py): operators set labels, modes and run
slots; viewers see them and may change nothing; bad input is a message, not a 500."""

import pytest

from test_ui import app, browser  # noqa: F401  (the signed-in test client)
from crawlfleet.models import now


@pytest.fixture
def node(store):
    store.nodes.insert_one({"_id": "n1", "hostname": "h1", "heartbeat_at": now(),
                            "max_runners": 2, "own_slots": 2, "running": [],
                            "status": "online", "load": 0.5, "memory_percent": 40.0})


def test_operator_labels_drains_and_sets_slots(browser, node, store):  # noqa: F811
    user = browser("operator")
    page = user.get("/nodes").get_data(as_text=True)
    assert 'id="labels-n1"' in page and "Drain" in page and 'id="slots-n1"' in page
    answer = user.post("/nodes/n1/labels", {"labels": "region=eu, proxy=yes"})
    assert answer.status_code == 302
    assert store.nodes.find_one({"_id": "n1"})["labels"] == {"region": "eu", "proxy": "yes"}
    page = user.get("/nodes").get_data(as_text=True)
    assert "region=eu" in page and "labelled proxy=yes,region=eu" in page
    user.post("/nodes/n1/labels/proxy/delete")
    assert store.nodes.find_one({"_id": "n1"})["labels"] == {"region": "eu"}
    user.post("/nodes/n1/mode", {"mode": "draining"})
    page = user.get("/nodes").get_data(as_text=True)
    assert "mode-drained" in page  # idle: drained at once
    user.post("/nodes/n1/slots", {"run_slots": "5"})
    assert store.nodes.find_one({"_id": "n1"})["run_slots"] == 5
    assert "(set; its own: 2)" in user.get("/nodes").get_data(as_text=True)
    user.post("/nodes/n1/slots", {"run_slots": ""})
    assert store.nodes.find_one({"_id": "n1"})["run_slots"] is None


@pytest.mark.parametrize("path, form, message", [
    ("/nodes/n1/labels", {"labels": "region"}, "expected KEY=VALUE"),
    ("/nodes/n1/labels", {"labels": "re$gion=eu"}, "invalid label key"),
    ("/nodes/n1/labels", {"labels": ""}, "write a label as KEY=VALUE"),
    ("/nodes/n1/mode", {"mode": "asleep"}, "mode must be one of"),
    ("/nodes/n1/slots", {"run_slots": "lots"}, "whole number"),
    ("/nodes/n1/slots", {"run_slots": "0"}, "from 1 to 256"),
    ("/nodes/ghost/mode", {"mode": "disabled"}, "unknown node"),
])
def test_bad_input_is_a_message(browser, node, path, form, message):  # noqa: F811
    user = browser("operator")
    answer = user.post(path, form)
    assert answer.status_code == 302
    page = user.get("/nodes").get_data(as_text=True)
    assert message in page.replace("&#39;", "'")


def test_viewer_sees_no_controls_and_may_not_post(browser, node, store):  # noqa: F811
    user = browser("viewer")
    page = user.get("/nodes").get_data(as_text=True)
    assert 'id="labels-n1"' not in page and "Drain" not in page
    assert user.post("/nodes/n1/mode", {"mode": "disabled"}).status_code == 403
    assert store.nodes.find_one({"_id": "n1"}).get("mode") is None


def test_schedule_form_keeps_node_labels(browser, node, store, config):  # noqa: F811
    """The schedule form's Node labels field: refused while no node carries them, kept
    and shown once one does."""
    from helpers import scan  # discovery.scan, each `scrapy list` answer remembered

    scan(store, config)
    user = browser("operator")
    form = {"spider": "books", "cron": "0 3 * * *", "timezone": "UTC", "nodes": "any",
            "overlap": "skip", "enabled": "on", "labels": "region=eu"}
    page = user.post("/schedules/new", form).get_data(as_text=True)
    assert "no node carries the labels region=eu" in page
    assert store.schedules.count_documents({}) == 0
    user.post("/nodes/n1/labels", {"labels": "region=eu"})
    assert user.post("/schedules/new", form).status_code == 302
    doc = store.schedules.find_one({})
    assert doc["labels"] == {"region": "eu"}
    assert 'value="region=eu"' in user.get(f"/schedules/{doc['_id']}").get_data(as_text=True)
