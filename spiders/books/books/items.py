# Define here the models for your scraped items
#
# See documentation in:
# https://docs.scrapy.org/en/latest/topics/items.html
#
# The spider yields plain dicts with these fields; this Item class documents
# them and can be used by anyone who prefers declared items.

import scrapy


class BookItem(scrapy.Item):
    title = scrapy.Field()
    price = scrapy.Field()  # float
    currency = scrapy.Field()  # "GBP"
    availability = scrapy.Field()  # int: number of copies in stock
    rating = scrapy.Field()  # int 1-5
    upc = scrapy.Field()
    category = scrapy.Field()
    url = scrapy.Field()
