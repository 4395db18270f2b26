"""A real node subprocess runs real spiders from the ledger, on each broker."""

import os
import signal
import time
from pathlib import Path

import pytest
from kombu import Connection

from helpers import (BROKERS, Processes, make_config, purge_broker, rabbitmq_available,
                      redis_available, scan, task_log, wait_for, wait_task)
from crawlfleet.broker import Broker, Topology
from crawlfleet.store import Store
from master import dispatch

FIXTURES = Path(__file__).parent / "fixtures" / "spiders"
BUNDLED = Path(__file__).parent.parent / "spiders"


def available(broker):
    return {"embedded": True, "redis": redis_available(), "rabbitmq": rabbitmq_available()}[broker]


def platform(broker, tmp_path, mongo_server, demo_site, **settings):
    """Store, broker and discovered spiders (bundled + fixtures) on one broker kind."""
    if not available(broker):
        pytest.fail(f"{broker} is not running on this machine (.ci/run starts it)")
    config = make_config(tmp_path, mongo_server, broker=broker,
                         spiders_path=f"{BUNDLED}:{FIXTURES}", **settings)
    store = Store(config)
    store.ensure_indexes()
    report = scan(store, config)
    assert not report["errors"], report
    broker = Broker(config)
    procs = Processes(config, demo_site, tmp_path)
    yield config, store, broker, procs
    procs.stop_all()
    broker.close()
    purge_broker(config, procs.node_ids)
    store.client.drop_database(config.mongo_db)
    store.close()


@pytest.fixture(params=list(BROKERS))
def env(request, tmp_path, mongo_server, demo_site):
    yield from platform(request.param, tmp_path, mongo_server, demo_site)


@pytest.fixture
def emb(tmp_path, mongo_server, demo_site):
    """The platform on the embedded broker, for behaviour that does not depend on it."""
    yield from platform("embedded", tmp_path, mongo_server, demo_site)


def run(config, store, broker, spider, **kwargs):
    return dispatch.run_spider(store, broker, config, spider, **kwargs)[0]["_id"]


def test_books_crawl_stores_every_item_with_its_task_id(env):
    """The bundled Scrapy project crawls the demo site through a node: 300 items, tagged."""
    config, store, broker, procs = env
    procs.node(store)
    task_id = run(config, store, broker, "books")
    task = wait_task(store, task_id, timeout=90)
    assert task["status"] == "finished", "\n".join(task_log(store, task_id))
    assert task["exit_code"] == 0
    assert task["stats"]["items"] == 300, "\n".join(task_log(store, task_id))
    assert task["stats"]["pages"] >= 300
    items = list(store.results("results_books").find({"_tid": task_id}))
    assert len(items) == 300
    assert all(item["task_id"] == task_id for item in items)
    assert {"title", "price", "upc", "url"} <= set(items[0])
    assert task["log_lines"] > 0 and any("Spider closed" in line for line in task_log(store, task_id))


def test_generic_spider_runs_with_args_and_stores_items(env):
    """A plain-Python spider gets its arguments and saves through the SDK."""
    config, store, broker, procs = env
    procs.node(store)
    task_id = run(config, store, broker, "plain_catalogue", args={"max_pages": "2"})
    task = wait_task(store, task_id)
    assert task["status"] == "finished", "\n".join(task_log(store, task_id))
    assert store.results("results_plain_catalogue").count_documents({"_tid": task_id}) == 40
    assert task["stats"]["items"] == 40


def test_to_all_nodes_runs_one_task_per_online_node(env):
    """nodes="all" makes one task per online node, each run by that node."""
    config, store, broker, procs = env
    first, second = procs.node(store), procs.node(store)
    tasks = dispatch.run_spider(store, broker, config, "plain_catalogue",
                                args={"max_pages": "1"}, nodes="all")
    assert sorted(t["target"] for t in tasks) == sorted([first.node_id, second.node_id])
    for task in tasks:
        done = wait_task(store, task["_id"])
        assert done["status"] == "finished"
        assert done["node_id"] == task["target"]


def test_crashing_spider_is_error_with_exit_code_and_traceback(emb):
    """A spider that raises ends `error` with its exit code; its traceback is in the log."""
    config, store, broker, procs = emb
    procs.node(store)
    task_id = run(config, store, broker, "crasher")
    task = wait_task(store, task_id)
    assert task["status"] == "error"
    assert task["exit_code"] == 1
    assert task["error"] == "exit code 1"
    log = "\n".join(task_log(store, task_id))
    assert "Traceback (most recent call last)" in log
    assert "ValueError: this spider crashes on purpose" in log
    # what it saved before crashing is kept, tagged with the task
    assert store.results("results_crasher").count_documents({"_tid": task_id}) == 1


