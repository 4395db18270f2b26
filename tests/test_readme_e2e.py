"""The README's quick start, driven exactly as a user types it: `crawlfleet up`,
then client verbs in another terminal with the same CRAWLFLEET_HOME; and the
same flow on real servers (Redis, RabbitMQ) with separate processes."""

import csv
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from helpers import (free_port, make_config, purge_broker, rabbitmq_available, redis_available,
                      stop_group, wait_for_port)

CLI = [sys.executable, "-m", "crawlfleet"]


def cli(*args, env, timeout=120):
    return subprocess.run([*CLI, *args], env=env, capture_output=True, text=True,
                          timeout=timeout, start_new_session=True)


def user_env(home, **extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRAWLFLEET_")}
    env["CRAWLFLEET_HOME"] = str(home)
    env.update(extra)
    return env


def start_up(home, port, demo_port, log_path, scrapyd_port=0):
    seen = log_path.stat().st_size if log_path.exists() else 0
    log = open(log_path, "ab")
    proc = subprocess.Popen([*CLI, "up", "--port", str(port), "--demo-port", str(demo_port),
                             "--scrapyd-port", str(scrapyd_port)],
                            env=user_env(home), stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"up exited {proc.returncode}:\n{open(log_path).read()}")
        if "crawlfleet is up." in open(log_path).read()[seen:]:
            return proc
        time.sleep(0.2)
    raise AssertionError("crawlfleet up did not come up:\n" + open(log_path).read())


def ctrl_c(proc, timeout=60):
    """What Ctrl-C in the terminal does: SIGINT to the foreground process."""
    proc.send_signal(signal.SIGINT)
    return proc.wait(timeout)


def test_quick_start_on_embedded_defaults(tmp_path):
    """up → spiders → run books --wait → results --format csv → Ctrl-C → up again keeps it all."""
    home = tmp_path / "data"
    port, demo_port, scrapyd_port = free_port(), free_port(), free_port()
    log_path = tmp_path / "up.log"
    up = start_up(home, port, demo_port, log_path, scrapyd_port)
    try:
        banner = open(log_path).read()
        assert f"http://127.0.0.1:{port}" in banner
        assert "admin token" in banner and "cft_" in banner
        assert str(home) in banner
        # Scrapyd clients get host:port, with the banner's token as the password
        assert f"Scrapyd API   http://127.0.0.1:{scrapyd_port}" in banner
        token = re.search(r"admin token\s+(cft_\S+)", banner).group(1)
        scrapyd = requests.get(f"http://127.0.0.1:{scrapyd_port}/listprojects.json",
                               auth=("me", token), timeout=30)
        assert scrapyd.status_code == 200 and "books" in scrapyd.json()["projects"]
        env = user_env(home)  # "another terminal": only CRAWLFLEET_HOME is shared

        listed = cli("spiders", env=env)
        assert listed.returncode == 0, listed.stderr
        assert "books" in listed.stdout and "plain_catalogue" in listed.stdout

        ran = cli("run", "books", "--wait", env=env)
        assert ran.returncode == 0, ran.stdout + ran.stderr
        assert "Spider closed (finished)" in ran.stdout  # the log was streamed
        last = ran.stdout.strip().splitlines()[-1]
        assert "finished" in last and "300 items" in last, last
        task_id = last.split()[1]

        exported = cli("results", task_id, "--format", "csv", env=env)
        assert exported.returncode == 0, exported.stderr
        rows = list(csv.DictReader(io.StringIO(exported.stdout)))
        assert len(rows) == 300
        assert all(row["_tid"] == task_id for row in rows)
        assert {"title", "price", "url"} <= set(rows[0])

        plain = cli("run", "plain_catalogue", "--wait", "--json", "-a", "max_pages=1", env=env)
        assert plain.returncode == 0, plain.stdout + plain.stderr
        as_json = json.loads(plain.stdout)
        assert as_json["status"] == "finished" and as_json["id"]

        assert ctrl_c(up) == 0
        up = None
        leftovers = subprocess.run(["pgrep", "-f", str(home)], capture_output=True, text=True)
        assert leftovers.stdout.strip() == "", "processes outlived Ctrl-C"

        up = start_up(home, port, demo_port, log_path)
        tasks = json.loads(cli("tasks", "--json", env=env).stdout)
        assert task_id in [t["id"] for t in tasks]
        again = cli("results", task_id, "--format", "jsonl", env=env)
        assert len(again.stdout.strip().splitlines()) == 300
        logs = cli("logs", task_id, env=env)
        assert "Spider closed (finished)" in logs.stdout
    finally:
        if up is not None:
            try:
                ctrl_c(up)
            except subprocess.TimeoutExpired:
                pass
            stop_group(up)


SERVERS = {
    "redis": ("redis://127.0.0.1:6379/6", redis_available),
    "rabbitmq": ("amqp://guest:guest@127.0.0.1:5672//", rabbitmq_available),
}


@pytest.mark.parametrize("broker", list(SERVERS))
def test_separate_processes_on_a_real_broker(broker, tmp_path, mongo_server, demo_site):
    """`crawlfleet master`, `node` and `web` on Redis or RabbitMQ, driven by the CLI."""
    url, available = SERVERS[broker]
    if not available():
        pytest.fail(f"{broker} is not running (.ci/run starts it)")
    config = make_config(tmp_path, mongo_server, broker=broker)
    port = free_port()
    base = user_env(tmp_path / "home", CRAWLFLEET_MONGO_URI=mongo_server,
                    CRAWLFLEET_MONGO_DB=config.mongo_db, CRAWLFLEET_BROKER_URL=url,
                    CRAWLFLEET_QUEUE_PREFIX=config.queue_prefix, CRAWLFLEET_DEMO_URL=demo_site)
    token = cli("token", "create", "--name", "e2e", env=base)
    assert token.returncode == 0, token.stderr
    client_env = dict(base, CRAWLFLEET_API_URL=f"http://127.0.0.1:{port}",
                      CRAWLFLEET_TOKEN=token.stdout.strip())
    procs = []
    try:
        for args, extra in ((["master"], {}),
                            (["node"], {"CRAWLFLEET_NODE_ID": "alpha"}),
                            (["node"], {"CRAWLFLEET_NODE_ID": "beta"}),
                            (["web", "--bind", f"127.0.0.1:{port}"], {})):
            log = open(tmp_path / f"{args[0]}-{len(procs)}.log", "wb")
            procs.append(subprocess.Popen([*CLI, *args], env=dict(base, **extra), stdout=log,
                                          stderr=subprocess.STDOUT, start_new_session=True))
        wait_for_port(port, timeout=60, proc=procs[-1])
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            nodes = json.loads(cli("nodes", "--json", env=client_env).stdout or "[]")
            spiders = cli("spiders", env=client_env).stdout
            if len([n for n in nodes if n.get("online")]) == 2 and "books" in spiders:
                break
            time.sleep(0.5)
        else:
            raise AssertionError(f"nodes or spiders missing: {nodes} {spiders}")

        ran = cli("run", "books", "--wait", "--json", "-a", "max_pages=3", env=client_env)
        assert ran.returncode == 0, ran.stdout + ran.stderr
        task = json.loads(ran.stdout)
        assert task["status"] == "finished" and task["stats"]["items"] == 60

        everywhere = cli("run", "plain_catalogue", "--all-nodes", "--wait", "--json",
                         "-a", "max_pages=1", env=client_env)
        assert everywhere.returncode == 0, everywhere.stdout + everywhere.stderr
        tasks = json.loads(everywhere.stdout)
        assert sorted(t["node_id"] for t in tasks) == ["alpha", "beta"]
    finally:
        for proc in reversed(procs):
            stop_group(proc)
        purge_broker(config.replace(broker_url=url), ["alpha", "beta"])
