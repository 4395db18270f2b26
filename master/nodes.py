"""Node liveness as the control plane sees it: a node is online while its
heartbeat is younger than ``node_timeout``."""

from crawlfleet.models import NodeStatus, now


def is_online(node, config, at=None):
    beat = node.get("heartbeat_at") or 0
    return node.get("status") != NodeStatus.STOPPED.value and (at or now()) - beat < config.node_timeout


def list_nodes(store, config):
    at = now()
    out = []
    for node in store.nodes.find().sort("_id", 1):
        node["id"] = node["_id"]
        node["online"] = is_online(node, config, at)
        out.append(node)
    return out


def online_node_ids(store, config):
    cutoff = now() - config.node_timeout
    return sorted(
        n["_id"] for n in store.nodes.find(
            {"heartbeat_at": {"$gt": cutoff}, "status": {"$ne": NodeStatus.STOPPED.value}}, {"_id": 1})
    )
