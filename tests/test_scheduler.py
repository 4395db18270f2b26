"""Tests for master/scheduler.py with an injected clock: firing, the unique
fire key, overlap policies, catch-up and misfire policies, deleted spiders,
and recovery of a fire whose master died mid-dispatch. Real store, embedded
broker; no process is started."""

import pytest

from crawlfleet import schedules
from crawlfleet.broker import Broker
from master.scheduler import MISSED_RECORDS, STUCK_AFTER, Scheduler

T0 = 1_717_243_200.0  # 2024-06-01T12:00:00Z, a whole hour


class Clock:
    def __init__(self, t):
        self.t = t

    def __call__(self):
        return self.t


@pytest.fixture
def broker(config):
    broker = Broker(config)
    yield broker
    broker.close()


@pytest.fixture
def clock():
    return Clock(T0)


@pytest.fixture
def scheduler(config, store, broker, clock):
    return Scheduler(config, store, broker, clock=clock, master_id="m1")


def add_spider(store, name="s1"):
    store.spiders.insert_one({"_id": name, "project": name, "version": "v1", "kind": "command",
                              "results_collection": f"results_{name}"})


def make(store, cron="* * * * *", **fields):
    if store.spiders.find_one({"_id": fields.get("spider", "s1")}) is None:
        add_spider(store, fields.get("spider", "s1"))
    return schedules.create(store, {"spider": "s1", "cron": cron, **fields}, at=T0)


def fires(store, schedule_id):
    return list(store.schedule_fires.find({"schedule_id": schedule_id}).sort("fire_time", 1))


def states(store, schedule_id):
    return [(f["fire_time"] - T0, f["state"]) for f in fires(store, schedule_id)]


def tasks_of(store, schedule_id):
    return list(store.tasks.find({"schedule_id": schedule_id}).sort("fire_time", 1))


def test_fires_a_due_schedule_once_with_its_run_options(store, scheduler, clock):
    """At the fire time: one task with the schedule's args, settings, priority and
    retry, trigger `schedule`, `schedule_id` and `fire_time`; nothing more after."""
    doc = make(store, "* * * * *", args={"q": "x"}, settings={"DOWNLOAD_DELAY": 1},
               priority=4, timeout=60, retry={"max_attempts": 2, "backoff": 5})
    assert scheduler.tick(T0 + 59)["fired"] == 0
    clock.t = T0 + 60.2
    assert scheduler.tick()["fired"] == 1
    assert scheduler.tick()["fired"] == 0
    [task] = tasks_of(store, doc["_id"])
    assert task["trigger"] == "schedule" and task["fire_time"] == T0 + 60
    assert task["args"] == {"q": "x"} and task["settings"] == {"DOWNLOAD_DELAY": "1"}
    assert task["priority"] == 4 and task["timeout"] == 60
    assert task["retry"]["max_attempts"] == 2 and task["published_at"]
    [record] = fires(store, doc["_id"])
    assert record["state"] == "fired" and record["task_ids"] == [task["_id"]]
    after = store.schedules.find_one({"_id": doc["_id"]})
    assert after["next_fire_at"] == after["due_at"] == T0 + 120
    assert after["last_outcome"] == "fired" and after["last_task_ids"] == [task["_id"]]


def test_two_schedulers_racing_fire_each_tick_once(config, store, broker, clock):
    """Two masters that both believe they lead: the unique (schedule, fire time)
    key lets exactly one of them fire each tick."""
    doc = make(store, "* * * * *", overlap="allow")
    one = Scheduler(config, store, broker, clock=clock, master_id="a")
    two = Scheduler(config, store, broker, clock=clock, master_id="b")
    stale = store.schedules.find_one({"_id": doc["_id"]})
    clock.t = T0 + 60.1
    first = one.tick()
    # `two` read the schedule before `one` updated it: it tries the same fire time
    stats = {"fired": 0, "skipped": 0, "queued": 0, "failed": 0, "taken": 0}
    two.process(stale, clock.t, stats)
    assert first["fired"] == 1 and stats["taken"] == 1 and stats["fired"] == 0
    assert len(tasks_of(store, doc["_id"])) == 1
    assert [f["master"] for f in fires(store, doc["_id"])] == ["a"]


def test_overlap_skip_records_the_skip(store, scheduler, clock):
    """skip (the default): no new run while the previous one is pending or running."""
    doc = make(store, "* * * * *")
    scheduler.tick(T0 + 60)
    scheduler.tick(T0 + 120)
    assert states(store, doc["_id"]) == [(60, "fired"), (120, "skipped")]
    assert "previous run still pending" in fires(store, doc["_id"])[1]["reason"]
    store.tasks.update_many({}, {"$set": {"status": "running"}})
    scheduler.tick(T0 + 180)
    store.tasks.update_many({}, {"$set": {"status": "finished"}})
    scheduler.tick(T0 + 240)
    assert states(store, doc["_id"])[2:] == [(180, "skipped"), (240, "fired")]
    assert len(tasks_of(store, doc["_id"])) == 2


