"""HTTP server for the offline demo bookshop (standard library only).

Routes
------
``/``, ``/index.html``            home page linking to the catalogue
``/catalogue/``                   302 redirect to ``/catalogue/page-1.html``
``/catalogue/page-N.html``        listing pages (N = 1 .. PAGE_COUNT)
``/catalogue/<slug>_<id>/index.html``  product detail pages
``/slow.html``                    answers 200 after SLOW_DELAY seconds
``/robots.txt``                   allows everything
anything else                     404 (including the BROKEN_LINKS paths)

Options: ``delay`` holds every answer that many seconds (a slow site, to
measure crawl concurrency and politeness); ``request_log`` keeps the path of
every GET, in arrival order, in ``server.requests`` (and appends it to a file
with ``--request-log``), so a test can see which pages were fetched twice.

Use :func:`start_in_thread` from tests, or ``python -m spiders.demosite``.
"""

from __future__ import annotations

import socket
import sys
import threading
import time
from functools import lru_cache
from html import escape
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

if __package__:
    from . import catalogue
else:  # pragma: no cover - executed as a plain script
    import catalogue  # type: ignore[no-redef]

SITE_NAME = "Demo Books"
HTML_TYPE = "text/html; charset=utf-8"
TEXT_TYPE = "text/plain; charset=utf-8"

ROBOTS_TXT = "User-agent: *\nAllow: /\n"


# --------------------------------------------------------------------------
# HTML rendering
# --------------------------------------------------------------------------

def _layout(title: str, body: str) -> str:
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{escape(title)} | {SITE_NAME}</title>\n"
        "</head>\n<body>\n"
        f'<header><a href="/">{SITE_NAME}</a></header>\n'
        f"{body}"
        "</body>\n</html>\n"
    )


def _stars(rating: int) -> str:
    return "\u2605" * rating + "\u2606" * (5 - rating)


def render_home() -> str:
    body = (
        f"<h1>Welcome to {SITE_NAME}</h1>\n"
        f"<p>An offline demo bookshop with {catalogue.PRODUCT_COUNT} books.</p>\n"
        '<p><a href="/catalogue/page-1.html">Browse all products</a></p>\n'
    )
    return _layout("Home", body)


def render_listing(page: int) -> str:
    items = catalogue.page_products(page)
    first = (page - 1) * catalogue.PAGE_SIZE + 1
    last = first + len(items) - 1
    parts = [
        '<ul class="breadcrumb"><li><a href="/">Home</a></li>'
        '<li class="active">All products</li></ul>\n',
        "<h1>All products</h1>\n",
        f'<p class="results"><strong>{catalogue.PRODUCT_COUNT}</strong> results - '
        f"showing <strong>{first}</strong> to <strong>{last}</strong>.</p>\n",
    ]
    if page == 1:
        parts.append(
            f'<p class="notice"><a href="{catalogue.SLOW_PATH}">'
            "A deliberately slow page</a></p>\n"
        )
    parts.append('<ol class="row">\n')
    for p in items:
        rel = p["path"][len("/catalogue/"):]
        title = escape(p["title"])
        rating_word = catalogue.RATING_WORDS[p["rating"] - 1]
        parts.append(
            '<li><article class="product_pod">\n'
            f'<p class="star-rating {rating_word}">{_stars(p["rating"])}</p>\n'
            f'<h3><a href="{escape(rel)}" title="{title}">{title}</a></h3>\n'
            '<div class="product_price">'
            f'<p class="price_color">{escape(p["price_text"])}</p>'
            '<p class="instock availability">In stock</p></div>\n'
            "</article></li>\n"
        )
    parts.append("</ol>\n")
    broken = catalogue.BROKEN_LINK_PAGES.get(page)
    if broken:
        parts.append('<aside class="see-also"><h2>You may also like</h2><ul>\n')
        for path in broken:
            rel = path[len("/catalogue/"):]
            name = rel.split("_")[0].replace("-", " ").title()
            parts.append(f'<li><a href="{escape(rel)}">{escape(name)}</a></li>\n')
        parts.append("</ul></aside>\n")
    parts.append('<ul class="pager">\n')
    if page > 1:
        parts.append(f'<li class="previous"><a href="page-{page - 1}.html">previous</a></li>\n')
    parts.append(f'<li class="current">Page {page} of {catalogue.PAGE_COUNT}</li>\n')
    if page < catalogue.PAGE_COUNT:
        parts.append(f'<li class="next"><a href="page-{page + 1}.html">next</a></li>\n')
    parts.append("</ul>\n")
    return _layout(f"All products | Page {page} of {catalogue.PAGE_COUNT}", "".join(parts))


