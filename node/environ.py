"""The environment of a spider process (its command line: `node.command`).

A spider gets crawlfleet's variables and Crawlab's names for the same facts,
so spiders written for Crawlab's SDK run unchanged, and nothing of the node's
own environment beyond an allowlist.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pymongo.uri_parser import parse_uri

from crawlfleet.frontier import frontier_environment
from crawlfleet.frontier_acl import worker_url
from crawlfleet.models import Doc

if TYPE_CHECKING:
    from crawlfleet.config import Config


# What a spider may inherit from the node's own environment: nothing else.
# Proxies and CA bundles so that crawls go where the node's traffic goes; the
# bundled demo site's address, which the bundled spiders crawl.
ALLOWED = re.compile(
    r"^(PATH|LANG|LANGUAGE|LC_[A-Z]+|TZ|CRAWLFLEET_DEMO_URL|"
    r"(http|https|ftp|all|no)_proxy|(HTTP|HTTPS|FTP|ALL|NO)_PROXY|"
    r"SSL_CERT_FILE|SSL_CERT_DIR|REQUESTS_CA_BUNDLE|CURL_CA_BUNDLE)$")
DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"


def crawlab_variables(mongo_uri: str, mongo_db: str, collection: str,
                      task_id: str) -> dict[str, str]:
    """Crawlab's names; with `mongo_uri` (the project's admin-granted store
    access) also the store's address and credentials."""
    variables = {"CRAWLAB_TASK_ID": task_id, "CRAWLAB_COLLECTION": collection,
                 "CRAWLAB_MONGO_DB": mongo_db}
    if not mongo_uri:
        return variables
    parsed = parse_uri(mongo_uri, validate=False, warn=True)
    host, port = (parsed["nodelist"] or [("127.0.0.1", 27017)])[0]
    options = parsed.get("options") or {}
    variables.update({
        "CRAWLAB_MONGO_HOST": str(host),
        "CRAWLAB_MONGO_PORT": str(port),
        "CRAWLAB_MONGO_USERNAME": parsed.get("username") or "",
        "CRAWLAB_MONGO_PASSWORD": parsed.get("password") or "",
        "CRAWLAB_MONGO_AUTHSOURCE": options.get("authsource") or options.get("authSource") or "admin",
    })
    return variables


def base_environment(home: str | os.PathLike[str],
                     base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The part of a spider's environment that is the same for every task of a
    node: PATH, locale, proxies (if the node has them), a HOME of its own."""
    source = os.environ if base is None else base
    env = {k: v for k, v in source.items() if ALLOWED.match(k)}
    env.setdefault("PATH", DEFAULT_PATH)
    env["HOME"] = str(home)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def task_environment(task: Doc, config: Config, node_id: str, *, home: str | os.PathLike[str],
                     spider_env: Mapping[str, Any] | None = None, store_access: bool = False,
                     base: Mapping[str, str] | None = None,
                     crawl: Doc | None = None) -> dict[str, str]:
    """A spider's whole environment, built from an allowlist: the base above,
    the task's facts under crawlfleet's and Crawlab's names, and the spider's
    own variables and secrets (`spider_env`). No platform credential: the
    store's URI only for a project an admin gave direct store access; a
    worker of `crawl` reaches its frontier as the crawl's own Redis user."""
    env = base_environment(home, base)
    env.update({k: str(v) for k, v in (spider_env or {}).items()})
    env.update({
        "CRAWLFLEET_TASK_ID": task["_id"],
        "CRAWLFLEET_SPIDER": task["spider"],
        "CRAWLFLEET_NODE_ID": node_id,
        "CRAWLFLEET_MONGO_DB": config.mongo_db,
        "CRAWLFLEET_RESULTS_COLLECTION": task["results_collection"],
        "CRAWLFLEET_ARGS": json.dumps(task.get("args") or {}),
        "CRAWLFLEET_STATS_INTERVAL": str(config.stats_interval),
    })
    if store_access:
        env["CRAWLFLEET_MONGO_URI"] = config.mongo_uri
    env.update(crawlab_variables(config.mongo_uri if store_access else "", config.mongo_db,
                                 task["results_collection"], task["_id"]))
    if task.get("crawl_id"):  # a worker of a distributed crawl
        env.update(frontier_environment(task, config, worker_url(config, crawl)))
    return env
