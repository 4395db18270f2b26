"""The app-wide handler of HTTP errors (unknown URL, wrong method, bad body,
``abort``): it answers in the convention of the surface the path belongs to —
JSON under /api/, Scrapyd's JSON under /scrapyd/, a page of the UI
elsewhere. Registered on the app, because an unknown URL or a method a route
does not take never reaches a blueprint's own handlers.
"""

import sys
import tempfile

from flask import render_template, request
from werkzeug.exceptions import HTTPException


def under(prefix: str) -> bool:
    return request.path == prefix or request.path.startswith(prefix + "/")


def http_error(exc: HTTPException):
    from web import api, scrapyd

    if under(api.PREFIX):
        return api.http_error(exc)
    if under(scrapyd.PREFIX):
        return scrapyd.protocol.handle_error(exc)
    if exc.code is None or exc.code < 400:
        return exc
    return render_template("error.html", error=exc), exc.code


def init_app(app) -> None:
    app.register_error_handler(HTTPException, http_error)


def hide_paths(message: str) -> str:
    """An error message without the server's own folders (HOME, the temporary
    folder, the Python installation), which an upload's traceback or an OS
    error would otherwise show to whoever sent the request."""
    from web import services

    config = services().config
    folders = sorted({(str(config.home_path), "<home>"), (tempfile.gettempdir(), "<tmp>"),
                      (sys.prefix, "<python>"), (sys.base_prefix, "<python>")},
                     key=lambda pair: -len(pair[0]))
    for folder, name in folders:
        if folder and folder != "/":
            message = message.replace(folder, name)
    return message
