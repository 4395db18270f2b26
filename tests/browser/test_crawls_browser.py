"""A distributed, persistent crawl from the browser (real headless Chromium,
real `crawlfleet up` with a Redis frontier): the Run dialog's Workers and
Persistent fields, the crawl page with its workers and merged results, Cancel
and Resume."""

import os
import re
import signal
import subprocess
import sys
import time
import uuid

import pytest
import redis

from conftest import free_port, stop_group
from test_ui_browser import PASSWORD, page, shot  # noqa: F401  the page fixture

FRONTIER_URL = "redis://127.0.0.1:6379/6"


@pytest.fixture
def crawl_platform(tmp_path):
    """`crawlfleet up` on free ports, its broker embedded, its frontier in Redis."""
    prefix = "cfb" + uuid.uuid4().hex[:8]
    port, demo_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRAWLFLEET_")}
    env.update(CRAWLFLEET_HOME=str(tmp_path / "home"), CRAWLFLEET_ADMIN_PASSWORD=PASSWORD,
               CRAWLFLEET_STATS_INTERVAL="0.5", CRAWLFLEET_HEARTBEAT_INTERVAL="1",
               CRAWLFLEET_FRONTIER_URL=FRONTIER_URL, CRAWLFLEET_QUEUE_PREFIX=prefix,
               CRAWLFLEET_RECONCILE_INTERVAL="0.5")
    log_path = tmp_path / "up.log"
    proc = subprocess.Popen([sys.executable, "-m", "crawlfleet", "up", "--port", str(port),
                             "--demo-port", str(demo_port)], env=env,
                            stdout=open(log_path, "wb"), stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while "crawlfleet is up." not in log_path.read_text():
            assert proc.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                pass
        stop_group(proc)
        # shown by pytest only when the test failed: what master, node and web said
        print("".join(log_path.read_text(errors="replace").splitlines(True)[-300:]))
        client = redis.Redis.from_url(FRONTIER_URL)
        for key in client.scan_iter(f"{prefix}:*"):
            client.delete(key)
        client.close()


def reload_until(page, url, predicate, what, timeout=120):
    """The crawl page refreshes itself; read it afresh until `predicate` holds."""
    deadline = time.monotonic() + timeout
    while True:
        page.goto(url)
        if predicate():
            return
        assert time.monotonic() < deadline, f"{what}: not after {timeout} s:\n" + page.inner_text(
            "body")
        time.sleep(1)


@pytest.mark.timeout(600)
def test_a_persistent_two_worker_crawl_from_the_browser(crawl_platform, page):  # noqa: F811
    """Run books with 2 workers, persistent; cancel it mid-crawl, resume it: 300 items."""
    url = crawl_platform
    page.goto(url + "/crawls/")
    page.fill("#username", "admin")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(url + "/crawls/")
    page.goto(url + "/spiders/books")
    page.click("#run-button")
    dialog = page.locator("#run-dialog-books")
    dialog.locator("input[name=workers]").fill("2")
    dialog.locator("input[name=persist]").check()
    # slow enough (about 30 s in all) that the crawl is still running when it is cancelled
    dialog.locator("textarea[name=settings]").fill("CONCURRENT_REQUESTS=2\nDOWNLOAD_DELAY=0.2")
    shot(page, "40-run-dialog-workers")
    dialog.locator("button[type=submit]").click()
    page.wait_for_url(re.compile(r".*/crawls/[0-9a-f]+$"))
    assert page.locator("#workers-table tbody tr").count() == 2
    assert "persistent" in page.inner_text("dl.facts")
    crawl_url = page.url
    reload_until(page, crawl_url, lambda: int(page.inner_text("[data-stat=pages]")) >= 20,
                 "20 pages crawled")
    page.once("dialog", lambda d: d.accept())
    page.click("#cancel-button")
    reload_until(page, crawl_url, lambda: page.locator("#crawl-status .badge.cancelled").count(),
                 "crawl cancelled")
    shot(page, "41-crawl-cancelled")
    page.click("#resume-button")
    reload_until(page, crawl_url, lambda: page.locator("#crawl-status .badge.finished").count(),
                 "crawl finished", timeout=240)
    assert page.locator("[data-stat=items]").inner_text() == "300"
    assert page.locator("#workers-table tbody tr").count() == 4
    assert page.locator("#results-table tbody tr").count() == 50
    shot(page, "42-crawl-finished")
    page.goto(url + "/crawls/")
    assert page.locator("#crawls-table .badge.finished").count() == 1
    assert not page.problems, page.problems
