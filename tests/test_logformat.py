"""Tests for JSON logs (crawlfleet/logformat.py, log_format=json): one JSON object
per line with the fields a log collector needs, from crawlfleet's own loggers
and from gunicorn's, in real processes."""

import json
import logging
import subprocess
import sys

from helpers import free_port, process_env, stop_group, wait_for, wait_for_port
from crawlfleet import logformat

FIELDS = {"time", "level", "role", "logger", "message", "pid"}


def json_lines(path):
    """Every line of a log file, each parsed as JSON (fails on any other line)."""
    text = path.read_text()
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_a_record_is_one_json_line_with_its_exception():
    """Message, level, role, logger and an ISO time; a traceback stays on the line."""
    formatter = logformat.JsonFormatter("node")
    try:
        raise ValueError("bad\nthing")
    except ValueError:
        record = logging.getLogger("node.agent").makeRecord(
            "node.agent", logging.ERROR, __file__, 1, "task %s failed", ("t1",), sys.exc_info())
    line = formatter.format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert FIELDS <= set(entry) and entry["role"] == "node" and entry["level"] == "ERROR"
    assert entry["logger"] == "node.agent" and entry["message"] == "task t1 failed"
    assert entry["time"].endswith("Z") and entry["time"][10] == "T"
    assert "ValueError: bad\nthing" in entry["exception"]


def test_text_stays_the_default(config):
    assert config.log_format == "text"
    text = logformat.formatter("text", "master").format(
        logging.makeLogRecord({"name": "x", "levelname": "INFO", "msg": "hello"}))
    assert text.endswith("master INFO x: hello")


def test_node_and_web_processes_log_json(config, store, tmp_path):
    """`crawlfleet node` and `crawlfleet web` with CRAWLFLEET_LOG_FORMAT=json write
    nothing but JSON lines on stderr, gunicorn's own lines included."""
    env = process_env(config, CRAWLFLEET_LOG_FORMAT="json", CRAWLFLEET_NODE_ID="json-node")
    port = free_port()
    procs = []
    try:
        for name, args in (("node", ["node"]), ("web", ["web", "--bind", f"127.0.0.1:{port}"])):
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "crawlfleet", *args], env=env,
                stdout=open(tmp_path / f"{name}.out", "wb"),
                stderr=open(tmp_path / f"{name}.log", "wb"),
                stdin=subprocess.DEVNULL, start_new_session=True))
        wait_for(lambda: store.nodes.find_one({"_id": "json-node", "status": "online"}), 60,
                 "node registered")
        wait_for_port(port, timeout=60, proc=procs[1])
        wait_for(lambda: "Booting worker" in (tmp_path / "web.log").read_text(), 30,
                 "gunicorn booted a worker")
    finally:
        for proc in procs:
            stop_group(proc)
    node = json_lines(tmp_path / "node.log")
    assert any(e["message"].startswith("node json-node registered") for e in node), node
    assert all(FIELDS <= set(e) and e["role"] == "node" for e in node)
    web = json_lines(tmp_path / "web.log")
    assert any(e["logger"] == "gunicorn.error" and "Booting worker" in e["message"] for e in web)
    assert all(e["role"] == "web" for e in web)