def render_detail(p: dict) -> str:
    title = escape(p["title"])
    rating_word = catalogue.RATING_WORDS[p["rating"] - 1]
    availability = f"In stock ({p['availability']} available)"
    price = escape(p["price_text"])
    body = (
        '<ul class="breadcrumb"><li><a href="/">Home</a></li>'
        f'<li><a href="../page-{p["page"]}.html">Books</a></li>'
        f'<li class="category">{escape(p["category"])}</li>'
        f'<li class="active">{title}</li></ul>\n'
        '<article class="product_page">\n'
        f"<h1>{title}</h1>\n"
        f'<p class="price_color">{price}</p>\n'
        f'<p class="instock availability">{availability}</p>\n'
        f'<p class="star-rating {rating_word}">{_stars(p["rating"])}</p>\n'
        '<div id="product_description"><h2>Product Description</h2></div>\n'
        f'<p class="description">{escape(p["description"])}</p>\n'
        '<h2>Product Information</h2>\n'
        '<table class="table table-striped">\n'
        f'<tr><th>UPC</th><td>{escape(p["upc"])}</td></tr>\n'
        "<tr><th>Product Type</th><td>Books</td></tr>\n"
        f'<tr><th>Category</th><td>{escape(p["category"])}</td></tr>\n'
        f"<tr><th>Price</th><td>{price}</td></tr>\n"
        f"<tr><th>Availability</th><td>{availability}</td></tr>\n"
        "<tr><th>Number of reviews</th><td>0</td></tr>\n"
        "</table>\n"
        "</article>\n"
    )
    return _layout(p["title"], body)


def render_slow() -> str:
    body = (
        "<h1>Slow page</h1>\n"
        f"<p>This page took {catalogue.SLOW_DELAY:g} seconds to answer.</p>\n"
        '<p><a href="/catalogue/page-1.html">Back to the catalogue</a></p>\n'
    )
    return _layout("Slow page", body)


def render_not_found(path: str) -> str:
    body = (
        "<h1>404 Not Found</h1>\n"
        f"<p>No page at <code>{escape(path)}</code>.</p>\n"
        '<p><a href="/">Home</a></p>\n'
    )
    return _layout("Not found", body)


@lru_cache(maxsize=1)
def _pages() -> dict[str, bytes]:
    """All static pages, rendered once (path -> UTF-8 body)."""
    pages = {
        "/": render_home().encode("utf-8"),
        "/index.html": render_home().encode("utf-8"),
    }
    for page in range(1, catalogue.PAGE_COUNT + 1):
        pages[catalogue.page_path(page)] = render_listing(page).encode("utf-8")
    for p in catalogue.products():
        pages[p["path"]] = render_detail(p).encode("utf-8")
    return pages


# --------------------------------------------------------------------------
# HTTP server
# --------------------------------------------------------------------------

