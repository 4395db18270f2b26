BOT_NAME = "noop_scrapy"
SPIDER_MODULES = ["noop_scrapy.spiders"]
ROBOTSTXT_OBEY = False
TELNETCONSOLE_ENABLED = False
LOG_LEVEL = "INFO"
