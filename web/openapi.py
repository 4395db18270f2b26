"""The OpenAPI 3.1 description of /api/v1, served at /api/v1/openapi.json.

Written by hand next to the routes it describes; a test checks that every
route of the API blueprint has an entry here and the other way round.
"""

from crawlfleet.models import TaskStatus

STATUSES = [s.value for s in TaskStatus]


def _ref(name):
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema, description="OK"):
    return {"description": description, "content": {"application/json": {"schema": schema}}}


ERROR_TEXT = {400: "Invalid input", 401: "Missing or invalid token",
              403: "The token's role may not do this", 404: "Not found",
              409: "Conflicts with the current state", 503: "The store does not answer"}


def _errors(*codes):
    out = {str(c): {"$ref": f"#/components/responses/E{c}"} for c in sorted(set(codes))}
    out["503"] = {"$ref": "#/components/responses/E503"}
    return out


def _param(name, where, schema, description, required=False):
    return {"name": name, "in": where, "schema": schema, "description": description,
            "required": required or where == "path"}


def _op(summary, responses, *, params=(), body=None, tag, write=False, errors=()):
    op = {"summary": summary, "tags": [tag], "parameters": list(params),
          "responses": responses | _errors(401, *((403,) if write else ()), *errors)}
    if body:
        op["requestBody"] = body
    return op


TASK_ID = _param("task_id", "path", {"type": "string"}, "Task id")
SPIDER = _param("name", "path", {"type": "string"}, "Spider name")


def _schemas():
    obj = {"type": "object"}
    return {
        "Error": {"type": "object", "required": ["error"],
                  "properties": {"error": {"type": "string"}}},
        "Node": {"type": "object", "additionalProperties": True, "properties": {
            "id": {"type": "string"}, "hostname": {"type": "string"},
            "online": {"type": "boolean"}, "heartbeat_at": {"type": "number"},
            "max_runners": {"type": "integer", "description": "Run slots in effect"},
            "run_slots": {"type": ["integer", "null"],
                          "description": "Run slots set by an operator (null: its own)"},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            "mode": {"type": "string", "enum": ["enabled", "draining", "disabled"]},
            "drained": {"type": "boolean", "description": "Draining, and nothing runs"},
            "running": {"type": "array", "items": {"type": "string"}}}},
        "Spider": {"type": "object", "additionalProperties": True, "properties": {
            "name": {"type": "string"}, "project": {"type": "string"},
            "kind": {"type": "string", "enum": ["scrapy", "command"]},
            "version": {"type": "string"}, "description": {"type": "string"},
            "results_collection": {"type": "string"}}},
        "Task": {"type": "object", "additionalProperties": True, "properties": {
            "id": {"type": "string"}, "spider": {"type": "string"},
            "status": {"type": "string", "enum": STATUSES},
            "target": {"type": "string"}, "node_id": {"type": ["string", "null"]},
            "args": obj, "settings": obj, "timeout": {"type": ["number", "null"]},
            "priority": {"type": "integer"},
            "trigger": {"type": "string", "description":
                        "What asked for it: ui, api, schedule, scrapyd, retry (a retry "
                        "policy), scale, resume"},
            "cancelling": {"type": "boolean", "description":
                           "Running, and asked to stop: its node has not ended it yet"},
            "cancel_requested_at": {"type": ["number", "null"]},
            "created_at": {"type": "number"}, "started_at": {"type": ["number", "null"]},
            "finished_at": {"type": ["number", "null"]},
            "duration": {"type": "number", "description": "Seconds run so far, or in all"},
            "exit_code": {"type": ["integer", "null"]}, "error": {"type": ["string", "null"]},
            "stats": {"type": "object", "properties": {
                "items": {"type": "integer"}, "pages": {"type": "integer"},
                "errors": {"type": "integer"}}},
            "log_lines": {"type": "integer"},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            "waiting": {"type": ["string", "null"],
                        "description": "Pending for labelled nodes: why none takes it"}}},
        "RunRequest": {"type": "object", "additionalProperties": False, "properties": {
            "args": {"type": "object", "additionalProperties": {"type": ["string", "number"]},
                     "description": "Spider arguments (scrapy -a NAME=VALUE)"},
            "settings": {"type": "object",
                         "additionalProperties": {"type": ["string", "number", "boolean"]},
                         "description": "Scrapy settings, UPPER_CASE names"},
            "nodes": {"oneOf": [{"type": "string", "enum": ["any", "all"]},
                                {"type": "array", "items": {"type": "string"}}],
                      "default": "any",
                      "description": "any node, one task per online node, or these nodes"},
            "timeout": {"type": "number", "minimum": 0, "description": "Seconds; 0: none"},
            "priority": {"type": "integer", "minimum": 0, "maximum": 9, "default": 0},
            "workers": {"type": "integer", "minimum": 1, "maximum": 64,
                        "description": "One crawl of N Scrapy workers sharing a Redis "
                                       "frontier (answer: crawl_id)"},
            "persist": {"type": "boolean", "default": False,
                        "description": "Keep the crawl's frontier when it stops, to resume it"},
            "labels": {"type": "object", "additionalProperties": {"type": "string"},
                       "description": "Only nodes carrying every one of these labels take "
                                      "its tasks (409 when no node carries them)"}}},
        "RunResponse": {"type": "object", "properties": {
            "task_ids": {"type": "array", "items": {"type": "string"}},
            "tasks": {"type": "array", "items": _ref("Task")},
            "crawl_id": {"type": "string", "description": "With workers or persist"},
            "crawl": {"$ref": "#/components/schemas/Crawl"}}},
        "ScanReport": {"type": "object", "properties": {
            "projects": {"type": "array", "items": {"type": "object", "properties": {
                "project": {"type": "string"}, "version": {"type": "string"},
                "spiders": {"type": "array", "items": {"type": "string"}}}}},
            "errors": {"type": "array", "items": {"type": "object", "properties": {
                "path": {"type": "string"}, "error": {"type": "string"}}}}}},
        "TaskPage": {"type": "object", "properties": {
            "tasks": {"type": "array", "items": _ref("Task")},
            "next": {"type": ["string", "null"],
                     "description": "Pass as `before` for the next (older) page"}}},
        "LogPage": {"type": "object", "properties": {
            "lines": {"type": "array", "items": {"type": "string"}},
            "offset": {"type": "integer"}, "next_offset": {"type": "integer"},
            "total": {"type": "integer", "description": "Lines stored so far"},
            "finished": {"type": "boolean", "description": "The task's status is final"}}},
        "ResultPage": {"type": "object", "properties": {
            "items": {"type": "array", "items": obj},
            "next": {"type": ["string", "null"],
                     "description": "Pass as `after` for the next page"}}},
    }


