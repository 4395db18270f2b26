"""The JSON API under /api/v1.

Every route but the OpenAPI document needs ``Authorization: Bearer <token>``;
a ``viewer`` token may only read, ``operator`` and ``admin`` may also run,
cancel and rescan. Errors are ``{"error": "<message>"}`` with a real status
code. Lists page by keyset (``before`` / ``after`` cursors), never by skip.
"""

import json
import logging
import re

import pymongo.errors
from bson import ObjectId
from flask import Blueprint, Response, g, jsonify, request, stream_with_context
from werkzeug.exceptions import Forbidden, HTTPException

from crawlfleet.errors import BadRequest, CrawlfleetError, NotFound, Unauthorized
from crawlfleet.models import TaskStatus, now, public_task, results_collection_for
from crawlfleet.tokens import verify_token
from master import discovery, dispatch
from master.nodes import list_nodes
from web import export, openapi, services

log = logging.getLogger(__name__)

PREFIX = "/api/v1"
bp = Blueprint("api", __name__, url_prefix=PREFIX)

READ_METHODS = {"GET", "HEAD", "OPTIONS"}
WRITE_ROLES = {"admin", "operator"}
PUBLIC_ENDPOINTS = {"api.openapi_document"}
TOKEN_TOUCH_INTERVAL = 60.0  # seconds between `last_used_at` updates of a token
RUN_FIELDS = ("args", "settings", "nodes", "timeout", "priority", "workers", "persist")
TASK_PAGE = (50, 500)        # default and largest `limit` of GET /tasks
TIE_LIMIT = 1000             # tasks of the cursor's instant read to page past it
LOG_PAGE = (1000, 10_000)    # ... of GET /tasks/<id>/log
RESULT_PAGE = (100, 1000)    # ... of GET /tasks/<id>/results?format=json
STATUS_VALUES = [s.value for s in TaskStatus]


# -- authentication and errors -------------------------------------------------

@bp.before_request
def authenticate():
    if request.endpoint in PUBLIC_ENDPOINTS:
        return
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if "Authorization" not in request.headers and g.get("user"):
        # The web UI's own calls ride on its session cookie (web.auth has
        # already checked their CSRF token); the user's role stands in.
        doc = {"_id": None, "name": g.user["_id"], "role": g.user["role"], "last_used_at": now()}
    elif scheme.lower() != "bearer" or not token:
        raise Unauthorized("missing token: send the header 'Authorization: Bearer <token>'")
    else:
        doc = verify_token(services().store, token)
    store = services().store
    if doc is None:
        raise Unauthorized("invalid or revoked token")
    g.token = doc
    if request.method not in READ_METHODS and doc.get("role") not in WRITE_ROLES:
        raise Forbidden(f"token {doc.get('name')!r} has role {doc.get('role')!r}, "
                        "which may only read; this request needs operator or admin")
    stamp = now()
    if stamp - (doc.get("last_used_at") or 0) > TOKEN_TOUCH_INTERVAL:
        try:
            store.tokens.update_one({"_id": doc["_id"]}, {"$set": {"last_used_at": stamp}})
        except pymongo.errors.PyMongoError as exc:  # bookkeeping only
            log.warning("could not record token use: %s", exc)


def error_response(message, status, headers=None):
    response = jsonify({"error": message})
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="crawlfleet"'
    response.headers.update(headers or {})
    return response


@bp.errorhandler(CrawlfleetError)
def crawlfleet_error(exc):
    return error_response(str(exc), exc.status_code)


@bp.errorhandler(pymongo.errors.ConnectionFailure)
def store_unavailable(exc):
    log.error("store unavailable: %s", exc)
    return error_response("the store (MongoDB) does not answer; try again shortly", 503)


@bp.errorhandler(Exception)
def unexpected_error(exc):
    if isinstance(exc, HTTPException):
        return http_error(exc)
    log.exception("unhandled error in %s %s", request.method, request.path)
    return error_response("internal server error", 500)


