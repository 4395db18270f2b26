"""End to end: a real `crawlfleet master` fires a schedule, a real node runs
the spider, it fails, and the master's leader posts the alert to a local
webhook receiver — the whole unattended chain."""

import json

from helpers import Processes, make_config, wait_for
from crawlfleet import schedules
from crawlfleet.store import Store
from test_alerts import Receiver


def failing_project(folder):
    project = folder / "failing"
    project.mkdir(parents=True)
    (project / "main.py").write_text("import sys\nprint('about to fail')\nsys.exit(3)\n")
    (project / "crawlfleet.json").write_text(json.dumps(
        {"spiders": [{"name": "failing", "command": ["python", "main.py"]}]}))


def test_scheduled_crawl_fails_and_the_webhook_hears_of_it(tmp_path, mongo_server, demo_site):
    receiver = Receiver()
    spiders = tmp_path / "spiders"
    failing_project(spiders)
    # the receiver is on loopback, which webhooks may reach only when allowed
    config = make_config(tmp_path, mongo_server, spiders_path=str(spiders),
                         alert_webhook=receiver.url, alert_allow_private=True)
    store = Store(config)
    store.ensure_indexes()
    procs = Processes(config, demo_site, tmp_path)
    try:
        procs.master()
        wait_for(lambda: store.spiders.find_one({"_id": "failing"}), timeout=30,
                 what="discovery")
        procs.node(store)
        doc = schedules.create(store, {"spider": "failing", "cron": "* * * * * */2",
                                       "args": {"who": "cron"}})
        task = wait_for(lambda: store.tasks.find_one({"schedule_id": doc["_id"],
                                                      "status": "error"}),
                        timeout=60, what="a scheduled task that failed")
        schedules.set_enabled(store, doc["_id"], False)
        body = wait_for(lambda: next((b for b in receiver.bodies
                                      if b["task"]["id"] == task["_id"]), None),
                        timeout=30, what="the alert")
        assert body["event"] == "error" and body["task"]["exit_code"] == 3
        assert body["task"]["schedule_id"] == doc["_id"]
        assert body["task"]["fire_time"] == task["fire_time"]
        assert task["trigger"] == "schedule" and task["args"] == {"who": "cron"}
        fire = store.schedule_fires.find_one({"schedule_id": doc["_id"],
                                              "fire_time": task["fire_time"]})
        assert fire["state"] == "fired" and task["_id"] in fire["task_ids"]
        assert store.tasks.find_one({"_id": task["_id"]})["alert"]["deliveries"][0]["ok"]
    finally:
        procs.stop_all()
        receiver.close()
        store.client.drop_database(config.mongo_db)
        store.close()
