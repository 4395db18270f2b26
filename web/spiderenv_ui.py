"""Spider environment variables and secrets on the project and spider pages
(crawlfleet/spiderenv.py): listed masked for everyone, set and removed by
operators and admins. The pages call `spider_env(project, spider)`, a
template global this module registers, so they need no change to the views
that render them."""

from flask import Blueprint, flash, g, redirect, request, url_for
from flask_babel import gettext as _

from crawlfleet import spiderenv
from crawlfleet.errors import CrawlfleetError
from web import auth, errors, services

bp = Blueprint("spiderenv_ui", __name__, url_prefix="/projects")
bp.before_request(auth.login_required_for_blueprint)


@bp.record_once
def register_global(state):
    state.app.add_template_global(spider_env)


def spider_env(project, spider=None):
    """The variables a page shows (secrets masked); [] when unreadable."""
    try:
        variables = spiderenv.list_variables(services().store, project, spider=spider)
    except CrawlfleetError:
        return []
    return variables


def _back(project):
    spider = request.form.get("back_spider")
    if spider:
        return redirect(url_for("ui.spider", name=spider) + "#spider-env")
    return redirect(url_for("projects_ui.project", name=project) + "#spider-env")


@bp.post("/<name>/env")
@auth.require("operator")
def set_variable(name):
    form = request.form
    svc = services()
    with errors.flash_errors():
        spiderenv.set_variable(svc.store, svc.config, name, form.get("name", "").strip(),
                               form.get("value", ""), spider=form.get("spider") or None,
                               secret=form.get("secret") == "1", by=g.user["_id"])
        flash(_("%(project)s: %(var)s set.", project=name, var=form.get("name")), "ok")
    return _back(name)


@bp.post("/<name>/env/<var>/delete")
@auth.require("operator")
def remove_variable(name, var):
    with errors.flash_errors():
        spiderenv.remove_variable(services().store, name, var,
                                  spider=request.form.get("spider") or None)
        flash(_("%(project)s: %(var)s removed.", project=name, var=var), "ok")
    return _back(name)