def test_spider_that_never_ends_times_out(emb):
    """A task past its timeout is stopped (SIGINT, then harder) and marked `timeout`."""
    config, store, broker, procs = emb
    procs.node(store)
    task_id = run(config, store, broker, "sleeper", timeout=1.5)
    task = wait_task(store, task_id, timeout=30)
    assert task["status"] == "timeout"
    assert "timed out after 1.5 s" in task["error"]
    assert task["finished_at"] - task["started_at"] < 15


def test_cancel_escalates_and_kills_grandchildren(emb):
    """Cancel ends a spider that ignores SIGINT, and the children it started, via its group."""
    config, store, broker, procs = emb
    procs.node(store)
    task_id = run(config, store, broker, "forker")
    wait_for(lambda: any("grandchild pid" in line for line in task_log(store, task_id)),
             what="grandchild started")
    line = next(line for line in task_log(store, task_id) if "grandchild pid" in line)
    grandchild = int(line.rsplit(" ", 1)[1])
    # the spider may see its own PID namespace: find the grandchild from here
    group = wait_for(lambda: store.tasks.find_one({"_id": task_id}).get("pid"), what="pid")
    assert _host_pid(group, grandchild) is not None
    started = time.monotonic()
    task = dispatch.request_cancel(store, broker, task_id)
    assert task["cancel_requested"]
    task = wait_task(store, task_id, timeout=30)
    assert task["status"] == "cancelled"
    assert time.monotonic() - started < 4 * config.cancel_grace
    wait_for(lambda: _host_pid(group, grandchild) is None, timeout=10, what="grandchild gone")


def test_cancel_of_a_spider_that_ignores_sigint_escalates_to_sigterm(emb):
    """A spider deaf to SIGINT is ended by SIGTERM after the grace period."""
    config, store, broker, procs = emb
    procs.node(store)
    task_id = run(config, store, broker, "sleeper", args={"ignore_int": "1"})
    wait_task(store, task_id, statuses={"running"})
    wait_for(lambda: store.tasks.find_one({"_id": task_id}).get("pid"), what="spider started")
    # The spider says so after it has set SIGINT aside: only then is the test fair.
    wait_for(lambda: any("sleeping forever" in line for line in task_log(store, task_id)),
             timeout=30, what="the spider ignoring SIGINT")
    dispatch.request_cancel(store, broker, task_id)
    task = wait_task(store, task_id, timeout=30)
    assert task["status"] == "cancelled"
    assert task["exit_code"] == -signal.SIGTERM
    assert any("after SIGINT" in line for line in task_log(store, task_id))


def test_arguments_with_shell_metacharacters_arrive_as_plain_strings(emb, tmp_path):
    """Arguments go into argv as list items: nothing is interpreted by a shell."""
    config, store, broker, procs = emb
    procs.node(store)
    marker = tmp_path / "pwned"
    evil = f"$(touch {marker}); `touch {marker}` | rm -rf ~ && echo '\"; *"
    task_id = run(config, store, broker, "echo_args", args={"q": evil, "n": 3})
    task = wait_task(store, task_id)
    assert task["status"] == "finished", "\n".join(task_log(store, task_id))
    item = store.results("results_echo_args").find_one({"_tid": task_id})
    assert item["argv"] == [f"--q={evil}", "--n=3"]
    assert not marker.exists()


def test_spider_environment_has_crawlfleet_and_crawlab_variables(emb):
    """The spider process gets the task's facts under crawlfleet's and Crawlab's
    names, and no credential of the platform: no store URI or address, no token."""
    config, store, broker, procs = emb
    node = procs.node(store)
    task_id = run(config, store, broker, "echo_args")
    wait_task(store, task_id)
    env = store.results("results_echo_args").find_one({"_tid": task_id})["env"]
    assert env["CRAWLFLEET_TASK_ID"] == task_id == env["CRAWLAB_TASK_ID"]
    assert env["CRAWLFLEET_SPIDER"] == "echo_args"
    assert env["CRAWLFLEET_NODE_ID"] == node.node_id
    assert env["CRAWLFLEET_MONGO_DB"] == config.mongo_db == env["CRAWLAB_MONGO_DB"]
    assert env["CRAWLFLEET_RESULTS_COLLECTION"] == "results_echo_args" == env["CRAWLAB_COLLECTION"]
    assert "CRAWLFLEET_MONGO_URI" not in env and "CRAWLAB_MONGO_HOST" not in env
    assert "CRAWLFLEET_TOKEN" not in env


