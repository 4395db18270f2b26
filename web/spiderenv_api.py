"""Spider environment variables and secrets in the API (crawlfleet/spiderenv.py):

    GET    /api/v1/projects/NAME/env[?spider=S]       list (secrets masked)
    PUT    /api/v1/projects/NAME/env/VAR              {"value": "...", "secret": false, "spider": null}
    DELETE /api/v1/projects/NAME/env/VAR[?spider=S]

Reads for every role, writes for operators and admins (web.api's rules).
"""

from flask import Blueprint, g, jsonify, request

from crawlfleet import spiderenv
from crawlfleet.errors import BadRequest
from web import api, services

# nested in `web.api.bp`: its authentication and error handlers hold here too
bp = Blueprint("spiderenv_api", __name__)

FIELDS = {"value", "secret", "spider"}


@bp.get("/projects/<name>/env")
def list_env(name):
    return jsonify({"variables": spiderenv.list_variables(
        services().store, name, spider=request.args.get("spider") or None)})


@bp.put("/projects/<name>/env/<var>")
def set_env(name, var):
    body = api.json_body(tuple(FIELDS))  # the API's checked JSON (depth, NaN, ...)
    if "value" not in body:
        raise BadRequest('send {"value": "...", "secret": false, "spider": null}')
    if not isinstance(body.get("secret", False), bool):
        raise BadRequest("secret must be true or false")
    spider = body.get("spider")
    if spider is not None and not isinstance(spider, str):
        raise BadRequest("spider must be a spider name or null")
    svc = services()
    return jsonify(spiderenv.set_variable(svc.store, svc.config, name, var, body["value"],
                                          spider=spider or None, secret=body.get("secret", False),
                                          by=g.token.get("name")))


@bp.delete("/projects/<name>/env/<var>")
def remove_env(name, var):
    spiderenv.remove_variable(services().store, name, var,
                              spider=request.args.get("spider") or None)
    return jsonify({"removed": var})
