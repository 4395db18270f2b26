"""Tests for master/leader.py (the scheduler lease, with injected clocks), and
the multi-master guarantee in real time: three `crawlfleet master` processes,
an every-second schedule, the leader SIGKILLed twice — every fire time fires
exactly once."""

import json
import os
import signal
import threading
import time

import pytest

from helpers import Processes, make_config, stop_group, wait_for
from crawlfleet import schedules
from crawlfleet.store import Store
from master.leader import SAFETY_MARGIN, Lease


class Clock:
    def __init__(self, t=1000.0):
        self.t = t

    def __call__(self):
        return self.t


def lease(store, owner, clock, monotonic=None, ttl=4.0):
    return Lease(store, "scheduler", owner, ttl, clock=clock, monotonic=monotonic or clock)


def test_one_holder_renewals_and_takeover_after_expiry(store):
    """The first master takes the lease; a second cannot while it is renewed;
    once it lapses the second takes it, with a new term, and the first knows."""
    clock = Clock()
    a, b = lease(store, "a", clock), lease(store, "b", clock)
    assert a.refresh() and a.is_leader() and a.term == 1
    assert not b.refresh() and not b.is_leader()
    clock.t += 3.0
    assert a.refresh() and not b.refresh()        # renewed: good for 4 s more
    clock.t += 4.5                                # a stopped renewing
    assert not a.is_leader()                      # its own deadline passed first
    assert b.refresh() and b.term == 2 and b.leader_since == clock.t
    assert not a.refresh() and not a.is_leader()
    assert store.leases.find_one({"_id": "scheduler"})["owner"] == "b"


def test_a_leader_stops_acting_before_its_lease_can_lapse(store):
    """is_leader() runs on the holder's own monotonic clock and ends a margin
    before the TTL, even if no renewal was attempted (a stalled process)."""
    clock, mono = Clock(), Clock(50.0)
    a = lease(store, "a", clock, monotonic=mono)
    assert a.refresh()
    mono.t += 4.0 * (1 - SAFETY_MARGIN) - 0.01
    assert a.is_leader()
    mono.t += 0.02
    assert not a.is_leader()


def test_release_hands_over_at_once(store):
    clock = Clock()
    a, b = lease(store, "a", clock), lease(store, "b", clock)
    assert a.refresh()
    a.release()
    assert not a.is_leader() and b.refresh()


def test_racing_masters_never_share_the_lease(config):
    """Eight masters (threads, each its own client) refreshing at once, many
    rounds, with the lease expiring between rounds: one holder per round."""
    stores = [Store(config) for _ in range(8)]
    clock = Clock()
    leases = [lease(s, f"m{i}", clock, monotonic=time.monotonic) for i, s in enumerate(stores)]
    try:
        for _ in range(6):
            clock.t += 10.0  # everyone's lease lapsed
            results = [None] * len(leases)
            barrier = threading.Barrier(len(leases))

            def go(i):
                barrier.wait()
                results[i] = leases[i].refresh()

            threads = [threading.Thread(target=go, args=(i,)) for i in range(len(leases))]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert sum(results) == 1, results
    finally:
        stores[0].client.drop_database(config.mongo_db)
        for s in stores:
            s.close()


# -- three real masters, the leader killed twice ----------------------------------

def tick_project(folder):
    """A one-spider command project: discovery registers it without Scrapy."""
    project = folder / "tick"
    project.mkdir(parents=True)
    (project / "main.py").write_text("print('tick')\n")
    (project / "crawlfleet.json").write_text(json.dumps(
        {"spiders": [{"name": "tick", "command": ["python", "main.py"]}]}))


@pytest.fixture
def cluster(tmp_path, mongo_server, demo_site):
    spiders = tmp_path / "spiders"
    tick_project(spiders)
    config = make_config(tmp_path, mongo_server, spiders_path=str(spiders))
    store = Store(config)
    store.ensure_indexes()
    procs = Processes(config, demo_site, tmp_path)
    yield config, store, procs
    procs.stop_all()
    store.client.drop_database(config.mongo_db)
    store.close()


