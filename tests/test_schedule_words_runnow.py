"""The schedule form's helpers: the cron expression in words
(crawlfleet/schedules/words.py behind /schedules/describe and the API's
preview), "run now" (master/runnow.py, UI and API), and next fire times
hidden while a schedule is disabled."""

import re

import pytest

from crawlfleet import schedules
from crawlfleet.tokens import create_token
from test_schedules_api import cli, served  # noqa: F401  (fixture)
from test_ui import app, browser, spiders  # noqa: F401  (fixtures)


def make_schedule(store, **fields):
    body = {"spider": "books", "cron": "0 3 * * *", "timezone": "Europe/Paris",
            "args": {"max_pages": "2"}, "settings": {"DOWNLOAD_DELAY": "0"}, "timeout": 120,
            **fields}
    return schedules.create(store, body)


def test_describe_puts_the_expression_in_words(browser, spiders):
    """Five fields in words with the zone; a macro is expanded; a sixth field is seconds."""
    viewer = browser("viewer")
    five = viewer.get("/schedules/describe?cron=*/15+9-17+*+*+MON-FRI&timezone=Asia/Tokyo")
    assert five.status_code == 200
    assert five.get_json()["description"] == ("Every 15 minutes, between 09:00 and 17:59, "
                                              "Monday through Friday (Asia/Tokyo)")
    assert five.get_json()["seconds"] is None
    daily = viewer.get("/schedules/describe?cron=@daily").get_json()
    assert daily["description"].startswith("@daily = 0 0 * * *: At 00:00")
    six = viewer.get("/schedules/describe?cron=0+3+*+*+*+*/10").get_json()
    assert six["description"].startswith("Every 10 seconds")
    assert six["seconds"].startswith("The sixth field (*/10) is seconds: every 10 seconds")


@pytest.mark.parametrize("cron, words", [("61 * * * *", "out of range"),
                                         ("nonsense", "expected 5 fields"),
                                         ("", "cron must be"),
                                         ("0 3 31 2 *", "never fires")])
def test_describe_a_bad_cron_is_a_400_with_one_line(browser, spiders, cron, words):
    """What croniter refuses comes back as 400 and one readable line, never a 500."""
    viewer = browser("viewer")
    response = viewer.get("/schedules/describe", query_string={"cron": cron})
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert words in error and "\n" not in error
    zone = viewer.get("/schedules/describe?cron=@daily&timezone=Mars/Base")
    assert zone.status_code == 400 and "Mars/Base" in zone.get_json()["error"]


def test_api_preview_gives_the_words_too(client, spiders, store):
    """POST /api/v1/schedules/preview answers the description and the seconds line."""
    token = {"Authorization": "Bearer " + create_token(store, "t", "operator")}
    body = client.post("/api/v1/schedules/preview", json={"cron": "0 3 * * * 30"},
                       headers=token).get_json()
    assert body["description"] == "At 03:00:30 (UTC)"
    assert "(30) is seconds" in body["seconds"] and len(body["fire_times"]) == 5


def test_run_now_from_the_ui_uses_the_schedules_options(browser, spiders, store):
    """The button starts the spider now with the schedule's args, settings and timeout;
    the task says a person asked (trigger ui) and which schedule it ran; no fire is recorded."""
    doc = make_schedule(store)
    response = browser("operator").post(f"/schedules/{doc['_id']}/run")
    assert response.status_code == 302
    task_id = response.headers["Location"].rsplit("/", 1)[1]
    task = store.tasks.find_one({"_id": task_id})
    assert task["spider"] == "books" and task["args"] == {"max_pages": "2"}
    assert task["settings"] == {"DOWNLOAD_DELAY": "0"} and task["timeout"] == 120
    assert task["trigger"] == "ui" and task["schedule_id"] == doc["_id"]
    assert task["user"] == "u-operator" and task["run_now"] is True
    assert store.schedule_fires.count_documents({}) == 0
    assert store.schedules.find_one({"_id": doc["_id"]})["next_fire_at"] == doc["next_fire_at"]


def test_run_now_needs_an_operator_and_a_schedule(browser, spiders, store):
    """A viewer gets 403; an unknown schedule 404; nothing is started."""
    doc = make_schedule(store)
    assert browser("viewer").post(f"/schedules/{doc['_id']}/run").status_code == 403
    assert browser("operator").post("/schedules/nope/run").status_code == 404
    assert store.tasks.count_documents({}) == 0


def test_run_now_through_the_api_and_cli(served, spiders):  # noqa: F811
    """POST /api/v1/schedules/<id>/run and `crawlfleet schedule run ID` start a task (trigger api)."""
    store = served
    doc = make_schedule(store)
    result = cli("schedule", "run", doc["_id"])
    assert result.exit_code == 0, result.output
    task = store.tasks.find_one({"_id": result.output.strip()})
    assert task["trigger"] == "api" and task["schedule_id"] == doc["_id"]
    missing = cli("schedule", "run", "nope")
    assert missing.exit_code != 0 and "nope" in missing.output


def test_a_disabled_schedule_shows_no_next_fire_times(browser, spiders, store):
    """Enabled: the next fire and five upcoming times; disabled: none, and the page says why."""
    doc = make_schedule(store)
    viewer = browser("viewer")
    page = viewer.get(f"/schedules/{doc['_id']}").data.decode()
    assert len(re.findall(r'<li><time class="zoned"', page)) == 5 and 'id="next-fire"' in page
    schedules.set_enabled(store, doc["_id"], False)
    page = viewer.get(f"/schedules/{doc['_id']}").data.decode()
    assert '<li><time class="zoned"' not in page and 'id="next-fire"' not in page
    assert "disabled: it does not fire until enabled" in page
    listing = viewer.get("/schedules/").data.decode()
    assert '<time class="zoned"' not in listing