def http_error(exc):
    """JSON for HTTP errors under /api/ (unknown route, wrong method, bad body);
    other paths keep Flask's default pages. Registered on the app, because an
    unknown URL never reaches the blueprint's own handlers."""
    if not (request.path == PREFIX or request.path.startswith(PREFIX + "/")):
        return exc
    headers = {}
    if exc.code == 405 and getattr(exc, "valid_methods", None):
        headers["Allow"] = ", ".join(exc.valid_methods)
    return error_response(exc.description or exc.name, exc.code or 500, headers)


@bp.after_request
def no_sniff(response):
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Cache-Control", "no-store")
    return response


# -- request helpers -----------------------------------------------------------

def json_body(allowed):
    """The request's JSON object ({} for an empty body); unknown keys are an error."""
    raw = request.get_data(cache=True)
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise BadRequest(f"request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object")
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise BadRequest(f"unknown field(s) {', '.join(unknown)}; expected {', '.join(allowed)}")
    return body


def int_arg(name, default, largest=None, smallest=0):
    raw = request.args.get(name, "")
    if raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"{name} must be an integer, got {raw!r}") from None
    if value < smallest:
        raise BadRequest(f"{name} must be at least {smallest}")
    return min(value, largest) if largest else value


def get_task(task_id):
    task = services().store.tasks.find_one({"_id": task_id})
    if task is None:
        raise NotFound(f"unknown task {task_id!r}")
    return task


def attachment(task_id, suffix):
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", task_id) + suffix
    return {"Content-Disposition": f"attachment; filename={name}"}


def spider_out(doc):
    return {"name": doc["_id"], **doc}


# -- nodes and spiders ---------------------------------------------------------

@bp.get("/nodes")
def nodes():
    svc = services()
    return jsonify({"nodes": list_nodes(svc.store, svc.config)})


@bp.get("/spiders")
def spiders():
    docs = services().store.spiders.find().sort("_id", 1)
    return jsonify({"spiders": [spider_out(d) for d in docs]})


@bp.get("/spiders/<name>")
def spider(name):
    store = services().store
    out = spider_out(dispatch.get_spider(store, name))
    last = list(store.tasks.find({"spider": name}).sort("_id", -1).limit(1))
    out["last_task"] = public_task(last[0]) if last else None
    return jsonify(out)


@bp.post("/spiders/rescan")
def rescan():
    svc = services()
    return jsonify(discovery.scan(svc.store, svc.config))


@bp.post("/spiders/<name>/run")
def run(name):
    body = json_body(RUN_FIELDS)
    svc = services()
    if "workers" in body or body.get("persist"):
        from web import crawls_api  # it builds on this module

        return crawls_api.start(name, body)
    tasks = dispatch.run_spider(
        svc.store, svc.broker, svc.config, name,
        args=body.get("args"), settings=body.get("settings"),
        nodes=body.get("nodes", "any"), timeout=body.get("timeout"),
        priority=body.get("priority", 0), trigger="api",
    )
    return jsonify({"task_ids": [t["_id"] for t in tasks],
                    "tasks": [public_task(t) for t in tasks]}), 201


# -- tasks ---------------------------------------------------------------------

