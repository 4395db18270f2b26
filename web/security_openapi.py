"""The OpenAPI description of a project's spider environment
(web/spiderenv_api.py) and direct store access (web/store_access.py),
merged into the API's document by `web.openapi.document`."""

from web.openapi import _json, _op, _param, _ref

NAME = _param("name", "path", {"type": "string"}, "Project name")
VAR = _param("var", "path", {"type": "string"}, "Variable name")
SPIDER = _param("spider", "query", {"type": "string"}, "Only this spider's (and the project's)")
TAG = "projects"


def schemas():
    return {
        "SpiderVariable": {"type": "object", "properties": {
            "project": {"type": "string"}, "spider": {"type": ["string", "null"]},
            "name": {"type": "string"},
            "value": {"type": "string", "description": "A secret's shows masked, always"},
            "secret": {"type": "boolean"}, "updated_at": {"type": "number"},
            "updated_by": {"type": ["string", "null"]}}},
        "SetSpiderVariable": {
            "type": "object", "required": ["value"], "additionalProperties": False,
            "properties": {
                "value": {"type": "string"},
                "secret": {"type": "boolean", "description": "Encrypted at rest, never shown again"},
                "spider": {"type": ["string", "null"],
                           "description": "Only for this spider of the project"}}},
        "StoreAccess": {"type": "object", "properties": {
            "project": {"type": "string"}, "enabled": {"type": "boolean"},
            "by": {"type": ["string", "null"]}, "at": {"type": ["number", "null"]}}},
    }


def paths():
    return {
        "/projects/{name}/env": {"get": _op(
            "A project's spider environment variables and secrets (secrets masked)",
            {"200": _json({"type": "object", "properties": {
                "variables": {"type": "array", "items": _ref("SpiderVariable")}}})},
            params=[NAME, SPIDER], tag=TAG, errors=(404,))},
        "/projects/{name}/env/{var}": {
            "put": _op("Set a variable or secret for the project's spiders (or one spider)",
                       {"200": _json(_ref("SpiderVariable"))}, params=[NAME, VAR], tag=TAG,
                       write=True, errors=(400, 404),
                       body={"required": True, "content": {"application/json": {
                           "schema": _ref("SetSpiderVariable")}}}),
            "delete": _op("Remove a variable", {"200": _json({"type": "object"})},
                          params=[NAME, VAR, SPIDER], tag=TAG, write=True, errors=(404,)),
        },
        "/projects/{name}/store-access": {
            "get": _op("Whether the project's spiders get the store's address (CRAWLAB_MONGO_*)",
                       {"200": _json(_ref("StoreAccess"))}, params=[NAME], tag=TAG,
                       errors=(404,)),
            "put": _op("Switch direct store access (admin only)",
                       {"200": _json(_ref("StoreAccess"))}, params=[NAME], tag=TAG,
                       write=True, errors=(400, 404),
                       body={"required": True, "content": {"application/json": {"schema": {
                           "type": "object", "required": ["enabled"],
                           "additionalProperties": False,
                           "properties": {"enabled": {"type": "boolean"}}}}}}),
        },
    }
