"""The task log of a fresh `scrapy startproject` project holds the spider's
own output and the platform's INFO lines only (issue 16, item 11): no pymongo
DEBUG lines (with item payloads) from crawlfleet's own connection, and no
deprecation warning from crawlfleet's item pipeline on the pinned Scrapy."""

import subprocess
import sys

from conftest import task_log, wait_task
from crawlfleet.broker import Broker
from deploy_helpers import app, auth, client, sandbox_tmp, upload, zip_folder  # noqa: F401
from master import dispatch

SPIDER = '''import scrapy


class PagesSpider(scrapy.Spider):
    name = "pages"
    start_urls = ["{demo}/catalogue/page-1.html"]

    def parse(self, response):
        for href in response.css("article h3 a::attr(href)").getall()[:5]:
            yield {{"url": response.urljoin(href), "title": "x" * 50}}
'''


def test_a_fresh_startproject_log_has_no_platform_debug_or_warnings(client, auth, store, config,
                                                                     processes, tmp_path,
                                                                     demo_site):
    subprocess.run([sys.executable, "-m", "scrapy", "startproject", "fresh"], cwd=tmp_path,
                   check=True, capture_output=True, timeout=120)
    folder = tmp_path / "fresh"
    (folder / "fresh" / "spiders" / "pages.py").write_text(SPIDER.format(demo=demo_site))
    response = upload(client, auth.admin, zip_folder(folder, top="fresh"))
    assert response.status_code == 201, response.get_json()
    processes.node(store)
    broker = Broker(config)
    try:
        task = dispatch.run_spider(store, broker, config, "pages")[0]
    finally:
        broker.close()
    done = wait_task(store, task["_id"], timeout=120)
    log = "\n".join(task_log(store, task["_id"]))
    assert done["status"] == "finished", log
    assert done["stats"]["items"] == 5, log
    assert "Spider closed (finished)" in log
    assert "DEBUG: Scraped from" in log  # the project's own DEBUG level is kept
    for line in log.splitlines():
        assert "[pymongo" not in line, line
        assert "[crawlfleet" not in line or "DEBUG" not in line, line
        assert "DeprecationWarning" not in line, line
        assert "returned a Deferred" not in line, line
