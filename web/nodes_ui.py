"""The nodes page: every node, its heartbeat and the tasks it runs."""

from flask import render_template

from master.nodes import list_nodes
from web import services
from web.ui import bp


@bp.get("/nodes")
def nodes():
    svc = services()
    nodes = list_nodes(svc.store, svc.config)
    running_ids = [t for n in nodes for t in (n.get("running") or [])]
    tasks = {t["_id"]: t for t in svc.store.tasks.find({"_id": {"$in": running_ids}},
                                                        {"spider": 1, "started_at": 1})}
    return render_template("nodes.html", nodes=nodes, tasks=tasks,
                           config_timeout=svc.config.node_timeout)
