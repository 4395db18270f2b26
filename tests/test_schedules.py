"""Tests for crawlfleet/schedules.py: cron expressions, time zones and DST
(fixed clocks throughout), validation, and the schedules collection."""

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from crawlfleet import schedules
from crawlfleet.errors import BadRequest, NotFound
from crawlfleet.schedules import CronSpec

PARIS = ZoneInfo("Europe/Paris")
UTC = ZoneInfo("UTC")


def at(*fields, tz=PARIS, fold=0):
    return datetime(*fields, tzinfo=tz, fold=fold).timestamp()


def fires(cron, tz, start, count):
    spec = CronSpec(cron, tz)
    return [spec.iso(t) for t in spec.next_times(start, count)]


def fake_spider(store, name="s1"):
    store.spiders.insert_one({"_id": name, "project": name, "version": "v1", "kind": "command",
                              "results_collection": f"results_{name}"})


# -- cron expressions -------------------------------------------------------------

def test_five_fields_in_utc():
    """Standard cron: every quarter hour, strictly after the start."""
    assert fires("*/15 * * * *", "UTC", at(2024, 5, 1, 12, 7, tz=UTC), 3) == [
        "2024-05-01T12:15:00+00:00", "2024-05-01T12:30:00+00:00", "2024-05-01T12:45:00+00:00"]
    assert fires("0 12 * * *", "UTC", at(2024, 5, 1, 12, 0, tz=UTC), 1) == [
        "2024-05-02T12:00:00+00:00"]


def test_sixth_field_is_seconds():
    """A sixth field is seconds (croniter's order: last)."""
    assert fires("* * * * * */20", "UTC", at(2024, 5, 1, 12, 0, 5, tz=UTC), 3) == [
        "2024-05-01T12:00:20+00:00", "2024-05-01T12:00:40+00:00", "2024-05-01T12:01:00+00:00"]
    spec = CronSpec("* * * * * *", "UTC")
    t = at(2024, 5, 1, 12, 0, 0, tz=UTC)
    assert spec.next_after(t + 0.5) == t + 1 and spec.next_after(t) == t + 1


def test_macros_names_and_time_zone():
    """@daily is midnight in the schedule's zone; names of days work."""
    assert fires("@daily", "America/New_York", at(2024, 6, 1, 12, tz=UTC), 1) == [
        "2024-06-02T00:00:00-04:00"]
    assert fires("30 9 * * MON-FRI", "Europe/Paris", at(2024, 6, 7, 10), 2) == [
        "2024-06-10T09:30:00+02:00", "2024-06-11T09:30:00+02:00"]


# -- DST ------------------------------------------------------------------------------

def test_daily_time_skipped_by_spring_forward_fires_once_when_clocks_jump():
    """Paris, 2024-03-31: 02:00 → 03:00. A daily 02:30 fires once that day, at 03:00."""
    assert fires("30 2 * * *", "Europe/Paris", at(2024, 3, 29, 12), 4) == [
        "2024-03-30T02:30:00+01:00", "2024-03-31T03:00:00+02:00",
        "2024-04-01T02:30:00+02:00", "2024-04-02T02:30:00+02:00"]
    assert fires("30 2 * * *", "America/New_York", at(2024, 3, 9, 12, tz=UTC), 2) == [
        "2024-03-10T03:00:00-04:00", "2024-03-11T02:30:00-04:00"]


def test_every_minute_of_a_skipped_hour_fires_once():
    """`* 2 * * *` on the spring-forward day: the whole hour is missing, one fire at 03:00."""
    assert fires("* 2 * * *", "Europe/Paris", at(2024, 3, 31, 1, 0), 2) == [
        "2024-03-31T03:00:00+02:00", "2024-04-01T02:00:00+02:00"]


def test_daily_time_repeated_by_fall_back_fires_once_on_first_occurrence():
    """Paris, 2024-10-27: 03:00 → 02:00. A daily 02:30 fires at 02:30+02:00 only."""
    assert fires("30 2 * * *", "Europe/Paris", at(2024, 10, 25, 12), 4) == [
        "2024-10-26T02:30:00+02:00", "2024-10-27T02:30:00+02:00",
        "2024-10-28T02:30:00+01:00", "2024-10-29T02:30:00+01:00"]
    # asked during the second pass of the repeated hour, it waits for the next day
    assert fires("30 2 * * *", "Europe/Paris", at(2024, 10, 27, 2, 10, fold=1), 1) == [
        "2024-10-28T02:30:00+01:00"]


