"""Scrapyd at the root of its own listener (``crawlfleet web --scrapyd-bind``).

Clients such as ScrapydWeb, Gerapy and SpiderKeeper take a Scrapyd server as
``host:port`` and build ``http://host:port/schedule.json`` themselves: a path
prefix cannot reach them. So the web process listens on a second address, and
requests that arrive there are answered by a small application holding only
the Scrapyd blueprint at ``/``, sharing the main application's store, broker
and settings. Gunicorn names the listener a request came through in
``SERVER_PORT`` (the listening socket's port, not the Host header's).
"""

from flask import Flask, request
from werkzeug.exceptions import HTTPException

from web import guard
from web.scrapyd import bp, protocol


def create_root_app(main: Flask) -> Flask:
    """The Scrapyd-only application, on `main`'s services."""
    app = Flask(__name__)
    app.config.update(SECRET_KEY=main.config["SECRET_KEY"],
                      MAX_CONTENT_LENGTH=main.config.get("MAX_CONTENT_LENGTH"))
    app.extensions["crawlfleet"] = main.extensions["crawlfleet"]
    app.json = main.json
    # web users' passwords through basic auth are limited here too, on the
    # same counters as the main application's (web.guard)
    guard.init_app(app, main.extensions["crawlfleet"].config)
    app.register_blueprint(bp)
    app.register_error_handler(HTTPException, routing_error)
    return app


def routing_error(exc):
    """404 and 405 found before any view: a page's error page, an endpoint's JSON."""
    if request.path.endswith(".json"):
        response = protocol.error_reply(exc.description or exc.name, exc.code or 400)
        if exc.code == 405:
            response.headers["Allow"] = ", ".join(sorted(exc.valid_methods or []))
        return response
    return exc


class ListenerDispatch:
    """WSGI: a request that came in on `port` goes to `scrapyd`, others to `main`."""

    def __init__(self, main, scrapyd, port: int):
        self.main = main
        self.scrapyd = scrapyd
        self.port = str(port)

    def __call__(self, environ, start_response):
        app = self.scrapyd if environ.get("SERVER_PORT") == self.port else self.main
        return app(environ, start_response)


def with_root_listener(main: Flask, port: int) -> ListenerDispatch:
    return ListenerDispatch(main, create_root_app(main), port)


def bind_port(bind: str) -> int:
    """The port of a HOST:PORT bind; ValueError unless it is a fixed port."""
    host, sep, port = bind.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected HOST:PORT with a port from 1 to 65535, got {bind!r}")
    return int(port)