def test_three_masters_leader_killed_twice_every_tick_fires_exactly_once(cluster):
    """The guarantee (README, Schedules): a failover lasts at most about the lease
    TTL, well inside the catch-up window, so no fire time is missed and none
    fires twice: every second from the first fire to the end has exactly one
    record, `fired`, and exactly one task — across three leaders."""
    config, store, procs = cluster
    masters = {}
    for _ in range(3):
        proc = procs.master()
        masters[proc.pid] = proc
    wait_for(lambda: store.spiders.find_one({"_id": "tick"}), timeout=30, what="discovery")

    def leader_pid():
        doc = store.leases.find_one({"_id": "scheduler"})
        if doc and doc["expires_at"] > time.time():
            return int(doc["owner"].rsplit("-", 1)[1])
        return None

    wait_for(leader_pid, timeout=30, what="a leader")
    doc = schedules.create(store, {"spider": "tick", "cron": "* * * * * *",
                                   "overlap": "allow"})
    sid = doc["_id"]
    wait_for(lambda: store.schedule_fires.find_one({"schedule_id": sid}), timeout=15,
             what="the first fire")
    def fired_by(pid):
        """Fire records the master of `pid` has recorded as fired (ledger facts)."""
        return [r for r in store.schedule_fires.find({"schedule_id": sid, "state": "fired"},
                                                     {"fire_time": 1, "master": 1})
                if str(r.get("master", "")).endswith(f"-{pid}")]

    def leader_has_fired(count):
        """Wait until the current leader has fired `count` ticks; returns its pid."""
        return wait_for(lambda: (lambda pid: pid if pid and len(fired_by(pid)) >= count
                                 else None)(leader_pid()),
                        timeout=30, what=f"the leader firing {count} ticks")

    killed = []
    for _ in range(2):
        leader_has_fired(4)
        victim = leader_pid()
        assert victim in masters and masters[victim].poll() is None
        os.killpg(victim, signal.SIGKILL)
        masters[victim].wait(10)
        killed.append((victim, time.time()))
        wait_for(lambda: leader_pid() not in (None, victim), timeout=15, what="a new leader")
    last = leader_has_fired(4)
    # The leader fires in order, catch-up first: every fire time up to its latest
    # fired one is handled by now.
    end = max(r["fire_time"] for r in fired_by(last))
    survivors = [p for p in masters.values() if p.poll() is None]
    assert len(survivors) == 1
    for proc in survivors:
        stop_group(proc)

    records = list(store.schedule_fires.find({"schedule_id": sid}).sort("fire_time", 1))
    first = records[0]["fire_time"]
    window = [r for r in records if r["fire_time"] <= end]
    expected = [first + i for i in range(int(end - first) + 1)]
    assert [r["fire_time"] for r in window] == expected, "a fire time missing or twice"
    assert {r["state"] for r in window} == {"fired"}, [
        (r["fire_time"], r["state"], r.get("reason")) for r in window if r["state"] != "fired"]
    tasks = list(store.tasks.find({"schedule_id": sid}, {"fire_time": 1}))
    per_tick = {}
    for task in tasks:
        per_tick[task["fire_time"]] = per_tick.get(task["fire_time"], 0) + 1
    assert all(per_tick.get(t) == 1 for t in expected), "a tick made no task, or two"
    assert max(per_tick.values()) == 1
    firing_masters = [r["master"] for r in window]
    assert len(set(firing_masters)) == 3, "the schedule did not move to a new leader twice"
    late = max(r["late"] for r in window)
    assert late < config.schedule_catchup
    print(f"\n{len(window)} fire times over {end - first:.0f} s, 3 leaders, "
          f"kills at {[round(k - first, 1) for _, k in killed]} s, worst lateness {late:.2f} s")
