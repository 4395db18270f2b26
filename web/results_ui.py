"""Web pages of what spiders scraped, beside the results browser: a spider's
results settings (dedup, partial attempts, data sources, feeds), the data
sources page (admin), and removing results (admin, confirmed). The
operations are `crawlfleet.results.manage` and `crawlfleet.datasources`,
which the JSON API also serves."""

import json

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from crawlfleet import datasources
from crawlfleet.errors import Conflict, CrawlfleetError, NotFound
from crawlfleet.results import manage, sqlremove
from crawlfleet.secretbox import SecretBox
from web import auth, errors, services
from web.ui import one_or_404

bp = Blueprint("results_ui", __name__)
bp.before_request(auth.login_required_for_blueprint)


@bp.get("/spiders/<name>/data")
def spider_settings(name):
    spider = one_or_404(services().store.spiders, name, "spider")
    return render_template("spider_data.html", spider=spider,
                           settings=manage.spider_settings(spider),
                           sources=datasources.list_all(services().store),
                           duplicates=None)


@bp.post("/spiders/<name>/data")
@auth.require("operator")
def save_spider_settings(name):
    spider = one_or_404(services().store.spiders, name, "spider")
    form = request.form
    body = {"dedup_keys": form.get("dedup_keys", ""), "dedup_mode": form.get("dedup_mode") or None,
            "keep_partial_attempts": form.get("keep_partial_attempts") == "on",
            "datasources": form.getlist("datasources"),
            "keep_newest": form.get("keep_newest") == "on"}
    feeds = form.get("feeds", "").strip()
    try:
        body["feeds"] = json.loads(feeds) if feeds else None
    except ValueError as exc:
        flash(_("feeds is not valid JSON: %(error)s", error=exc), "error")
        return redirect(url_for("results_ui.spider_settings", name=name))
    try:
        report = manage.update_spider(services().store, name, body)
    except Conflict as exc:
        # duplicates over the new key: say how many and offer to keep the newest
        return render_template("spider_data.html", spider=spider,
                               settings=manage.spider_settings(spider),
                               sources=datasources.list_all(services().store),
                               duplicates=str(exc), asked=body, feeds_text=feeds), 409
    except CrawlfleetError as exc:
        flash(str(exc), "error")
        return redirect(url_for("results_ui.spider_settings", name=name))
    removed = report.get("duplicates_removed")
    flash(_("%(name)s: results settings saved; %(num)d older duplicates removed.", name=name,
            num=removed) if removed else _("%(name)s: results settings saved.", name=name),
          "ok")
    return redirect(url_for("results_ui.spider_settings", name=name))


@bp.get("/datasources")
@auth.require("admin")
def datasources_page():
    return render_template("datasources.html", sources=datasources.list_all(services().store))


@bp.post("/datasources")
@auth.require("admin")
def save_datasource():
    form = request.form
    name = form.get("name", "").strip()
    body = {k: form.get(k, "").strip() for k in ("kind", "host", "port", "database", "user",
                                                  "description")}
    if form.get("password"):
        body["password"] = form["password"]
    store = services().store
    exists = store.db.datasources.find_one({"_id": name}, {"_id": 1}) is not None
    with errors.flash_errors():
        datasources.save(store, SecretBox.for_config(services().config), name, body,
                         create=not exists)
        flash(_("data source %(name)s updated.", name=name) if exists
              else _("data source %(name)s added.", name=name), "ok")
    return redirect(url_for("results_ui.datasources_page"))


@bp.post("/datasources/<name>/test")
@auth.require("admin")
def test_datasource(name):
    try:
        datasources.ping(datasources.get(services().store, name),
                         SecretBox.for_config(services().config))
        flash(_("data source %(name)s: connected.", name=name), "ok")
    except Exception as exc:  # the driver's error, shortened: the source is down
        from crawlfleet.results.delivery import short

        flash(f"data source {name}: {short(exc)}", "error")
    return redirect(url_for("results_ui.datasources_page"))


@bp.post("/datasources/<name>/delete")
@auth.require("admin")
def delete_datasource(name):
    with errors.flash_errors(NotFound):
        out = datasources.delete(services().store, name)
        flash(_("data source %(name)s deleted (no longer used by %(spiders)s).", name=name,
                spiders=", ".join(out["detached_from"])) if out["detached_from"]
              else _("data source %(name)s deleted.", name=name), "ok")
    return redirect(url_for("results_ui.datasources_page"))


@bp.post("/tasks/<task_id>/results/delete")
@auth.require("admin")
def delete_task_results(task_id):
    store = services().store
    task = one_or_404(store.tasks, task_id, "task")
    try:
        out = manage.delete_task_results(store, services().config, task)
    except CrawlfleetError as exc:  # a data source that cannot be reached: nothing removed
        flash(str(exc), "error")
        return redirect(url_for("ui.task", task_id=task_id))
    flash(_("%(num)d items of task %(id)s deleted", num=out["removed"], id=task_id)
          + in_sources(out) + ".", "ok")
    return redirect(url_for("ui.task", task_id=task_id))


def in_sources(out) -> str:
    """What a removal did in the SQL data sources, for a flash message."""
    if not out["data_sources"]:
        return ""
    return " (" + _("data sources: %(what)s", what=sqlremove.describe(out["data_sources"])) + ")"


@bp.post("/results/<name>/drop")
@auth.require("admin")
def drop_results(name):
    try:
        out = manage.drop_collection(services().store, services().config, name,
                                     request.form.get("confirm"))
    except CrawlfleetError as exc:
        flash(str(exc), "error")
        return redirect(url_for("results.browse", name=name))
    flash(_("results collection %(name)s dropped (%(num)d rows)", name=name, num=out["rows"])
          + in_sources(out) + ".", "ok")
    return redirect(url_for("results.index"))
