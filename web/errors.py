"""The app-wide handler of HTTP errors (unknown URL, wrong method, bad body,
``abort``): it answers in the convention of the surface the path belongs to —
JSON under /api/, Scrapyd's JSON under /scrapyd/, a page of the UI
elsewhere. Registered on the app, because an unknown URL or a method a route
does not take never reaches a blueprint's own handlers.
"""

import contextlib
import sys
import tempfile
from collections.abc import Iterator

from flask import abort, flash, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from werkzeug.exceptions import HTTPException

from crawlfleet.errors import CrawlfleetError, NotFound


# Werkzeug's names and default descriptions, so that the error page of the UI
# reads in the user's language; an `abort` with its own message keeps it.
ERROR_NAMES = {400: _l("Bad Request"), 401: _l("Unauthorized"), 403: _l("Forbidden"),
               404: _l("Not Found"), 405: _l("Method Not Allowed"), 409: _l("Conflict"),
               413: _l("Request Entity Too Large"), 429: _l("Too Many Requests"),
               500: _l("Internal Server Error"), 503: _l("Service Unavailable")}


def described(exc: HTTPException) -> str:
    """The error's description, translated when it is Werkzeug's default one."""
    default = type(exc).description
    if exc.description == default and exc.code == 404:
        return _("The requested URL was not found on the server.")
    if exc.description == default and exc.code == 405:
        return _("The method is not allowed for the requested URL.")
    return exc.description or ""


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
    name = ERROR_NAMES.get(exc.code, exc.name)
    return render_template("error.html", error=exc, error_name=name,
                           error_description=described(exc)), exc.code


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


@contextlib.contextmanager
def flash_errors(*kinds: type[Exception], hide: bool = False) -> Iterator[None]:
    """A form's action whose refusal is the page's error message, not a 500.

    An error of `kinds` (default: any CrawlfleetError) raised in the block ends
    the block and is flashed as an error; the caller then redirects as it does
    after success. `hide`: the message goes through `hide_paths` (uploads and
    git, whose errors can name the server's folders)."""
    try:
        yield
    except (kinds or (CrawlfleetError,)) as exc:
        flash(hide_paths(str(exc)) if hide else str(exc), "error")


@contextlib.contextmanager
def missing_is_404(*kinds: type[Exception]) -> Iterator[None]:
    """A page of something that does not exist: an error of `kinds` (default:
    NotFound) raised in the block is the 404 page, with the error's message."""
    try:
        yield
    except (kinds or (NotFound,)) as exc:
        abort(404, str(exc))
