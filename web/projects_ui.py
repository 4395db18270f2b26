"""Project pages of the web UI: list and upload (drag and drop, posted by
static/app.js to ``POST /api/v1/projects``), deploy from git and pull, the
new-project wizard, versions with rollback and deletion, deleting a
project, comparing two versions, the read-only file viewer and the editor
(static/editor.js, which saves through ``POST /api/v1/projects/<name>/
versions/<version>/save``). The operations are those of `master.versions`,
`master.browse`, `master.gitimport`, `master.wizard` and
`master.versiondiff`, which the projects API also serves."""

import secrets

from flask import Blueprint, flash, make_response, redirect, render_template, request, url_for
from flask_babel import gettext as _

from crawlfleet.errors import BadRequest, CrawlfleetError, NotFound
from master import browse, gitimport, inspections, versiondiff, versions, wizard
from web import auth, errors, services

bp = Blueprint("projects_ui", __name__, url_prefix="/projects")
bp.before_request(auth.login_required_for_blueprint)


@bp.get("/")
def index():
    store = services().store
    return render_template("projects.html", projects=versions.list_projects(store),
                           inspections=_readable(inspections.shown(store)),
                           upload_url=url_for("api.projects.deploy"),
                           templates=wizard.TEMPLATES)


def _form(name):
    return (request.form.get(name) or "").strip() or None


@bp.post("/git")
@auth.require("operator")
def deploy_git():
    """Deploy from a git URL and ref (the form's twin of the API's JSON deploy)."""
    svc = services()
    try:
        result = gitimport.import_git(svc.store, svc.config, _form("git"), ref=_form("ref"),
                                      project=_form("project"), label=_form("label"),
                                      credentials=_form("credentials"))
    except CrawlfleetError as exc:
        flash(errors.hide_paths(str(exc)), "error")
        return redirect(url_for("projects_ui.index"))
    flash(_("%(project)s: commit %(commit)s deployed as %(label)s; spiders: %(spiders)s.",
            project=result["project"], commit=result["commit"][:10], label=result["label"],
            spiders=", ".join(result["spiders"]) or _("none")), "ok")
    return redirect(url_for("projects_ui.project", name=result["project"]))


@bp.post("/new")
@auth.require("operator")
def create():
    """The new-project wizard: a project from a template, deployed at once."""
    svc = services()
    try:
        result = wizard.create(svc.store, svc.config, _form("project"), _form("template"),
                               _form("spider"))
    except CrawlfleetError as exc:
        flash(errors.hide_paths(str(exc)), "error")
        return redirect(url_for("projects_ui.index") + "#wizard")
    flash(_("%(project)s: made from the %(template)s template; spider %(spiders)s is ready "
            "to run.", project=result["project"], template=result["template"],
            spiders=", ".join(result["spiders"])), "ok")
    return redirect(url_for("projects_ui.project", name=result["project"]))


def _readable(items):
    for item in items:
        if item.get("error"):
            item["error"] = errors.hide_paths(item["error"])
    return items


@bp.get("/<name>")
def project(name):
    store = services().store
    with errors.missing_is_404():
        doc = versions.public_project(store, versions.get_project(store, name),
                                      with_versions=True)
    doc["inspections"] = _readable(inspections.shown(store, name))
    spiders = doc["spiders"]
    doc["schedule_count"] = store.schedules.count_documents({"spider": {"$in": spiders}}) \
        if spiders else 0
    return render_template("project.html", project=doc)


@bp.post("/<name>/pull")
@auth.require("operator")
def pull(name):
    svc = services()
    try:
        result = gitimport.pull(svc.store, svc.config, name)
    except CrawlfleetError as exc:
        flash(errors.hide_paths(str(exc)), "error")
    else:
        if result["changed"]:
            flash(_("%(project)s: pulled commit %(commit)s, now version %(label)s.", project=name,
                    commit=result["commit"][:10], label=result["label"]), "ok")
        else:
            flash(_("%(project)s: unchanged — commit %(commit)s holds the same files as the "
                    "current version.", project=name, commit=result["commit"][:10]), "ok")
    return redirect(url_for("projects_ui.project", name=name))


@bp.post("/<name>/delete")
@auth.require("operator")
def delete_project(name):
    try:
        result = versions.delete_project(services().store, name)
    except CrawlfleetError as exc:
        flash(errors.hide_paths(str(exc)), "error")
        return redirect(url_for("projects_ui.project", name=name))
    flash(_("Project %(project)s deleted: %(num)s version(s), spiders %(spiders)s.",
            project=name, num=len(result["versions"]),
            spiders=", ".join(result["spiders"]) or _("none")), "ok")
    return redirect(url_for("projects_ui.index"))


@bp.get("/<name>/compare")
def compare(name):
    """Two versions side by side: ?from= and ?to= (default: the previous and the current)."""
    store = services().store
    with errors.missing_is_404():
        listed = versions.list_versions(store, name)
    ids = [v["id"] for v in listed["versions"]]
    base = request.args.get("from") or (ids[1] if len(ids) > 1 else (ids or [None])[0])
    other = request.args.get("to") or listed["current_version"]
    result, error = None, None
    if base and other:
        try:
            result = versiondiff.compare(store, name, base, other)
        except (BadRequest, NotFound) as exc:
            error = str(exc)
    return render_template("compare.html", project=name, versions=listed["versions"],
                           base=base, other=other, result=result, error=error)


@bp.get("/<name>/versions/<version>/edit")
@auth.require("operator")
def edit(name, version):
    """The editor: the page is a frame; static/editor.js reads and saves through the API."""
    store = services().store
    with errors.missing_is_404(BadRequest, NotFound):
        doc = versions.find_version(store, name, version)
    # CodeMirror adds one <style> element: this page's policy allows it by a nonce
    nonce = secrets.token_urlsafe(18)
    response = make_response(render_template("editor.html", project=name, style_nonce=nonce,
                                              version=versions.public_version(doc)))
    response.headers["Content-Security-Policy"] = auth.CSP.replace(
        "style-src 'self'", f"style-src 'self' 'nonce-{nonce}'")
    return response


# The version buttons of the project page: what each does, and what it says when done.
_VERSION_ACTIONS = {
    "activate": (versions.activate,
                 lambda project, version: _("%(project)s: version %(version)s is now current.",
                                            project=project, version=version)),
    "delete": (versions.delete_version,
               lambda project, version: _("%(project)s: version %(version)s deleted.",
                                          project=project, version=version)),
}


@bp.post("/<name>/versions/<version>/<any(activate, delete):action>")
@auth.require("operator")
def version_action(name, version, action):
    """A version's button on the project page: the operation, then what it did or
    the refusal said, and back to the project."""
    operation, done = _VERSION_ACTIONS[action]
    with errors.flash_errors(hide=True):
        operation(services().store, name, version)
        flash(done(name, version[:12]), "ok")
    return redirect(url_for("projects_ui.project", name=name))


@bp.get("/<name>/versions/<version>/files")
def files(name, version):
    """The version's file list, and one file's text (`?path=`) shown read-only."""
    store = services().store
    with errors.missing_is_404():
        listing = browse.tree(store, name, version)
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
