"""The JSON API of distributed and resumable crawls, under /api/v1/crawls:
list, one crawl (its workers, their nodes, combined stats, frontier sizes),
cancel, scale, resume, and the crawl's merged results.

A crawl is started by ``POST /api/v1/spiders/<name>/run`` with ``workers``
(and/or ``persist``), which `web.api` hands to `start` here. Same
conventions as `web.api`, whose helpers it uses.
"""

from bson import ObjectId
from flask import Blueprint, jsonify, request

from crawlfleet.errors import BadRequest
from crawlfleet.models import TaskStatus, public_task, results_collection_for
from master import crawls
from web import api, export, services

# nested in `web.api.bp`: its authentication and error handlers hold here too
bp = Blueprint("crawls_api", __name__, url_prefix="/crawls")

LIST_PAGE = (50, 500)
RESULT_PAGE = (100, 1000)
STATUS_VALUES = [s.value for s in TaskStatus]


def start(name, body):
    """POST /spiders/<name>/run with `workers` or `persist`: a new crawl."""
    persist = body.get("persist", False)
    if not isinstance(persist, bool):
        raise BadRequest("persist must be true or false")
    svc = services()
    crawl, tasks = crawls.start_crawl(
        svc.store, svc.broker, svc.config, name, workers=body.get("workers", 1),
        persist=persist, args=body.get("args"), settings=body.get("settings"),
        nodes=body.get("nodes", "any"), timeout=body.get("timeout"),
        priority=body.get("priority", 0), trigger="api", labels=body.get("labels"))
    return jsonify({"crawl_id": crawl["_id"], "crawl": crawls.public_crawl(svc.store, crawl),
                    "task_ids": [t["_id"] for t in tasks],
                    "tasks": [public_task(t) for t in tasks]}), 201


@bp.get("")
def list_crawls():
    query = {}
    status = request.args.get("status", "")
    if status:
        if status not in STATUS_VALUES:
            raise BadRequest(f"unknown status {status!r}; statuses: {', '.join(STATUS_VALUES)}")
        query["status"] = status
    if request.args.get("spider"):
        query["spider"] = request.args["spider"]
    if request.args.get("before"):
        query["_id"] = {"$lt": request.args["before"]}
    limit = api.int_arg("limit", LIST_PAGE[0], LIST_PAGE[1], smallest=1)
    docs = list(services().store.crawls.find(query).sort("_id", -1).limit(limit + 1))
    more = len(docs) > limit
    docs = [crawls.without_secret(doc) for doc in docs[:limit]]
    for doc in docs:
        doc["id"] = doc["_id"]
    return jsonify({"crawls": docs, "next": docs[-1]["_id"] if more else None})


@bp.get("/<crawl_id>")
def get_crawl(crawl_id):
    store = services().store
    return jsonify(crawls.public_crawl(store, crawls.get_crawl(store, crawl_id)))


@bp.post("/<crawl_id>/cancel")
def cancel(crawl_id):
    svc = services()
    crawl = crawls.cancel_crawl(svc.store, svc.broker, crawl_id)
    return jsonify(crawls.public_crawl(svc.store, crawl))


@bp.post("/<crawl_id>/scale")
def scale(crawl_id):
    body = api.json_body(("workers",))
    svc = services()
    crawl = crawls.scale_crawl(svc.store, svc.broker, svc.config, crawl_id, body.get("workers"))
    return jsonify(crawls.public_crawl(svc.store, crawl))


@bp.post("/<crawl_id>/resume")
def resume(crawl_id):
    svc = services()
    crawl = crawls.resume_crawl(svc.store, svc.broker, svc.config, crawl_id)
    return jsonify(crawls.public_crawl(svc.store, crawl))


@bp.get("/<crawl_id>/results")
def results(crawl_id):
    """The items of every worker of the crawl, one list (json pages, jsonl or csv)."""
    store = services().store
    crawl = crawls.get_crawl(store, crawl_id)
    fmt = request.args.get("format", "json")
    if fmt not in ("json", "jsonl", "csv"):
        raise BadRequest("format must be json, jsonl or csv")
    task_ids = [t["_id"] for t in store.tasks.find({"crawl_id": crawl["_id"]}, {"_id": 1})]
    name = crawl.get("results_collection") or results_collection_for(crawl["spider"])
    collection = store.results(name)
    if fmt in ("jsonl", "csv"):
        docs = export.items_cursor(collection, task_ids)
        lines = export.jsonl_lines(docs) if fmt == "jsonl" else export.csv_chunks(docs)
        from flask import Response, stream_with_context

        return Response(stream_with_context(lines),
                        mimetype="application/x-ndjson" if fmt == "jsonl" else "text/csv",
                        headers=api.attachment(crawl["_id"], "." + fmt))
    after = request.args.get("after") or None
    if after is not None and ObjectId.is_valid(after):
        after = ObjectId(after)
    limit = api.int_arg("limit", RESULT_PAGE[0], RESULT_PAGE[1], smallest=1)
    docs = list(export.items_cursor(collection, task_ids, after, limit + 1))
    more = len(docs) > limit
    docs = docs[:limit]
    return jsonify({"items": docs, "next": str(docs[-1]["_id"]) if more else None})
