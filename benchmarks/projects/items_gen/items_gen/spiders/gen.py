import scrapy


class ItemsGenSpider(scrapy.Spider):
    """Yields `count` book-like items without making a request."""

    name = "items_gen"
    start_urls = []

    def __init__(self, count="20000", *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.count = int(count)

    async def start(self):
        for i in range(self.count):
            yield {"title": f"Book number {i}", "price": 10 + i % 90 + 0.99, "currency": "GBP",
                   "availability": i % 20, "rating": 1 + i % 5, "upc": f"{i:016x}",
                   "category": ("Travel", "Poetry", "History")[i % 3],
                   "url": f"http://127.0.0.1:8900/catalogue/book_{i}/index.html"}
