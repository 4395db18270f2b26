"""The OpenAPI description of web/tasks_api.py's routes (retry, delete, bulk
actions on tasks), merged into the API's document by `web.openapi.document`."""

from web.openapi import TASK_ID, _json, _op, _ref

TAG = "tasks"


def schemas():
    return {
        "BulkRequest": {"type": "object", "additionalProperties": False,
                        "required": ["action", "ids"], "properties": {
                            "action": {"type": "string", "enum": ["cancel", "retry", "delete"],
                                       "description": "delete needs admin"},
                            "ids": {"type": "array", "minItems": 1, "maxItems": 500,
                                    "items": {"type": "string"}}}},
        "BulkResult": {"type": "object", "properties": {
            "action": {"type": "string"},
            "ok": {"type": "integer", "description": "Tasks the action was applied to"},
            "failed": {"type": "integer"},
            "results": {"type": "array", "items": {"type": "object", "properties": {
                "id": {"type": "string"}, "ok": {"type": "boolean"},
                "status": {"type": "string", "description": "After a cancel or delete"},
                "cancelling": {"type": "boolean",
                               "description": "Running: its node was asked to stop it"},
                "new_task_id": {"type": "string", "description": "After a retry"},
                "error": {"type": "string", "description": "Why the action was refused"}}}}}},
    }


def paths():
    return {
        "/tasks/{task_id}": {"delete": _op(
            "Delete an ended task and its log (admin); its items stay in the results",
            {"200": _json({"type": "object", "properties": {"deleted": {"type": "boolean"}}})},
            params=[TASK_ID], tag=TAG, write=True, errors=(404, 409))},
        "/tasks/{task_id}/retry": {"post": _op(
            "Run an ended task again (same spider, arguments, settings, target)",
            {"201": _json(_ref("Task"), "The new task")},
            params=[TASK_ID], tag=TAG, write=True, errors=(404, 409))},
        "/tasks/bulk": {"post": _op(
            "Cancel, retry or delete many tasks; each task answers on its own",
            {"200": _json(_ref("BulkResult"))}, tag=TAG, write=True, errors=(400,),
            body={"required": True,
                  "content": {"application/json": {"schema": _ref("BulkRequest")}}})},
    }
