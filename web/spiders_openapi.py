"""The OpenAPI description of web/spiders_api.py's route (a spider's run
history), merged into the API's document by `web.openapi.document`."""

from web.openapi import SPIDER, _json, _op, _param, _ref

TAG = "spiders"
NUMBER_OR_NULL = {"type": ["number", "null"]}


def schemas():
    return {
        "RunPoint": {"type": "object", "properties": {
            "task_id": {"type": "string"}, "status": {"type": "string"},
            "trigger": {"type": ["string", "null"]}, "node_id": {"type": ["string", "null"]},
            "attempt": {"type": "integer"}, "created_at": {"type": "number"},
            "started_at": NUMBER_OR_NULL, "finished_at": NUMBER_OR_NULL,
            "duration": {**NUMBER_OR_NULL, "description": "Seconds from start to end"},
            "items": {"type": "integer"}, "pages": {"type": "integer"},
            "errors": {"type": "integer"},
            "success": {"type": ["boolean", "null"],
                        "description": "finished: true; failed: false; cancelled: null"}}},
        "RunHistory": {"type": "object", "properties": {
            "spider": {"type": "string"}, "limit": {"type": "integer"},
            "runs": {"type": "array", "items": _ref("RunPoint"),
                     "description": "Ended runs, oldest first"},
            "summary": {"type": "object", "properties": {
                "runs": {"type": "integer"}, "succeeded": {"type": "integer"},
                "failed": {"type": "integer"},
                "success_rate": {**NUMBER_OR_NULL,
                                 "description": "finished / (finished + failed); cancelled "
                                                "runs count as neither"},
                "items_mean": NUMBER_OR_NULL, "pages_mean": NUMBER_OR_NULL,
                "errors_total": {"type": "integer"}, "duration_mean": NUMBER_OR_NULL}}}},
    }


def paths():
    limit = _param("limit", "query", {"type": "integer", "minimum": 1, "maximum": 200},
                   "How many of the last ended runs (default 30, at most 200)")
    return {
        "/spiders/{name}/history": {"get": _op(
            "A spider's last ended runs: items, pages, errors, duration and success per run",
            {"200": _json(_ref("RunHistory"))}, params=[SPIDER, limit], tag=TAG,
            errors=(400, 404))},
    }
