BOT_NAME = "items_gen"
SPIDER_MODULES = ["items_gen.spiders"]
TELNETCONSOLE_ENABLED = False
LOG_LEVEL = "INFO"