@bp.get("/tasks")
def tasks():
    query = {}
    statuses = [s.strip() for s in request.args.get("status", "").split(",") if s.strip()]
    for status in statuses:
        if status not in STATUS_VALUES:
            raise BadRequest(f"unknown status {status!r}; statuses: {', '.join(STATUS_VALUES)}")
    if statuses:
        query["status"] = statuses[0] if len(statuses) == 1 else {"$in": statuses}
    if request.args.get("spider"):
        query["spider"] = request.args["spider"]
    if request.args.get("node"):
        query["node_id"] = request.args["node"]
    limit = int_arg("limit", TASK_PAGE[0], TASK_PAGE[1], smallest=1)
    store = services().store
    docs = []
    before = request.args.get("before")
    anchor = before and store.tasks.find_one({"_id": before}, {"created_at": 1})
    if anchor and isinstance(anchor.get("created_at"), (int, float)):
        # Keyset on (created_at, _id) from the cursor task, as the UI pages:
        # nx-27017 scans the whole collection for a range on `_id` (2 s a page
        # at 100k tasks), not for one on the indexed `created_at`. Tasks of the
        # cursor's very instant are told apart by `_id` here.
        stamp = anchor["created_at"]
        same = store.tasks.find({**query, "created_at": stamp}).sort("_id", -1)
        docs = [d for d in same.limit(TIE_LIMIT) if d["_id"] < before][:limit + 1]
        query["created_at"] = {"$lt": stamp}
    elif before:  # the cursor task is gone: older ids
        query["_id"] = {"$lt": before}
    if len(docs) <= limit:
        docs += list(store.tasks.find(query).sort([("created_at", -1), ("_id", -1)])
                     .limit(limit + 1 - len(docs)))
    more = len(docs) > limit
    docs = docs[:limit]
    return jsonify({"tasks": [public_task(d) for d in docs],
                    "next": docs[-1]["_id"] if more else None})


@bp.get("/tasks/<task_id>")
def task(task_id):
    return jsonify(public_task(get_task(task_id)))


@bp.post("/tasks/<task_id>/cancel")
def cancel(task_id):
    svc = services()
    return jsonify(public_task(dispatch.request_cancel(svc.store, svc.broker, task_id)))


@bp.get("/tasks/<task_id>/log")
def task_log(task_id):
    task = get_task(task_id)
    store = services().store
    fmt = request.args.get("format", "json")
    if fmt == "text":
        body = stream_with_context(export.log_text(store.task_logs, task_id))
        return Response(body, mimetype="text/plain", headers=attachment(task_id, ".log"))
    if fmt != "json":
        raise BadRequest("format must be json or text")
    offset = int_arg("offset", 0)
    limit = int_arg("limit", LOG_PAGE[0], LOG_PAGE[1], smallest=1)
    lines, next_offset = export.log_page(store.task_logs, task_id, offset, limit)
    return jsonify({
        "lines": lines,
        "offset": offset,
        "next_offset": next_offset,
        "total": task.get("log_lines", 0),
        "finished": TaskStatus(task["status"]).is_final,
    })


@bp.get("/tasks/<task_id>/results")
def task_results(task_id):
    task = get_task(task_id)
    fmt = request.args.get("format", "json")
    if fmt not in ("json", "jsonl", "csv"):
        raise BadRequest("format must be json, jsonl or csv")
    name = task.get("results_collection") or results_collection_for(task["spider"])
    collection = services().store.results(name)
    if fmt == "jsonl":
        docs = export.items_cursor(collection, task_id)
        return Response(stream_with_context(export.jsonl_lines(docs)),
                        mimetype="application/x-ndjson", headers=attachment(task_id, ".jsonl"))
    if fmt == "csv":
        docs = export.items_cursor(collection, task_id)
        return Response(stream_with_context(export.csv_chunks(docs)),
                        mimetype="text/csv", headers=attachment(task_id, ".csv"))
    after = request.args.get("after") or None
    if after is not None and ObjectId.is_valid(after):
        after = ObjectId(after)
    limit = int_arg("limit", RESULT_PAGE[0], RESULT_PAGE[1], smallest=1)
    docs = list(export.items_cursor(collection, task_id, after, limit + 1))
    more = len(docs) > limit
    docs = docs[:limit]
    return jsonify({"items": docs, "next": str(docs[-1]["_id"]) if more else None})


# -- the API's own description -------------------------------------------------

@bp.get("/openapi.json")
def openapi_document():
    return jsonify(openapi.document())
