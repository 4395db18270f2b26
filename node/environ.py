"""The environment of a spider process (its command line: `node.command`).

A spider gets crawlfleet's variables and Crawlab's names for the same facts,
so spiders written for Crawlab's SDK run unchanged.
"""

import json
import os

from pymongo.uri_parser import parse_uri

from crawlfleet.frontier import frontier_environment

# Secrets of the platform that a spider has no business reading.
WITHHELD = ("CRAWLFLEET_TOKEN", "CRAWLFLEET_SECRET_KEY", "CRAWLFLEET_ADMIN_PASSWORD",
            "CRAWLFLEET_ALERT_SMTP_PASSWORD", "CRAWLFLEET_SECRETS_KEY")
# the global alert settings (webhook URL, addresses, SMTP login) are the platform's
WITHHELD_PREFIXES = ("CRAWLFLEET_ALERT_",)


def crawlab_variables(mongo_uri, mongo_db, collection, task_id):
    parsed = parse_uri(mongo_uri, validate=False, warn=True)
    host, port = (parsed["nodelist"] or [("127.0.0.1", 27017)])[0]
    options = parsed.get("options") or {}
    return {
        "CRAWLAB_TASK_ID": task_id,
        "CRAWLAB_COLLECTION": collection,
        "CRAWLAB_MONGO_HOST": str(host),
        "CRAWLAB_MONGO_PORT": str(port),
        "CRAWLAB_MONGO_DB": mongo_db,
        "CRAWLAB_MONGO_USERNAME": parsed.get("username") or "",
        "CRAWLAB_MONGO_PASSWORD": parsed.get("password") or "",
        "CRAWLAB_MONGO_AUTHSOURCE": options.get("authsource") or options.get("authSource") or "admin",
    }


def task_environment(task, config, node_id, base=None):
    env = {k: v for k, v in (os.environ if base is None else base).items()
           if k not in WITHHELD and not k.startswith(WITHHELD_PREFIXES)}
    env.update({
        "CRAWLFLEET_TASK_ID": task["_id"],
        "CRAWLFLEET_SPIDER": task["spider"],
        "CRAWLFLEET_NODE_ID": node_id,
        "CRAWLFLEET_MONGO_URI": config.mongo_uri,
        "CRAWLFLEET_MONGO_DB": config.mongo_db,
        "CRAWLFLEET_RESULTS_COLLECTION": task["results_collection"],
        "CRAWLFLEET_ARGS": json.dumps(task.get("args") or {}),
        "CRAWLFLEET_STATS_INTERVAL": str(config.stats_interval),
        "PYTHONUNBUFFERED": "1",
    })
    env.update(crawlab_variables(config.mongo_uri, config.mongo_db,
                                 task["results_collection"], task["_id"]))
    env.update(frontier_environment(task, config))  # a worker of a distributed crawl
    return env
