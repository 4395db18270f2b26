"""The nodes page: every node, its heartbeat and the tasks it runs; for
operators, its labels, its mode (enable, drain, disable) and its run slots,
set through `master.nodes` like the API's node routes."""

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from crawlfleet import labels as labelling
from crawlfleet import nodehistory
from crawlfleet.errors import BadRequest
from master import nodes as node_control
from master.nodes import list_nodes
from web import auth, errors, nodecharts, services
from web.ui import bp


@bp.get("/nodes")
def nodes():
    svc = services()
    nodes = list_nodes(svc.store, svc.config)
    running_ids = [t for n in nodes for t in (n.get("running") or [])]
    tasks = {t["_id"]: t for t in svc.store.tasks.find({"_id": {"$in": running_ids}},
                                                        {"spider": 1, "started_at": 1})}
    return render_template("nodes.html", nodes=nodes, tasks=tasks,
                           config_timeout=svc.config.node_timeout,
                           describe_labels=labelling.describe)


@bp.get("/nodes/<node_id>")
def node(node_id):
    """One node: its load, memory and busy runners over a window, and its recent tasks."""
    svc = services()
    with errors.missing_is_404():
        doc = node_control.describe_node(node_control.get_node(svc.store, node_id), svc.config)
    try:
        hours = nodehistory.parse_hours(request.args.get("hours"))
    except BadRequest as exc:
        abort(400, str(exc))
    history = nodehistory.node_history(svc.store, node_id, hours)
    return render_template("node.html", node=doc, history=history,
                           charts=nodecharts.charts(history), windows=(1, 6, 24, 72, 168),
                           describe_labels=labelling.describe)


def back():
    return redirect(url_for("ui.nodes"))


@bp.post("/nodes/<node_id>/labels")
@auth.require("operator")
def add_labels(node_id):
    """The form's text: ``region=eu`` or several, split by commas or spaces."""
    text = request.form.get("labels", "")
    with errors.flash_errors():
        pairs = [p for p in text.replace(",", " ").split() if p]
        if not pairs:
            raise BadRequest("write a label as KEY=VALUE, e.g. region=eu")
        node_control.update_labels(services().store, node_id,
                                   labelling.parse_pairs(pairs, "labels"))
        flash(_("Node %(node)s: labelled %(labels)s.", node=node_id,
                labels=labelling.describe(labelling.parse_pairs(pairs))), "ok")
    return back()


@bp.post("/nodes/<node_id>/labels/<key>/delete")
@auth.require("operator")
def remove_label(node_id, key):
    with errors.flash_errors():
        node_control.update_labels(services().store, node_id, remove=[key])
        flash(_("Node %(node)s: label %(key)s removed.", node=node_id, key=key), "ok")
    return back()


@bp.post("/nodes/<node_id>/mode")
@auth.require("operator")
def set_mode(node_id):
    with errors.flash_errors():
        node = node_control.set_mode(services().store, node_id, request.form.get("mode"))
        flash(_("Node %(node)s is enabled.", node=node_id) if node["mode"] == "enabled"
              else _("Node %(node)s is %(mode)s: it takes no new task, running ones finish.",
                     node=node_id, mode=_(node["mode"])), "ok")
    return back()


@bp.post("/nodes/<node_id>/slots")
@auth.require("operator")
def set_slots(node_id):
    raw = (request.form.get("run_slots") or "").strip()
    with errors.flash_errors():
        try:
            slots = int(raw) if raw else None
        except ValueError:
            raise BadRequest(f"run slots must be a whole number, got {raw[:20]!r}") from None
        node_control.set_run_slots(services().store, node_id, slots)
        flash(_("Node %(node)s: %(num)s run slot(s).", node=node_id, num=slots) if slots
              else _("Node %(node)s: back to its own run slots.", node=node_id), "ok")
    return back()
