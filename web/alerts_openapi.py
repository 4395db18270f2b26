"""The OpenAPI description of alert channels, rules and history
(web/alerts_api.py), merged into the API's document by `web.openapi.document`.
Every route is for admin tokens only (403 for the others)."""

from web.openapi import _json, _op, _param, _ref

TAG = "alerts"
CHANNEL = _param("channel_id", "path", {"type": "string"}, "Channel id")
RULE = _param("rule_id", "path", {"type": "string"}, "Rule id")
EVENTS = ["error", "timeout", "abnormal", "finished", "zero_items"]
DONE = {"200": _json({"type": "object"})}


def _body(name):
    return {"required": True, "content": {"application/json": {"schema": _ref(name)}}}


def schemas():
    nullable_text = {"type": ["string", "null"]}
    return {
        "AlertChannel": {"type": "object", "properties": {
            "id": {"type": "string"}, "name": {"type": "string"},
            "service": {"type": "string", "description": "Apprise's name of the service"},
            "url": {"type": "string", "description": "Redacted: never the URL in full"},
            "enabled": {"type": "boolean"}, "created_at": {"type": "number"},
            "last_test": {"type": ["object", "null"]}}},
        "NewAlertChannel": {
            "type": "object", "additionalProperties": False, "properties": {
                "name": {"type": "string", "maxLength": 100},
                "url": {"type": "string", "description": "An Apprise URL (json://, mailtos://, "
                                                         "slack://, msteams://, tgram://, ...)"},
                "enabled": {"type": "boolean"}}},
        "AlertTest": {"type": "object", "properties": {
            "ok": {"type": "boolean"}, "message": {"type": "string"}, "at": {"type": "number"}}},
        "AlertRule": {"type": "object", "additionalProperties": True, "properties": {
            "id": {"type": "string"}, "kind": {"type": "string", "enum": ["task", "node"]},
            "summary": {"type": "string"},
            "channels": {"type": "array", "items": {"type": "string"}}}},
        "NewAlertRule": {
            "type": "object", "additionalProperties": False, "properties": {
                "kind": {"type": "string", "enum": ["task", "node"]},
                "channels": {"type": "array", "items": {"type": "string"}},
                "enabled": {"type": "boolean"},
                "spider": nullable_text, "schedule_id": nullable_text,
                "on": {"type": "array", "items": {"type": "string", "enum": EVENTS}},
                "items_below": {"type": ["integer", "null"], "minimum": 1},
                "duration_above": {"type": ["number", "null"], "minimum": 0},
                "metric": {"type": "string", "enum": ["cpu", "memory", "disk"]},
                "above": {"type": "number", "minimum": 0, "maximum": 100},
                "minutes": {"type": "number", "minimum": 0}, "node": nullable_text}},
        "SentAlert": {"type": "object", "properties": {
            "id": {"type": "string"}, "at": {"type": "number"},
            "kind": {"type": "string", "enum": ["task", "node", "test"]},
            "subject": {"type": "string"}, "events": {"type": "array"},
            "channel": {"type": "string"}, "target": {"type": "string"},
            "ok": {"type": "boolean"}, "attempts": {"type": "integer"},
            "error": nullable_text}},
    }


def paths():
    channel = _json(_ref("AlertChannel"))
    rule = _json(_ref("AlertRule"))
    return {
        "/alerts/channels": {
            "get": _op("Alert channels (URLs redacted)", {"200": _json({
                "type": "object", "properties": {"channels": {
                    "type": "array", "items": _ref("AlertChannel")}}})},
                tag=TAG, errors=(403,)),
            "post": _op("Add a channel (an Apprise URL, kept encrypted)", {"201": channel},
                        tag=TAG, write=True, errors=(400, 409),
                        body=_body("NewAlertChannel")),
        },
        "/alerts/channels/{channel_id}": {
            "get": _op("One channel", {"200": channel}, params=[CHANNEL], tag=TAG,
                       errors=(403, 404)),
            "patch": _op("Change a channel's name, URL or enabled", {"200": channel},
                         params=[CHANNEL], tag=TAG, write=True, errors=(400, 404, 409),
                         body=_body("NewAlertChannel")),
            "delete": _op("Delete a channel (409 while a rule sends to it)", DONE,
                          params=[CHANNEL], tag=TAG, write=True, errors=(404, 409)),
        },
        "/alerts/channels/{channel_id}/test": {"post": _op(
            "Send a test notification: 200, or 422 with why it failed",
            {"200": _json(_ref("AlertTest")),
             "422": _json(_ref("Error"), "The channel did not take it")},
            params=[CHANNEL], tag=TAG, write=True, errors=(404,))},
        "/alerts/rules": {
            "get": _op("Alert rules", {"200": _json({"type": "object", "properties": {
                "rules": {"type": "array", "items": _ref("AlertRule")}}})},
                params=[_param("kind", "query", {"type": "string", "enum": ["task", "node"]},
                               "Only rules of this kind")], tag=TAG, errors=(400, 403)),
            "post": _op("Add a rule: task outcomes (per spider, schedule or all) or a node "
                        "figure above a threshold", {"201": rule}, tag=TAG, write=True,
                        errors=(400,), body=_body("NewAlertRule")),
        },
        "/alerts/rules/{rule_id}": {
            "get": _op("One rule", {"200": rule}, params=[RULE], tag=TAG, errors=(403, 404)),
            "patch": _op("Change a rule (merged, then checked whole)", {"200": rule},
                         params=[RULE], tag=TAG, write=True, errors=(400, 404),
                         body=_body("NewAlertRule")),
            "delete": _op("Delete a rule", DONE, params=[RULE], tag=TAG, write=True,
                          errors=(404,)),
        },
        "/alerts/history": {"get": _op(
            "Sent alerts, newest first, with their result",
            {"200": _json({"type": "object", "properties": {
                "alerts": {"type": "array", "items": _ref("SentAlert")}}})},
            params=[_param("limit", "query", {"type": "integer", "minimum": 1, "maximum": 500},
                           "At most this many (50)"),
                    _param("before", "query", {"type": "number"}, "Older than this time")],
            tag=TAG, errors=(400, 403))},
    }