class DemoRequestHandler(BaseHTTPRequestHandler):
    server_version = "CrawlfleetDemo/1.0"
    protocol_version = "HTTP/1.0"  # one request per connection: simple and robust
    timeout = 30  # seconds of client inactivity before the handler gives up

    def log_message(self, format: str, *args) -> None:  # noqa: A002
        if getattr(self.server, "verbose", False):
            super().log_message(format, *args)

    def do_GET(self) -> None:  # noqa: N802
        self._respond(send_body=True)

    def do_HEAD(self) -> None:  # noqa: N802
        self._respond(send_body=False)

    def _respond(self, send_body: bool) -> None:
        path = urlsplit(self.path).path or "/"
        self.server.record(self.command, path)
        try:
            if self.server.delay:
                time.sleep(self.server.delay)
        finally:
            # counted while the site "works" on a request (its delay), the time a
            # polite client holds a slot for it: writing the answer out afterwards
            # overlaps the client's next request by a moment on a busy machine
            self.server.done()
        self._answer(path, send_body)

    def _answer(self, path: str, send_body: bool) -> None:
        pages = _pages()
        if path in pages:
            self._send(HTTPStatus.OK, pages[path], HTML_TYPE, send_body)
        elif path in ("/catalogue", "/catalogue/"):
            self._send(
                HTTPStatus.FOUND,
                b"",
                HTML_TYPE,
                send_body,
                extra={"Location": catalogue.page_path(1)},
            )
        elif path == catalogue.SLOW_PATH:
            time.sleep(catalogue.SLOW_DELAY)
            self._send(HTTPStatus.OK, render_slow().encode("utf-8"), HTML_TYPE, send_body)
        elif path == "/robots.txt":
            self._send(HTTPStatus.OK, ROBOTS_TXT.encode("utf-8"), TEXT_TYPE, send_body)
        else:
            body = render_not_found(path).encode("utf-8")
            self._send(HTTPStatus.NOT_FOUND, body, HTML_TYPE, send_body)

    def _send(self, status, body: bytes, ctype: str, send_body: bool, extra=None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if send_body and body:
            self.wfile.write(body)


class DemoHTTPServer(ThreadingHTTPServer):
    """Threaded server with a large listen backlog for concurrent crawls."""

    daemon_threads = True
    request_queue_size = 1024
    allow_reuse_address = True

    def __init__(self, server_address, handler_class=DemoRequestHandler, verbose=False,
                 delay=0.0, request_log=None):
        host = server_address[0]
        if host and ":" in host:
            self.address_family = socket.AF_INET6
        self.verbose = verbose
        self.delay = float(delay or 0)
        self.requests: list[str] = []
        self.request_times: list[float] = []  # time.monotonic() of each GET's arrival
        self.active = 0       # requests the site is working on now (their delay)
        self.max_active = 0   # the most at once: what a crawl's politeness allowed
        self._log_file = open(request_log, "a", buffering=1) if request_log else None
        self._log_lock = threading.Lock()
        super().__init__(server_address, handler_class)

    def record(self, method: str, path: str) -> None:
        with self._log_lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
            if method != "GET":
                return
            self.requests.append(path)
            self.request_times.append(time.monotonic())
            if self._log_file is not None:
                self._log_file.write(path + "\n")

    def done(self) -> None:
        with self._log_lock:
            self.active -= 1

    def reset_log(self) -> None:
        """Forget the requests seen so far (one test, several crawls)."""
        with self._log_lock:
            self.requests.clear()
            self.request_times.clear()
            self.max_active = self.active

    def server_close(self) -> None:
        super().server_close()
        if self._log_file is not None:
            self._log_file.close()

    def handle_error(self, request, client_address) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            return  # client went away; not worth a traceback
        super().handle_error(request, client_address)


def make_server(host: str = "127.0.0.1", port: int = 0, verbose: bool = False,
                delay: float = 0.0, request_log: str | None = None) -> DemoHTTPServer:
    """Create (bind) the server without starting it; pages are pre-rendered."""
    _pages()
    return DemoHTTPServer((host, port), DemoRequestHandler, verbose=verbose, delay=delay,
                          request_log=request_log)


def server_url(server: DemoHTTPServer, host: str | None = None) -> str:
    host = host if host is not None else server.server_address[0]
    port = server.server_address[1]
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


class RunningDemoSite:
    """Handle returned by :func:`start_in_thread`."""

    def __init__(self, server: DemoHTTPServer, thread: threading.Thread, url: str):
        self.server = server
        self.thread = thread
        self.url = url
        self.host = server.server_address[0]
        self.port = server.server_address[1]
        self.requests = server.requests
        self.request_times = server.request_times
        self._stopped = False

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    def __enter__(self) -> "RunningDemoSite":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<RunningDemoSite {self.url}>"


def start_in_thread(host: str = "127.0.0.1", port: int = 0, verbose: bool = False,
                    delay: float = 0.0, request_log: str | None = None) -> RunningDemoSite:
    """Start the demo site in a background thread; returns an object with .url,
    .requests (paths fetched) and .stop()."""
    server = make_server(host, port, verbose=verbose, delay=delay, request_log=request_log)
    url_host = "127.0.0.1" if host in ("", "0.0.0.0") else ("::1" if host == "::" else host)
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.1},
        name=f"demosite-{server.server_address[1]}",
        daemon=True,
    )
    thread.start()
    return RunningDemoSite(server, thread, server_url(server, url_host))