def test_hourly_schedules_follow_elapsed_time():
    """Hour field `*`: the skipped hour does not fire, the repeated hour fires twice."""
    assert fires("30 * * * *", "Europe/Paris", at(2024, 3, 31, 0, 0), 3) == [
        "2024-03-31T00:30:00+01:00", "2024-03-31T01:30:00+01:00", "2024-03-31T03:30:00+02:00"]
    assert fires("0 * * * *", "Europe/Paris", at(2024, 10, 27, 0, 30), 5) == [
        "2024-10-27T01:00:00+02:00", "2024-10-27T02:00:00+02:00", "2024-10-27T02:00:00+01:00",
        "2024-10-27T03:00:00+01:00", "2024-10-27T04:00:00+01:00"]
    assert fires("*/20 * * * *", "Europe/Paris", at(2024, 10, 27, 2, 10, fold=1), 2) == [
        "2024-10-27T02:20:00+01:00", "2024-10-27T02:40:00+01:00"]


def test_every_second_through_fall_back_is_one_fire_per_real_second():
    """Over the two real hours around the fall-back, exactly 7200 fires, one a second."""
    spec = CronSpec("* * * * * *", "Europe/Paris")
    start = at(2024, 10, 27, 1, 59, 59)  # 23:59:59 UTC
    times, more = spec.between(start + 1, start + 7200, 10_000)
    assert not more
    assert times == [start + i for i in range(1, 7201)]


def test_half_hour_dst_shift():
    """Lord Howe Island moves its clocks by 30 minutes (02:00 → 02:30 on 2024-10-06)."""
    assert fires("15 2 * * *", "Australia/Lord_Howe",
                 at(2024, 10, 5, 12, tz=ZoneInfo("Australia/Lord_Howe")), 2) == [
        "2024-10-06T02:30:00+11:00", "2024-10-07T02:15:00+11:00"]


def test_latest_between_finds_the_last_fire_without_walking_them_all():
    spec = CronSpec("* * * * * *", "UTC")
    t = at(2024, 1, 1, tz=UTC)
    assert spec.latest_between(t, t + 86_400 * 3 + 0.5) == t + 86_400 * 3
    daily = CronSpec("0 3 * * *", "UTC")
    assert daily.latest_between(t, t + 10 * 86_400) == t + 9 * 86_400 + 3 * 3600
    assert daily.latest_between(t, t + 3600) is None


@pytest.mark.parametrize("cron, tz, message", [
    ("* * * *", "UTC", "expected 5 fields"),
    ("* * * * * * *", "UTC", "got 7"),
    ("61 * * * *", "UTC", "out of range"),
    ("a b c d e", "UTC", "invalid cron expression"),
    ("0 0 31 2 *", "UTC", "never fires"),
    ("", "UTC", "cron must be"),
    (None, "UTC", "cron must be"),
    ("* * * * *", "Mars/Olympus", "unknown timezone 'Mars/Olympus'"),
    ("* * * * *", "../../etc/passwd", "unknown timezone"),
    ("* * * * *", 5, "timezone must be"),
])
def test_invalid_expressions_and_zones_are_bad_requests(cron, tz, message):
    with pytest.raises(BadRequest, match=message.replace("(", r"\(")):
        CronSpec(cron, tz)


def test_preview_gives_iso_times_with_offsets():
    result = schedules.preview("0 9 * * *", "Asia/Tokyo", 3, start=at(2023, 12, 31, 12, tz=UTC))
    assert result["fire_times"] == ["2024-01-01T09:00:00+09:00", "2024-01-02T09:00:00+09:00",
                                    "2024-01-03T09:00:00+09:00"]
    assert result["timezone"] == "Asia/Tokyo" and len(result["fire_at"]) == 3
    for count in (0, 51, "5", True):
        with pytest.raises(BadRequest, match="count"):
            schedules.preview("* * * * *", "UTC", count)


# -- validation and the collection --------------------------------------------------

def test_create_fills_defaults_and_next_fire(store):
    """A new schedule is enabled, overlap skip, UTC, and due at its next fire time."""
    fake_spider(store)
    start = at(2024, 1, 1, 10, 0, tz=UTC)
    doc = schedules.create(store, {"spider": "s1", "cron": "0 11 * * *"}, at=start)
    assert doc["enabled"] and doc["overlap"] == "skip" and doc["timezone"] == "UTC"
    assert doc["next_fire_at"] == doc["due_at"] == start + 3600
    assert store.schedules.find_one({"_id": doc["_id"]})["spider"] == "s1"
    out = schedules.public_schedule(doc, upcoming=2)
    assert out["id"] == doc["_id"] and len(out["upcoming"]) == 2
    assert out["next_fire_time"] == "2024-01-01T11:00:00+00:00"


