"""__spider__: a plain-Python crawlfleet spider (no Scrapy).

Lists the books of the bundled demo bookshop and saves title, price and url
of each. Arguments (--key=value, or the JSON in $CRAWLFLEET_ARGS):
--base_url (default: $CRAWLFLEET_DEMO_URL or http://127.0.0.1:8900),
--max_pages (default: all listing pages).
"""

import argparse
import json
import os
import re
import urllib.request
from urllib.parse import urljoin

try:
    from crawlfleet.sdk import save_items
except ImportError:  # outside crawlfleet: print each item as a JSON line
    def save_items(items):
        for item in items:
            print(json.dumps(item, ensure_ascii=False), flush=True)

BOOK_RE = re.compile(r'<h3><a href="([^"]+)" title="([^"]+)".*?price_color">([^<]+)<', re.S)
NEXT_RE = re.compile(r'<li class="next"><a href="([^"]+)"')


def arguments():
    given = json.loads(os.environ.get("CRAWLFLEET_ARGS") or "{}")
    parser = argparse.ArgumentParser()
    parser.add_argument("--base_url", default=given.get("base_url"))
    parser.add_argument("--max_pages", type=int, default=given.get("max_pages"))
    args = parser.parse_args()
    args.base_url = (args.base_url or os.environ.get("CRAWLFLEET_DEMO_URL")
                     or "http://127.0.0.1:8900").rstrip("/")
    return args


def main():
    args = arguments()
    url, page = args.base_url + "/catalogue/page-1.html", 1
    while url:
        with urllib.request.urlopen(url, timeout=30) as response:
            html = response.read().decode("utf-8")
        items = [{"title": title, "price": price, "url": urljoin(url, href)}
                 for href, title, price in BOOK_RE.findall(html)]
        save_items(items)
        print(f"[__spider__] page {page}: {len(items)} books", flush=True)
        found = NEXT_RE.search(html)
        if not found or (args.max_pages and page >= int(args.max_pages)):
            break
        url, page = urljoin(url, found.group(1)), page + 1


if __name__ == "__main__":
    main()
