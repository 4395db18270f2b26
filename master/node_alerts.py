"""Node resource alerts: which node has stayed above a node rule's threshold
(crawlfleet/alerting/rules.py) for the rule's minutes.

The figures are the node heartbeat's (node/agent.py): ``memory_percent``
(from /proc/meminfo), ``disk_percent`` (how full the file system of the
node's home is) and, for CPU, the one-minute load average per CPU as a
percentage (``load`` / ``cpus``). A node is watched while it is online; one alert is
sent when it has been above the threshold for ``minutes`` on every pass,
and the next only after it has gone below once. The watch lives in the
scheduler leader's memory: a new leader starts watching afresh.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from crawlfleet.alerting import history
from crawlfleet.alerting.rules import node_rules
from crawlfleet.models import Doc
from master.nodes import is_online

if TYPE_CHECKING:
    from crawlfleet.config import Config
    from crawlfleet.store import Store

log = logging.getLogger(__name__)


def metric_value(node: Doc, metric: str) -> float | None:
    """The node's `metric` in percent, or None when its heartbeat lacks it."""
    if metric in ("memory", "disk"):
        value = node.get(f"{metric}_percent")
        return float(value) if isinstance(value, (int, float)) else None
    if metric == "cpu":
        load, cpus = node.get("load"), node.get("cpus")
        if isinstance(load, (int, float)) and isinstance(cpus, int) and cpus > 0:
            return round(100.0 * load / cpus, 1)
    return None


class NodeWatch:
    def __init__(self, config: Config, store: Store) -> None:
        self.config = config
        self.store = store
        self.since: dict[tuple[str, str], float] = {}  # (rule, node) → first seen above
        self.fired: set[tuple[str, str]] = set()

    def due(self, at: float) -> list[tuple[Doc, Doc, float, float]]:
        """[(rule, node, value, since)] of the alerts to send now."""
        rules = node_rules(self.store)
        if not rules:
            self.since.clear()
            self.fired.clear()
            return []
        nodes = [n for n in self.store.nodes.find() if is_online(n, self.config, at)]
        out, seen = [], set()
        for rule in rules:
            for node in nodes:
                if rule.get("node") and rule["node"] != node["_id"]:
                    continue
                key = (rule["_id"], node["_id"])
                value = metric_value(node, rule["metric"])
                if value is None or value <= rule["above"]:
                    continue
                seen.add(key)
                since = self.since.setdefault(key, at)
                if key not in self.fired and at - since >= (rule.get("minutes") or 0) * 60:
                    self.fired.add(key)
                    out.append((rule, node, value, since))
        for key in set(self.since) - seen:  # went below, went offline, or rule removed
            self.since.pop(key, None)
            self.fired.discard(key)
        return out


def text_line(rule: Doc, node: Doc, value: float, since: float, at: float) -> str:
    minutes = (at - since) / 60
    return (f"crawlfleet: node {node['_id']} {rule['metric']} at {value:g}% "
            f"(above {rule['above']:g}% for {minutes:.1f} min)")


def send_node_alerts(alerter: Any, at: float) -> list[Doc]:
    """Send what `alerter.node_watch` finds due to each rule's enabled channels
    (under the alerter's delivery policy); returns the history records."""
    store = alerter.store
    sent = []
    for rule, node, value, since in alerter.node_watch.due(at):
        text = text_line(rule, node, value, since, at)
        subject = f"[crawlfleet] node {node['_id']} {rule['metric']} above {rule['above']:g}%"
        for channel_id in rule.get("channels") or ():
            channel = store.db.alert_channels.find_one({"_id": channel_id, "enabled": True})
            if channel is None:
                continue
            result = alerter.to_channel(channel, subject, text)
            sent.append(history.record(
                store, kind="node", subject=node["_id"], events=[rule["metric"]],
                channel=channel["name"], target=channel["redacted"], text=text, **result))
            log.log(logging.INFO if result["ok"] else logging.WARNING,
                    "node alert for %s to %s: %s", node["_id"], channel["name"],
                    "sent" if result["ok"] else result["error"])
    return sent
