"""The JSON API's task actions beside `web.api`'s list and cancel:

- ``POST /api/v1/tasks/<id>/retry``: run an ended task again (operator);
- ``DELETE /api/v1/tasks/<id>``: remove an ended task and its log (admin);
- ``POST /api/v1/tasks/bulk`` ``{"action": "cancel"|"retry"|"delete", "ids": [...]}``:
  the same on many tasks, one result per task (delete needs admin).

The actions are `master.taskactions`, which the UI's checkboxes also use.
"""

from flask import Blueprint, g, jsonify
from werkzeug.exceptions import Forbidden

from master import taskactions
from web import api, services

# nested in `web.api.bp`: its authentication and error handlers hold here too
bp = Blueprint("tasks_api", __name__)


def require_admin(what):
    if g.token.get("role") != "admin":
        raise Forbidden(f"token {g.token.get('name')!r} has role {g.token.get('role')!r}; "
                        f"{what} needs admin")


def who():
    """Who asked, recorded on a task made by a retry."""
    return {"user": g.token.get("name")} if g.token.get("name") else {}


@bp.post("/tasks/<task_id>/retry")
def retry(task_id):
    svc = services()
    new = taskactions.retry(svc.store, svc.broker, svc.config, task_id, trigger="api",
                            extra=who())
    return jsonify(api.task_out(new)), 201


@bp.delete("/tasks/<task_id>")
def delete(task_id):
    require_admin("deleting a task")
    taskactions.delete(services().store, task_id)
    return jsonify({"id": task_id, "deleted": True})


@bp.post("/tasks/bulk")
def bulk():
    body = api.json_body(("action", "ids"))
    if body.get("action") == "delete":
        require_admin("deleting tasks")
    svc = services()
    results = taskactions.bulk(svc.store, svc.broker, svc.config, body.get("action"),
                               body.get("ids"), trigger="api", extra=who())
    return jsonify({"action": body["action"], "results": results,
                    "ok": sum(1 for r in results if r["ok"]),
                    "failed": sum(1 for r in results if not r["ok"])})