def test_spider_environment_is_built_from_an_allowlist(emb):
    """Nothing of the node's own environment reaches a spider beyond PATH,
    locale and proxies: not its settings, not a stray secret; HOME is the
    task's own folder."""
    config, store, broker, procs = emb
    procs.node(store, STRAY_SECRET="s3cr3t-value", https_proxy="http://proxy.example:3128",
               LANG="C.UTF-8")
    task_id = run(config, store, broker, "echo_args")
    wait_task(store, task_id)
    item = store.results("results_echo_args").find_one({"_tid": task_id})
    env = {**item["env"], **item["other_env"]}
    assert "s3cr3t-value" not in repr(env)
    assert env["https_proxy"] == "http://proxy.example:3128" and env["LANG"] == "C.UTF-8"
    assert env["HOME"].endswith(task_id) and config.home not in env["PATH"]
    platform = {k for k in env if k.startswith("CRAWLFLEET_")} - {
        "CRAWLFLEET_TASK_ID", "CRAWLFLEET_SPIDER", "CRAWLFLEET_NODE_ID", "CRAWLFLEET_MONGO_DB",
        "CRAWLFLEET_RESULTS_COLLECTION", "CRAWLFLEET_ARGS", "CRAWLFLEET_STATS_INTERVAL",
        "CRAWLFLEET_ITEMS_PIPE", "CRAWLFLEET_CHANNEL_FD", "CRAWLFLEET_DEMO_URL"}
    assert platform == set(), platform


def test_invalid_settings_are_rejected_before_anything_is_written(emb):
    """Bad args or settings are a 400-class error and leave the ledger untouched."""
    from crawlfleet.errors import BadRequest, NotFound

    config, store, broker, procs = emb
    for kwargs in ({"settings": {"lower_case": "1"}}, {"args": {"bad name": "x"}},
                   {"args": ["not", "a", "dict"]}, {"settings": {"X": {"nested": 1}}},
                   {"priority": 42}, {"timeout": -1}):
        with pytest.raises(BadRequest):
            dispatch.run_spider(store, broker, config, "books", **kwargs)
    with pytest.raises(NotFound, match="known spiders: .*books"):
        dispatch.run_spider(store, broker, config, "nope")
    assert store.tasks.count_documents({}) == 0


def test_malformed_messages_are_dropped_and_the_node_keeps_consuming(emb):
    """Garbage on the task queue is logged and dropped; the next real task still runs."""
    config, store, broker, procs = emb
    node = procs.node(store)
    topology = Topology(config.queue_prefix)
    with broker.connection.clone() as conn:
        producer = conn.Producer()
        queue = topology.shared_queue
        for body, kwargs in ((b"\xff\xfe not json", {"content_type": "application/json",
                                                       "content_encoding": "binary"}),
                             ({"task_id": "../../etc/passwd"}, {"serializer": "json"}),
                             (["a", "list"], {"serializer": "json"}),
                             ({"task_id": "doesnotexist"}, {"serializer": "json"}),
                             ("plain text", {"serializer": "pickle"})):
            producer.publish(body, exchange=topology.task_exchange, routing_key="any",
                             declare=[queue], **kwargs)
    task_id = run(config, store, broker, "plain_catalogue", args={"max_pages": "1"})
    assert wait_task(store, task_id)["status"] == "finished"
    assert node.poll() is None
    log = open(node.log_path).read()
    assert "malformed task message" in log


def test_a_killed_node_leaves_its_task_abnormal_not_running(emb):
    """kill -9 of a node: the master sees the heartbeat lapse and marks its task abnormal."""
    config, store, broker, procs = emb
    procs.master()
    node = procs.node(store)
    task_id = run(config, store, broker, "sleeper")
    wait_task(store, task_id, statuses={"running"})
    spider_pid = wait_for(lambda: store.tasks.find_one({"_id": task_id}).get("pid"),
                          what="spider started")
    try:
        os.killpg(node.pid, signal.SIGKILL)
        task = wait_task(store, task_id, timeout=config.node_timeout + 20)
        assert task["status"] == "abnormal"
        assert "stopped heartbeating" in task["error"]
        assert store.nodes.find_one({"_id": node.node_id})["status"] == "offline"
    finally:
        try:
            os.killpg(spider_pid, signal.SIGKILL)  # the orphaned spider's own group
        except ProcessLookupError:
            pass


