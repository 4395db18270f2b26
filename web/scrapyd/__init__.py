"""Scrapyd 1.6, answered from crawlfleet: its JSON API (`webservice`), its web
pages (`pages`: ``/`` and ``/jobs``; `files`: ``/logs/…`` and ``/items/…``),
its wire conventions (`protocol`) and its basic auth (`auth`).

One blueprint, mounted twice: under ``/scrapyd/`` on the main port, and at
the root of its own listener (`root`, ``crawlfleet web --scrapyd-bind``), for
clients that take only ``host:port`` (ScrapydWeb, Gerapy, SpiderKeeper).
"""

from flask import Blueprint, request, url_for

from web.scrapyd import auth, protocol

bp = Blueprint("scrapyd", __name__)

WRITE_ENDPOINTS = {"scrapyd.addversion", "scrapyd.schedule", "scrapyd.cancel",
                   "scrapyd.delversion", "scrapyd.delproject"}
PREFIX = "/scrapyd"


@bp.before_request
def authenticate():
    auth.authenticate(writes=request.endpoint in WRITE_ENDPOINTS)
    return protocol.options_reply()


bp.after_request(protocol.cors_headers)
bp.register_error_handler(Exception, protocol.handle_error)


def mount_path() -> str:
    """Where the blueprint answers: '' at a listener's root, else '/scrapyd'."""
    return url_for("scrapyd.home").rstrip("/")


def register(app) -> None:
    """The Scrapyd endpoints under /scrapyd/ of the main application."""
    app.register_blueprint(bp, url_prefix=PREFIX)


from web.scrapyd import files, pages, webservice  # noqa: E402,F401  (their routes)
