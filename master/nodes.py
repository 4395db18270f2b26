"""Node liveness as the control plane sees it: a node is online while its
heartbeat is younger than ``node_timeout``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from crawlfleet.models import Doc, NodeStatus, now

if TYPE_CHECKING:
    from crawlfleet.config import Config
    from crawlfleet.store import Store


def is_online(node: Doc, config: Config, at: float | None = None) -> bool:
    beat = node.get("heartbeat_at") or 0
    return (node.get("status") != NodeStatus.STOPPED.value
            and (at or now()) - beat < config.node_timeout)


def list_nodes(store: Store, config: Config) -> list[Doc]:
    at = now()
    out = []
    for node in store.nodes.find().sort("_id", 1):
        node["id"] = node["_id"]
        node["online"] = is_online(node, config, at)
        out.append(node)
    return out


def online_node_ids(store: Store, config: Config) -> list[str]:
    cutoff = now() - config.node_timeout
    return sorted(
        n["_id"] for n in store.nodes.find(
            {"heartbeat_at": {"$gt": cutoff}, "status": {"$ne": NodeStatus.STOPPED.value}},
            {"_id": 1})
    )
