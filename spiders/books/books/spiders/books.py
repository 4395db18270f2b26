import os
import re

import scrapy

DEFAULT_BASE_URL = "http://127.0.0.1:8900"

RATINGS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5}


class BooksSpider(scrapy.Spider):
    """Crawl the bundled demo bookshop: listing pages -> product detail pages.

    Spider arguments:
      base_url   site root (default: $CRAWLFLEET_DEMO_URL or http://127.0.0.1:8900)
      max_pages  follow at most this many listing pages (default: all)
    """

    name = "books"

    def __init__(self, base_url=None, max_pages=None, *args, **kwargs):
        super().__init__(*args, **kwargs)
        base = base_url or os.environ.get("CRAWLFLEET_DEMO_URL") or DEFAULT_BASE_URL
        self.base_url = base.rstrip("/")
        self.max_pages = int(max_pages) if max_pages not in (None, "") else None
        if self.max_pages is not None and self.max_pages < 1:
            raise ValueError("max_pages must be a positive integer")
        self.start_urls = [f"{self.base_url}/catalogue/page-1.html"]

    def parse(self, response):
        page = response.meta.get("page", 1)
        for href in response.css("article.product_pod h3 a::attr(href)").getall():
            yield response.follow(href, callback=self.parse_book)

        next_href = response.css("li.next a::attr(href)").get()
        if next_href and (self.max_pages is None or page < self.max_pages):
            yield response.follow(next_href, callback=self.parse, meta={"page": page + 1})

    def parse_book(self, response):
        page = response.css("article.product_page")
        price_text = page.css("p.price_color::text").get(default="")
        availability_text = " ".join(page.css("p.availability::text").getall())
        rating_classes = page.css("p.star-rating::attr(class)").get(default="").split()
        rating_word = next((c.lower() for c in rating_classes if c.lower() in RATINGS), "")
        yield {
            "title": page.css("h1::text").get(default="").strip(),
            "price": _to_float(price_text),
            "currency": "GBP",
            "availability": _to_int(availability_text),
            "rating": RATINGS.get(rating_word),
            "upc": _table_value(page, "UPC"),
            "category": _table_value(page, "Category"),
            "url": response.url,
        }


def _table_value(selector, header):
    value = selector.xpath(f'.//tr[th[normalize-space()="{header}"]]/td/text()').get()
    return value.strip() if value else None


def _to_float(text):
    match = re.search(r"\d+(?:\.\d+)?", text.replace(",", ""))
    return float(match.group()) if match else None


def _to_int(text):
    match = re.search(r"\d+", text)
    return int(match.group()) if match else 0
