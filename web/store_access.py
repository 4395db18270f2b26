"""A project's direct store access (master/storeaccess.py), for spiders
written for Crawlab's SDK: read by anyone who may see the project, switched
only by an admin, in the API and on the project page."""

from flask import Blueprint, flash, g, jsonify, redirect, request, url_for
from flask_babel import gettext as _
from werkzeug.exceptions import Forbidden

from crawlfleet.errors import BadRequest
from master.storeaccess import set_store_access, store_access
from web import api, auth, errors, services

# nested in `web.api.bp`: its authentication and error handlers hold here too
bp = Blueprint("store_access_api", __name__)

ui = Blueprint("store_access_ui", __name__, url_prefix="/projects")
ui.before_request(auth.login_required_for_blueprint)


@bp.get("/projects/<name>/store-access")
def get_access(name):
    return jsonify(store_access(services().store, name))


@bp.put("/projects/<name>/store-access")
def put_access(name):
    if g.token.get("role") != "admin":
        raise Forbidden("only an admin may give a project's spiders direct store access")
    body = api.json_body(("enabled",))  # the API's checked JSON (depth, NaN, ...)
    if set(body) != {"enabled"} or not isinstance(body["enabled"], bool):
        raise BadRequest("send {\"enabled\": true} or {\"enabled\": false}")
    return jsonify(set_store_access(services().store, name, body["enabled"], g.token.get("name")))


@ui.post("/<name>/store-access")
@auth.require("admin")
def switch(name):
    enabled = request.form.get("enabled") == "1"
    with errors.flash_errors():
        set_store_access(services().store, name, enabled, g.user["_id"])
        flash(_("%(project)s: direct store access on.", project=name) if enabled
              else _("%(project)s: direct store access off.", project=name), "ok")
    return redirect(url_for("projects_ui.project", name=name))
