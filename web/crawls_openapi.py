"""The OpenAPI description of /api/v1/crawls (web/crawls_api.py), merged into
the API's document by `web.openapi.document`."""

from web.openapi import STATUSES, _json, _op, _param, _ref

ID = _param("crawl_id", "path", {"type": "string"}, "Crawl id (or one of its workers' task ids)")
TAG = "crawls"


def schemas():
    return {
        "Crawl": {"type": "object", "properties": {
            "id": {"type": "string"}, "spider": {"type": "string"},
            "status": {"type": "string", "enum": STATUSES},
            "workers": {"type": "integer", "description": "Workers it runs"},
            "persist": {"type": "boolean"}, "resumed": {"type": "integer"},
            "frontier_isolation": {"type": "boolean", "description":
                                   "Its workers reach Redis as a user of the crawl's own "
                                   "(its keys only); false when the Redis refuses ACLs"},
            "tasks": {"type": "array", "items": _ref("Task"),
                      "description": "Its worker tasks (with replacements and resumed ones)"},
            "task_ids": {"type": "array", "items": {"type": "string"}},
            "nodes_used": {"type": "array", "items": {"type": "string"}},
            "stats": {"type": "object", "description": "Sums of its workers' stats"},
            "frontier": {"type": "object", "properties": {
                "queued": {"type": "integer"}, "seen": {"type": "integer"},
                "in_flight": {"type": "integer"}, "seeded": {"type": ["string", "null"]}}},
            "created_at": {"type": "number"}, "started_at": {"type": ["number", "null"]},
            "finished_at": {"type": ["number", "null"]}, "error": {"type": ["string", "null"]}}},
        "CrawlPage": {"type": "object", "properties": {
            "crawls": {"type": "array", "items": _ref("Crawl")},
            "next": {"type": ["string", "null"]}}},
    }


def paths():
    items = {"type": "object", "properties": {
        "items": {"type": "array", "items": {"type": "object"}},
        "next": {"type": ["string", "null"]}}}
    return {
        "/crawls": {"get": _op(
            "List crawls, newest first", {"200": _json(_ref("CrawlPage"))},
            params=[_param("status", "query", {"type": "string", "enum": STATUSES}, "Status"),
                    _param("spider", "query", {"type": "string"}, "Spider"),
                    _param("limit", "query", {"type": "integer"}, "Page size"),
                    _param("before", "query", {"type": "string"}, "Cursor: `next`")],
            tag=TAG, errors=(400,))},
        "/crawls/{crawl_id}": {"get": _op(
            "One crawl: its workers, their nodes, combined stats and frontier sizes",
            {"200": _json(_ref("Crawl"))}, params=[ID], tag=TAG, errors=(404,))},
        "/crawls/{crawl_id}/cancel": {"post": _op(
            "Stop every worker of the crawl", {"200": _json(_ref("Crawl"))}, params=[ID],
            tag=TAG, write=True, errors=(404, 409))},
        "/crawls/{crawl_id}/scale": {"post": _op(
            "Run N workers from now on (adds workers or stops the newest)",
            {"200": _json(_ref("Crawl"))}, params=[ID], tag=TAG, write=True,
            errors=(400, 404, 409),
            body={"required": True, "content": {"application/json": {"schema": {
                "type": "object", "additionalProperties": False, "required": ["workers"],
                "properties": {"workers": {"type": "integer", "minimum": 1,
                                           "maximum": 64}}}}}})},
        "/crawls/{crawl_id}/resume": {"post": _op(
            "Continue a stopped crawl from its frontier", {"200": _json(_ref("Crawl"))},
            params=[ID], tag=TAG, write=True, errors=(404, 409))},
        "/crawls/{crawl_id}/results": {"get": _op(
            "The items of every worker of the crawl (json pages, jsonl or csv)",
            {"200": _json(items)}, params=[
                ID, _param("format", "query", {"type": "string",
                                               "enum": ["json", "jsonl", "csv"]}, "Format"),
                _param("after", "query", {"type": "string"}, "Cursor: `next`"),
                _param("limit", "query", {"type": "integer"}, "Page size")],
            tag=TAG, errors=(400, 404))},
    }
