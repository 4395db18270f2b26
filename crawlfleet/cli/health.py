"""`crawlfleet health master|node|web`: exit 0 when the role on this host is
healthy, 1 when not, with one line saying why. docker-compose.yml's health
checks run it inside each container.

- master: a `masters` document of a master on this host (its id is
  ``<host name>-<pid>``; `--id` names one) has a heartbeat younger than
  `--max-age` (default: `node_timeout`). A master writes its first one after
  discovering the spiders, so a starting master is not healthy yet.
- node: the `nodes` document of this node (`--id`, else CRAWLFLEET_NODE_ID,
  else the host name, as `crawlfleet node` picks it) is online with a
  heartbeat younger than `--max-age` (default: `node_timeout`, the age at
  which masters call it offline).
- web: GET `--url` (default http://127.0.0.1:8080/healthz) answers 200 with
  ``{"ok": true}`` (the web server could reach the store).
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn

import click

if TYPE_CHECKING:
    import pymongo

    from crawlfleet.config import Config
    from crawlfleet.models import Doc

STORE_TIMEOUT_MS = 5000


def _store_client(config: Config) -> pymongo.MongoClient[Doc]:
    import pymongo

    return pymongo.MongoClient(config.mongo_uri, serverSelectionTimeoutMS=STORE_TIMEOUT_MS,
                               connectTimeoutMS=STORE_TIMEOUT_MS, appname="crawlfleet-health")


def _verdict(ok: bool, message: str) -> NoReturn:
    click.echo(("healthy: " if ok else "unhealthy: ") + message, err=not ok)
    sys.exit(0 if ok else 1)


def check_master(config: Config, master_id: str | None = None, max_age: float | None = None,
                 at: float | None = None) -> tuple[bool, str]:
    """(ok, message) for the masters of this host, or the one named."""
    from crawlfleet.models import now

    max_age = max_age or config.node_timeout
    at = at or now()
    host = socket.gethostname()
    client = _store_client(config)
    try:
        docs = [d for d in client[config.mongo_db].masters.find({}, {"heartbeat_at": 1})
                if (d["_id"] == master_id if master_id
                    else str(d["_id"]).rsplit("-", 1)[0] == host)]
    finally:
        client.close()
    if not docs:
        return False, (f"master {master_id} has not registered" if master_id else
                       f"no master of host {host} has registered (still discovering spiders?)")
    freshest = max(docs, key=lambda d: d.get("heartbeat_at") or 0)
    age = at - (freshest.get("heartbeat_at") or 0)
    if age >= max_age:
        return False, f"master {freshest['_id']} last heartbeat {age:.1f} s ago (limit {max_age:g} s)"
    return True, f"master {freshest['_id']} heartbeat {age:.1f} s ago"


def check_node(config: Config, node_id: str | None = None, max_age: float | None = None,
               at: float | None = None) -> tuple[bool, str]:
    """(ok, message) for this node."""
    from crawlfleet.models import NodeStatus, default_node_id, now

    node_id = node_id or config.node_id or default_node_id()
    max_age = max_age or config.node_timeout
    at = at or now()
    client = _store_client(config)
    try:
        doc = client[config.mongo_db].nodes.find_one(
            {"_id": node_id}, {"heartbeat_at": 1, "status": 1, "busy": 1, "free": 1})
    finally:
        client.close()
    if doc is None:
        return False, f"node {node_id} has not registered"
    age = at - (doc.get("heartbeat_at") or 0)
    if doc.get("status") != NodeStatus.ONLINE.value:
        return False, f"node {node_id} is {doc.get('status')}"
    if age >= max_age:
        return False, f"node {node_id} last heartbeat {age:.1f} s ago (limit {max_age:g} s)"
    return True, (f"node {node_id} heartbeat {age:.1f} s ago, "
                  f"{doc.get('busy', 0)} busy / {doc.get('free', '?')} free runners")


def check_web(url: str, timeout: float = 5.0) -> tuple[bool, str]:
    """(ok, message) for the web server's /healthz."""
    import requests

    try:
        response = requests.get(url, timeout=timeout)
    except requests.RequestException as exc:
        return False, f"{url} does not answer: {exc.__class__.__name__}"
    try:
        ok = response.status_code == 200 and response.json().get("ok") is True
    except ValueError:
        ok = False
    if not ok:
        return False, f"{url} answered {response.status_code}: {response.text[:200].strip()}"
    return True, f"{url} answered 200"


@click.group()
def health() -> None:
    """Exit 0 if this host's master, node or web server is healthy, else 1."""


def _store_check(check: Callable[..., tuple[bool, str]], **kwargs: Any) -> None:
    import pymongo.errors

    from crawlfleet.cli import load_config

    config = load_config()
    try:
        _verdict(*check(config, **kwargs))
    except pymongo.errors.PyMongoError as exc:
        _verdict(False, f"the store does not answer: {exc.__class__.__name__}")


# a master's and a node's health both ask how old a heartbeat may be
max_age_option = click.option("--max-age", type=float, help="Oldest acceptable heartbeat, "
                              "seconds (default: CRAWLFLEET_NODE_TIMEOUT).")


@health.command("master")
@click.option("--id", "master_id", help="A master's id (default: any master of this host).")
@max_age_option
def health_master(master_id: str | None, max_age: float | None) -> None:
    """A master of this host heartbeats."""
    _store_check(check_master, master_id=master_id, max_age=max_age)


@health.command("node")
@click.option("--id", "node_id", help="Node id (default: CRAWLFLEET_NODE_ID, else the host name).")
@max_age_option
def health_node(node_id: str | None, max_age: float | None) -> None:
    """This node is online and heartbeats."""
    _store_check(check_node, node_id=node_id, max_age=max_age)


@health.command("web")
@click.option("--url", default="http://127.0.0.1:8080/healthz", show_default=True,
              help="The web server's /healthz.")
@click.option("--timeout", type=float, default=5.0, show_default=True)
def health_web(url: str, timeout: float) -> None:
    """The web server answers /healthz and reaches the store."""
    _verdict(*check_web(url, timeout))


def register(main: click.Group) -> None:
    main.add_command(health)
