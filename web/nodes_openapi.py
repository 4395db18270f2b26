"""The OpenAPI description of node control (web/nodes_api.py), merged into the
API's document by `web.openapi.document`."""

from web.openapi import _json, _op, _param, _ref

ID = _param("node_id", "path", {"type": "string"}, "Node id")
TAG = "nodes"
LABELS = {"type": "object", "additionalProperties": {"type": "string"},
          "description": "Labels, e.g. {\"region\": \"eu\"}: keys of letters, digits, '_' "
                         "and '-'; values may also hold '.', ':' and '/'"}


NUMBER_OR_NULL = {"type": ["number", "null"]}


def schemas():
    return {"NodeHistory": {"type": "object", "properties": {
        "node": {"type": "string"}, "hours": {"type": "integer"},
        "since": {"type": "number"}, "until": {"type": "number"},
        "sample_every": {"type": "number", "description": "Seconds between samples"},
        "samples": {"type": "array", "description": "Oldest first, one a minute while the "
                                                    "node runs", "items": {
            "type": "object", "properties": {
                "at": {"type": "number"}, "load": NUMBER_OR_NULL,
                "memory_percent": NUMBER_OR_NULL, "busy": {"type": "integer"},
                "slots": {"type": "integer"}}}},
        "tasks": {"type": "object", "properties": {
            "started": {"type": "integer", "description": "Tasks started in the window"},
            "by_status": {"type": "object", "additionalProperties": {"type": "integer"}},
            "per_hour": {"type": "array", "items": {"type": "object", "properties": {
                "hour": {"type": "number"}, "tasks": {"type": "integer"}}}},
            "recent": {"type": "array", "description": "The newest 50, newest first",
                       "items": {"type": "object", "properties": {
                           "task_id": {"type": "string"}, "spider": {"type": "string"},
                           "status": {"type": "string"},
                           "trigger": {"type": ["string", "null"]},
                           "started_at": NUMBER_OR_NULL, "finished_at": NUMBER_OR_NULL,
                           "duration": NUMBER_OR_NULL}}}}}}}}


def _body(properties, required=()):
    return {"required": True, "content": {"application/json": {"schema": {
        "type": "object", "additionalProperties": False, "required": list(required),
        "properties": properties}}}}


def _mode(verb, what):
    return {"post": _op(f"{verb} the node: {what}", {"200": _json(_ref("Node"))},
                        params=[ID], tag=TAG, write=True, errors=(404,))}


def paths():
    node = {"200": _json(_ref("Node"))}
    return {
        "/nodes/{node_id}": {"get": _op("One node: liveness, labels, mode, run slots", node,
                                        params=[ID], tag=TAG, errors=(404,))},
        "/nodes/{node_id}/history": {"get": _op(
            "A node's load, memory and busy runners (one sample a minute) and the tasks it "
            "started, over the last hours", {"200": _json(_ref("NodeHistory"))}, tag=TAG,
            params=[ID, _param("hours", "query", {"type": "integer", "minimum": 1,
                                                  "maximum": 168},
                               "The window in hours (default 24, at most 168)")],
            errors=(400, 404))},
        "/nodes/{node_id}/labels": {"post": _op(
            "Set and remove labels of a node", node, params=[ID], tag=TAG, write=True,
            errors=(400, 404), body=_body({
                "set": LABELS,
                "remove": {"type": "array", "items": {"type": "string"},
                           "description": "Keys to remove"}}))},
        "/nodes/{node_id}/labels/{key}": {"delete": _op(
            "Remove one label of a node", node, tag=TAG, write=True, errors=(400, 404),
            params=[ID, _param("key", "path", {"type": "string"}, "Label key")])},
        "/nodes/{node_id}/enable": _mode("Enable", "it takes tasks"),
        "/nodes/{node_id}/drain": _mode(
            "Drain", "it takes no new task and its running ones finish; drained once idle"),
        "/nodes/{node_id}/disable": _mode(
            "Disable", "it takes no new task (running ones finish) until enabled"),
        "/nodes/{node_id}/slots": {"post": _op(
            "Change how many tasks the node runs at once, live", node, params=[ID], tag=TAG,
            write=True, errors=(400, 404), body=_body({"run_slots": {
                "type": ["integer", "null"], "minimum": 1, "maximum": 256,
                "description": "null: the node's own CRAWLFLEET_MAX_RUNNERS"}},
                required=["run_slots"]))},
    }
