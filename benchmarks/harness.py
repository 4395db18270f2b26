"""A whole crawlfleet on this machine for benchmarks: the embedded store (or a
given MongoDB), a broker, masters, nodes and the web server as real processes,
each in its own process group, all ended on exit.

    with Platform(home, broker="redis") as p:
        p.master(); p.node("n1", max_runners=4); p.web()
        task_ids = p.api.run("noop")["task_ids"]
"""

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from crawlfleet.config import Config  # noqa: E402
from crawlfleet.embedded import free_port, start_mongo, wait_for_port  # noqa: E402
from crawlfleet.processes import stop_group  # noqa: E402
from crawlfleet.retrying import poll_until  # noqa: E402
from crawlfleet.store import Store  # noqa: E402
from crawlfleet.tokens import create_token  # noqa: E402

# SIGTERM (run_all stopped, a CI timeout) unwinds like Ctrl-C, so every `with`
# block ends the processes it started instead of leaving them behind.
signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

BROKERS = {
    "embedded": "filesystem://",
    "redis": "redis://127.0.0.1:6379/9",
    "rabbitmq": "amqp://guest:guest@127.0.0.1:5672//",
}


def percentile(values, fraction):
    values = sorted(values)
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(round(fraction * (len(values) - 1))))]


def proc_stats():
    """(pid, /proc stat fields after the name) of each live process; one that
    ends while it is read is passed over."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(") ", 1)[1].split()
        except (OSError, IndexError):
            continue
        yield int(entry), fields


def group_processes(pgid):
    """(pid, /proc stat fields after the name) of each live process of a process group."""
    for pid, fields in proc_stats():
        if len(fields) > 12 and fields[2] == str(pgid):  # field 5: process group id
            yield pid, fields


def rss_mb(pgid):
    """Resident memory of a whole process group, in MB."""
    total = 0
    for pid, _ in group_processes(pgid):
        try:
            with open(f"/proc/{pid}/status") as f:
                total += next((int(line.split()[1]) for line in f if line.startswith("VmRSS:")), 0)
        except (OSError, ValueError):
            continue
    return total / 1024


def cpu_seconds(pgid):
    """User + system CPU seconds of the live processes of a process group."""
    ticks = sum(int(fields[11]) + int(fields[12]) for _, fields in group_processes(pgid))
    return ticks / os.sysconf("SC_CLK_TCK")


def options(doc, **defaults):
    """A benchmark's argument parser, described by its docstring's first line: one
    ``--name`` per keyword (underscores become dashes), typed like its default, a
    flag where the default is False. Add the odd option to it before parsing."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    for name, default in defaults.items():
        flag = "--" + name.replace("_", "-")
        if default is False:
            parser.add_argument(flag, action="store_true")
        else:
            parser.add_argument(flag, type=type(default), default=default)
    return parser


def wait_until(predicate, timeout, what):
    """The predicate's first true value, polled; exits the benchmark past `timeout`."""
    value = poll_until(predicate, timeout)
    if not value:
        raise SystemExit(f"benchmark: {what} not reached after {timeout} s")
    return value


def table(title, header, rows, note=None):
    """Print a plain-text table; under run_all it is also recorded for the report."""
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    line = "  ".join("-" * w for w in widths)
    print(f"\n{title}\n{line}")
    print("  ".join(str(h).ljust(w) for h, w in zip(header, widths)))
    print(line)
    for row in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)))
    print(line)
    if note:
        print(note)
    record({"kind": "table", "title": title, "header": [str(h) for h in header],
            "rows": [[str(c) for c in row] for row in rows], "note": note})


def rate_row(label, rate, yardstick, goal=None):
    """A table row of a rate next to its yardstick's: items/s, the ratio, and
    whether the ratio reaches `goal` ("—" where the row has none)."""
    met = "—" if goal is None else f"≥ {goal:g}×: " + ("yes" if rate / yardstick >= goal else "no")
    return [label, f"{rate:.0f}", f"{rate / yardstick:.2f}", met]


def headline(what, figure, goal="", met=""):
    """One line of the README's summary table (run_all writes it from the report)."""
    print(f"headline: {what}: {figure}" + (f" (goal {goal}: {met})" if goal else ""))
    record({"kind": "headline", "what": what, "figure": figure, "goal": goal, "met": met})


def rate_table(title, versus, rows):
    """A table of rates, each against its yardstick (`rate_row`'s columns): `rows`
    are (label, rate, yardstick[, goal]); `versus` names the yardstick in the
    ratio column's head."""
    table(title, ["path", "items/s", f"vs {versus}", "goal"], [rate_row(*row) for row in rows])


def ratio_headline(what, figure, ratios, goal):
    """A headline whose goal is every one of `ratios` reaching `goal`."""
    headline(what, figure, f"≥ {goal:g}×", "yes" if min(ratios) >= goal else "no")


def record(entry):
    path = os.environ.get("BENCH_RECORD")
    if path:
        entry = dict(entry, script=Path(sys.argv[0]).name)
        with open(path, "a") as f:
            f.write(json.dumps(entry) + "\n")


def summary(values):
    """n, p50, p99 and max of seconds, in ms, as table cells."""
    if not values:
        return ["0", "—", "—", "—"]
    return [str(len(values)), f"{percentile(values, 0.5) * 1000:.0f} ms",
            f"{percentile(values, 0.99) * 1000:.0f} ms", f"{max(values) * 1000:.0f} ms"]


def size_label(n):
    """1000000 -> "1M", 200000 -> "200k": a collection's size in a row label."""
    if n >= 1_000_000 and n % 100_000 == 0:
        return f"{n / 1_000_000:g}M"
    if n >= 1000:
        return f"{n / 1000:.0f}k"
    return str(n)


