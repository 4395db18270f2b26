"""The spider page's run-history charts and the schedule form in a real
headless Chromium against a real `crawlfleet up`: the cron expression in words
as it is typed (and its seconds field explained), "run now", next fire times
hidden once disabled, and times shown in the viewer's chosen time zone (kept
across a reload). Screenshots go to test-artifacts/screenshots/."""

import re
import time

import pytest

from test_ui_browser import page, running_platform, shot, sign_in  # noqa: F401  (fixtures)

SPIDER = "plain_catalogue"  # bundled, plain Python: a one-page run ends in seconds


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    with running_platform(tmp_path_factory.mktemp("spiderpage")) as (url, _banner):
        yield url


def api(page, path, body=None, method="POST"):
    """The JSON API with the page's session, as app.js calls it."""
    page.wait_for_function("() => window.crawlfleet !== undefined")  # app.js is deferred
    return page.evaluate("([path, method, body]) => crawlfleet.api('/api/v1' + path, "
                         "body === null ? {method} : {method, json: body})", [path, method, body])


def wait_ended(page, task_id, timeout=120):
    """Poll the task until it has ended (a fact, not a fixed sleep); returns it."""
    deadline = time.monotonic() + timeout
    while True:
        task = api(page, f"/tasks/{task_id}", method="GET")
        if task["status"] not in ("pending", "running"):
            return task
        assert time.monotonic() < deadline, task
        page.wait_for_timeout(300)


def real_problems(page):
    """Console errors other than the 400s a cron typed wrong is meant to get."""
    return [p for p in page.problems if "status of 400" not in p]


def test_spider_page_charts_each_run(platform, page):
    """Two ended runs give two bars in each chart (items, pages, errors, duration, success),
    the last run's stats, and the same points from the history API."""
    url = platform
    sign_in(page, url)
    page.goto(url + f"/spiders/{SPIDER}")
    assert "No ended run yet" in page.inner_text("#run-history")
    ids = []
    for pages in ("1", "2"):
        answer = api(page, f"/spiders/{SPIDER}/run", {"args": {"max_pages": pages}})
        ids.append(answer["task_ids"][0])
        assert wait_ended(page, ids[-1])["status"] == "finished"
    page.goto(url + f"/spiders/{SPIDER}")
    for metric in ("success", "items", "pages", "errors", "duration"):
        bars = page.locator(f'figure[data-metric="{metric}"] rect')
        assert [bars.nth(i).get_attribute("data-task") for i in range(bars.count())] == ids
    items = page.locator('figure[data-metric="items"] rect')
    assert float(items.nth(1).get_attribute("data-value")) > float(
        items.nth(0).get_attribute("data-value")) > 0  # two listing pages: more items
    assert page.locator('figure[data-metric="success"] rect.ok').count() == 2
    assert ids[-1] in page.inner_text("#last-run")
    assert "MongoDB only" in page.inner_text("#spider-data-settings")
    history = api(page, f"/spiders/{SPIDER}/history", method="GET")
    assert [r["task_id"] for r in history["runs"]] == ids
    assert history["summary"]["success_rate"] == 1
    shot(page, "spider-history-charts")
    assert not real_problems(page), page.problems


def test_schedule_form_words_run_now_disabled_and_time_zone(platform, page):
    """Words follow the typing; a sixth field is explained; a bad cron says why; the viewer's
    zone rewrites every fire time and survives a reload; disabling hides the next fires;
    run now starts the spider with the schedule's arguments."""
    url = platform
    sign_in(page, url)
    page.goto(url + "/schedules/new")
    page.select_option("#s-spider", SPIDER)
    page.fill("#s-tz", "Asia/Tokyo")
    page.fill("#s-cron", "")
    page.type("#s-cron", "*/15 9-17 * * MON-FRI")
    page.wait_for_function("() => document.querySelector('#cron-words').textContent === "
                           "'Every 15 minutes, between 09:00 and 17:59, Monday through Friday "
                           "(Asia/Tokyo)'")
    assert page.locator("#cron-seconds").is_hidden()
    page.fill("#s-cron", "0 3 * * * */10")
    page.wait_for_selector("#cron-seconds:visible")
    assert page.inner_text("#cron-seconds").startswith("The sixth field (*/10) is seconds")
    assert page.inner_text("#cron-words").startswith("Every 10 seconds")
    page.fill("#s-cron", "61 * * * *")
    page.wait_for_selector("#cron-words.error")
    assert "out of range" in page.inner_text("#cron-words")
    shot(page, "schedule-cron-error")
    page.fill("#s-cron", "30 6 * * *")
    page.wait_for_function("() => document.querySelector('#cron-words').textContent"
                           ".startsWith('At 06:30')")
    page.wait_for_function("() => document.querySelectorAll('#cron-preview li').length === 5")
    page.fill("textarea[name=args]", "max_pages=1")
    shot(page, "schedule-new-words")
    page.click("#save-schedule")
    page.wait_for_selector("text=created.")
    edit_url = page.url

    # the viewer's zone: every fire time is rewritten, the stored one stays as a tooltip
    page.select_option("#viewer-tz", "Asia/Tokyo")
    first = page.locator("#cron-preview time").first
    assert re.search(r"\d{4}-\d\d-\d\d 06:30:00 GMT\+9", first.inner_text()), first.inner_text()
    assert first.get_attribute("title").endswith("T06:30:00+09:00")
    page.select_option("#viewer-tz", "America/New_York")
    assert re.search(r" 1[67]:30:00 E[SD]T$", first.inner_text()), first.inner_text()
    assert re.search(r" 1[67]:30:00 E[SD]T$", page.inner_text("#next-fire"))
    page.reload()
    assert page.input_value("#viewer-tz") == "America/New_York"
    page.wait_for_function("() => / 1[67]:30:00 E[SD]T$/.test("
                           "document.querySelector('#cron-preview time').textContent)")
    shot(page, "schedule-viewer-time-zone")

    # disabled: no next fire times, on the form at once and on the saved page
    page.uncheck("#s-enabled")
    assert page.locator("#cron-preview").is_hidden()
    assert page.locator("#cron-disabled").is_visible()
    page.click("#save-schedule")
    page.wait_for_selector("text=Schedule saved.")
    assert page.locator("#cron-preview time").count() == 0
    assert page.locator("#next-fire").count() == 0
    assert "disabled" in page.inner_text("#schedule-state")
    shot(page, "schedule-disabled")

    # run now: the spider runs with the schedule's options even while it is disabled
    page.goto(edit_url)
    page.click("#run-now")
    page.wait_for_url(re.compile(r".*/tasks/[0-9a-f]+$"))
    task_id = page.url.rsplit("/", 1)[1]
    task = wait_ended(page, task_id)
    assert task["status"] == "finished" and task["args"] == {"max_pages": "1"}
    assert task["trigger"] == "ui" and task["schedule_id"] == edit_url.rsplit("/", 1)[1]
    page.goto(url + "/schedules/")
    assert page.locator("#schedules-table time").count() == 0  # disabled: no next fire
    page.goto(url + f"/spiders/{SPIDER}")
    assert "disabled" in page.inner_text("#spider-schedules")
    assert page.locator("#spider-schedules time").count() == 0
    shot(page, "schedules-list-disabled")
    assert not real_problems(page), page.problems