def test_overlap_allow_runs_side_by_side(store, scheduler):
    doc = make(store, "* * * * *", overlap="allow")
    for minute in (1, 2, 3):
        scheduler.tick(T0 + 60 * minute)
    assert [s for _, s in states(store, doc["_id"])] == ["fired"] * 3
    assert len(tasks_of(store, doc["_id"])) == 3


def test_overlap_queue_waits_for_the_previous_run_keeping_one_in_line(store, scheduler):
    """queue: a fire during a run waits (one at most; later ones are skipped) and
    is dispatched as soon as that run ends, with its own fire time."""
    doc = make(store, "* * * * *", overlap="queue")
    scheduler.tick(T0 + 60)
    scheduler.tick(T0 + 120)
    scheduler.tick(T0 + 180)
    assert states(store, doc["_id"]) == [(60, "fired"), (120, "queued"), (180, "skipped")]
    assert "already queued" in fires(store, doc["_id"])[2]["reason"]
    assert store.schedules.find_one({"_id": doc["_id"]})["due_at"] <= T0 + 181
    scheduler.tick(T0 + 181)  # still running: stays queued
    assert states(store, doc["_id"])[1] == (120, "queued")
    store.tasks.update_many({}, {"$set": {"status": "finished"}})
    scheduler.tick(T0 + 182)
    assert states(store, doc["_id"])[1] == (120, "fired")
    assert [t["fire_time"] - T0 for t in tasks_of(store, doc["_id"])] == [60, 120]
    after = store.schedules.find_one({"_id": doc["_id"]})
    assert after["queued_fire"] is None and after["due_at"] == T0 + 240


def test_late_fire_times_within_the_catchup_window_all_fire(store, scheduler, config):
    """A failover-sized gap: every-second schedule, nobody fired for 6 s: each of
    the 7 due fire times fires (late), none is skipped."""
    assert config.schedule_catchup >= 7
    doc = make(store, "* * * * * *", overlap="allow")
    scheduler.tick(T0 + 1.05)
    scheduler.tick(T0 + 8.05)
    assert states(store, doc["_id"]) == [(s, "fired") for s in range(1, 9)]
    assert len({t["fire_time"] for t in tasks_of(store, doc["_id"])}) == 8


def test_misfire_runs_the_latest_once_within_grace_and_records_the_rest(store, scheduler):
    """Masters down for 10 minutes: the last missed minute (30 s ago, past the
    catch-up window but within the grace) runs once; the other 9 are skipped."""
    doc = make(store, "* * * * *", overlap="allow")
    scheduler.tick(T0 + 600 + 30)
    got = states(store, doc["_id"])
    assert got == [(60 * m, "skipped") for m in range(1, 10)] + [(600, "fired")]
    assert all("missed" in f["reason"] for f in fires(store, doc["_id"])[:-1])
    assert len(tasks_of(store, doc["_id"])) == 1
    assert store.schedules.find_one({"_id": doc["_id"]})["next_fire_at"] == T0 + 660


def test_misfire_beyond_the_grace_runs_nothing(store, scheduler):
    doc = make(store, "*/5 * * * *", misfire_grace=20)
    scheduler.tick(T0 + 900 + 40)
    assert states(store, doc["_id"]) == [(300, "skipped"), (600, "skipped"), (900, "skipped")]
    assert "misfire grace (20 s)" in fires(store, doc["_id"])[-1]["reason"]
    assert tasks_of(store, doc["_id"]) == []


def test_a_long_outage_is_never_a_burst(store, scheduler):
    """Every-second schedule, masters down a day: a bounded number of records (one
    of them standing for the rest), and the catch-up window's few fires only."""
    doc = make(store, "* * * * * *", overlap="allow")
    scheduler.tick(T0 + 86_400)
    records = fires(store, doc["_id"])
    fired = [r for r in records if r["state"] == "fired"]
    skipped = [r for r in records if r["state"] == "skipped"]
    assert len(skipped) == MISSED_RECORDS + 1 and "every fire time" in skipped[-1]["reason"]
    assert len(fired) <= 11 and fired[-1]["fire_time"] == T0 + 86_400
    assert len(tasks_of(store, doc["_id"])) == len(fired)


