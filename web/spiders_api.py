"""The JSON API of one spider's run history, beside `web.api`'s spider routes:

- ``GET /api/v1/spiders/<name>/history?limit=N``: the last N ended runs
  (default 30, at most 200), oldest first, each with items, pages, errors,
  duration and success, and a summary. The spider page's charts draw the
  same data (`crawlfleet.runhistory`).
"""

from flask import Blueprint, jsonify

from crawlfleet import runhistory
from master import dispatch
from web import api, services

# nested in `web.api.bp`: its authentication and error handlers hold here too
bp = Blueprint("spiders_api", __name__)


@bp.get("/spiders/<name>/history")
def history(name):
    store = services().store
    dispatch.get_spider(store, name)  # 404 for an unknown spider, not an empty history
    limit = api.int_arg("limit", runhistory.DEFAULT_RUNS, runhistory.MAX_RUNS, smallest=1)
    return jsonify(runhistory.spider_history(store, name, limit))
