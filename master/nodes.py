"""Nodes as the control plane sees them: liveness (a node is online while its
heartbeat is younger than ``node_timeout``), and what an operator sets on one:
its labels, its mode (enabled, draining, disabled) and its run slots.

The operator's settings live in the node's document (``labels``, ``mode``,
``run_slots``), which the agent never overwrites: it reads them every second
and obeys (node/control.py), so they survive a restart of the node.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from crawlfleet import labels as labelling
from crawlfleet.errors import BadRequest, NotFound
from crawlfleet.models import Doc, NodeMode, NodeStatus, now
from crawlfleet.store import known_ids

if TYPE_CHECKING:
    from crawlfleet.config import Config
    from crawlfleet.store import Store

MAX_RUN_SLOTS = 256
MODES = [m.value for m in NodeMode]


def is_online(node: Doc, config: Config, at: float | None = None) -> bool:
    beat = node.get("heartbeat_at") or 0
    return (node.get("status") != NodeStatus.STOPPED.value
            and (at or now()) - beat < config.node_timeout)


def mode_of(node: Doc) -> str:
    return node.get("mode") or NodeMode.ENABLED.value


def describe_node(node: Doc, config: Config, at: float | None = None) -> Doc:
    """A node's document with what follows from it: online, mode, drained."""
    node["id"] = node["_id"]
    node["online"] = is_online(node, config, at)
    node["labels"] = node.get("labels") or {}
    node["mode"] = mode_of(node)
    node.setdefault("run_slots", None)
    # "drained": nothing left running, the moment to stop the machine
    node["drained"] = (node["mode"] == NodeMode.DRAINING.value
                       and not (node.get("running") if node["online"] else None))
    return node


def list_nodes(store: Store, config: Config) -> list[Doc]:
    at = now()
    return [describe_node(node, config, at) for node in store.nodes.find().sort("_id", 1)]


def online_node_ids(store: Store, config: Config, *, labels: Mapping[str, str] | None = None,
                    accepting: bool = False) -> list[str]:
    """Online nodes (carrying `labels`; only enabled ones when `accepting`)."""
    cutoff = now() - config.node_timeout
    return sorted(
        n["_id"] for n in store.nodes.find(
            {"heartbeat_at": {"$gt": cutoff}, "status": {"$ne": NodeStatus.STOPPED.value}},
            {"_id": 1, "labels": 1, "mode": 1})
        if labelling.matches(labels, n.get("labels"))
        and (not accepting or mode_of(n) == NodeMode.ENABLED.value)
    )


def nodes_with_labels(store: Store, labels: Mapping[str, str]) -> list[str]:
    """Every registered node carrying `labels`, whatever its state."""
    query = {f"labels.{k}": v for k, v in labels.items()}
    return sorted(n["_id"] for n in store.nodes.find(query, {"_id": 1}))


def waiting_reason(store: Store, config: Config, task: Doc) -> str | None:
    """Why a pending task has no node to take it (its node is offline or not enabled,
    or no enabled online node carries its labels), or None if one is there."""
    target = task.get("target") or "any"
    if target != "any":
        node = store.nodes.find_one({"_id": target})
        if node is None:
            return f"waiting for node {target}, which is not registered"
        if not is_online(node, config):
            return f"waiting for node {target}, which is offline"
        if mode_of(node) != NodeMode.ENABLED.value:
            return f"waiting for node {target}, which is {mode_of(node)}"
        return None
    wanted = task.get("labels") or {}
    if not wanted:
        return None
    if online_node_ids(store, config, labels=wanted, accepting=True):
        return None
    carriers = nodes_with_labels(store, wanted)
    selector = labelling.describe(wanted)
    if not carriers:
        return f"waiting for a node labelled {selector}: no node carries these labels"
    return (f"waiting for a node labelled {selector}: "
            f"{', '.join(carriers)} {'is' if len(carriers) == 1 else 'are'} "
            "offline, draining or disabled")


def record_selector(store: Store, wanted: Mapping[str, str]) -> None:
    """Remember a selector a task asked for, so carrying nodes consume its queue."""
    store.label_selectors.update_one(
        {"_id": labelling.selector_key(wanted)},
        {"$set": {"labels": dict(wanted), "used_at": now()}}, upsert=True)


# -- what an operator sets on a node ----------------------------------------------

def get_node(store: Store, node_id: Any) -> Doc:
    node = store.nodes.find_one({"_id": node_id}) if isinstance(node_id, str) else None
    if node is None:
        # not get_named: a node id may come from a URL, so a long one is cut short
        raise NotFound(f"unknown node {str(node_id)[:70]!r}; known nodes: "
                       f"{known_ids(store.nodes)}")
    return node


def update_labels(store: Store, node_id: Any, set_: Any = None, remove: Any = None) -> Doc:
    """Add or change labels `set_` ({key: value}) and drop the keys in `remove`."""
    current = get_node(store, node_id).get("labels") or {}
    new = labelling.validate(set_, "labels")
    if remove is None:
        remove = []
    if isinstance(remove, str):
        remove = [k for k in remove.split(",") if k.strip()]
    if not isinstance(remove, list):
        raise BadRequest("remove must be a list of label keys")
    gone = [labelling.check_key(k.strip() if isinstance(k, str) else k) for k in remove]
    both = sorted(set(new) & set(gone))
    if both:
        raise BadRequest(f"label {both[0]!r} is both set and removed")
    if len(set(current) - set(gone) | set(new)) > labelling.MAX_LABELS:
        raise BadRequest(f"a node carries at most {labelling.MAX_LABELS} labels")
    update: Doc = {}
    if new:
        update["$set"] = {f"labels.{k}": v for k, v in new.items()}
    if gone:
        update["$unset"] = {f"labels.{k}": "" for k in gone}
    if update:
        store.nodes.update_one({"_id": node_id}, update)
    return get_node(store, node_id)


def set_mode(store: Store, node_id: Any, mode: Any) -> Doc:
    get_node(store, node_id)
    if mode not in MODES:
        raise BadRequest(f"mode must be one of {', '.join(MODES)}, got {str(mode)[:40]!r}")
    store.nodes.update_one({"_id": node_id}, {"$set": {"mode": mode, "mode_at": now()}})
    return get_node(store, node_id)


def set_run_slots(store: Store, node_id: Any, slots: Any) -> Doc:
    """How many tasks the node runs at once; None returns to the node's own setting."""
    get_node(store, node_id)
    if slots is not None and (isinstance(slots, bool) or not isinstance(slots, int)
                              or not 1 <= slots <= MAX_RUN_SLOTS):
        raise BadRequest(f"run_slots must be an integer from 1 to {MAX_RUN_SLOTS}, "
                         "or null for the node's own setting")
    store.nodes.update_one({"_id": node_id}, {"$set": {"run_slots": slots}})
    return get_node(store, node_id)
