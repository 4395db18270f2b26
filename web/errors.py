"""The app-wide handler of HTTP errors (unknown URL, wrong method, bad body,
``abort``): it answers in the convention of the surface the path belongs to —
JSON under /api/, Scrapyd's JSON under /scrapyd/, a page of the UI
elsewhere. Registered on the app, because an unknown URL or a method a route
does not take never reaches a blueprint's own handlers.
"""

from flask import render_template, request
from werkzeug.exceptions import HTTPException


def under(prefix: str) -> bool:
    return request.path == prefix or request.path.startswith(prefix + "/")


def http_error(exc: HTTPException):
    from web import api, scrapyd

    if under(api.PREFIX):
        return api.http_error(exc)
    if under(scrapyd.bp.url_prefix):
        return scrapyd.http_error(exc)
    if exc.code is None or exc.code < 400:
        return exc
    return render_template("error.html", error=exc), exc.code


def init_app(app) -> None:
    app.register_error_handler(HTTPException, http_error)