def tree_cpu_seconds(pids, reaped=False):
    """User + system CPU seconds of live processes and all their live descendants.
    A finished child's time is added to its parent's "children's time" once
    reaped: not counted by default (a spider's own CPU is not the platform's),
    counted with `reaped` (everything the tree spent, spiders included)."""
    stats = {}
    for pid, fields in proc_stats():
        own = int(fields[11]) + int(fields[12])
        stats[pid] = (int(fields[1]), own, own + int(fields[13]) + int(fields[14]))
    wanted, todo = set(), [p for p in pids if p in stats]
    while todo:
        pid = todo.pop()
        if pid in wanted:
            continue
        wanted.add(pid)
        todo += [child for child, (ppid, _, _) in stats.items() if ppid == pid]
    return sum(stats[p][2 if reaped else 1] for p in wanted) / os.sysconf("SC_CLK_TCK")


class Api:
    def __init__(self, url, token):
        self.url = url
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"

    def run(self, spider, **body):
        r = self.session.post(f"{self.url}/api/v1/spiders/{spider}/run", json=body, timeout=30)
        r.raise_for_status()
        return r.json()


class Platform:
    def __init__(self, home, broker="embedded", mongo_uri=None, spiders_path=None, **settings):
        self.home = Path(home).resolve()
        self.home.mkdir(parents=True, exist_ok=True)
        self.procs = []
        self.mongo = None
        if mongo_uri is None:
            log = open(self.home / "nx.out", "ab")
            self.mongo, mongo_uri = start_mongo(self.home, log)
        values = {
            "home": str(self.home), "mongo_uri": mongo_uri,
            "mongo_db": "bench_" + uuid.uuid4().hex[:8],
            "broker_url": BROKERS.get(broker, broker),
            "queue_prefix": "bench" + uuid.uuid4().hex[:8],
            "spiders_path": spiders_path or str(ROOT / "spiders"),
            "log_level": "WARNING",
        }
        values.update(settings)
        self.config = Config.from_dict(values)
        self.store = Store(self.config)
        self.store.ensure_indexes()
        self.token = create_token(self.store, "bench")
        self.api = None
        self.web_pid = None

    def env(self, **extra):
        env = dict(os.environ)
        env.update(self.config.as_environ())
        env.update({k: str(v) for k, v in extra.items()})
        return env

    def start(self, name, *args, **env):
        log = open(self.home / f"{name}.log", "ab")
        proc = subprocess.Popen([sys.executable, "-m", "crawlfleet", *args], env=self.env(**env),
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
        proc.name = name
        self.procs.append(proc)
        return proc

    def master(self):
        proc = self.start("master", "master")
        self.wait(lambda: self.store.masters.find_one({"discovered_at": {"$gt": 0}}), 120,
                  "master discovery")
        return proc

    def node(self, node_id, max_runners=None, **env):
        """A node; its run slots are the shipped default unless `max_runners` is given."""
        if max_runners is not None:
            env["CRAWLFLEET_MAX_RUNNERS"] = max_runners
        proc = self.start(f"node-{node_id}", "node", CRAWLFLEET_NODE_ID=node_id, **env)
        self.wait(lambda: self.store.nodes.find_one({"_id": node_id, "status": "online"}), 60,
                  f"node {node_id}")
        return proc

    def web(self):
        port = free_port()
        proc = self.start("web", "web", "--bind", f"127.0.0.1:{port}")
        if not wait_for_port("127.0.0.1", port, 60, proc):
            raise SystemExit("benchmark: the web server did not start")
        self.api = Api(f"http://127.0.0.1:{port}", self.token)
        self.web_pid = proc.pid
        return proc

    wait = staticmethod(wait_until)

    def platform_pids(self):
        """The platform's own processes: store, master(s), web, node(s) (and, below
        them, warm processes; spiders are counted only while alive)."""
        return ([self.mongo.pid] if self.mongo is not None else []) + \
            [p.pid for p in self.procs if p.poll() is None]

    def deploy(self, project_dir, project, extra_line=None):
        """Upload a project folder as a zip through the API, as a user deploys;
        `extra_line` is appended to its settings.py to make a new version."""
        import shutil
        import tempfile

        from crawlfleet.packaging import pack

        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / project
            shutil.copytree(project_dir, folder,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            if extra_line:
                settings = next(folder.glob("*/settings.py"))
                settings.write_text(settings.read_text() + extra_line + "\n")
            _, data, _, _ = pack(project, folder)
        r = self.api.session.post(f"{self.api.url}/api/v1/projects",
                                  data={"project": project},
                                  files={"file": (f"{project}.zip", data, "application/zip")},
                                  timeout=120)
        if r.status_code not in (200, 201):
            raise SystemExit(f"benchmark: deploy refused ({r.status_code}): {r.text[:300]}")
        return r.json()

    @staticmethod
    def stop(proc):
        """End one process's group: SIGTERM, then SIGKILL."""
        stop_group(proc, grace=15)

    def close(self):
        for proc in reversed(self.procs):
            self.stop(proc)
        try:
            self.store.client.drop_database(self.config.mongo_db)
        except Exception:
            pass
        self.store.close()
        if self.mongo is not None:
            self.mongo.terminate()
            try:
                self.mongo.wait(15)
            except subprocess.TimeoutExpired:
                self.mongo.kill()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def noop_project(folder):
    """A spider that does nothing: what is left to time is the platform."""
    project = Path(folder) / "noop"
    project.mkdir(parents=True, exist_ok=True)
    (project / "main.py").write_text("")
    (project / "crawlfleet.json").write_text(json.dumps(
        {"spiders": [{"name": "noop", "command": ["python", "main.py"],
                      "description": "does nothing"}]}))
    return project


def hostname():
    return socket.gethostname()
