"""The JSON API under /api/v1.

Every route but the OpenAPI document needs ``Authorization: Bearer <token>``;
a ``viewer`` token may only read, ``operator`` and ``admin`` may also run,
cancel and rescan. Errors are ``{"error": "<message>"}`` with a real status
code. Lists page by keyset (``before`` / ``after`` cursors), never by skip.
"""

import logging
import re

import pymongo.errors
from bson import ObjectId
from flask import Blueprint, Response, g, jsonify, request, stream_with_context
from werkzeug.exceptions import Forbidden, HTTPException

from crawlfleet.errors import BadRequest, CrawlfleetError, NotFound, Unauthorized
from crawlfleet.models import (TaskStatus, is_results_collection, public_task,
                               results_collection_for)
from crawlfleet.results.attempts import final_attempt
from crawlfleet.results.manage import spider_settings
from master import discovery, dispatch
from master.nodes import list_nodes, waiting_reason
from web import (credentials, errors, export, jsonbody, openapi, redact, services,
                 taskpager)

log = logging.getLogger(__name__)

PREFIX = "/api/v1"
bp = Blueprint("api", __name__, url_prefix=PREFIX)

READ_METHODS = {"GET", "HEAD", "OPTIONS"}
WRITE_ROLES = credentials.WRITE_ROLES
PUBLIC_ENDPOINTS = {"api.openapi_document"}
RUN_FIELDS = ("args", "settings", "nodes", "timeout", "priority", "workers", "persist",
              "labels")
TASK_PAGE = (50, 500)        # default and largest `limit` of GET /tasks
LOG_PAGE = (1000, 10_000)    # ... of GET /tasks/<id>/log
RESULT_PAGE = (100, 1000)    # ... of GET /tasks/<id>/results?format=json
STATUS_VALUES = [s.value for s in TaskStatus]


# -- authentication and errors (every API blueprint is nested in this one, so
# these hold for /projects and /schedules too) --------------------------------

@bp.before_request
def authenticate():
    if request.endpoint in PUBLIC_ENDPOINTS:
        return
    principal = credentials.identify()
    if principal is None:
        if "Authorization" in request.headers:
            raise Unauthorized("invalid or revoked token")
        raise Unauthorized("missing token: send the header 'Authorization: Bearer <token>'")
    g.principal = principal
    g.token = principal.token or {"_id": None, "name": principal.name, "role": principal.role}
    if request.method not in READ_METHODS and not principal.may_write:
        raise Forbidden(f"{principal.via} {principal.name!r} has role {principal.role!r}, "
                        "which may only read; this request needs operator or admin")


def error_response(message, status, headers=None):
    response = jsonify({"error": message})
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="crawlfleet"'
    response.headers.update(headers or {})
    return response


@bp.errorhandler(CrawlfleetError)
def crawlfleet_error(exc):
    return error_response(errors.hide_paths(str(exc)), exc.status_code)


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
    """JSON for an HTTP error under /api/ (unknown route, wrong method, bad body)."""
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
    body = jsonbody.loads(raw)
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
    if value > jsonbody.INT64[1]:
        raise BadRequest(f"{name} is too large")
    return min(value, largest) if largest else value


def get_task(task_id):
    task = services().store.tasks.find_one({"_id": task_id})
    if task is None:
        raise NotFound(f"unknown task {task_id!r}")
    return task


def attachment(task_id, suffix):
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", task_id) + suffix
    return {"Content-Disposition": f"attachment; filename={name}"}


def task_out(doc):
    """A task as the API shows it to this request's principal."""
    return redact.task(public_task(doc))


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
    out["results_settings"] = spider_settings(out)
    last = list(store.tasks.find({"spider": name}).sort("_id", -1).limit(1))
    out["last_task"] = task_out(last[0]) if last else None
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
        priority=body.get("priority", 0), trigger="api", labels=body.get("labels"),
    )
    return jsonify({"task_ids": [t["_id"] for t in tasks],
                    "tasks": [task_out(t) for t in tasks]}), 201


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
    if request.args.get("trigger"):
        query["trigger"] = request.args["trigger"]
    limit = int_arg("limit", TASK_PAGE[0], TASK_PAGE[1], smallest=1)
    docs, cursor = taskpager.page(services().store.tasks, query, limit,
                                  request.args.get("before") or None)
    return jsonify({"tasks": [task_out(d) for d in docs], "next": cursor})


@bp.get("/tasks/<task_id>")
def task(task_id):
    """One task; a pending one says why no node takes it, when none can (`waiting`)."""
    doc = get_task(task_id)
    out = task_out(doc)
    if doc.get("status") == TaskStatus.PENDING.value:
        svc = services()
        out["waiting"] = waiting_reason(svc.store, svc.config, doc)
    return jsonify(out)


@bp.post("/tasks/<task_id>/cancel")
def cancel(task_id):
    svc = services()
    return jsonify(task_out(dispatch.request_cancel(svc.store, svc.broker, task_id)))


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
    if fmt not in ("json", "jsonl", "csv", "xlsx"):
        raise BadRequest("format must be json, jsonl, csv or xlsx")
    name = task.get("results_collection") or results_collection_for(task["spider"])
    if not is_results_collection(name):
        raise NotFound(f"task {task_id!r} has no results collection")
    collection = services().store.results(name)
    # a crawl's items are its final attempt's (crawlfleet.results.attempts)
    task_id = final_attempt(services().store, task)["_id"]
    if fmt == "xlsx":
        docs = export.items_cursor(collection, task_id)
        return Response(stream_with_context(export.xlsx_chunks(docs)),
                        mimetype=export.XLSX_MIMETYPE, headers=attachment(task_id, ".xlsx"))
    if fmt == "jsonl":
        docs = export.items_cursor(collection, task_id)
        return Response(stream_with_context(export.jsonl_lines(docs)),
                        mimetype="application/x-ndjson", headers=attachment(task_id, ".jsonl"))
    if fmt == "csv":
        docs = export.items_cursor(collection, task_id)
        raw = export.raw_formulas_asked(request.args)
        return Response(stream_with_context(export.csv_chunks(docs, raw_formulas=raw)),
                        mimetype="text/csv", headers=attachment(task_id, ".csv"))
    after = request.args.get("after") or None
    if after is not None and ObjectId.is_valid(after):
        after = ObjectId(after)
    limit = int_arg("limit", RESULT_PAGE[0], RESULT_PAGE[1], smallest=1)
    docs = list(export.items_cursor(collection, task_id, after, limit + 1))
    more = len(docs) > limit
    docs = docs[:limit]
    return jsonify({"items": docs, "next": str(docs[-1]["_id"]) if more else None,
                    "task_id": task_id})


# -- the API's own description -------------------------------------------------

@bp.get("/openapi.json")
def openapi_document():
    return jsonify(openapi.document())


# -- the nested API blueprints (imported last: they use the helpers above) -------

from web import (alerts_api, crawls_api, nodes_api, projects_api, results_api,  # noqa: E402
                 schedules_api, spiderenv_api, spiders_api, store_access, tasks_api)

for nested in (projects_api.bp, schedules_api.bp, results_api.bp, crawls_api.bp, nodes_api.bp,
               spiderenv_api.bp, store_access.bp, alerts_api.bp, tasks_api.bp, spiders_api.bp):
    bp.register_blueprint(nested)
