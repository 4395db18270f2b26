"""The OpenAPI description of /api/v1/schedules (web/schedules_api.py), merged
into the API's document by `web.openapi.document`."""

from crawlfleet.schedules import ALERT_EVENTS, OVERLAP_POLICIES
from web.openapi import _json, _op, _param, _ref

ID = _param("schedule_id", "path", {"type": "string"}, "Schedule id")
TAG = "schedules"
FIRE_STATES = ["dispatching", "fired", "skipped", "queued", "failed"]


def schemas():
    obj = {"type": "object"}
    nullable_number = {"type": ["number", "null"]}
    alerts = {"type": ["object", "null"], "properties": {
        "on": {"type": "array", "items": {"type": "string", "enum": list(ALERT_EVENTS)},
               "default": ["error", "timeout", "abnormal"]},
        "webhook": {"type": ["string", "null"], "description": "http(s) URL: a JSON POST"},
        "email": {"type": "array", "items": {"type": "string"}}},
        "description": "Alerts for this schedule's tasks, besides the global ones"}
    fields = {
        "spider": {"type": "string"},
        "cron": {"type": "string", "description": "5 fields, or 6 with seconds last; "
                                                  "@daily and other macros"},
        "timezone": {"type": "string", "default": "UTC", "description": "IANA zone name"},
        "args": {"type": "object", "additionalProperties": {"type": ["string", "number"]}},
        "settings": {"type": "object",
                     "additionalProperties": {"type": ["string", "number", "boolean"]}},
        "nodes": {"oneOf": [{"type": "string", "enum": ["any", "all"]},
                            {"type": "array", "items": {"type": "string"}}],
                  "default": "any"},
        "labels": {"type": "object", "additionalProperties": {"type": "string"},
                   "description": "Only nodes carrying every one of these labels run it"},
        "priority": {"type": "integer", "minimum": 0, "maximum": 9, "default": 0},
        "timeout": nullable_number,
        "retry": {"type": ["object", "null"], "properties": {
            "max_attempts": {"type": "integer", "minimum": 1, "maximum": 20},
            "backoff": {"type": "number", "minimum": 0},
            "on": {"type": "array", "items": {"type": "string"}}}},
        "description": {"type": "string"},
        "enabled": {"type": "boolean", "default": True},
        "overlap": {"type": "string", "enum": list(OVERLAP_POLICIES), "default": "skip"},
        "misfire_grace": {"type": ["number", "null"],
                          "description": "Seconds; null: the schedule_misfire_grace setting"},
        "alerts": alerts,
        "workers": {"type": ["integer", "null"], "minimum": 1, "maximum": 64,
                    "description": "Fire one distributed crawl of N workers (Redis frontier)"},
        "persist": {"type": "boolean", "default": False,
                    "description": "Fire a resumable crawl (its frontier kept when it stops)"},
    }
    return {
        "ScheduleInput": {"type": "object", "additionalProperties": False,
                          "required": ["spider", "cron"], "properties": fields},
        "SchedulePatch": {"type": "object", "additionalProperties": False,
                          "properties": fields},
        "Schedule": {"type": "object", "additionalProperties": True, "properties": {
            **fields, "id": {"type": "string"},
            "next_fire_at": nullable_number,
            "next_fire_time": {"type": ["string", "null"], "description": "ISO 8601"},
            "upcoming": {"type": "array", "items": {"type": "string"},
                         "description": "The next fire times, ISO 8601 with offset"},
            "disabled_reason": {"type": ["string", "null"]},
            "last_fire_time": nullable_number,
            "last_outcome": {"type": ["string", "null"]},
            "created_at": {"type": "number"}, "updated_at": {"type": "number"}}},
        "SchedulePage": {"type": "object", "properties": {
            "schedules": {"type": "array", "items": _ref("Schedule")},
            "next": {"type": ["string", "null"], "description": "Pass as `after`"}}},
        "Fire": {"type": "object", "properties": {
            "schedule_id": {"type": "string"}, "fire_time": {"type": "number"},
            "fire_iso": {"type": "string"},
            "state": {"type": "string", "enum": FIRE_STATES},
            "reason": {"type": ["string", "null"]}, "master": {"type": "string"},
            "late": {"type": "number", "description": "Seconds after the fire time"},
            "task_ids": {"type": "array", "items": {"type": "string"}},
            "tasks": {"type": "array", "items": obj}}},
        "FirePage": {"type": "object", "properties": {
            "fires": {"type": "array", "items": _ref("Fire")},
            "next": {"type": ["number", "null"], "description": "Pass as `before`"}}},
        "PreviewRequest": {"type": "object", "required": ["cron"], "properties": {
            "cron": {"type": "string"}, "timezone": {"type": "string", "default": "UTC"},
            "count": {"type": "integer", "minimum": 1, "maximum": 50, "default": 5}}},
        "Preview": {"type": "object", "properties": {
            "cron": {"type": "string"}, "timezone": {"type": "string"},
            "fire_times": {"type": "array", "items": {"type": "string"}},
            "fire_at": {"type": "array", "items": {"type": "number"}},
            "description": {"type": "string", "description": "The expression in words"},
            "seconds": {"type": ["string", "null"],
                        "description": "What the sixth (seconds) field means, if given"}}},
    }


