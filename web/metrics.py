"""`/metrics`: Prometheus text format, read from the ledger at scrape time.

Nothing is counted in the web process: a custom collector reads the store
(and the broker's queue depths) on each scrape, so every gunicorn worker and
every web server behind a load balancer answers the same numbers. What it
exposes:

| metric | type | from |
|---|---|---|
| `crawlfleet_up{component="store"\|"broker"}` | gauge | whether the scrape could read it |
| `crawlfleet_tasks{status}` | gauge | tasks in the ledger by status (one `$group`; all seven statuses, 0 when none) |
| `crawlfleet_dispatch_latency_seconds` | histogram | `started_at` − `created_at` (or `not_before`, for a retry waiting out its backoff) of the `LATENCY_WINDOW` most recently created tasks that have started: a window, not a running total, so use `histogram_quantile` on the buckets directly, without `rate()` |
| `crawlfleet_queue_depth{queue}` | gauge | messages waiting in the shared queue, in each online node's own queue and in each label selector's queue (runs asking for node labels) |
| `crawlfleet_nodes_online`, `crawlfleet_masters_online` | gauge | heartbeats younger than `node_timeout` |
| `crawlfleet_node_runners{node, state="busy"\|"free"}` | gauge | what each online node wrote with its last heartbeat |
| `crawlfleet_items_ingested_total{spider}` | counter | items of every task that ended on a node, added once by that node (crawlfleet/counters.py) |
| `crawlfleet_scrape_duration_seconds` | gauge | how long this scrape took to read it all |

Access: `Authorization: Bearer <token>` with any valid API token (a viewer
token is enough), or a signed-in UI session; with `CRAWLFLEET_METRICS_PUBLIC`
set, anyone who can reach the port.
"""

import logging
import time

import pymongo
import pymongo.errors
from flask import Response, jsonify, request
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from prometheus_client.core import (CounterMetricFamily, GaugeMetricFamily,
                                    HistogramMetricFamily)

from crawlfleet import counters
from crawlfleet.models import TaskStatus, now

log = logging.getLogger(__name__)

LATENCY_WINDOW = 1000
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
STORE_TIMEOUT = 5.0
MAX_SELECTORS = 200  # label queues read per scrape (each is one broker round trip)


def dispatch_latencies(store, window=LATENCY_WINDOW):
    """Seconds from due to started, of the `window` newest tasks that started.

    Task ids sort by creation time, so the newest are the first by `_id`
    descending: the primary key, no index to add (about 30 ms for 1000 on
    nx-27017 with 20k tasks)."""
    out = []
    cursor = store.tasks.find({"started_at": {"$gt": 0}},
                              {"created_at": 1, "not_before": 1, "started_at": 1}) \
        .sort("_id", pymongo.DESCENDING).limit(window)
    for doc in cursor:
        due = max(doc.get("created_at") or 0, doc.get("not_before") or 0)
        if due:
            out.append(max(0.0, doc["started_at"] - due))
    return out


def histogram_buckets(values, bounds=LATENCY_BUCKETS):
    """Cumulative buckets as prometheus_client wants them: [(le, count)…, ("+Inf", n)]."""
    values = sorted(values)
    buckets, i = [], 0
    for bound in bounds:
        while i < len(values) and values[i] <= bound:
            i += 1
        buckets.append((repr(float(bound)), i))
    buckets.append(("+Inf", len(values)))
    return buckets


def queue_depths(broker, node_ids, selectors=()):
    """{queue name: messages waiting}, over one broker connection; `selectors` are
    the label sets whose queues to read too."""
    topology = broker.topology
    queues = ([topology.shared_queue] + [topology.node_queue(n) for n in node_ids]
              + [topology.label_queue(labels) for labels in selectors])
    depths = {}
    with broker.connection.clone() as conn:
        conn.connect()
        channel = conn.channel()
        for queue in queues:
            try:
                _, depths[queue.name], _ = queue(channel).queue_declare(passive=True)
            except conn.channel_errors:
                depths[queue.name] = 0  # not declared yet: nothing waits in it
                channel = conn.channel()  # AMQP closes a channel on a failed passive declare
    return depths