def _responses():
    return {f"E{code}": _json(_ref("Error"), text) for code, text in ERROR_TEXT.items()}


def _paths():
    limit = lambda default, largest: _param(  # noqa: E731
        "limit", "query", {"type": "integer", "minimum": 1, "maximum": largest,
                           "default": default}, "Page size")
    return {
        "/nodes": {"get": _op("List nodes and their liveness",
                              {"200": _json({"type": "object", "properties": {
                                  "nodes": {"type": "array", "items": _ref("Node")}}})},
                              tag="nodes")},
        "/spiders": {"get": _op("List spiders",
                                {"200": _json({"type": "object", "properties": {
                                    "spiders": {"type": "array", "items": _ref("Spider")}}})},
                                tag="spiders")},
        "/spiders/{name}": {"get": _op(
            "One spider and its most recent task",
            {"200": _json({"allOf": [_ref("Spider"), {"type": "object", "properties": {
                "last_task": {"oneOf": [_ref("Task"), {"type": "null"}]}}}]})},
            params=[SPIDER], tag="spiders", errors=(404,))},
        "/spiders/rescan": {"post": _op(
            "Scan the spider folders and register new project versions",
            {"200": _json(_ref("ScanReport"))}, tag="spiders", write=True)},
        "/spiders/{name}/run": {"post": _op(
            "Run a spider: write pending tasks and announce them to the nodes",
            {"201": _json(_ref("RunResponse"), "Tasks created")},
            params=[SPIDER], tag="spiders", write=True, errors=(400, 404, 409),
            body={"required": False,
                  "content": {"application/json": {"schema": _ref("RunRequest")}}})},
        "/tasks": {"get": _op(
            "List tasks, newest first",
            {"200": _json(_ref("TaskPage"))},
            params=[
                _param("status", "query", {"type": "string"},
                       f"Comma-separated statuses ({', '.join(STATUSES)})"),
                _param("spider", "query", {"type": "string"}, "Spider name"),
                _param("node", "query", {"type": "string"}, "Node that ran the task"),
                _param("trigger", "query", {"type": "string"},
                       "What asked for the task (ui, api, schedule, scrapyd, retry, ...)"),
                limit(50, 500),
                _param("before", "query", {"type": "string"},
                       "Only tasks older than this task id (the previous page's `next`)"),
            ], tag="tasks", errors=(400,))},
        "/tasks/{task_id}": {"get": _op("One task", {"200": _json(_ref("Task"))},
                                        params=[TASK_ID], tag="tasks", errors=(404,))},
        "/tasks/{task_id}/cancel": {"post": _op(
            "Cancel a task: a pending one at once, a running one through its node",
            {"200": _json(_ref("Task"), "The task after the request")},
            params=[TASK_ID], tag="tasks", write=True, errors=(404, 409))},
        "/tasks/{task_id}/log": {"get": _op(
            "A page of the task's output, or all of it as text",
            {"200": {"description": "OK", "content": {
                "application/json": {"schema": _ref("LogPage")},
                "text/plain": {"schema": {"type": "string"}}}}},
            params=[TASK_ID,
                    _param("offset", "query", {"type": "integer", "minimum": 0, "default": 0},
                           "First line to return"),
                    limit(1000, 10000),
                    _param("format", "query", {"type": "string", "enum": ["json", "text"],
                                               "default": "json"},
                           "text: the whole log as a download")],
            tag="tasks", errors=(400, 404))},
        "/tasks/{task_id}/results": {"get": _op(
            "The items a task scraped: a page of JSON, or every item as JSON lines or CSV",
            {"200": {"description": "OK", "content": {
                "application/json": {"schema": _ref("ResultPage")},
                "application/x-ndjson": {"schema": {"type": "string"}},
                "text/csv": {"schema": {"type": "string"}}}}},
            params=[TASK_ID,
                    _param("format", "query", {"type": "string",
                                               "enum": ["json", "jsonl", "csv", "xlsx"],
                                               "default": "json"},
                           "jsonl, csv and xlsx (Excel) stream every item of the crawl's "
                           "final attempt as a download"),
                    limit(100, 1000),
                    _param("after", "query", {"type": "string"},
                           "Only items after this item id (the previous page's `next`)"),
                    _param("formulas", "query", {"type": "string", "enum": ["safe", "raw"],
                                                 "default": "safe"},
                           "CSV: `safe` prefixes text cells starting with = + - @ tab or "
                           "CR with an apostrophe (OWASP's rule against CSV injection); "
                           "`raw` keeps them as scraped")],
            tag="results", errors=(400, 404))},
        "/openapi.json": {"get": {
            "summary": "This document", "tags": ["meta"], "security": [],
            "responses": {"200": _json({"type": "object"})}}},
        "/healthz": {
            "servers": [{"url": "/"}],
            "get": {"summary": "Liveness: whether the store answers", "tags": ["meta"],
                    "security": [],
                    "responses": {
                        "200": _json({"type": "object", "properties": {
                            "ok": {"type": "boolean"}}}),
                        "503": _json({"type": "object"}, "The store does not answer")}}},
    }


