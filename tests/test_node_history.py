"""A node's history (crawlfleet/nodehistory.py): one sample a minute from the
heartbeat, the node page's charts and recent tasks, the API route and
`crawlfleet node history`, against a real node process."""

import json
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from helpers import ROOT, make_config, wait_for, wait_task
from test_cli_client import api, cli  # noqa: F401  (the CLI's fixture: the API served)
from test_ui import app, browser  # noqa: F401  (the signed-in test client)
from crawlfleet import nodehistory
from crawlfleet.errors import BadRequest

FIXTURES = Path(__file__).parent / "fixtures" / "spiders"


@pytest.fixture
def config(tmp_path, mongo_server):
    """The bundled spiders and the test fixtures' (napper)."""
    return make_config(tmp_path, mongo_server, spiders_path=f"{ROOT / 'spiders'}:{FIXTURES}")


class Clock:
    def __init__(self, at):
        self.at = at

    def __call__(self):
        return self.at


def test_a_sample_at_most_once_a_minute(store):
    """Offers within a minute of the last sample are dropped, also after a restart
    (the last sample's time comes from the store); 0 days of retention records none."""
    base = float(int(time.time()))  # a sample of 1970 would be past its drop_after at once
    clock = Clock(base)
    sampler = nodehistory.Sampler(store, "n1", 7, clock=clock)
    assert sampler.offer(0.5, 40.0, 1, 2)
    for later in (3, 30, 59.9):
        clock.at = base + later
        assert not sampler.offer(0.6, 41.0, 1, 2), later
    clock.at = base + 60
    assert sampler.offer(0.7, 42.0, 2, 2)
    clock.at = base + 90
    restarted = nodehistory.Sampler(store, "n1", 7, clock=clock)
    assert not restarted.offer(0.1, 10.0, 0, 2)
    assert nodehistory.Sampler(store, "n2", 7, clock=clock).offer(0.1, 10.0, 0, 4)  # per node
    clock.at = base + 121
    assert restarted.offer(0.2, 11.0, 0, 2)
    assert not nodehistory.Sampler(store, "n3", 0, clock=clock).offer(0.1, 1.0, 0, 1)
    samples = list(store.db.node_samples.find({"node_id": "n1"}).sort("at", 1))
    assert [(s["at"], s["load"], s["busy"], s["slots"]) for s in samples] == [
        (base, 0.5, 1, 2), (base + 60, 0.7, 2, 2), (base + 121, 0.2, 0, 2)]
    drop = samples[0]["drop_after"]
    drop = drop if drop.tzinfo else drop.replace(tzinfo=timezone.utc)
    assert drop == datetime.fromtimestamp(base + 7 * 86400, tz=timezone.utc)
    assert store.db.node_samples.count_documents({"node_id": "n3"}) == 0


def test_node_history_days_may_not_be_negative(tmp_path):
    """A negative retention stops the process with one line naming the setting."""
    from crawlfleet.config import Config
    from crawlfleet.errors import ConfigError

    with pytest.raises(ConfigError, match="node_history_days must be 0"):
        Config.from_dict({"home": str(tmp_path), "node_history_days": -1})


def test_history_window_counts_tasks_per_hour(store):
    """Samples and tasks inside the window only; tasks per hour, newest task first."""
    until = 2_000_000.0
    for minutes_ago in (30 * 60, 90, 30, 1):
        store.db.node_samples.insert_one({"node_id": "n1", "at": until - minutes_ago * 60,
                                          "load": 1.0, "memory_percent": 50.0, "busy": 1,
                                          "slots": 2})
    store.db.node_samples.insert_one({"node_id": "n2", "at": until - 60, "load": 9.0})
    for i, (hours_ago, status) in enumerate(((0.2, "running"), (0.5, "finished"),
                                             (2.5, "error"), (30, "finished"))):
        started = until - hours_ago * 3600
        store.tasks.insert_one({"_id": f"t{i}", "node_id": "n1", "spider": "books",
                                "status": status, "created_at": started,
                                "started_at": started,
                                "finished_at": None if status == "running" else started + 12})
    history = nodehistory.node_history(store, "n1", 3, until=until)
    assert [s["at"] for s in history["samples"]] == [until - 90 * 60, until - 30 * 60,
                                                     until - 60]
    tasks = history["tasks"]
    assert tasks["started"] == 3 and tasks["by_status"] == {"running": 1, "finished": 1,
                                                            "error": 1}
    assert [h["tasks"] for h in tasks["per_hour"]] == [1, 0, 2]
    assert [t["task_id"] for t in tasks["recent"]] == ["t0", "t1", "t2"]
    assert tasks["recent"][0]["duration"] is None and tasks["recent"][1]["duration"] == 12
    assert nodehistory.node_history(store, "n1", 48, until=until)["tasks"]["started"] == 4


