"""docker-compose.yml and the Dockerfile, tested without Docker (no engine runs
on these machines): the file is parsed and checked (services, images and
builds, environment, volumes, health checks, dependencies, profiles), then
the very commands it names for master, web and node are started as local
processes with their `environment:` — container host names translated to
this machine's servers — in the order its `depends_on` conditions give,
each waited for with its own health check command, and a crawl runs
through them."""

import json
import os
import re
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families

from helpers import BIN, free_port, purge_broker, redis_available, stop_groups
from crawlfleet.config import Config
from crawlfleet.defaults import BY_NAME

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
APP_SERVICES = ("master", "web", "node")
# Variables the processes read that are not settings of crawlfleet.defaults
EXTRA_VARIABLES = {"CRAWLFLEET_DEMO_URL", "CRAWLFLEET_ADMIN_PASSWORD"}
SECRET = {"CRAWLFLEET_SECRET_KEY": "compose-test-secret"}


# -- reading the files as Docker would ------------------------------------------------

VARIABLE = re.compile(r"\$(?:\$|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
                      r"(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\})")


class MissingVariable(Exception):
    pass


def interpolate(text, env):
    """Compose's variable substitution: $$, ${V}, ${V:-default}, ${V-default},
    ${V:?error}, ${V?error}."""
    def one(match):
        if match.group(0) == "$$":
            return "$"
        name, op, arg = match.group("name", "op", "arg")
        value = env.get(name)
        if op in (":-", ":?") and value == "":
            value = None
        if value is None:
            if op in ("?", ":?"):
                raise MissingVariable(f"{name}: {arg}")
            return arg if op in ("-", ":-") else ""
        return value

    return VARIABLE.sub(one, text)


def resolve(node, env):
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, list):
        return [resolve(x, env) for x in node]
    if isinstance(node, dict):
        return {k: resolve(v, env) for k, v in node.items()}
    return node


def compose(env=None):
    """docker-compose.yml with YAML anchors merged and variables substituted."""
    raw = yaml.safe_load(COMPOSE_FILE.read_text())
    return resolve(raw, {**SECRET, **(env or {})})


