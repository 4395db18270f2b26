"""The JSON API of spider projects, under /api/v1/projects: deploy (zip upload
or git import), versions and rollback, deletion, and the read-only file
viewer.

Same conventions as `web.api`, whose helpers it uses: a bearer token (or the
UI's session) on every route, write routes for ``operator`` and ``admin``
only, errors as ``{"error": message}`` with real status codes.

An upload is never held in memory: the request body is parsed as it
arrives, the zip streamed into a private temporary file under HOME/tmp, and
a body larger than ``max_upload_bytes`` is refused with 413 — at once when
its Content-Length says so, else as soon as the count passes the limit.
"""

from flask import Blueprint, jsonify, request, url_for

from crawlfleet.errors import BadRequest
from master import browse, editing, gitimport, inspections, uploads, versiondiff, versions, wizard
from web import api, services
from web.multipart import read_multipart

# nested in `web.api.bp`: its authentication and error handlers hold here too
bp = Blueprint("projects", __name__)

UPLOAD_FIELDS = ("project", "label")
GIT_FIELDS = ("git", "ref", "project", "label", "credentials")
SAVE_FIELDS = ("ops", "label", "message")
WIZARD_FIELDS = ("project", "spider", "label")


def deployed(result):
    """201 a new version, 200 known content; 202 while its spiders are still
    listed (`deploy_wait` passed): follow it at the inspection's URL."""
    if result.get("status") == inspections.INSPECTING:
        return jsonify(result), 202, {"Location": url_for(
            "api.projects.inspection", name=result["project"], inspection=result["inspection"])}
    return jsonify(result), 201 if result.get("new") else 200


# -- deploy ----------------------------------------------------------------------

@bp.post("/projects")
def deploy():
    """A zip (multipart field `file`, optional `project` and `label`), or JSON
    {"git": URL, "ref": branch-or-tag, "project": name, "label": label}."""
    svc = services()
    if request.mimetype == "application/json":
        body = api.json_body(GIT_FIELDS)
        if not body.get("git"):
            raise BadRequest('send {"git": URL, "ref": ..., "project": ...}, '
                             "or a zip as multipart/form-data in the field `file`")
        return deployed(gitimport.import_git(svc.store, svc.config, body["git"],
                                             ref=body.get("ref"), project=body.get("project"),
                                             label=body.get("label"),
                                             credentials=body.get("credentials")))
    with uploads.scratch(svc.config, "body-") as tmp:
        form, files = read_multipart(tmp, svc.config.max_upload_bytes)
        unknown = sorted(set(form) - set(UPLOAD_FIELDS)) + sorted(set(files) - {"file"})
        if unknown:
            raise BadRequest(f"unknown field(s) {', '.join(unknown)}; expected file, "
                             f"{', '.join(UPLOAD_FIELDS)}")
        upload = files.get("file")
        if upload is None:
            raise BadRequest("no zip: send it in the multipart field `file`")
        upload.stream.seek(0)
        try:
            result = uploads.deploy_zip(svc.store, svc.config, upload.stream,
                                        project=form.get("project") or None,
                                        label=form.get("label") or None,
                                        wait=svc.config.deploy_wait)
        finally:
            upload.close()
    return deployed(result)


@bp.post("/projects/<name>/pull")
def pull(name):
    svc = services()
    return jsonify(gitimport.pull(svc.store, svc.config, name))


# -- projects and versions -------------------------------------------------------

@bp.get("/projects")
def projects():
    store = services().store
    return jsonify({"projects": versions.list_projects(store),
                    "inspections": inspections.shown(store)})


@bp.get("/projects/<name>")
def project(name):
    store = services().store
    doc = versions.public_project(store, versions.get_project(store, name), with_versions=True)
    doc["inspections"] = inspections.shown(store, name)
    return jsonify(doc)


@bp.get("/projects/<name>/inspections/<inspection>")
def inspection(name, inspection):
    """A deploy's inspection: `inspecting`, then `done` (its version and
    spiders) or `failed` (its error). The project need not exist yet."""
    return jsonify(inspections.get(services().store, name, inspection))


@bp.delete("/projects/<name>")
def delete_project(name):
    return jsonify(versions.delete_project(services().store, name))


@bp.get("/projects/<name>/versions")
def project_versions(name):
    return jsonify(versions.list_versions(services().store, name))


@bp.post("/projects/<name>/versions/<version>/activate")
def activate(name, version):
    return jsonify(versions.activate(services().store, name, version))


@bp.delete("/projects/<name>/versions/<version>")
def delete_version(name, version):
    return jsonify(versions.delete_version(services().store, name, version))


# -- the file viewer -------------------------------------------------------------

@bp.get("/projects/<name>/versions/<version>/files")
def files(name, version):
    return jsonify(browse.tree(services().store, name, version))


@bp.get("/projects/<name>/versions/<version>/files/<path:path>")
def file(name, version, path):
    return jsonify(browse.read(services().store, name, version, path))


# -- the editor: save an edited version, compare two versions ----------------------

@bp.post("/projects/<name>/versions/<version>/save")
def save_edit(name, version):
    """{"ops": [...], "label", "message"}: a new version made of `version`
    with the operations applied (master/editing.py), and its diff; 202 and
    the inspection to follow when listing its spiders outlasts deploy_wait."""
    svc = services()
    body = api.json_body(SAVE_FIELDS)
    return deployed(editing.save(svc.store, svc.config, name, version, body.get("ops", []),
                                 label=body.get("label"), message=body.get("message"),
                                 wait=svc.config.deploy_wait))


@bp.get("/projects/<name>/compare")
def compare(name):
    """?from=VERSION&to=VERSION: files added, removed, changed and a unified diff."""
    base, other = request.args.get("from"), request.args.get("to")
    if not base or not other:
        raise BadRequest("name both versions: ?from=VERSION&to=VERSION (ids or labels)")
    return jsonify(versiondiff.compare(services().store, name, base, other))


# -- the new-project wizard ------------------------------------------------------

@bp.get("/project-templates")
def project_templates():
    return jsonify({"templates": [{"name": k, "description": v}
                                  for k, v in wizard.TEMPLATES.items()]})


@bp.post("/project-templates/<template>")
def create_from_template(template):
    """{"project", "spider", "label"}: a new project from the template."""
    svc = services()
    body = api.json_body(WIZARD_FIELDS)
    result = wizard.create(svc.store, svc.config, body.get("project"), template,
                           body.get("spider"), label=body.get("label"))
    return jsonify(result), 201
