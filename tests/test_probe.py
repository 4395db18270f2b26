"""The probe: a deployed spider that tries every way out (the environment of
every process it can read, the platform's HOME, every store and broker
address it finds, planting an admin token in every store it reaches) finds
no secret, and no token it writes works. Run against separate master, web
and node processes started as root (the node sandboxes spiders as the
unprivileged crawlfleet-spider user), on Redis and RabbitMQ; under
`crawlfleet up` run by an unprivileged user (bubblewrap user namespace);
and, as a control that the probe is not blind, once with the sandbox off.
"""

import contextlib
import os
import stat
from pathlib import Path

import pytest

from conftest import Processes, free_port, make_config, purge_broker, task_log, wait_task
from crawlfleet.broker import Broker
from crawlfleet.store import Store
from crawlfleet.tokens import create_token, verify_token
from master import discovery, dispatch
from test_node import available

PROBE = Path(__file__).parent / "fixtures" / "probe"
SECRET_KEY = "probe-secret-key-" + os.urandom(6).hex()
SMTP_PASSWORD = "probe-smtp-password-" + os.urandom(6).hex()


def start_platform(broker, tmp_path, mongo_server, demo_site, **node_env):
    if not available(broker):
        pytest.fail(f"{broker} is not running on this machine (scripts/services.sh starts it)")
    config = make_config(tmp_path, mongo_server, broker=broker, spiders_path=str(PROBE))
    store = Store(config)
    store.ensure_indexes()
    report = discovery.scan(store, config)
    assert not report["errors"], report
    admin_token = create_token(store, "probe-test admin", "admin")
    (config.home_path / "admin-token").write_text(admin_token + "\n")
    (config.home_path / "secret-key").write_text(SECRET_KEY + "\n")
    procs = Processes(config, demo_site, tmp_path)
    secrets = dict(CRAWLFLEET_SECRET_KEY=SECRET_KEY, CRAWLFLEET_ALERT_SMTP_PASSWORD=SMTP_PASSWORD,
                   CRAWLFLEET_TOKEN=admin_token)
    from conftest import process_env

    procs.start("master", env=process_env(config, **secrets), name="master")
    procs.start("web", "--bind", f"127.0.0.1:{free_port()}", env=process_env(config, **secrets),
                name="web")
    procs.node(store, **secrets, **node_env)
    return config, store, procs, admin_token


def run_probe(config, store, procs):
    broker = Broker(config)
    try:
        task = dispatch.run_spider(store, broker, config, "probe",
                                   args={"home": str(config.home_path)})[0]
    finally:
        broker.close()
    done = wait_task(store, task["_id"], timeout=120)
    assert done["status"] == "finished", "\n".join(task_log(store, task["_id"]))
    item = store.results("results_probe").find_one({"_tid": task["_id"]})
    assert item is not None, "\n".join(task_log(store, task["_id"]))
    return dict(item, version=task["version"])


def secrets_in(item, config, admin_token):
    """Which of the platform's secrets the probe's evidence holds."""
    text = "\n".join(data for _, data in item["evidence"])
    port = config.mongo_uri.rsplit(":", 1)[1]
    found = {name for name, value in (
        ("secret key", SECRET_KEY), ("smtp password", SMTP_PASSWORD),
        ("admin token", admin_token), ("store URI", config.mongo_uri),
        ("broker URL", config.broker_url)) if value and value in text}
    if any(port in uri for uri in item["uris"]):
        found.add("store port")
    return found


@pytest.fixture
def cleanup():
    done = []
    yield done.append
    for config, store, procs in done:
        procs.stop_all()
        purge_broker(config, procs.node_ids)
        store.client.drop_database(config.mongo_db)
        store.close()


@pytest.mark.parametrize("broker", ["redis", "rabbitmq"])
def test_the_probe_finds_nothing_from_inside_the_sandbox(broker, tmp_path, mongo_server, demo_site,
                                                        cleanup):
    config, store, procs, admin_token = start_platform(broker, tmp_path, mongo_server, demo_site)
    cleanup((config, store, procs))
    node = store.nodes.find_one({"_id": procs.node_ids[-1]})
    assert node["sandbox"]["mode"] in ("user", "bwrap"), node["sandbox"]
    item = run_probe(config, store, procs)
    assert secrets_in(item, config, admin_token) == set()
    # of HOME only what is the task's own: its version's code and its folder
    own = (str(config.home_path / "cache" / item["version"]) + "/",
           str(config.home_path / "tasks" / item["version"] / item["_tid"]) + "/")
    assert [p for p in item["readable_home"] if not p.startswith(own)] == []
    # only its own processes: no master, web or node to read
    assert item["pid_count"] <= 5, item["pid_count"]
    if os.geteuid() == 0:
        assert item["uid"] != 0
    # whatever store it reached (a guessed default address, never ours), the
    # token it planted opens nothing
    assert verify_token(store, item["token"]) is None
    assert config.mongo_uri not in item["stores_written"]


def test_the_probe_is_not_blind_without_the_sandbox(tmp_path, mongo_server, demo_site, cleanup):
    """The control: with sandbox=none the same probe does read the node's
    secrets and the platform's HOME, so its silence above means something."""
    if not available("redis"):
        pytest.fail("redis is not running on this machine")
    config, store, procs, admin_token = start_platform("redis", tmp_path, mongo_server, demo_site,
                                                       CRAWLFLEET_SANDBOX="none")
    cleanup((config, store, procs))
    item = run_probe(config, store, procs)
    found = secrets_in(item, config, admin_token)
    assert {"secret key", "smtp password", "admin token"} <= found, found
    assert item["readable_home"]


