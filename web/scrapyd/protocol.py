"""Scrapyd 1.6's wire conventions, for the endpoints in `webservice`.

What Scrapyd clients rely on, reproduced exactly: a JSON body ending in a
newline with ``status`` and ``node_name`` after the answer's fields; errors
answered with status 200 and ``{"status": "error", "message": ...}``; the
messages' wording (``project 'x' not found``, ``'x' parameter is required``,
``DirectoryTraversalError: ../p``); ``OPTIONS`` answering 204 with an
``Allow`` header; CORS headers on every answer.

Where Scrapyd's behaviour is unsafe, crawlfleet differs (the README lists
it): a body over the upload limit is 413, a wrong method is 405, read-only
credentials asking for a change get 403, and an unexpected failure is logged
and answered without its exception text.
"""

import json
import logging
import posixpath
import socket

from flask import Response, current_app, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from crawlfleet.errors import CrawlfleetError, Unauthorized
from web import errors

log = logging.getLogger(__name__)

# endpoint -> the method it serves ("GET" or "POST"), filled by webservice.route
SERVED = {}


class ScrapydError(CrawlfleetError):
    """An error Scrapyd answers as 200 {"status": "error", "message": ...}."""

    status_code = 200


def unauthorized_reply() -> Response:
    """Twisted's answer for Scrapyd's basic auth, to the byte."""
    response = Response("Unauthorized", status=401, mimetype="text/html")
    response.headers["WWW-Authenticate"] = 'basic realm="Scrapyd"'
    return response


def node_name() -> str:
    return current_app.extensions["crawlfleet"].config.node_id or socket.gethostname()


def json_response(data: dict, status: int = 200) -> Response:
    body = json.dumps(dict(data, node_name=node_name())) + "\n"
    return Response(body, status=status, mimetype="application/json")


def reply(**fields) -> Response:
    return json_response(dict(fields, status="ok"))


def error_reply(message: str, status: int = 200) -> Response:
    return json_response({"status": "error", "message": message}, status)


def param(source, name: str, required: bool = True, default=None):
    """A request parameter, as Scrapyd's @param decorator reads it."""
    if name not in source:
        if required:
            raise ScrapydError(f"'{name}' parameter is required")
        return default
    return source.get(name)


def check_traversal(project: str) -> str:
    """Scrapyd's egg storage refuses a project name that leaves its folder
    (twisted's FilePath.child): a separator after normalising, or '..'."""
    norm = posixpath.normpath(project) if project else project
    if "/" in norm or "\\" in project or norm == "..":
        raise ScrapydError(f"DirectoryTraversalError: {project}")
    return project


def allowed_methods() -> str:
    return f"OPTIONS, HEAD, {SERVED.get(request.endpoint, 'GET')}"


def options_reply():
    """Scrapyd answers OPTIONS (after authentication) with 204 and Allow; other
    methods an endpoint does not serve are refused here, after authentication
    as in Scrapyd, rather than by the router."""
    if request.method == "OPTIONS":
        response = Response(status=204)
        response.headers["Allow"] = allowed_methods()
        return response
    served = SERVED.get(request.endpoint)
    if served and request.method not in (served, "HEAD" if served == "GET" else served):
        raise MethodNotAllowed(valid_methods=allowed_methods().split(", "))
    return None


def is_webservice() -> bool:
    return request.url_rule is not None and request.url_rule.rule.endswith(".json")


def cors_headers(response):
    # https://developer.mozilla.org/en-US/docs/Web/HTTP/CORS#preflighted_requests
    if is_webservice():
        response.headers["Access-Control-Allow-Origin"] = "*"
        response.headers["Access-Control-Allow-Methods"] = allowed_methods()
        response.headers["Access-Control-Allow-Headers"] = "X-Requested-With"
    return response


def handle_error(exc):
    """Every error of a Scrapyd endpoint, in Scrapyd's shape."""
    if isinstance(exc, Unauthorized):
        return unauthorized_reply()
    if not is_webservice():  # a page: Werkzeug's error page, as Twisted answers one
        if isinstance(exc, HTTPException):
            return exc
        if isinstance(exc, CrawlfleetError):
            return Response(errors.hide_paths(str(exc)), status=exc.status_code,
                            mimetype="text/plain")
    if isinstance(exc, CrawlfleetError):
        # 429 too: a client must see that it is being slowed, and when to try again
        status = exc.status_code if exc.status_code in (403, 413, 429) else 200
        response = error_reply(errors.hide_paths(str(exc)), status)
        if getattr(exc, "retry_after", None):
            response.headers["Retry-After"] = str(exc.retry_after)
        return response
    if isinstance(exc, HTTPException):
        response = error_reply(exc.description or exc.name, exc.code or 400)
        if exc.code == 405:
            response.headers["Allow"] = allowed_methods()
        return response
    log.exception("unhandled error in %s %s", request.method, request.path)
    return error_reply(f"{type(exc).__name__}: internal error, see the server's log")