def test_deleted_spider_disables_the_schedule_and_others_keep_firing(store, scheduler):
    """The spider is gone: the fire is recorded skipped, the schedule disabled
    with a visible reason; another schedule due in the same pass still fires."""
    gone = make(store, "* * * * *")
    add_spider(store, "s2")
    fine = schedules.create(store, {"spider": "s2", "cron": "* * * * *", "overlap": "allow"},
                            at=T0)
    store.spiders.delete_one({"_id": "s1"})
    stats = scheduler.tick(T0 + 60)
    assert stats["fired"] == 1
    doc = store.schedules.find_one({"_id": gone["_id"]})
    assert not doc["enabled"] and doc["due_at"] is None
    assert "spider 's1' was deleted" in doc["disabled_reason"]
    assert states(store, gone["_id"]) == [(60, "skipped")]
    assert "no longer exists" in fires(store, gone["_id"])[0]["reason"]
    assert states(store, fine["_id"]) == [(60, "fired")]
    assert scheduler.tick(T0 + 120)["fired"] == 1  # and it goes on


def test_no_node_online_for_all_nodes_is_a_failed_fire_not_a_crash(store, scheduler):
    doc = make(store, "* * * * *", nodes="all")
    scheduler.tick(T0 + 60)
    [record] = fires(store, doc["_id"])
    assert record["state"] == "failed" and "no node is online" in record["reason"]
    assert store.schedules.find_one({"_id": doc["_id"]})["enabled"]


def test_disabled_and_future_schedules_are_not_read(store, scheduler):
    doc = make(store, "* * * * *", enabled=False)
    make(store, "0 0 1 1 *")
    assert scheduler.tick(T0 + 3600)["schedules"] == 0
    assert fires(store, doc["_id"]) == []


def test_a_fire_left_dispatching_by_a_dead_master_is_recovered(store, scheduler, clock):
    """A claim without tasks is dispatched by the leader after STUCK_AFTER; a
    claim whose tasks were written is completed with them."""
    doc = make(store, "* * * * *", overlap="allow")
    store.schedule_fires.insert_one({"schedule_id": doc["_id"], "fire_time": T0 + 60,
                                     "state": "dispatching", "claimed_at": T0 + 120,
                                     "master": "dead", "task_ids": []})
    store.schedule_fires.insert_one({"schedule_id": doc["_id"], "fire_time": T0 + 120,
                                     "state": "dispatching", "claimed_at": T0 + 120,
                                     "master": "dead", "task_ids": []})
    store.tasks.insert_one({"_id": "t-written", "schedule_id": doc["_id"],
                            "fire_time": T0 + 120, "status": "pending"})
    assert scheduler.recover_stuck(T0 + 121) == []  # not stuck long enough yet
    clock.t = T0 + 120 + STUCK_AFTER + 1
    assert len(scheduler.recover_stuck()) == 2
    first, second = fires(store, doc["_id"])
    assert first["state"] == "fired" and len(first["task_ids"]) == 1
    assert second["state"] == "fired" and second["task_ids"] == ["t-written"]
    assert store.tasks.find_one({"_id": first["task_ids"][0]})["fire_time"] == T0 + 60


def test_history_lists_fires_newest_first_with_task_status(store, scheduler):
    doc = make(store, "* * * * *")
    for minute in (1, 2, 3):
        scheduler.tick(T0 + 60 * minute)
    page = schedules.history(store, doc["_id"], limit=2)
    assert [f["state"] for f in page["fires"]] == ["skipped", "skipped"]
    assert page["next"] == T0 + 120
    rest = schedules.history(store, doc["_id"], limit=2, before=page["next"])
    [first] = rest["fires"]
    assert first["state"] == "fired" and first["tasks"][0]["status"] == "pending"
    assert first["fire_iso"] == "2024-06-01T12:01:00+00:00" and rest["next"] is None


def test_old_fire_records_go_with_task_retention(store, scheduler, config):
    doc = make(store, "* * * * *")
    scheduler.tick(T0 + 60)
    later = T0 + 60 + config.task_retention_days * 86400 + 1
    store.schedule_fires.insert_one({"schedule_id": doc["_id"], "fire_time": later,
                                     "state": "skipped", "task_ids": []})
    assert scheduler.prune_history(later) == 1
    assert [f["fire_time"] for f in fires(store, doc["_id"])] == [later]


def test_disabling_drops_a_queued_fire_with_a_reason(store, scheduler):
    doc = make(store, "* * * * *", overlap="queue")
    scheduler.tick(T0 + 60)
    scheduler.tick(T0 + 120)
    assert states(store, doc["_id"])[1] == (120, "queued")
    schedules.set_enabled(store, doc["_id"], False, at=T0 + 121)
    assert states(store, doc["_id"])[1] == (120, "skipped")
    assert "disabled" in fires(store, doc["_id"])[1]["reason"]
