# Scrapy settings of __project__ (https://docs.scrapy.org/en/latest/topics/settings.html)
BOT_NAME = "__module__"
SPIDER_MODULES = ["__module__.spiders"]
NEWSPIDER_MODULE = "__module__.spiders"
ROBOTSTXT_OBEY = False
CONCURRENT_REQUESTS = 16
DOWNLOAD_DELAY = 0
FEED_EXPORT_ENCODING = "utf-8"
