"""plain_catalogue: a generic (non-Scrapy) crawlfleet spider.

Walks the listing pages of the bundled demo bookshop with urllib and saves,
for every product on them, its ``title``, ``price`` (float) and ``url``.

Arguments (``--key=value``, also read from the JSON in $CRAWLFLEET_ARGS;
command-line values win):
  --base_url=URL   site root (default: $CRAWLFLEET_DEMO_URL or http://127.0.0.1:8900)
  --max_pages=N    stop after N listing pages (default: all)

Standard library only, plus the crawlfleet SDK when it is importable.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
import urllib.error
import urllib.request
from html.parser import HTMLParser
from urllib.parse import urljoin

try:
    from crawlfleet.sdk import save_items
except ImportError:  # SDK not installed: print each item as one JSON line

    def save_items(items):
        for item in items:
            print(json.dumps(item, ensure_ascii=False), flush=True)


DEFAULT_BASE_URL = "http://127.0.0.1:8900"
USER_AGENT = "crawlfleet-plain-catalogue/1.0"
RETRIES = 3
TIMEOUT = 30


def log(message: str) -> None:
    print(f"[plain_catalogue] {message}", flush=True)


class ListingParser(HTMLParser):
    """Extracts products (article.product_pod) and the li.next link."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.products: list[dict] = []
        self.next_href: str | None = None
        self._in_article = False
        self._in_h3 = False
        self._in_title_link = False
        self._in_price = False
        self._in_next_li = False
        self._current: dict = {}

    @staticmethod
    def _classes(attrs) -> list[str]:
        return (dict(attrs).get("class") or "").split()

    def handle_starttag(self, tag, attrs):
        classes = self._classes(attrs)
        if tag == "article" and "product_pod" in classes:
            self._in_article = True
            self._current = {"title": "", "href": None, "price_text": ""}
        elif self._in_article and tag == "h3":
            self._in_h3 = True
        elif self._in_article and self._in_h3 and tag == "a":
            a = dict(attrs)
            self._current["href"] = a.get("href")
            self._current["title_attr"] = a.get("title")
            self._in_title_link = True
        elif self._in_article and tag == "p" and "price_color" in classes:
            self._in_price = True
        elif tag == "li" and "next" in classes:
            self._in_next_li = True
        elif self._in_next_li and tag == "a" and self.next_href is None:
            self.next_href = dict(attrs).get("href")

    def handle_endtag(self, tag):
        if tag == "article" and self._in_article:
            self._in_article = False
            if self._current.get("href"):
                self.products.append(self._current)
            self._current = {}
        elif tag == "h3":
            self._in_h3 = False
        elif tag == "a":
            self._in_title_link = False
        elif tag == "p":
            self._in_price = False
        elif tag == "li":
            self._in_next_li = False

    def handle_data(self, data):
        if self._in_title_link:
            self._current["title"] += data
        elif self._in_price:
            self._current["price_text"] += data


def parse_price(text: str) -> float | None:
    match = re.search(r"\d+(?:\.\d+)?", text.replace(",", ""))
    return float(match.group()) if match else None


def fetch(url: str) -> str:
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    for attempt in range(1, RETRIES + 1):
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
                charset = response.headers.get_content_charset() or "utf-8"
                return response.read().decode(charset, errors="replace")
        except urllib.error.HTTPError as exc:
            if exc.code < 500 or attempt == RETRIES:
                raise
            log(f"HTTP {exc.code} for {url}, retrying ({attempt}/{RETRIES})")
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            if attempt == RETRIES:
                raise
            log(f"error fetching {url}: {exc}; retrying ({attempt}/{RETRIES})")
        time.sleep(0.5 * attempt)
    raise AssertionError("unreachable")


def parse_args(argv: list[str]) -> argparse.Namespace:
    env_args: dict = {}
    raw = os.environ.get("CRAWLFLEET_ARGS")
    if raw:
        try:
            loaded = json.loads(raw)
            if isinstance(loaded, dict):
                env_args = loaded
        except ValueError:
            log("ignoring CRAWLFLEET_ARGS: not valid JSON")

    parser = argparse.ArgumentParser(description="Crawl the demo bookshop listing pages.")
    parser.add_argument("--base_url", default=env_args.get("base_url"))
    parser.add_argument("--max_pages", default=env_args.get("max_pages"))
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        log(f"ignoring unknown arguments: {' '.join(unknown)}")

    args.base_url = (args.base_url or os.environ.get("CRAWLFLEET_DEMO_URL") or DEFAULT_BASE_URL).rstrip("/")
    if args.max_pages in (None, ""):
        args.max_pages = None
    else:
        try:
            args.max_pages = int(args.max_pages)
        except (TypeError, ValueError):
            parser.error(f"--max_pages must be an integer, got {args.max_pages!r}")
        if args.max_pages < 1:
            parser.error("--max_pages must be >= 1")
    return args


def crawl(base_url: str, max_pages: int | None) -> int:
    url: str | None = f"{base_url}/catalogue/page-1.html"
    seen: set[str] = set()
    pages = 0
    total = 0
    while url and url not in seen and (max_pages is None or pages < max_pages):
        seen.add(url)
        html = fetch(url)
        parser = ListingParser()
        parser.feed(html)
        parser.close()
        items = [
            {
                "title": (p.get("title_attr") or p["title"]).strip(),
                "price": parse_price(p["price_text"]),
                "url": urljoin(url, p["href"]),
            }
            for p in parser.products
        ]
        pages += 1
        if items:
            save_items(items)
        total += len(items)
        log(f"page {pages}: {len(items)} items from {url} (total {total})")
        url = urljoin(url, parser.next_href) if parser.next_href else None
    log(f"done: {total} items from {pages} pages")
    return total


def main(argv: list[str] | None = None) -> int:
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(encoding="utf-8")
    args = parse_args(sys.argv[1:] if argv is None else argv)
    log(f"start: base_url={args.base_url} max_pages={args.max_pages or 'all'}")
    try:
        crawl(args.base_url, args.max_pages)
    except BrokenPipeError:  # stdout closed early (e.g. piped into `head`)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except (urllib.error.URLError, OSError) as exc:
        log(f"failed: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