def test_redelivered_message_for_a_finished_task_is_dropped(emb):
    """Publishing a finished task again does not run it a second time."""
    config, store, broker, procs = emb
    node = procs.node(store)
    task_id = run(config, store, broker, "echo_args")
    first = wait_task(store, task_id)
    broker.publish_task(task_id)
    # The node's answer to the second message, in its log: the ledger refused the claim.
    wait_for(lambda: f"dropped a message for task {task_id}: it is finished"
             in open(node.log_path).read(), timeout=30, what="the duplicate dropped")
    again = store.tasks.find_one({"_id": task_id})
    assert again["started_at"] == first["started_at"]
    assert store.results("results_echo_args").count_documents({"_tid": task_id}) == 1


def _host_pid(pgid, inner_pid):
    """The PID on this machine of the process `inner_pid` (as its PID namespace
    numbers it) in process group `pgid`, or None when none is left."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            status = open(f"/proc/{entry}/status").read()
            if os.getpgid(int(entry)) != pgid:
                continue
        except (OSError, ProcessLookupError):
            continue
        nspid = next((line.split()[1:] for line in status.splitlines()
                      if line.startswith("NSpid:")), [])
        if nspid and int(nspid[-1]) == inner_pid:
            return int(entry)
    return None


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie waiting for its reaper is dead for our purpose
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


def test_node_js_spider_writes_items_through_the_pipe(emb):
    """A Node.js spider with no database driver writes JSON lines; the node stores them."""
    config, store, broker, procs = emb
    procs.node(store)
    task_id = run(config, store, broker, "node_catalogue", args={"max_pages": "3"})
    task = wait_task(store, task_id)
    assert task["status"] == "finished", "\n".join(task_log(store, task_id))
    items = list(store.results("results_node_catalogue").find({"_tid": task_id}))
    assert len(items) == 60 and task["stats"]["items"] == 60
    assert all(i["task_id"] == task_id and i["crawled_by"] == "node.js" for i in items)
    assert any("items pipe: 60 items stored" in line for line in task_log(store, task_id))


def test_requirements_install_into_a_shared_environment(emb):
    """requirements.txt is installed once per node into an environment reused by later tasks."""
    config, store, broker, procs = emb
    procs.node(store)
    first = wait_task(store, run(config, store, broker, "with_deps"), timeout=240)
    assert first["status"] == "finished", task_log(store, first["_id"])
    log = task_log(store, first["_id"])
    assert any("making environment" in line for line in log)
    assert any("pip: " in line and "tomli" in line for line in log)
    item = store.results("results_with_deps").find_one({"_tid": first["_id"]})
    assert item["toml"] == "ok = true\n"
    assert str(config.home_path / "venvs") in item["module"]
    second = wait_task(store, run(config, store, broker, "with_deps"), timeout=60)
    assert second["status"] == "finished"
    assert any("reusing environment" in line for line in task_log(store, second["_id"]))


def test_failing_requirements_fail_the_task_with_pip_output(emb):
    """A requirements file naming a package that does not exist: error, pip's words in the log."""
    config, store, broker, procs = emb
    procs.node(store)
    task = wait_task(store, run(config, store, broker, "bad_deps"), timeout=240)
    assert task["status"] == "error"
    assert "dependency install failed" in task["error"]
    log = "\n".join(task_log(store, task["_id"]))
    assert "crawlfleet-no-such-package-4c1d" in log
    assert "never runs" not in log


def test_output_flood_is_capped_and_the_task_still_finishes(emb):
    """Binary bytes, an 8 MB line and 300k lines: the log is capped with markers, the node stays up."""
    config, store, broker, procs = emb
    node = procs.node(store, CRAWLFLEET_LOG_MAX_LINES=50000, CRAWLFLEET_LOG_MAX_LINE_BYTES=4096)
    task_id = run(config, store, broker, "flood", args={"lines": "300000"})
    task = wait_task(store, task_id, timeout=120)
    assert task["status"] == "finished", task_log(store, task_id)[-20:]
    log = task_log(store, task_id)
    assert any(line.startswith("binary: \\x00") and "\ufffd" in line for line in log)
    huge = next(line for line in log if line.startswith("xxxx"))
    assert len(huge) < 4096 + 100 and "line cut at 4096 bytes" in huge
    assert len(log) <= 50000 + 10
    assert any("more lines dropped (log_max_lines = 50000)" in line for line in log)
    assert task["log_lines"] == len(log)
    assert node.poll() is None
    beat = store.nodes.find_one({"_id": node.node_id})["heartbeat_at"]
    assert time.time() - beat < 5  # it kept heartbeating through the flood