@pytest.mark.parametrize("raw", ["0", "169", "-1", "1.5", "day", "１"])
def test_bad_hours_are_refused(raw):
    """A window is a whole number of hours from 1 to 168, in ASCII digits."""
    with pytest.raises(BadRequest, match="hours must be a whole number from 1 to 168"):
        nodehistory.parse_hours(raw)


def test_a_real_node_records_samples_and_its_tasks_show(api, browser, client, auth,  # noqa: F811
                                                        store, processes):
    """A node records a sample from its first heartbeat; a task it ran shows on its page,
    in the API and in `crawlfleet node history`; bad input is one line, never a 500."""
    processes.node(store, "hist-node", max_runners=2)
    wait_for(lambda: store.db.node_samples.find_one({"node_id": "hist-node"}),
             what="the node's first sample")
    result = cli("run", "napper", "-a", "secs=0.1", "--node", "hist-node")
    assert result.exit_code == 0, result.output
    task_id = result.output.split()[0]
    assert wait_task(store, task_id, timeout=60)["status"] == "finished"

    answer = client.get("/api/v1/nodes/hist-node/history?hours=2", headers=auth.viewer)
    assert answer.status_code == 200, answer.get_json()
    doc = answer.get_json()
    assert doc["node"] == "hist-node" and doc["hours"] == 2
    assert len(doc["tasks"]["per_hour"]) == 2
    # the node beats every few seconds, but samples a minute apart
    stamps = [s["at"] for s in doc["samples"]]
    assert stamps and all(b - a >= 60 for a, b in zip(stamps, stamps[1:]))
    assert doc["samples"][0]["slots"] == 2
    assert isinstance(doc["samples"][0]["memory_percent"], (int, float))
    recent = doc["tasks"]["recent"]
    assert [(t["task_id"], t["spider"], t["status"]) for t in recent] == [
        (task_id, "napper", "finished")]
    assert recent[0]["duration"] > 0 and doc["tasks"]["started"] == 1

    for query, message in (("?hours=0", "hours must be a whole number"),
                           ("?hours=abc", "hours must be a whole number"),
                           ("?hours=500", "from 1 to 168")):
        answer = client.get(f"/api/v1/nodes/hist-node/history{query}", headers=auth.viewer)
        assert answer.status_code == 400 and message in answer.get_json()["error"], query
    answer = client.get("/api/v1/nodes/ghost/history", headers=auth.viewer)
    assert answer.status_code == 404 and "unknown node 'ghost'" in answer.get_json()["error"]
    assert client.get("/api/v1/nodes/hist-node/history").status_code == 401

    user = browser("viewer")
    listing = user.get("/nodes").get_data(as_text=True)
    assert 'href="/nodes/hist-node"' in listing
    page = user.get("/nodes/hist-node?hours=6")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    for metric in ("load", "memory_percent", "busy", "tasks"):
        assert f'data-metric="{metric}"' in html, metric
    assert 'class="node-line' in html  # a line, or a lone sample's stroke
    assert f'href="/tasks/{task_id}"' in html and "napper" in html and "Last 6 h" in html
    assert user.get("/nodes/ghost").status_code == 404
    assert user.get("/nodes/hist-node?hours=x").status_code == 400

    result = cli("node", "history", "hist-node", "--hours", "3")
    assert result.exit_code == 0, result.output
    assert "hist-node, last 3 h: " in result.output and "CPU load      now" in result.output
    assert "1 task(s) started, 1 finished" in result.output and task_id in result.output
    doc = json.loads(cli("node", "history", "hist-node", "--json").stdout)
    assert doc["hours"] == 24 and doc["tasks"]["recent"][0]["task_id"] == task_id
    assert cli("node", "history", "hist-node", "--hours", "0").exit_code == 2
    result = cli("node", "history", "ghost")
    assert result.exit_code == 1 and "unknown node 'ghost'" in result.output


def test_a_week_of_samples_is_a_bounded_chart_broken_where_the_node_was_down():
    """10,080 samples draw at most one point per column, and a silence of hours
    splits the line in two instead of drawing across it."""
    from web import nodecharts

    until = 3_000_000.0
    since = until - 168 * 3600
    samples = [{"at": since + i * 60, "load": (i % 7) / 2, "memory_percent": 50.0,
                "busy": 1, "slots": 2}
               for i in range(168 * 60) if not 3000 <= i < 4000]  # ~17 h down
    history = {"since": since, "until": until, "hours": 168, "sample_every": 60.0,
               "samples": samples,
               "tasks": {"started": 0, "per_hour": nodehistory.per_hour([], since, 168)}}
    charts = [str(c) for c in nodecharts.charts(history)]
    load = charts[0]
    assert load.count("<title>") <= nodecharts.COLUMNS
    assert load.count("<polyline") == 2
    assert 'data-metric="tasks"' in charts[3] and charts[3].count("<rect") == 168