def _body(name):
    return {"required": True, "content": {"application/json": {"schema": _ref(name)}}}


def paths():
    one = _json(_ref("Schedule"))
    return {
        "/schedules": {
            "get": _op("List schedules", {"200": _json(_ref("SchedulePage"))}, tag=TAG,
                       params=[_param("spider", "query", {"type": "string"}, "Spider name"),
                               _param("enabled", "query", {"type": "string",
                                                           "enum": ["true", "false"]},
                                      "Only enabled or disabled ones"),
                               _param("limit", "query", {"type": "integer", "minimum": 1,
                                                         "maximum": 1000, "default": 100},
                                      "Page size"),
                               _param("after", "query", {"type": "string"},
                                      "The previous page's `next`")],
                       errors=(400,)),
            "post": _op("Create a schedule", {"201": _json(_ref("Schedule"), "Created")},
                        tag=TAG, write=True, errors=(400,), body=_body("ScheduleInput"))},
        "/schedules/preview": {"post": _op(
            "The next fire times of a cron expression in a time zone",
            {"200": _json(_ref("Preview"))}, tag=TAG, write=True, errors=(400,),
            body=_body("PreviewRequest"))},
        "/schedules/{schedule_id}": {
            "get": _op("One schedule, with its next fire times", {"200": one},
                       params=[ID], tag=TAG, errors=(404,)),
            "patch": _op("Change the fields given", {"200": one}, params=[ID], tag=TAG,
                         write=True, errors=(400, 404), body=_body("SchedulePatch")),
            "put": _op("Replace the schedule (omitted fields take their defaults)",
                       {"200": one}, params=[ID], tag=TAG, write=True, errors=(400, 404),
                       body=_body("ScheduleInput")),
            "delete": _op("Delete the schedule and its history",
                          {"200": _json({"type": "object", "properties": {
                              "id": {"type": "string"}, "deleted": {"type": "boolean"}}})},
                          params=[ID], tag=TAG, write=True, errors=(404,))},
        "/schedules/{schedule_id}/enable": {"post": _op(
            "Enable (its spider must exist); it next fires at its next fire time",
            {"200": one}, params=[ID], tag=TAG, write=True, errors=(400, 404))},
        "/schedules/{schedule_id}/run": {"post": _op(
            "Run the schedule's spider now with its options (no fire is recorded)",
            {"201": _json({"type": "object", "properties": {
                "task_ids": {"type": "array", "items": {"type": "string"}},
                "tasks": {"type": "array", "items": _ref("Task")}}})},
            params=[ID], tag=TAG, write=True, errors=(400, 404, 409))},
        "/schedules/{schedule_id}/disable": {"post": _op(
            "Disable", {"200": one}, params=[ID], tag=TAG, write=True, errors=(404,))},
        "/schedules/{schedule_id}/history": {"get": _op(
            "Fire records, newest first: the tasks each made, or why it was skipped",
            {"200": _json(_ref("FirePage"))}, tag=TAG, errors=(400, 404),
            params=[ID, _param("limit", "query", {"type": "integer", "minimum": 1,
                                                  "maximum": 500, "default": 50}, "Page size"),
                    _param("before", "query", {"type": "number"},
                           "Only fire times before this (the previous page's `next`)")])},
    }