@pytest.mark.parametrize("body, message", [
    ({"cron": "* * * * *"}, "spider is required"),
    ({"spider": "nope", "cron": "* * * * *"}, "unknown spider 'nope'; known spiders: s1"),
    ({"spider": "s1"}, "cron is required"),
    ({"spider": "s1", "cron": "* * *"}, "expected 5 fields"),
    ({"spider": "s1", "cron": "* * * * *", "timezone": "Nowhere/City"}, "unknown timezone"),
    ({"spider": "s1", "cron": "* * * * *", "args": {"bad name": "x"}}, "invalid argument name"),
    ({"spider": "s1", "cron": "* * * * *", "args": ["x"]}, "args must be"),
    ({"spider": "s1", "cron": "* * * * *", "settings": {"lower": 1}}, "UPPER_CASE"),
    ({"spider": "s1", "cron": "* * * * *", "nodes": ["ghost"]}, "unknown node"),
    ({"spider": "s1", "cron": "* * * * *", "nodes": 5}, "nodes must be"),
    ({"spider": "s1", "cron": "* * * * *", "priority": 12}, "priority"),
    ({"spider": "s1", "cron": "* * * * *", "timeout": -1}, "timeout"),
    ({"spider": "s1", "cron": "* * * * *", "retry": {"max_attempts": 0}}, "max_attempts"),
    ({"spider": "s1", "cron": "* * * * *", "overlap": "never"}, "overlap must be"),
    ({"spider": "s1", "cron": "* * * * *", "enabled": "yes"}, "enabled must be"),
    ({"spider": "s1", "cron": "* * * * *", "misfire_grace": -5}, "misfire_grace"),
    ({"spider": "s1", "cron": "* * * * *", "alerts": {"on": ["error"]}}, "webhook or"),
    ({"spider": "s1", "cron": "* * * * *", "alerts": {"webhook": "ftp://x"}}, "http"),
    ({"spider": "s1", "cron": "* * * * *", "alerts": {"email": ["not-an-address"]}},
     "email addresses"),
    ({"spider": "s1", "cron": "* * * * *", "alerts": {"on": ["boom"], "email": ["a@b.c"]}},
     "alerts.on"),
    ({"spider": "s1", "cron": "* * * * *", "colour": "red"}, "unknown field"),
])
def test_invalid_schedules_are_bad_requests(store, body, message):
    fake_spider(store)
    with pytest.raises(BadRequest, match=message):
        schedules.create(store, body)
    assert store.schedules.estimated_document_count() == 0


def test_update_recomputes_timing_and_enable_needs_the_spider(store):
    """PATCH keeps other fields, a new cron moves next_fire_at; disabling clears it;
    enabling a schedule whose spider is gone is a 400."""
    fake_spider(store)
    start = at(2024, 1, 1, 10, 0, tz=UTC)
    doc = schedules.create(store, {"spider": "s1", "cron": "0 11 * * *",
                                   "args": {"q": "x"}}, at=start)
    doc = schedules.update(store, doc["_id"], {"cron": "30 10 * * *"}, at=start)
    assert doc["next_fire_at"] == start + 1800 and doc["args"] == {"q": "x"}
    doc = schedules.set_enabled(store, doc["_id"], False, at=start)
    assert not doc["enabled"] and doc["due_at"] is None and doc["next_fire_at"] is None
    doc = schedules.update(store, doc["_id"], {"spider": "s1", "cron": "0 12 * * *"},
                           replace=True, at=start)
    assert doc["args"] == {} and doc["enabled"] and doc["next_fire_at"] == start + 7200
    store.spiders.delete_one({"_id": "s1"})
    store.schedules.update_one({"_id": doc["_id"]}, {"$set": {
        "enabled": False, "due_at": None, "disabled_reason": "spider 's1' was deleted"}})
    with pytest.raises(BadRequest, match="unknown spider 's1'"):
        schedules.set_enabled(store, doc["_id"], True)


def test_delete_and_unknown_ids(store):
    fake_spider(store)
    doc = schedules.create(store, {"spider": "s1", "cron": "* * * * *"})
    store.schedule_fires.insert_one({"schedule_id": doc["_id"], "fire_time": 1.0,
                                     "state": "fired"})
    schedules.delete(store, doc["_id"])
    assert store.schedules.find_one({"_id": doc["_id"]}) is None
    assert store.schedule_fires.find_one({"schedule_id": doc["_id"]}) is None
    for call in (lambda: schedules.get(store, "nope"), lambda: schedules.delete(store, "nope"),
                 lambda: schedules.update(store, "nope", {}), lambda: schedules.history(store, 5)):
        with pytest.raises(NotFound):
            call()