@contextlib.contextmanager
def traversable_by_others(*paths):
    """Let other users pass through every folder above `paths` (o+x, not
    listing) while the block runs: a fresh clone made by `mktemp -d` sits in a
    folder of mode 0700, which the unprivileged user could not enter to reach
    the packages it runs. The modes are put back after."""
    changed = {}
    for path in paths:
        for folder in [Path(path).resolve(), *Path(path).resolve().parents]:
            mode = folder.stat().st_mode
            if folder not in changed and not mode & stat.S_IXOTH:
                changed[folder] = stat.S_IMODE(mode)
                folder.chmod(changed[folder] | stat.S_IXOTH)
    try:
        yield
    finally:
        for folder, mode in changed.items():
            folder.chmod(mode)


def test_the_probe_finds_nothing_under_up_as_a_normal_user(tmp_path):
    """`crawlfleet up` run by an unprivileged user (here `nobody`, through
    setpriv): its node sandboxes spiders with a bubblewrap user namespace,
    and the probe finds none of the platform's secrets."""
    import io
    import json
    import shutil
    import subprocess
    import sysconfig
    import tempfile
    import zipfile

    import pymongo
    import requests

    from conftest import stop_group, wait_for

    if os.geteuid() != 0 or not shutil.which("setpriv") or not os.path.exists("/usr/bin/python3.11"):
        pytest.skip("needs root (to become another user), setpriv and /usr/bin/python3.11")
    # an interpreter the other user may run (ours may live under /root), seeing
    # our packages through a .pth file as the nodes' project environments do
    base = Path(tempfile.mkdtemp(prefix="cf-nonroot-", dir="/tmp"))
    base.chmod(0o755)
    repo = Path(__file__).resolve().parent.parent  # an editable install reads the code here
    with contextlib.ExitStack() as cleanup:
        cleanup.enter_context(traversable_by_others(sysconfig.get_path("purelib"), repo))
        cleanup.callback(shutil.rmtree, base, ignore_errors=True)
        subprocess.run(["/usr/bin/python3.11", "-m", "venv", "--without-pip", str(base / "venv")],
                       check=True)
        site = base / "venv" / "lib" / "python3.11" / "site-packages"
        (site / "zz-crawlfleet.pth").write_text(
            f"import site; site.addsitedir({sysconfig.get_path('purelib')!r})\n")
        home, user_home = base / "home", base / "user-home"
        for folder in (home, user_home):
            folder.mkdir()
            shutil.chown(folder, "nobody", "nogroup")
        port = free_port()
        env = {"PATH": f"{base}/venv/bin:/usr/local/bin:/usr/bin:/bin", "HOME": str(user_home),
               "LANG": "C.UTF-8", "CRAWLFLEET_HOME": str(home),
               "CRAWLFLEET_SECRET_KEY": SECRET_KEY, "CRAWLFLEET_ALERT_SMTP_PASSWORD": SMTP_PASSWORD}
        log = open(tmp_path / "up.log", "wb")
        proc = subprocess.Popen(
            ["setpriv", "--reuid", "nobody", "--regid", "nogroup", "--clear-groups",
             str(base / "venv" / "bin" / "python"), "-m", "crawlfleet", "up", "--port", str(port),
             "--demo-port", "0"],
            env=env, cwd=str(user_home), stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            state_file = home / "run" / "up.json"
            wait_for(lambda: state_file.exists() and state_file.read_text().strip()
                     or proc.poll() is not None, timeout=180, what="crawlfleet up started")
            assert proc.poll() is None, (tmp_path / "up.log").read_text()
            state = json.loads(state_file.read_text())
            token = (home / "admin-token").read_text().strip()
            headers = {"Authorization": f"Bearer {token}"}
            api = state["api_url"] + "/api/v1"
            buf = io.BytesIO()
            with zipfile.ZipFile(buf, "w") as zf:
                for path in (PROBE / "probe").iterdir():
                    zf.write(path, f"probe/{path.name}")
            r = requests.post(f"{api}/projects", headers=headers, timeout=120,
                              files={"file": ("probe.zip", buf.getvalue())})
            assert r.status_code in (200, 201), r.text
            r = requests.post(f"{api}/spiders/probe/run", headers=headers, timeout=30,
                              json={"args": {"home": str(home)}})
            assert r.status_code in (200, 201), r.text
            task_id = r.json()["task_ids"][0]
            client = pymongo.MongoClient(state["mongo_uri"])
            db = client["crawlfleet"]
            task = wait_for(lambda: db.tasks.find_one(
                {"_id": task_id, "status": {"$in": ["finished", "error", "abnormal"]}}),
                timeout=180, what="probe task done")
            assert task["status"] == "finished", task
            node = db.nodes.find_one({})
            assert node["sandbox"]["mode"] == "bwrap", node["sandbox"]
            item = db.results_probe.find_one({"_tid": task_id})
            text = "\n".join(data for _, data in item["evidence"])
            for name, value in (("secret key", SECRET_KEY), ("smtp password", SMTP_PASSWORD),
                                ("admin token", token), ("store URI", state["mongo_uri"])):
                assert value not in text, name
            assert item["pid_count"] <= 5
            assert not [p for p in item["readable_home"]
                        if not p.startswith((str(home / "cache") + "/", str(home / "tasks") + "/"))]
            assert db.tokens.find_one({"_id": __import__("hashlib").sha256(
                item["token"].encode()).hexdigest()}) is None
            assert state["mongo_uri"] not in item["stores_written"]
            client.close()
        finally:
            stop_group(proc, timeout=30)