def environment(service):
    env = service.get("environment") or {}
    if isinstance(env, list):  # the KEY=VALUE list form
        env = dict(item.split("=", 1) for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def seconds(duration):
    """A compose duration such as 1m30s or 10s."""
    parts = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?", duration)
    assert parts and duration, f"not a duration: {duration!r}"
    h, m, s = parts.groups()
    return int(h or 0) * 3600 + int(m or 0) * 60 + float(s or 0)


def dockerfile():
    """(instruction, argument) pairs, continuation lines joined."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            instruction, _, argument = line.partition(" ")
            out.append((instruction.upper(), argument.strip()))
    return out


def dockerfile_env():
    env = {}
    for instruction, argument in dockerfile():
        if instruction == "ENV":
            for pair in re.findall(r"(\w+)=(\S+)", argument):
                env[pair[0]] = pair[1]
    return env


def env_example():
    values = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key] = value
    return values


# -- the file, parsed --------------------------------------------------------------------

def test_services_images_builds_and_profiles():
    """MongoDB from the official mongo:7 image, Redis, RabbitMQ only in its profile,
    and master, web and node built from this folder's Dockerfile as one image."""
    services = compose()["services"]
    assert {"mongo", "redis", "rabbitmq", *APP_SERVICES} <= set(services)
    assert services["mongo"]["image"] == "mongo:7"
    assert services["redis"]["image"].startswith("redis:")
    assert services["rabbitmq"]["image"].startswith("rabbitmq:")
    assert services["rabbitmq"]["profiles"] == ["rabbitmq"]
    for name in ("mongo", "redis", *APP_SERVICES):
        assert "profiles" not in services[name], f"{name} must run without a profile"
    images = {services[name]["image"] for name in APP_SERVICES}
    assert len(images) == 1  # built once, one image for every role
    for name in APP_SERVICES:
        assert services[name]["build"] == "."
        assert services[name]["init"] is True
        assert services[name]["restart"] == "unless-stopped"
    assert services["demo"]["profiles"] == ["demo"]
    assert (ROOT / services["master"]["build"] / "Dockerfile").is_file()


def test_named_volumes_and_persistence():
    """MongoDB, Redis and RabbitMQ keep their data in named volumes; Redis runs with
    AOF persistence; app containers keep nothing (nodes scale, caches are local)."""
    doc = compose()
    services = doc["services"]
    assert set(doc["volumes"]) == {"mongo-data", "redis-data", "rabbitmq-data"}
    assert services["mongo"]["volumes"] == ["mongo-data:/data/db"]
    assert services["redis"]["volumes"] == ["redis-data:/data"]
    assert services["rabbitmq"]["volumes"] == ["rabbitmq-data:/var/lib/rabbitmq"]
    command = services["redis"]["command"]
    assert command[0] == "redis-server"
    assert command[command.index("--appendonly") + 1] == "yes"
    for name in APP_SERVICES:
        assert "volumes" not in services[name]
    assert services["rabbitmq"]["hostname"] == "rabbitmq"  # its data dir follows the node name


def test_health_checks():
    """Every server has a health check: mongosh ping, redis-cli ping, rabbitmq-diagnostics,
    and `crawlfleet health master|node|web` for the platform's own roles."""
    services = compose()["services"]
    tests = {name: services[name]["healthcheck"]["test"] for name in
             ("mongo", "redis", "rabbitmq", *APP_SERVICES)}
    assert tests["mongo"][:2] == ["CMD", "mongosh"] and "ping" in tests["mongo"][-1]
    assert tests["redis"] == ["CMD", "redis-cli", "ping"]
    assert tests["rabbitmq"][:2] == ["CMD", "rabbitmq-diagnostics"] and "ping" in tests["rabbitmq"]
    assert tests["master"] == ["CMD", "crawlfleet", "health", "master"]
    assert tests["node"] == ["CMD", "crawlfleet", "health", "node"]
    assert tests["web"][:4] == ["CMD", "crawlfleet", "health", "web"]
    assert tests["web"][tests["web"].index("--url") + 1] == "http://127.0.0.1:8080/healthz"
    for name, service in services.items():
        check = service.get("healthcheck")
        if check:
            for key in ("interval", "timeout", "start_period"):
                assert seconds(check[key]) > 0, (name, key)
            assert check["retries"] >= 1
            # `crawlfleet health` gives up on a silent store after 5 s: the timeout must allow it
            if name in APP_SERVICES:
                assert seconds(check["timeout"]) >= 10
    # the master's first heartbeat comes after discovery (`scrapy list` may take a while)
    assert seconds(services["master"]["healthcheck"]["start_period"]) >= 60
    # a node that stops records its spiders first: CANCEL_GRACE × 3 + 5 s
    grace = BY_NAME["cancel_grace"].default * 3 + 5
    assert seconds(services["node"]["stop_grace_period"]) > grace


def test_dependencies_wait_for_healthy_services():
    """Each role waits for a healthy MongoDB and broker; web and nodes for a healthy
    master; RabbitMQ is waited for only when its profile runs (required: false)."""
    services = compose()["services"]
    for name in APP_SERVICES:
        deps = services[name]["depends_on"]
        for dep in ("mongo", "redis", "rabbitmq"):
            assert deps[dep]["condition"] == "service_healthy", (name, dep)
        assert deps["rabbitmq"]["required"] is False
        assert deps["mongo"].get("required", True) and deps["redis"].get("required", True)
        for dep in deps:
            assert dep in services and "healthcheck" in services[dep], (name, dep)
    for name in ("web", "node"):
        assert services[name]["depends_on"]["master"]["condition"] == "service_healthy"
    assert start_order(services)[0] == "master"


def test_environment_is_valid_configuration():
    """Every CRAWLFLEET_* variable is a documented setting; each role's environment
    loads as a valid Config; the defaults point at the compose services."""
    services = compose()["services"]
    for name in APP_SERVICES:
        env = environment(services[name])
        for key in env:
            assert key.startswith("CRAWLFLEET_"), key
            assert key[len("CRAWLFLEET_"):].lower() in BY_NAME or key in EXTRA_VARIABLES, key
        config = Config.load(environ={k: v for k, v in env.items()
                                      if k not in EXTRA_VARIABLES})
        assert config.mongo_uri == "mongodb://mongo:27017"
        assert config.broker_url == "redis://redis:6379/0"
        assert config.log_format == "json"
    web = environment(services["web"])
    assert web["CRAWLFLEET_SECRET_KEY"] == SECRET["CRAWLFLEET_SECRET_KEY"]
    assert int(web["CRAWLFLEET_WEB_WORKERS"]) >= 2 and int(web["CRAWLFLEET_WEB_TIMEOUT"]) > 0
    assert web["CRAWLFLEET_METRICS_PUBLIC"] == "false"
    # only the web server signs cookies: the others never get the secret
    for name in ("master", "node"):
        assert "CRAWLFLEET_SECRET_KEY" not in environment(services[name])
    assert services["web"]["ports"] == ["8080:8080", "6800:6800"]
    assert services["web"]["command"] == ["web", "--bind", "0.0.0.0:8080",
                                          "--scrapyd-bind", "0.0.0.0:6800"]


def test_secret_key_comes_from_the_environment():
    """Without CRAWLFLEET_SECRET_KEY the file does not even load, with a message
    saying where to set it; with it, web gets it."""
    with pytest.raises(MissingVariable, match="CRAWLFLEET_SECRET_KEY.*.env"):
        resolve(yaml.safe_load(COMPOSE_FILE.read_text()), {})
    with pytest.raises(MissingVariable):
        resolve(yaml.safe_load(COMPOSE_FILE.read_text()), {"CRAWLFLEET_SECRET_KEY": ""})
    services = compose({"CRAWLFLEET_SECRET_KEY": "s3"})["services"]
    assert environment(services["web"])["CRAWLFLEET_SECRET_KEY"] == "s3"


def test_rabbitmq_profile_switches_the_broker_by_env():
    """.env.example's RabbitMQ lines, uncommented, point every role at the rabbitmq
    service with the credentials it is started with."""
    example = env_example()
    assert "CRAWLFLEET_SECRET_KEY" in example
    lines = (ROOT / ".env.example").read_text()
    rabbit = dict(re.findall(r"^#(COMPOSE_PROFILES|CRAWLFLEET_BROKER_URL)=(\S+)$", lines, re.M))
    assert rabbit["COMPOSE_PROFILES"] == "rabbitmq"
    services = compose({**example, **SECRET, **rabbit})["services"]
    broker = rabbit["CRAWLFLEET_BROKER_URL"]
    assert broker.startswith("amqp://")
    for name in APP_SERVICES:
        assert environment(services[name])["CRAWLFLEET_BROKER_URL"] == broker
    rabbitmq = environment(services["rabbitmq"])
    user, password = rabbitmq["RABBITMQ_DEFAULT_USER"], rabbitmq["RABBITMQ_DEFAULT_PASS"]
    assert broker == f"amqp://{user}:{password}@rabbitmq:5672//"
    # and .env.example as it is (Redis) is a valid configuration too
    plain = compose({**example, **SECRET})["services"]
    assert environment(plain["node"])["CRAWLFLEET_BROKER_URL"] == "redis://redis:6379/0"
    referenced = set(re.findall(r"\$\{(\w+)", COMPOSE_FILE.read_text()))
    assert set(example) - {"COMPOSE_PROFILES"} <= referenced


def test_node_id_is_the_container_host_name(monkeypatch):
    """The node service sets no node id, so each replica's id is its host name —
    in a container, its container id — and `--scale node=3` gives 3 nodes."""
    from node.agent import default_node_id

    node = environment(compose()["services"]["node"])
    assert "CRAWLFLEET_NODE_ID" not in node
    assert "replicas" not in (compose()["services"]["node"].get("deploy") or {})
    assert Config.load(environ={k: v for k, v in node.items()
                                if k not in EXTRA_VARIABLES}).node_id == ""
    ids = set()
    for hostname in ("3f2a9c1b7d4e", "9b1c0e7a2f33", "c0ffee123456"):
        monkeypatch.setattr(socket, "gethostname", lambda h=hostname: h)
        ids.add(default_node_id())
    assert ids == {"3f2a9c1b7d4e", "9b1c0e7a2f33", "c0ffee123456"}


def test_dockerfile_builds_the_app_image():
    """python:3.11-slim, Node.js for Node.js spiders, the package installed from
    the copied sources, a non-root user, `crawlfleet` as entrypoint."""
    steps = dockerfile()
    assert steps[0] == ("FROM", "python:3.11-slim")
    run = " ".join(arg for ins, arg in steps if ins == "RUN")
    assert re.search(r"apt-get install .*\bnodejs\b", run)
    assert "pip install ." in run
    copied = {arg.split()[0] for ins, arg in steps if ins == "COPY"}
    for package in ("crawlfleet", "master", "node", "web", "spiders"):
        assert package in copied, package
    assert "pyproject.toml" in copied
    users = [arg for ins, arg in steps if ins == "USER"]
    assert users and users[-1] not in ("root", "0")
    assert "useradd" in run and users[-1] in run
    entrypoint = [arg for ins, arg in steps if ins == "ENTRYPOINT"]
    assert json.loads(entrypoint[-1]) == ["crawlfleet"]
    assert dockerfile_env()["CRAWLFLEET_HOME"] == "/data"
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()}
    assert not ignored & {"README.md", "pyproject.toml", "crawlfleet", "master", "node", "web",
                          "spiders"}
    assert {".git", ".venv", ".env"} <= ignored


