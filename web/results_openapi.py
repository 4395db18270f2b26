"""The OpenAPI description of web/results_api.py's routes (spider results
settings, data sources, removing results), merged into the API's document by
`web.openapi.document`."""

from web.openapi import SPIDER, TASK_ID, _json, _op, _param, _ref

TAG = "results"
NAME = _param("name", "path", {"type": "string"}, "Data-source name")


def _body(name):
    return {"required": True, "content": {"application/json": {"schema": _ref(name)}}}


def _removed(count):
    """The answer of both ways to remove results: how many MongoDB rows went
    (under `count`), and how many in each SQL data source."""
    return {"200": _json({"type": "object", "properties": {
        count: {"type": "integer"},
        "data_sources": {"type": "object", "additionalProperties": {"type": "integer"},
                         "description": "Rows removed in each SQL data source, by its name"}}})}


def schemas():
    keys = {"oneOf": [{"type": "array", "items": {"type": "string"}}, {"type": "string"}],
            "description": "Dedup key fields (list, or comma-separated); empty turns dedup off"}
    source_fields = {
        "kind": {"type": "string", "enum": ["postgresql", "mysql", "mariadb"]},
        "host": {"type": "string"}, "port": {"type": "integer"},
        "database": {"type": "string"}, "user": {"type": "string"},
        "password": {"type": "string", "writeOnly": True,
                     "description": "Sealed at rest; never answered"},
        "description": {"type": "string"}}
    return {
        "SpiderResultsPatch": {"type": "object", "additionalProperties": False, "properties": {
            "dedup_keys": keys,
            "dedup_mode": {"type": "string", "enum": ["overwrite", "ignore"]},
            "keep_newest": {"type": "boolean", "description":
                            "Delete all but the newest copy of each key when the collection "
                            "holds duplicates (else 409 says how many)"},
            "keep_partial_attempts": {"type": "boolean"},
            "datasources": {"type": "array", "items": {"type": "string"}},
            "feeds": {"type": ["object", "null"], "description": "Scrapy's FEEDS setting"}}},
        "SpiderResults": {"type": "object", "additionalProperties": True, "properties": {
            "results_settings": {"type": "object"},
            "duplicates_removed": {"type": "integer"},
            "changed": {"type": "array", "items": {"type": "string"}}}},
        "DataSourceInput": {"type": "object", "additionalProperties": False,
                            "properties": {"name": {"type": "string"}, **source_fields}},
        "DataSource": {"type": "object", "properties": {
            "name": {"type": "string"}, **{k: v for k, v in source_fields.items()
                                           if k != "password"},
            "has_password": {"type": "boolean"}}},
    }


def paths():
    one = _json(_ref("DataSource"))
    return {
        "/spiders/{name}": {"patch": _op(
            "Change a spider's results settings: dedup, partial attempts, data sources, feeds",
            {"200": _json(_ref("SpiderResults"))}, params=[SPIDER], tag=TAG, write=True,
            errors=(400, 404, 409), body=_body("SpiderResultsPatch"))},
        "/datasources": {
            "get": _op("List data sources (never their passwords)",
                       {"200": _json({"type": "object", "properties": {"datasources": {
                           "type": "array", "items": _ref("DataSource")}}})}, tag=TAG),
            "post": _op("Add a data source (admin)", {"201": _json(_ref("DataSource"), "Created")},
                        tag=TAG, write=True, errors=(400,), body=_body("DataSourceInput"))},
        "/datasources/{name}": {
            "get": _op("One data source", {"200": one}, params=[NAME], tag=TAG, errors=(404,)),
            "patch": _op("Change a data source (admin); no password keeps the stored one",
                         {"200": one}, params=[NAME], tag=TAG, write=True, errors=(400, 404),
                         body=_body("DataSourceInput")),
            "delete": _op("Delete a data source (admin); spiders stop delivering to it",
                          {"200": _json({"type": "object"})}, params=[NAME], tag=TAG,
                          write=True, errors=(404,))},
        "/datasources/{name}/test": {"post": _op(
            "Connect and run SELECT 1 (admin)",
            {"200": _json({"type": "object", "properties": {
                "ok": {"type": "boolean"}, "error": {"type": ["string", "null"]}}})},
            params=[NAME], tag=TAG, write=True, errors=(404,))},
        "/tasks/{task_id}/results": {"delete": _op(
            "Delete the items of a task's crawl (admin), from its spider's SQL data sources "
            "first (503 when one cannot be reached: nothing is removed)",
            _removed("removed"), params=[TASK_ID], tag=TAG, write=True, errors=(404,))},
        "/results/{name}": {"delete": _op(
            "Drop a whole results collection (admin) and its table in the spiders' SQL "
            "data sources (first; 503 when one cannot be reached); confirm=<name> is required",
            _removed("rows"),
            params=[_param("name", "path", {"type": "string"}, "Results collection"),
                    _param("confirm", "query", {"type": "string"}, "The collection's name again",
                           required=True)],
            tag=TAG, write=True, errors=(400, 404))},
    }