def _merge(paths, *more):
    """`paths` with the operations of each of `more` added (a path may gain methods)."""
    out = dict(paths)
    for extra in more:
        for path, item in extra.items():
            out[path] = {**out.get(path, {}), **item}
    return out


def document():
    from web import projects_openapi  # the /projects routes, described next to their module
    from web import schedules_openapi  # and the /schedules routes
    from web import results_openapi  # and web/results_api.py's
    from web import crawls_openapi  # and the /crawls routes
    from web import security_openapi  # and a project's spider env and store access
    from web import alerts_openapi  # and alert channels, rules and history
    from web import nodes_openapi  # and node control
    from web import tasks_openapi  # and the task actions (retry, delete, bulk)
    from web import spiders_openapi  # and a spider's run history

    return {
        "openapi": "3.1.0",
        "info": {
            "title": "crawlfleet API",
            "version": "1",
            "description": "Run spiders on a fleet of nodes, follow their tasks and "
                           "read what they scraped. Errors are {\"error\": message}.",
        },
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearer": []}],
        "paths": _merge(_paths() | projects_openapi.paths() | schedules_openapi.paths()
                        | crawls_openapi.paths(), results_openapi.paths(),
                        security_openapi.paths(), alerts_openapi.paths(), tasks_openapi.paths(),
                        nodes_openapi.paths(), spiders_openapi.paths()),
        "components": {
            "securitySchemes": {"bearer": {
                "type": "http", "scheme": "bearer",
                "description": "An API token (crawlfleet token create). viewer tokens "
                               "may only GET; operator and admin may also POST."}},
            "schemas": (_schemas() | projects_openapi.schemas() | schedules_openapi.schemas()
                        | results_openapi.schemas() | crawls_openapi.schemas() | security_openapi.schemas()
                        | alerts_openapi.schemas() | tasks_openapi.schemas()
                        | spiders_openapi.schemas() | nodes_openapi.schemas()),
            "responses": _responses() | projects_openapi.responses(),
        },
    }