# -- the commands it names, run as local processes ------------------------------------

def start_order(services):
    """App services in an order that respects their depends_on among themselves."""
    order, seen = [], set()

    def visit(name, path=()):
        assert name not in path, f"dependency cycle: {path + (name,)}"
        if name in seen:
            return
        for dep in services[name].get("depends_on") or {}:
            if dep in APP_SERVICES:
                visit(dep, path + (name,))
        seen.add(name)
        order.append(name)

    for name in APP_SERVICES:
        visit(name)
    return order


class Local:
    """The compose services as local processes: container addresses translated."""

    def __init__(self, tmp_path, mongo_uri, redis_url, demo_url, web_port, scrapyd_port):
        self.tmp_path = tmp_path
        self.translations = [
            ("mongodb://mongo:27017", mongo_uri),
            ("redis://redis:6379/0", redis_url),
            ("http://demo:8900", demo_url),
            ("0.0.0.0:8080", f"127.0.0.1:{web_port}"),
            ("127.0.0.1:8080", f"127.0.0.1:{web_port}"),
            ("0.0.0.0:6800", f"127.0.0.1:{scrapyd_port}"),
        ]
        entrypoint = [json.loads(arg) for ins, arg in dockerfile() if ins == "ENTRYPOINT"][-1]
        assert entrypoint == ["crawlfleet"]
        self.entrypoint = [str(BIN / "crawlfleet")]
        self.procs = []

    def translate(self, text):
        for container, local in self.translations:
            text = text.replace(container, local)
        return text

    def env(self, service, hostname):
        """The service's `environment:` translated, on the image's ENV, with a home
        folder per container; CRAWLFLEET_NODE_ID stands in for the container's
        own host name (here every process shares this machine's)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("CRAWLFLEET_")}
        env.update(dockerfile_env())
        env.update({k: self.translate(v) for k, v in environment(service).items()})
        home = self.tmp_path / hostname
        home.mkdir(exist_ok=True)
        env["CRAWLFLEET_HOME"] = str(home)
        if "CRAWLFLEET_NODE_ID" not in environment(service):
            env["CRAWLFLEET_NODE_ID"] = hostname
        return env

    def argv(self, args):
        return self.entrypoint + [self.translate(a) for a in args]

    def start(self, name, service, hostname):
        log = open(self.tmp_path / f"{hostname}.log", "wb")
        proc = subprocess.Popen(self.argv(service["command"]), env=self.env(service, hostname),
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
        proc.service, proc.hostname, proc.log_path = name, hostname, log.name
        self.procs.append(proc)
        return proc

    def health(self, service, hostname, timeout=30):
        """Run the service's health check command in its environment; returns the result."""
        test = service["healthcheck"]["test"]
        assert test[0] == "CMD" and test[1] == "crawlfleet", test
        return subprocess.run(self.argv(test[2:]), env=self.env(service, hostname),
                              capture_output=True, text=True, timeout=timeout,
                              start_new_session=True)

    def wait_healthy(self, service, hostname, proc, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert proc.poll() is None, open(proc.log_path).read()[-3000:]
            result = self.health(service, hostname)
            if result.returncode == 0:
                return result
            time.sleep(1.0)
        raise AssertionError(f"{hostname} not healthy after {timeout} s: "
                             f"{result.stdout}{result.stderr}\n{open(proc.log_path).read()[-3000:]}")

    def stop_all(self):
        stop_groups(self.procs)


def test_the_commands_it_names_run_a_crawl(tmp_path, mongo_server, demo_site):
    """master, web and two node replicas started from the compose file's commands
    and environment (mongo → the test's nx-27017, redis → the local Redis),
    each dependency waited for with its own health check: a crawl finishes on
    a node, one runs on both replicas, /metrics counts them, the logs are JSON,
    and a stopped node fails its health check."""
    if not redis_available():
        pytest.fail("Redis is not running on 127.0.0.1:6379 (.ci/run starts it)")
    prefix = "cfc" + uuid.uuid4().hex[:10]
    dotenv = {**SECRET, "CRAWLFLEET_MONGO_DB": "t_" + uuid.uuid4().hex[:12],
              "CRAWLFLEET_QUEUE_PREFIX": prefix, "CRAWLFLEET_WEB_WORKERS": "2",
              "CRAWLFLEET_WEB_THREADS": "4", "CRAWLFLEET_MAX_RUNNERS": "2"}
    services = compose(dotenv)["services"]
    web_port, scrapyd_port = free_port(), free_port()
    redis_url = "redis://127.0.0.1:6379/7"
    local = Local(tmp_path, mongo_server, redis_url, demo_site, web_port, scrapyd_port)
    replicas = {"master": ["master-1"], "web": ["web-1"], "node": ["node-1", "node-2"]}
    started = {}
    try:
        for name in start_order(services):
            for dep, rule in services[name]["depends_on"].items():
                if dep in started and rule["condition"] == "service_healthy":
                    for proc in started[dep]:
                        if not getattr(proc, "healthy", False):
                            limit = seconds(services[dep]["healthcheck"]["start_period"])
                            local.wait_healthy(services[dep], proc.hostname, proc, limit)
                            proc.healthy = True
            started[name] = [local.start(name, services[name], h) for h in replicas[name]]
        for name, procs in started.items():
            for proc in procs:
                if not getattr(proc, "healthy", False):
                    check = local.wait_healthy(services[name], proc.hostname, proc, 90)
                    assert check.stdout.startswith("healthy"), check.stdout

        web_env = local.env(services["web"], "web-1")
        token = subprocess.run(local.argv(["token", "create", "--name", "compose"]),
                               env=web_env, capture_output=True, text=True, timeout=60)
        assert token.returncode == 0, token.stderr
        api = requests.Session()
        api.headers["Authorization"] = f"Bearer {token.stdout.strip()}"
        base = f"http://127.0.0.1:{web_port}"
        ran = api.post(f"{base}/api/v1/spiders/books/run", json={"args": {"max_pages": 2}},
                       timeout=30)
        assert ran.status_code == 201, ran.text
        everywhere = api.post(f"{base}/api/v1/spiders/plain_catalogue/run",
                              json={"nodes": "all", "args": {"max_pages": 1}}, timeout=30)
        assert everywhere.status_code == 201, everywhere.text
        task_ids = ran.json()["task_ids"] + everywhere.json()["task_ids"]
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            tasks = [api.get(f"{base}/api/v1/tasks/{t}", timeout=30).json() for t in task_ids]
            if all(t["status"] in ("finished", "error", "abnormal", "cancelled", "timeout")
                   for t in tasks):
                break
            time.sleep(0.5)
        assert [t["status"] for t in tasks] == ["finished"] * 3, tasks
        assert tasks[0]["stats"]["items"] == 40
        assert sorted(t["node_id"] for t in tasks[1:]) == ["node-1", "node-2"]

        metrics = api.get(f"{base}/metrics", timeout=30)
        assert metrics.status_code == 200
        finished = [s.value for f in text_string_to_metric_families(metrics.text)
                    for s in f.samples if s.name == "crawlfleet_tasks"
                    and s.labels == {"status": "finished"}]
        assert finished == [3]
        # Scrapyd's API at the root of the compose file's second listener
        scrapyd = api.get(f"http://127.0.0.1:{scrapyd_port}/daemonstatus.json", timeout=30)
        assert scrapyd.status_code == 200, scrapyd.text
        assert (scrapyd.json()["status"], scrapyd.json()["finished"]) == ("ok", 3)

        for proc in local.procs:  # CRAWLFLEET_LOG_FORMAT=json from the compose file
            lines = [line for line in open(proc.log_path).read().splitlines() if line.strip()]
            assert lines and all(json.loads(line)["role"] for line in lines), proc.hostname

        node2 = started["node"][1]
        node2.send_signal(signal.SIGTERM)  # what `docker compose stop` sends
        node2.wait(60)
        down = local.health(services["node"], "node-2")
        assert down.returncode == 1 and "node-2 is stopped" in down.stderr
        assert local.health(services["node"], "node-1").returncode == 0
    finally:
        local.stop_all()
        purge_broker(Config.from_dict({"home": str(tmp_path), "broker_url": redis_url,
                                       "queue_prefix": prefix, "mongo_uri": mongo_server}),
                     ["node-1", "node-2"])
