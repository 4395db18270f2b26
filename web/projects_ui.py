"""Project pages of the web UI: list and upload (drag and drop, posted by
static/app.js to ``POST /api/v1/projects``), versions with rollback and
deletion, and the read-only file viewer. The operations are those of
`master.versions` and `master.browse`, which the projects API also serves."""

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for

from crawlfleet.errors import BadRequest, CrawlfleetError, NotFound
from master import browse, inspections, versions
from web import auth, errors, services

bp = Blueprint("projects_ui", __name__, url_prefix="/projects")
bp.before_request(auth.login_required_for_blueprint)


@bp.get("/")
def index():
    store = services().store
    return render_template("projects.html", projects=versions.list_projects(store),
                           inspections=_readable(inspections.shown(store)),
                           upload_url=url_for("api.projects.deploy"))


def _readable(items):
    for item in items:
        if item.get("error"):
            item["error"] = errors.hide_paths(item["error"])
    return items


@bp.get("/<name>")
def project(name):
    store = services().store
    try:
        doc = versions.public_project(store, versions.get_project(store, name),
                                      with_versions=True)
    except NotFound as exc:
        abort(404, str(exc))
    doc["inspections"] = _readable(inspections.shown(store, name))
    return render_template("project.html", project=doc)


@bp.post("/<name>/versions/<version>/activate")
@auth.require("operator")
def activate(name, version):
    try:
        versions.activate(services().store, name, version)
        flash(f"{name}: version {version[:12]} is now current.", "ok")
    except CrawlfleetError as exc:
        flash(errors.hide_paths(str(exc)), "error")
    return redirect(url_for("projects_ui.project", name=name))


@bp.post("/<name>/versions/<version>/delete")
@auth.require("operator")
def delete_version(name, version):
    try:
        versions.delete_version(services().store, name, version)
        flash(f"{name}: version {version[:12]} deleted.", "ok")
    except CrawlfleetError as exc:
        flash(errors.hide_paths(str(exc)), "error")
    return redirect(url_for("projects_ui.project", name=name))


@bp.get("/<name>/versions/<version>/files")
def files(name, version):
    """The version's file list, and one file's text (`?path=`) shown read-only."""
    store = services().store
    try:
        listing = browse.tree(store, name, version)
    except NotFound as exc:
        abort(404, str(exc))
    path = request.args.get("path") or next(
        (f["path"] for f in listing["files"] if f["path"] in ("scrapy.cfg", "crawlfleet.json")),
        None)
    shown, error = None, None
    if path:
        try:
            shown = browse.read(store, name, version, path)
        except (BadRequest, NotFound) as exc:
            error = str(exc)
    return render_template("files.html", project=name, listing=listing, path=path,
                           shown=shown, error=error)
