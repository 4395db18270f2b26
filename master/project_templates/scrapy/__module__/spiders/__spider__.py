"""__spider__: lists the books of the bundled demo bookshop (title, price, url).

Spider arguments: base_url (default: $CRAWLFLEET_DEMO_URL or
http://127.0.0.1:8900), max_pages (default: all listing pages).
"""

import os

import scrapy


class Spider(scrapy.Spider):
    name = "__spider__"

    def __init__(self, base_url=None, max_pages=None, *args, **kwargs):
        super().__init__(*args, **kwargs)
        base = base_url or os.environ.get("CRAWLFLEET_DEMO_URL") or "http://127.0.0.1:8900"
        self.max_pages = int(max_pages) if max_pages else None
        self.start_urls = [base.rstrip("/") + "/catalogue/page-1.html"]

    def parse(self, response):
        page = response.meta.get("page", 1)
        for book in response.css("article.product_pod"):
            yield {
                "title": book.css("h3 a::attr(title)").get(),
                "price": book.css("p.price_color::text").get(),
                "url": response.urljoin(book.css("h3 a::attr(href)").get()),
            }
        next_href = response.css("li.next a::attr(href)").get()
        if next_href and (self.max_pages is None or page < self.max_pages):
            yield response.follow(next_href, callback=self.parse, meta={"page": page + 1})
