"""The JSON API of node control, under /api/v1/nodes/<id>: one node, its labels,
its mode (enable, drain, disable), its run slots, and its history (samples of
load, memory and busy runners, and the tasks it started: `crawlfleet.nodehistory`). The list itself is
``GET /api/v1/nodes`` in `web.api`.

Same conventions as `web.api`: write routes for ``operator`` and ``admin``;
what is valid is decided by `master.nodes`.
"""

from flask import Blueprint, jsonify, request

from crawlfleet import nodehistory
from crawlfleet.errors import BadRequest
from crawlfleet.models import NodeMode
from master import nodes as node_control
from web import api, services

# nested in `web.api.bp`: its authentication and error handlers hold here too
bp = Blueprint("nodes_api", __name__, url_prefix="/nodes")


def node_out(doc):
    return node_control.describe_node(doc, services().config)


@bp.get("/<node_id>")
def node(node_id):
    return jsonify(node_out(node_control.get_node(services().store, node_id)))


@bp.get("/<node_id>/history")
def history(node_id):
    """``?hours=N`` (1 to 168, default 24): samples oldest first, and the tasks started."""
    store = services().store
    node_control.get_node(store, node_id)  # 404 for an unknown node, not an empty history
    hours = nodehistory.parse_hours(request.args.get("hours"))
    return jsonify(nodehistory.node_history(store, node_id, hours))


@bp.post("/<node_id>/labels")
def label(node_id):
    """Body ``{"set": {"region": "eu"}, "remove": ["proxy"]}`` (either part optional)."""
    body = api.json_body(("set", "remove"))
    doc = node_control.update_labels(services().store, node_id, body.get("set"),
                                     body.get("remove"))
    return jsonify(node_out(doc))


@bp.delete("/<node_id>/labels/<key>")
def unlabel(node_id, key):
    return jsonify(node_out(node_control.update_labels(services().store, node_id,
                                                       remove=[key])))


def set_mode(node_id, mode):
    api.json_body(())
    return jsonify(node_out(node_control.set_mode(services().store, node_id, mode)))


@bp.post("/<node_id>/enable")
def enable(node_id):
    return set_mode(node_id, NodeMode.ENABLED.value)


@bp.post("/<node_id>/drain")
def drain(node_id):
    return set_mode(node_id, NodeMode.DRAINING.value)


@bp.post("/<node_id>/disable")
def disable(node_id):
    return set_mode(node_id, NodeMode.DISABLED.value)


@bp.post("/<node_id>/slots")
def slots(node_id):
    """Body ``{"run_slots": 4}``; null returns to the node's own setting."""
    body = api.json_body(("run_slots",))
    if "run_slots" not in body:
        raise BadRequest('run_slots is required: {"run_slots": 4} (null: the node\'s own)')
    doc = node_control.set_run_slots(services().store, node_id, body["run_slots"])
    return jsonify(node_out(doc))
