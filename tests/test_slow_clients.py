"""Slow clients do not take the web server down (issue 16, item 7): with the
shipped settings, 500 idle half-sent requests plus 200 open live-log streams
leave /healthz and an API page answering. A real `crawlfleet web` (gunicorn)
runs as a subprocess; the load is benchmarks/bench_slow_clients.py's, whose
timings (within 1 s) are in the README — here the test only requires that
every probe is answered while the connections stay open, which the gthread
worker of before never did."""

import sys
from pathlib import Path

from conftest import free_port, process_env, wait_for_port
from crawlfleet.tokens import create_token

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.bench_slow_clients import load, running_task, session_cookie  # noqa: E402


def test_idle_connections_and_live_log_streams_leave_the_server_answering(processes, store,
                                                                           config):
    port = free_port()
    web = processes.start("web", "--bind", f"127.0.0.1:{port}",
                          env=process_env(config, CRAWLFLEET_LOG_LEVEL="WARNING"), name="web")
    wait_for_port(port, 60, web)
    url = f"http://127.0.0.1:{port}"
    token = create_token(store, "slow", "viewer")
    task_id = running_task(store)
    result = load(url, token, session_cookie(url, store), task_id, idle=500, streams=200,
                  probes=5, timeout=20.0)
    assert result["streams_open"] == 200
    assert result["statuses"] == {200}
    assert len(result["healthz"]) == len(result["api"]) == 5
    assert web.poll() is None
