"""The JSON API of what spiders scraped, beside `web.api`:

- ``PATCH /api/v1/spiders/<name>``: a spider's results settings (dedup keys
  and mode, keep partial attempts, data sources, Scrapy feeds);
- ``/api/v1/datasources``: named data sources (admin);
- ``DELETE /api/v1/tasks/<id>/results`` and ``DELETE /api/v1/results/<name>``:
  removing results (admin; dropping a collection needs ``confirm=<name>``).

Same conventions as `web.api`: a bearer token (or the UI's session) on every
route, errors as ``{"error": message}`` with real status codes.
"""

from flask import Blueprint, g, jsonify, request
from werkzeug.exceptions import Forbidden

from crawlfleet import datasources
from crawlfleet.results import manage
from crawlfleet.secretbox import SecretBox
from web import api, services

# nested in `web.api.bp`: its authentication and error handlers hold here too
bp = Blueprint("results_api", __name__)


def require_admin():
    if g.token.get("role") != "admin":
        raise Forbidden(f"token {g.token.get('name')!r} has role {g.token.get('role')!r}; "
                        "this request needs admin")


def box():
    return SecretBox.for_config(services().config)


@bp.patch("/spiders/<name>")
def patch_spider(name):
    body = api.json_body(manage.SPIDER_FIELDS)
    store = services().store
    report = manage.update_spider(store, name, body)
    spider = store.spiders.find_one({"_id": name})
    return jsonify({**api.spider_out(spider), "results_settings": manage.spider_settings(spider),
                    **report})


# -- data sources ----------------------------------------------------------------

@bp.get("/datasources")
def list_datasources():
    return jsonify({"datasources": datasources.list_all(services().store)})


@bp.post("/datasources")
def create_datasource():
    require_admin()
    body = api.json_body(datasources.FIELDS + ("name",))
    doc = datasources.save(services().store, box(), body.get("name"), body, create=True)
    return jsonify(doc), 201


@bp.get("/datasources/<name>")
def get_datasource(name):
    return jsonify(datasources.public(datasources.get(services().store, name)))


@bp.patch("/datasources/<name>")
def update_datasource(name):
    require_admin()
    body = api.json_body(datasources.FIELDS)
    return jsonify(datasources.save(services().store, box(), name, body, create=False))


@bp.delete("/datasources/<name>")
def delete_datasource(name):
    require_admin()
    return jsonify(datasources.delete(services().store, name))


@bp.post("/datasources/<name>/test")
def test_datasource(name):
    require_admin()
    doc = datasources.get(services().store, name)
    try:
        datasources.ping(doc, box())
    except Exception as exc:  # the driver's own error, shortened: the source is down
        from crawlfleet.results.delivery import short

        return jsonify({"ok": False, "error": short(exc)})
    return jsonify({"ok": True, "error": None})


# -- removing results ---------------------------------------------------------------

@bp.delete("/tasks/<task_id>/results")
def delete_task_results(task_id):
    require_admin()
    task = api.get_task(task_id)
    out = manage.delete_task_results(services().store, services().config, task)
    return jsonify({"task_id": task_id, **out})


@bp.delete("/results/<name>")
def drop_results(name):
    require_admin()
    out = manage.drop_collection(services().store, services().config, name,
                                 request.args.get("confirm"))
    return jsonify({"collection": name, "dropped": True, **out})