class LedgerCollector:
    """A prometheus_client collector that reads the ledger on each `collect()`."""

    def __init__(self, services):
        self.services = services

    def collect(self):
        started = time.monotonic()
        config, store, broker = self.services.config, self.services.store, self.services.broker
        up = GaugeMetricFamily("crawlfleet_up", "Whether this scrape could read the component.",
                               labels=["component"])
        try:
            with pymongo.timeout(STORE_TIMEOUT):
                families, online = self._from_store(config, store)
                selectors = [d["labels"] for d in store.label_selectors.find({}, {"labels": 1})
                             .limit(MAX_SELECTORS) if d.get("labels")]
            up.add_metric(["store"], 1)
        except pymongo.errors.PyMongoError as exc:
            log.warning("/metrics: the store does not answer: %s", exc)
            families, online, selectors = [], [], []
            up.add_metric(["store"], 0)
        try:
            depths = queue_depths(broker, online, selectors)
            depth = GaugeMetricFamily("crawlfleet_queue_depth",
                                      "Task messages waiting in a broker queue.", labels=["queue"])
            for name, count in sorted(depths.items()):
                depth.add_metric([name], count)
            families.append(depth)
            up.add_metric(["broker"], 1)
        except Exception as exc:  # any transport's connection error
            log.warning("/metrics: the broker does not answer: %s", exc)
            up.add_metric(["broker"], 0)
        yield up
        yield from families
        yield GaugeMetricFamily("crawlfleet_scrape_duration_seconds",
                                "Seconds this scrape spent reading the store and broker.",
                                value=time.monotonic() - started)

    def _from_store(self, config, store):
        families = []
        tasks = GaugeMetricFamily("crawlfleet_tasks", "Tasks in the ledger, by status.",
                                  labels=["status"])
        by_status = {s.value: 0 for s in TaskStatus}
        for row in store.tasks.aggregate([{"$group": {"_id": "$status", "n": {"$sum": 1}}}]):
            if isinstance(row.get("_id"), str):
                by_status[row["_id"]] = row["n"]
        for status, count in by_status.items():
            tasks.add_metric([status], count)
        families.append(tasks)

        latencies = dispatch_latencies(store)
        latency = HistogramMetricFamily(
            "crawlfleet_dispatch_latency_seconds",
            f"Seconds from a task being due to its start on a node, over the "
            f"{LATENCY_WINDOW} newest started tasks.")
        latency.add_metric([], histogram_buckets(latencies), sum_value=sum(latencies))
        families.append(latency)

        cutoff = now() - config.node_timeout
        online = []
        runners = GaugeMetricFamily("crawlfleet_node_runners",
                                    "Run slots of each online node, busy or free.",
                                    labels=["node", "state"])
        for node in store.nodes.find({"heartbeat_at": {"$gt": cutoff}},
                                     {"status": 1, "busy": 1, "free": 1, "max_runners": 1}):
            if node.get("status") != "online":
                continue
            online.append(node["_id"])
            busy = node.get("busy") or 0
            free = node.get("free")
            if free is None:  # registered, no heartbeat yet with counts
                free = max(0, (node.get("max_runners") or 0) - busy)
            runners.add_metric([node["_id"], "busy"], busy)
            runners.add_metric([node["_id"], "free"], free)
        families.append(runners)
        families.append(GaugeMetricFamily("crawlfleet_nodes_online",
                                          "Nodes heartbeating within node_timeout.",
                                          value=len(online)))
        masters = sum(1 for _ in store.masters.find({"heartbeat_at": {"$gt": cutoff}}, {"_id": 1}))
        families.append(GaugeMetricFamily("crawlfleet_masters_online",
                                          "Masters heartbeating within node_timeout.",
                                          value=masters))

        items = CounterMetricFamily("crawlfleet_items_ingested",
                                    "Items ingested by the tasks that ended on a node.",
                                    labels=["spider"])
        for spider, count in sorted(counters.items_by_spider(store).items()):
            items.add_metric([spider], count)
        families.append(items)
        return families, sorted(online)


def _allowed(services):
    from web import credentials

    return services.config.metrics_public or credentials.identify() is not None


def init_app(app):
    """Register `/metrics` on the app, with a registry of its own."""
    from web import services

    registry = CollectorRegistry(auto_describe=False)
    registry.register(LedgerCollector(app.extensions["crawlfleet"]))

    def metrics():
        try:
            allowed = _allowed(services())
        except pymongo.errors.PyMongoError:
            response = jsonify({"error": "the store does not answer; the token cannot be checked"})
            response.status_code = 503
            return response
        if not allowed:
            response = jsonify({"error": "send 'Authorization: Bearer <token>' (any API token)"})
            response.status_code = 401
            response.headers["WWW-Authenticate"] = 'Bearer realm="crawlfleet"'
            return response
        # Prometheus' text format 0.0.4 unless the scraper asks for OpenMetrics
        encode, content_type = choose_encoder(request.headers.get("Accept", ""))
        response = Response(encode(registry), mimetype=None)
        response.headers["Content-Type"] = content_type
        response.headers["Cache-Control"] = "no-store"
        return response

    app.add_url_rule("/metrics", "metrics", metrics)
