"""Slow clients against a real `crawlfleet web` (issue 16, item 7): open
500 idle half-sent requests and 200 live-log streams (server-sent events of a
running task), then time `/healthz` and an API page (`/api/v1/tasks`) while
they all stay open, for each gunicorn worker class.

    python benchmarks/bench_slow_clients.py [--idle 500] [--streams 200] [--probes 20]

Bounded: every socket has a timeout, everything is closed at the end, and
the web server and the embedded store run in their own process groups.
`load` is also what tests/test_slow_clients.py runs against the shipped
settings.
"""

import socket
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.harness import Platform, headline, options, percentile, table  # noqa: E402
from crawlfleet.models import new_task  # noqa: E402

CONNECT_TIMEOUT = 10.0


def _connect(url):
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=CONNECT_TIMEOUT)
    return sock


def open_half_requests(url, count):
    """`count` connections that each send half a request and then nothing."""
    out = []
    for _ in range(count):
        sock = _connect(url)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nUser-Agent: slow")
        out.append(sock)
    return out


def session_cookie(url, store, name="slowviewer"):
    """A signed-in viewer's session cookie (live logs are a page of the UI)."""
    import re

    import requests

    from crawlfleet import users

    password = users.new_password()
    users.create_user(store, name, password, "viewer")
    with requests.Session() as session:
        page = session.get(url + "/login", timeout=30).text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        response = session.post(url + "/login", timeout=30, allow_redirects=False, data={
            "username": name, "password": password, "csrf_token": csrf})
        assert response.status_code == 302, response.status_code
        return session.cookies["crawlfleet_session"]


def open_streams(url, cookie, task_id, count):
    """`count` live-log streams of `task_id`, each read up to its first event."""
    out = []
    request = (f"GET /tasks/{task_id}/log/stream HTTP/1.1\r\nHost: x\r\n"
               f"Cookie: crawlfleet_session={cookie}\r\n"
               f"Accept: text/event-stream\r\n\r\n").encode()
    for _ in range(count):
        sock = _connect(url)
        sock.sendall(request)
        out.append(sock)
    started = []
    for sock in out:
        sock.settimeout(60)
        head = sock.recv(4096)
        started.append(head.startswith(b"HTTP/1.1 200"))
    return out, sum(started)


def timed_get(session, url, token=None, timeout=30.0):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    begin = time.perf_counter()
    response = session.get(url, headers=headers, timeout=timeout)
    return time.perf_counter() - begin, response.status_code


def load(url, token, cookie, task_id, idle=500, streams=200, probes=20, timeout=30.0):
    """Open the slow clients, then time `probes` calls of /healthz and of an API
    page; returns {"healthz": [s...], "api": [s...], "statuses": set,
    "streams_open": n}. Every socket is closed before it returns."""
    import requests

    sockets = []
    try:
        sockets += open_half_requests(url, idle)
        stream_socks, streaming = open_streams(url, cookie, task_id, streams)
        sockets += stream_socks
        times = {"healthz": [], "api": []}
        statuses = set()
        for _ in range(probes):
            with requests.Session() as session:
                for key, path, auth in (("healthz", "/healthz", None),
                                        ("api", "/api/v1/tasks?limit=20", token)):
                    seconds, status = timed_get(session, url + path, auth, timeout)
                    times[key].append(seconds)
                    statuses.add(status)
        return {**times, "statuses": statuses, "streams_open": streaming}
    finally:
        for sock in sockets:
            sock.close()


def running_task(store):
    """A task that stays `running`, so its live-log streams stay open."""
    spider = {"_id": "slow", "project": "slow", "version": "v", "kind": "command",
              "results_collection": "results_slow"}
    task = new_task(spider, target="any")
    task["status"] = "running"
    store.tasks.insert_one(task)
    return task["_id"]


def main():
    args = options(__doc__, idle=500, streams=200, probes=20,
                   classes="gevent,gthread").parse_args()
    rows = []
    shipped = None  # the shipped worker class's figures, for the summary line
    for worker_class in args.classes.split(","):
        with tempfile.TemporaryDirectory() as home, \
                Platform(home, web_worker_class=worker_class) as platform:
            platform.web()
            task_id = running_task(platform.store)
            try:
                cookie = session_cookie(platform.api.url, platform.store)
                result = load(platform.api.url, platform.token, cookie, task_id, args.idle,
                              args.streams, args.probes, timeout=30.0)
            except OSError as exc:  # e.g. a timeout: the server did not answer
                rows.append([worker_class, "-", f"failed: {exc}", "", "", ""])
                continue
            if worker_class == "gevent":
                shipped = result
            rows.append([worker_class, result["streams_open"],
                         f"{percentile(result['healthz'], 0.5) * 1000:.0f}",
                         f"{max(result['healthz']) * 1000:.0f}",
                         f"{percentile(result['api'], 0.5) * 1000:.0f}",
                         f"{max(result['api']) * 1000:.0f}"])
    table(f"{args.idle} half-sent requests + {args.streams} live-log streams open",
                ["worker class", "streams open", "/healthz p50 ms", "/healthz max ms",
                 "API page p50 ms", "API page max ms"], rows)
    what = f"slow clients: {args.idle} half-sent requests + {args.streams} live-log streams open"
    if shipped is None:
        headline(what, "gevent (shipped): no answer", "answers", "no")
    else:
        headline(what, f"gevent (shipped) kept {shipped['streams_open']} streams open; "
                       f"`/healthz` p50 **{percentile(shipped['healthz'], 0.5) * 1000:.0f} ms** "
                       f"(max {max(shipped['healthz']) * 1000:.0f}), API page p50 "
                       f"{percentile(shipped['api'], 0.5) * 1000:.0f} ms "
                       f"(max {max(shipped['api']) * 1000:.0f}); "
                       + "; ".join(f"{r[0]}: {r[2] if r[1] == '-' else r[2] + ' ms p50'}"
                                   for r in rows if r[0] != "gevent"))


if __name__ == "__main__":
    main()
