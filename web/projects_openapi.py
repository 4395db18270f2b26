"""The OpenAPI description of /api/v1/projects (web/projects_api.py), merged
into the API's document by `web.openapi.document`."""

from web.openapi import _json, _op, _param, _ref

NAME = _param("name", "path", {"type": "string"}, "Project name")
VERSION = _param("version", "path", {"type": "string"}, "Version id, or its label")
TAG = "projects"


def responses():
    return {"E413": _json(_ref("Error"), "The upload is larger than max_upload_bytes")}


def schemas():
    strings = {"type": "array", "items": {"type": "string"}}
    return {
        "Deployed": {"type": "object", "properties": {
            "project": {"type": "string"}, "version": {"type": "string"},
            "label": {"type": "string"},
            "new": {"type": "boolean",
                    "description": "false: the same content was already a version"},
            "kind": {"type": "string", "enum": ["scrapy", "command"]},
            "spiders": strings, "files": {"type": "integer"}, "size": {"type": "integer"},
            "commit": {"type": "string", "description": "git imports: the commit deployed"},
            "changed": {"type": "boolean", "description": "pull: a new version is current"},
            "status": {"type": "string", "enum": ["done"]},
            "inspection": {"type": "string",
                           "description": "the record of this deploy's inspection"}}},
        "Inspection": {"type": "object", "properties": {
            "id": {"type": "string"}, "project": {"type": "string"},
            "label": {"type": ["string", "null"]}, "source": {"type": "string"},
            "status": {"type": "string", "enum": ["inspecting", "done", "failed"]},
            "started_at": {"type": "number"}, "ended_at": {"type": ["number", "null"]},
            "error": {"type": ["string", "null"], "description": "failed: the message first, "
                      "then the traceback"},
            "version": {"type": ["string", "null"]}, "spiders": strings,
            "new": {"type": ["boolean", "null"]}}},
        "Version": {"type": "object", "properties": {
            "id": {"type": "string"}, "project": {"type": "string"},
            "label": {"type": "string"}, "kind": {"type": "string"},
            "source": {"type": "string"}, "size": {"type": "integer"},
            "files": {"type": "integer"}, "sha256": {"type": "string"},
            "spiders": strings, "created_at": {"type": "number"},
            "current": {"type": "boolean"}}},
        "Project": {"type": "object", "properties": {
            "name": {"type": "string"}, "current_version": {"type": "string"},
            "current_label": {"type": ["string", "null"]},
            "kind": {"type": "string"}, "source": {"type": "string"},
            "updated_at": {"type": "number"}, "spiders": strings,
            "version_count": {"type": "integer"},
            "git": {"type": "object", "properties": {
                "url": {"type": "string"}, "ref": {"type": ["string", "null"]},
                "commit": {"type": "string"}, "pulled_at": {"type": "number"},
                "credentials": {"type": "boolean",
                                "description": "sealed credentials are kept (never shown)"}}},
            "versions": {"type": "array", "items": _ref("Version")},
            "inspections": {"type": "array", "items": _ref("Inspection"),
                            "description": "deploys being inspected, and those that failed "
                                           "since the last successful one"}}},
        "VersionList": {"type": "object", "properties": {
            "project": {"type": "string"}, "current_version": {"type": "string"},
            "versions": {"type": "array", "items": _ref("Version")}}},
        "GitImport": {"type": "object", "required": ["git"], "additionalProperties": False,
                      "properties": {
                          "git": {"type": "string",
                                  "description": "https://, ssh://, git@host:path, or a "
                                                 "local path inside git_local_roots"},
                          "ref": {"type": "string", "description": "Branch or tag"},
                          "project": {"type": "string",
                                      "description": "Default: the repository's name"},
                          "label": {"type": "string"},
                          "credentials": {"type": "string", "writeOnly": True,
                                          "description": "https only: a token, or "
                                          "user:token; kept sealed, used again by pull, "
                                          "never shown"}}},
        "EditOp": {"type": "object", "required": ["op"], "properties": {
            "op": {"type": "string", "enum": ["write", "delete", "rename"]},
            "path": {"type": "string", "description": "write, delete: a file or folder"},
            "content": {"type": "string", "description": "write: the file's text"},
            "base64": {"type": "string", "description": "write: the file's bytes"},
            "from": {"type": "string"}, "to": {"type": "string"}}},
        "Comparison": {"type": "object", "properties": {
            "from": {"type": "object"}, "to": {"type": "object"},
            "files": {"type": "array", "items": {"type": "object", "properties": {
                "path": {"type": "string"},
                "status": {"type": "string", "enum": ["added", "removed", "changed"]}}}},
            "counts": {"type": "object"},
            "diff": {"type": "string", "description": "unified diff of the text files"},
            "truncated": {"type": "boolean"}}},
    }


