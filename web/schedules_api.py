"""The JSON API of schedules, under /api/v1/schedules: list, create, read,
update (PATCH: the fields given; PUT: the whole schedule), delete, enable,
disable, fire history, run now, and a preview of an expression's next fire
times with the expression in words.

Same conventions as `web.api`, whose helpers it uses: a bearer token (or the
UI's session) on every route, write routes for ``operator`` and ``admin``
only, errors as ``{"error": message}`` with real status codes. What is valid
is decided by `crawlfleet.schedules`, which the master's scheduler shares.
"""

from flask import Blueprint, g, jsonify, request

from crawlfleet import schedules
from crawlfleet.errors import BadRequest
from master.runnow import run_schedule_now
from web import api, redact, services

# nested in `web.api.bp`: its authentication and error handlers hold here too
bp = Blueprint("schedules", __name__, url_prefix="/schedules")

def public_schedule(doc, **options):
    """A schedule as the API shows it to this request's principal."""
    return redact.schedule(schedules.public_schedule(doc, **options))


LIST_PAGE = (100, 1000)     # default and largest `limit` of GET /schedules
HISTORY_PAGE = (50, 500)    # ... of GET /schedules/<id>/history
UPCOMING = 5                # next fire times shown with one schedule
PREVIEW_FIELDS = ("cron", "timezone", "count")


def float_arg(name):
    raw = request.args.get(name, "")
    if raw == "":
        return None
    try:
        return float(raw)
    except ValueError:
        raise BadRequest(f"{name} must be a number, got {raw!r}") from None


@bp.get("")
def list_schedules():
    """Schedules by id (creation order), keyset-paged with `after`."""
    query = {}
    if request.args.get("spider"):
        query["spider"] = request.args["spider"]
    enabled = request.args.get("enabled", "")
    if enabled:
        if enabled not in ("true", "false"):
            raise BadRequest("enabled must be true or false")
        query["enabled"] = enabled == "true"
    if request.args.get("after"):
        query["_id"] = {"$gt": request.args["after"]}
    limit = api.int_arg("limit", LIST_PAGE[0], LIST_PAGE[1], smallest=1)
    docs = list(services().store.schedules.find(query).sort("_id", 1).limit(limit + 1))
    more = len(docs) > limit
    docs = docs[:limit]
    return jsonify({"schedules": [public_schedule(d) for d in docs],
                    "next": docs[-1]["_id"] if more else None})


@bp.post("")
def create():
    body = api.json_body(schedules.FIELDS)
    doc = schedules.create(services().store, body)
    return jsonify(public_schedule(doc, upcoming=UPCOMING)), 201


@bp.post("/preview")
def preview():
    body = api.json_body(PREVIEW_FIELDS)
    out = schedules.preview(body.get("cron"), body.get("timezone"), body.get("count", UPCOMING))
    words = schedules.describe(out["cron"], out["timezone"])
    return jsonify({**out, "description": words["description"], "seconds": words["seconds"]})


@bp.get("/<schedule_id>")
def get(schedule_id):
    doc = schedules.get(services().store, schedule_id)
    return jsonify(public_schedule(doc, upcoming=UPCOMING))


@bp.patch("/<schedule_id>")
def patch(schedule_id):
    body = api.json_body(schedules.FIELDS)
    doc = schedules.update(services().store, schedule_id, body)
    return jsonify(public_schedule(doc, upcoming=UPCOMING))


@bp.put("/<schedule_id>")
def put(schedule_id):
    body = api.json_body(schedules.FIELDS)
    doc = schedules.update(services().store, schedule_id, body, replace=True)
    return jsonify(public_schedule(doc, upcoming=UPCOMING))


@bp.delete("/<schedule_id>")
def delete(schedule_id):
    schedules.delete(services().store, schedule_id)
    return jsonify({"id": schedule_id, "deleted": True})


@bp.post("/<schedule_id>/enable")
def enable(schedule_id):
    doc = schedules.set_enabled(services().store, schedule_id, True)
    return jsonify(public_schedule(doc, upcoming=UPCOMING))


@bp.post("/<schedule_id>/disable")
def disable(schedule_id):
    doc = schedules.set_enabled(services().store, schedule_id, False)
    return jsonify(public_schedule(doc))


@bp.get("/<schedule_id>/history")
def history(schedule_id):
    limit = api.int_arg("limit", HISTORY_PAGE[0], HISTORY_PAGE[1], smallest=1)
    return jsonify(schedules.history(services().store, schedule_id, limit=limit,
                                     before=float_arg("before")))


@bp.post("/<schedule_id>/run")
def run_now(schedule_id):
    """Run the schedule's spider now with its options (trigger ``api``)."""
    svc = services()
    extra = {"user": g.token.get("name")} if g.token.get("name") else {}
    tasks = run_schedule_now(svc.store, svc.broker, svc.config, schedule_id,
                             trigger="api", extra=extra)
    return jsonify({"task_ids": [t["_id"] for t in tasks],
                    "tasks": [api.task_out(t) for t in tasks]}), 201
