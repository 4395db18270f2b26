"""Schedule pages of the web UI (web/schedules_ui.py): create, edit, enable
and disable, delete, the cron preview, history, and roles."""

import re

from crawlfleet import schedules
from test_ui import app, browser, spiders  # noqa: F401  (fixtures)

FORM = {"spider": "books", "cron": "*/15 9-17 * * MON-FRI", "timezone": "Europe/Paris",
        "args": "max_pages=2", "settings": "", "nodes": "any", "overlap": "skip",
        "description": "weekday crawl <b>bold</b>", "enabled": "on", "timeout": "600",
        "max_attempts": "3"}


def test_operator_creates_edits_disables_and_deletes_a_schedule(browser, spiders, store):
    """The form makes a schedule with every field; edit, disable, enable and delete work."""
    op = browser("operator")
    response = op.post("/schedules/new", FORM)
    assert response.status_code == 302, response.data[:400]
    doc = store.schedules.find_one({})
    assert doc["cron"] == FORM["cron"] and doc["timezone"] == "Europe/Paris"
    assert doc["args"] == {"max_pages": "2"} and doc["timeout"] == 600
    assert doc["retry"]["max_attempts"] == 3 and doc["enabled"] and doc["next_fire_at"]
    page = op.get(f"/schedules/{doc['_id']}").data.decode()
    assert "weekday crawl &lt;b&gt;bold&lt;/b&gt;" in page
    assert len(re.findall(r"<li><time class=\"zoned\" datetime=\"20\d\d-", page)) == 5  # next fires

    op.post(f"/schedules/{doc['_id']}", {**FORM, "cron": "0 3 * * *"})
    assert store.schedules.find_one({})["cron"] == "0 3 * * *"
    op.post(f"/schedules/{doc['_id']}/enabled", {"enabled": "false"})
    assert not store.schedules.find_one({})["enabled"]
    listing = op.get("/schedules/").data.decode()
    assert "disabled" in listing and "0 3 * * *" in listing
    op.post(f"/schedules/{doc['_id']}/enabled", {"enabled": "true"})
    assert store.schedules.find_one({})["enabled"]
    op.post(f"/schedules/{doc['_id']}/delete")
    assert store.schedules.count_documents({}) == 0


def test_a_bad_cron_is_shown_on_the_form(browser, spiders, store):
    """An invalid expression comes back as a message with the form kept, nothing saved."""
    op = browser("operator")
    response = op.post("/schedules/new", {**FORM, "cron": "61 * * * *"})
    assert response.status_code == 400
    assert b"61 * * * *" in response.data and b'class="flash error"' in response.data
    assert store.schedules.count_documents({}) == 0


def test_cron_preview_answers_as_you_type(browser, spiders):
    """/schedules/preview gives the next five fire times, or the error, as JSON."""
    viewer = browser("viewer")
    ok = viewer.get("/schedules/preview?cron=0+3+*+*+*&timezone=Asia/Tokyo").get_json()
    assert len(ok["fire_times"]) == 5 and all(t.endswith("+09:00") for t in ok["fire_times"])
    bad = viewer.get("/schedules/preview?cron=nonsense")
    assert bad.status_code == 400 and bad.get_json()["error"]
    assert viewer.get("/schedules/preview?cron=@daily&timezone=Mars/Base").status_code == 400


def test_viewer_sees_schedules_but_cannot_change_them(browser, spiders, store):
    """A viewer reads the list and a schedule (form disabled) and gets 403 on every change."""
    doc = schedules.create(store, {"spider": "books", "cron": "@hourly"})
    viewer = browser("viewer")
    assert viewer.get("/schedules/").status_code == 200
    page = viewer.get(f"/schedules/{doc['_id']}").data.decode()
    assert "<fieldset class=\"plain\" disabled>" in page and "save-schedule" not in page
    for path, data in (("/schedules/new", FORM), (f"/schedules/{doc['_id']}", FORM),
                       (f"/schedules/{doc['_id']}/enabled", {"enabled": "false"}),
                       (f"/schedules/{doc['_id']}/delete", {})):
        assert viewer.post(path, data).status_code == 403, path
    assert store.schedules.find_one({})["enabled"]


def test_spiders_page_shows_the_next_scheduled_run(browser, spiders, store):
    """The spiders list names the next fire time of an enabled schedule."""
    doc = schedules.create(store, {"spider": "books", "cron": "0 3 * * *"})
    viewer = browser("viewer")
    from web.templating import when
    assert when(doc["next_fire_at"]) in viewer.get("/spiders").data.decode()
    assert viewer.get("/schedules/nope").status_code == 404