def paths():
    deployed = {"201": _json(_ref("Deployed"), "A new version, now current"),
                "200": _json(_ref("Deployed"), "Known content, now current")}
    inspecting = {"202": _json({"type": "object", "properties": {
        "project": {"type": "string"}, "status": {"type": "string", "enum": ["inspecting"]},
        "inspection": {"type": "string"}}},
        "Its spiders are still being listed (longer than deploy_wait): follow the "
        "Location, /projects/{name}/inspections/{inspection}")}
    return {
        "/projects": {
            "get": _op("List projects", {"200": _json({"type": "object", "properties": {
                "projects": {"type": "array", "items": _ref("Project")},
                "inspections": {"type": "array", "items": _ref("Inspection")}}})}, tag=TAG),
            "post": _op(
                "Deploy a project: a zip upload, or an import from git",
                deployed | inspecting, tag=TAG, write=True, errors=(400, 409, 413),
                body={"required": True, "content": {
                    "multipart/form-data": {"schema": {
                        "type": "object", "required": ["file"], "properties": {
                            "file": {"type": "string", "format": "binary",
                                     "description": "The project as a zip"},
                            "project": {"type": "string", "description":
                                        "Default: the zip's top folder, else scrapy.cfg's "
                                        "[deploy] project"},
                            "label": {"type": "string",
                                      "description": "Default: the upload time"}}}},
                    "application/json": {"schema": _ref("GitImport")}}}),
        },
        "/projects/{name}": {
            "get": _op("One project with its versions", {"200": _json(_ref("Project"))},
                       params=[NAME], tag=TAG, errors=(404,)),
            "delete": _op("Delete a project, its versions and its spiders "
                          "(refused while its tasks run)",
                          {"200": _json({"type": "object"})},
                          params=[NAME], tag=TAG, write=True, errors=(404, 409)),
        },
        "/projects/{name}/inspections/{inspection}": {"get": _op(
            "A deploy's inspection: inspecting, then done (version, spiders) or failed "
            "(error); the project need not exist yet",
            {"200": _json(_ref("Inspection"))},
            params=[NAME, _param("inspection", "path", {"type": "string"}, "Inspection id")],
            tag=TAG, errors=(404,))},
        "/projects/{name}/pull": {"post": _op(
            "Clone the project's git URL and ref again; a new version if it changed",
            {"200": _json(_ref("Deployed"))}, params=[NAME], tag=TAG, write=True,
            errors=(400, 404, 409))},
        "/projects/{name}/versions": {"get": _op(
            "A project's versions, newest first, and which is current",
            {"200": _json(_ref("VersionList"))}, params=[NAME], tag=TAG, errors=(404,))},
        "/projects/{name}/versions/{version}/activate": {"post": _op(
            "Make a version current (roll back, or forward again)",
            {"200": _json(_ref("Project"))}, params=[NAME, VERSION], tag=TAG, write=True,
            errors=(404, 409))},
        "/projects/{name}/versions/{version}": {"delete": _op(
            "Delete a version that is not current and no pending or running task uses",
            {"200": _json({"type": "object"})}, params=[NAME, VERSION], tag=TAG, write=True,
            errors=(404, 409))},
        "/projects/{name}/versions/{version}/save": {"post": _op(
            "Save an edited copy of a version as a new, current version (like a commit): "
            "its operations applied in order; unchanged: true when nothing changed",
            {"201": _json(_ref("Deployed"), "A new version, with parent, message and diff"),
             "200": _json(_ref("Deployed"), "Same content as a known version")} | inspecting,
            params=[NAME, VERSION], tag=TAG, write=True, errors=(400, 404, 409),
            body={"required": True, "content": {"application/json": {"schema": {
                "type": "object", "additionalProperties": False, "properties": {
                    "ops": {"type": "array", "items": _ref("EditOp")},
                    "label": {"type": "string"}, "message": {"type": "string"}}}}}})},
        "/projects/{name}/compare": {"get": _op(
            "Compare two versions: files added, removed, changed, and a unified diff",
            {"200": _json(_ref("Comparison"))},
            params=[NAME, _param("from", "query", {"type": "string"}, "Version id or label",
                                 required=True),
                    _param("to", "query", {"type": "string"}, "Version id or label",
                           required=True)], tag=TAG, errors=(400, 404))},
        "/project-templates": {"get": _op(
            "Templates of the new-project wizard",
            {"200": _json({"type": "object"})}, tag=TAG)},
        "/project-templates/{template}": {"post": _op(
            "Create and deploy a new project from a template (scrapy or script)",
            {"201": _json(_ref("Deployed"))},
            params=[_param("template", "path", {"type": "string"}, "scrapy or script")],
            tag=TAG, write=True, errors=(400, 409),
            body={"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["project"], "additionalProperties": False,
                "properties": {"project": {"type": "string"},
                               "spider": {"type": "string",
                                          "description": "Default: the project name"},
                               "label": {"type": "string"}}}}}})},
        "/projects/{name}/versions/{version}/files": {"get": _op(
            "A version's files: path and size of each",
            {"200": _json({"type": "object", "properties": {
                "files": {"type": "array", "items": {"type": "object", "properties": {
                    "path": {"type": "string"}, "size": {"type": "integer"}}}}}})},
            params=[NAME, VERSION], tag=TAG, errors=(404,))},
        "/projects/{name}/versions/{version}/files/{path}": {"get": _op(
            "One text file of a version (cut at 1 MiB, with truncated: true)",
            {"200": _json({"type": "object", "properties": {
                "path": {"type": "string"}, "size": {"type": "integer"},
                "content": {"type": "string"}, "truncated": {"type": "boolean"}}})},
            params=[NAME, VERSION,
                    _param("path", "path", {"type": "string"}, "File path in the project")],
            tag=TAG, errors=(400, 404))},
    }

