"""A spider's run history (crawlfleet/runhistory.py): the API route
(web/spiders_api.py), the spider page's charts and panels (web/spiders_ui.py,
web/runcharts.py) and `crawlfleet spider history` (crawlfleet/cli/spiderhistory.py)."""

import re

import pytest

from crawlfleet import runhistory
from crawlfleet.tokens import create_token
from test_schedules_api import cli, served  # noqa: F401  (fixture)
from test_ui import add_task, app, browser, spiders  # noqa: F401  (fixtures)

# (status, items, pages, errors, seconds) of five ended runs, oldest first
RUNS = [("finished", 10, 12, 0, 30), ("error", 2, 5, 3, 8), ("finished", 14, 15, 1, 40),
        ("cancelled", 1, 1, 0, 2), ("timeout", 0, 3, 0, 60)]


def add_runs(store, spider):
    base = 1_700_000_000.0
    ids = []
    for i, (status, items, pages, errors, seconds) in enumerate(RUNS):
        start = base + i * 1000
        task = add_task(store, spider, _id=f"run{i}", status=status, created_at=start - 1,
                        started_at=start, finished_at=start + seconds, trigger="schedule",
                        stats={"items": items, "pages": pages, "errors": errors})
        ids.append(task["_id"])
    add_task(store, spider, _id="still-running", status="running", created_at=base + 9000,
             started_at=base + 9000)  # not ended: not a point of the history
    return ids


@pytest.fixture
def viewer(store):
    return {"Authorization": "Bearer " + create_token(store, "t-view", "viewer")}


def test_history_lists_ended_runs_oldest_first_with_a_summary(client, spiders, store, viewer):
    """Each ended run is a point (items, pages, errors, duration, success); running ones are not;
    the success rate counts finished against failed, cancelled being neither."""
    ids = add_runs(store, spiders)
    body = client.get("/api/v1/spiders/books/history", headers=viewer).get_json()
    assert [r["task_id"] for r in body["runs"]] == ids
    first = body["runs"][0]
    assert (first["items"], first["pages"], first["errors"], first["duration"]) == (10, 12, 0, 30)
    assert [r["success"] for r in body["runs"]] == [True, False, True, None, False]
    summary = body["summary"]
    assert summary["runs"] == 5 and summary["succeeded"] == 2 and summary["failed"] == 2
    assert summary["success_rate"] == 0.5 and summary["errors_total"] == 4
    assert summary["duration_mean"] == 28.0
    two = client.get("/api/v1/spiders/books/history?limit=2", headers=viewer).get_json()
    assert [r["task_id"] for r in two["runs"]] == ids[-2:]


def test_history_bad_input_is_a_readable_4xx(client, spiders, viewer):
    """An unknown spider is a 404 and a bad limit a 400, each with one line; no token is 401."""
    unknown = client.get("/api/v1/spiders/nope/history", headers=viewer)
    assert unknown.status_code == 404 and "nope" in unknown.get_json()["error"]
    for limit in ("x", "0", "-3"):
        bad = client.get(f"/api/v1/spiders/books/history?limit={limit}", headers=viewer)
        assert bad.status_code == 400 and "\n" not in bad.get_json()["error"]
    big = client.get("/api/v1/spiders/books/history?limit=100000", headers=viewer)
    assert big.status_code == 200 and big.get_json()["limit"] == runhistory.MAX_RUNS
    assert client.get("/api/v1/spiders/books/history").status_code == 401


def test_history_is_in_the_openapi_document(client):
    """The route is described for API users."""
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    assert "get" in paths["/spiders/{name}/history"]


def test_spider_page_draws_a_chart_per_metric_and_shows_settings(browser, spiders, store):
    """The page has the success strip and items/pages/errors/duration charts with one bar per
    ended run, the last run's stats, the spider's schedules and its data settings."""
    ids = add_runs(store, spiders)
    store.schedules.insert_one({"_id": "s1", "spider": "books", "cron": "0 3 * * *",
                                "timezone": "UTC", "enabled": False})
    page = browser("viewer").get("/spiders/books").data.decode()
    for metric in ("success", "items", "pages", "errors", "duration"):
        chart = re.search(rf'data-metric="{metric}".*?</svg>', page, re.S).group(0)
        assert re.findall(r'data-task="([^"]+)"', chart) == ids, metric
    assert 'data-value="14"' in page and 'class="run-bar bad"' in page
    assert 'id="last-run"' in page and "still-running" in page
    assert "0 3 * * *" in page and "/schedules/s1" in page
    assert "none: every item is kept" in page and "MongoDB only" in page
    assert 'id="spider-env"' in page


def test_spider_page_of_a_spider_that_never_ran(browser, spiders):
    """No run yet: the page says so instead of drawing empty charts."""
    page = browser("viewer").get("/spiders/books?runs=zzz").data.decode()
    assert "No ended run yet" in page and "<svg" not in page


def test_cli_spider_history(served, spiders):  # noqa: F811
    """`crawlfleet spider history books` prints a row per run and the summary."""
    add_runs(served, spiders)
    result = cli("spider", "history", "books", "--limit", "3")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split()[:2] == ["TASK", "STATUS"] and len(lines) == 5
    assert "run2" in lines[1] and "3 runs: 1 finished, 1 failed (50% success)" in lines[-1]
    unknown = cli("spider", "history", "nope")
    assert unknown.exit_code != 0 and "nope" in unknown.output
