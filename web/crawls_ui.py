"""Crawl pages of the web UI: the list of distributed and resumable crawls,
and one crawl (its workers and their nodes, combined live stats, frontier
sizes, one merged results table) with Cancel, Scale and Resume. The Run
dialog starts a crawl through `run_from_form` when it is given workers or
"persistent"."""

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext

from crawlfleet.errors import BadRequest, NotFound
from crawlfleet.models import TaskStatus, results_collection_for
from master import crawls
from web import auth, errors, export, services

bp = Blueprint("crawls_ui", __name__, url_prefix="/crawls")
bp.before_request(auth.login_required_for_blueprint)

LIST_LIMIT = 100
RESULTS_PREVIEW = 50
HIDDEN_COLUMNS = {"_id", "_tid", "task_id", "_at"}


def run_from_form(name, form):
    """The Run dialog with `workers` or `persist`: start a crawl, show its page.
    A refusal is raised as a CrawlfleetError, which the dialog's route
    (`spiders_ui.run`) shows on the spider's page."""
    from web.ui import parse_pairs

    svc = services()
    try:
        workers = int(form["workers"]) if form.get("workers", "").strip() else 1
        timeout = float(form["timeout"]) if form.get("timeout", "").strip() else None
        target = form.get("target", "any")
        crawl, _tasks = crawls.start_crawl(
            svc.store, svc.broker, svc.config, name, workers=workers,
            persist=bool(form.get("persist")), args=parse_pairs(form.get("args"), "arguments"),
            settings=parse_pairs(form.get("settings"), "settings"),
            nodes=form.getlist("nodes") if target == "nodes" else "any", timeout=timeout,
            trigger="ui", extra={"user": g.user["_id"]},
            labels=form.get("labels", "").strip() or None)
    except ValueError:
        raise BadRequest(_("Workers must be a whole number and the timeout a number of "
                           "seconds.")) from None
    return redirect(url_for("crawls_ui.crawl", crawl_id=crawl["_id"]))


@bp.get("/")
def index():
    store = services().store
    query = {}
    if request.args.get("spider"):
        query["spider"] = request.args["spider"]
    docs = [crawls.without_secret(d)
            for d in store.crawls.find(query).sort("_id", -1).limit(LIST_LIMIT)]
    return render_template("crawls.html", crawls=docs)


@bp.get("/<crawl_id>")
def crawl(crawl_id):
    store = services().store
    try:
        doc = crawls.public_crawl(store, crawls.get_crawl(store, crawl_id))
    except NotFound:
        abort(404)
    name = doc.get("results_collection") or results_collection_for(doc["spider"])
    items = list(export.items_cursor(store.results(name), doc["task_ids"], None, RESULTS_PREVIEW))
    columns = []
    for item in items:
        columns += [k for k in item if k not in HIDDEN_COLUMNS and k not in columns]
    final = TaskStatus(doc["status"]).is_final
    return render_template("crawl.html", crawl=doc, items=items, columns=columns, final=final)


def _act(crawl_id, action, done):
    with errors.flash_errors():
        action()
        flash(done, "ok")
    return redirect(url_for("crawls_ui.crawl", crawl_id=crawl_id))


@bp.post("/<crawl_id>/cancel")
@auth.require("operator")
def cancel(crawl_id):
    svc = services()
    return _act(crawl_id, lambda: crawls.cancel_crawl(svc.store, svc.broker, crawl_id),
                _("Cancel requested: every worker stops."))


@bp.post("/<crawl_id>/resume")
@auth.require("operator")
def resume(crawl_id):
    svc = services()
    return _act(crawl_id, lambda: crawls.resume_crawl(svc.store, svc.broker, svc.config,
                                                      crawl_id),
                _("Resumed from its frontier."))


@bp.post("/<crawl_id>/scale")
@auth.require("operator")
def scale(crawl_id):
    svc = services()
    try:
        workers = int(request.form.get("workers", ""))
    except ValueError:
        flash(_("Workers must be a whole number."), "error")
        return redirect(url_for("crawls_ui.crawl", crawl_id=crawl_id))
    return _act(crawl_id, lambda: crawls.scale_crawl(svc.store, svc.broker, svc.config,
                                                     crawl_id, workers),
                ngettext("Now %(num)d worker.", "Now %(num)d workers.", workers))
