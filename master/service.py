"""The master process: discover projects at start, then reconcile forever."""

import logging
import os
import socket
import threading

from crawlfleet.broker import Broker
from master import discovery
from crawlfleet.models import now
from master.reconciler import Reconciler

log = logging.getLogger(__name__)


class Master:
    def __init__(self, config, store, broker=None):
        self.config = config
        self.store = store
        self.broker = broker or Broker(config)
        self.reconciler = Reconciler(config, store, self.broker)
        self.stopped = threading.Event()
        self.master_id = f"{socket.gethostname()}-{os.getpid()}"

    def start(self):
        self.store.ensure_indexes()
        report = discovery.scan(self.store, self.config)
        for error in report["errors"]:
            log.warning("discovery: %s: %s", error["path"], error["error"])
        log.info("discovered %d project(s)", len(report["projects"]))
        # `up` waits for this before it says the platform is ready.
        self.store.masters.update_one(
            {"_id": self.master_id},
            {"$set": {"started_at": now(), "discovered_at": now(), "heartbeat_at": now(),
                      "projects": len(report["projects"]), "errors": report["errors"]}},
            upsert=True)
        return report

    def serve_forever(self):
        while not self.stopped.is_set():
            try:
                self.store.masters.update_one({"_id": self.master_id},
                                              {"$set": {"heartbeat_at": now()}})
                self.reconciler.run_once()
            except Exception:
                log.exception("reconciler pass failed; next pass in %.1f s",
                              self.config.reconcile_interval)
            self.stopped.wait(self.config.reconcile_interval)

    def stop(self):
        self.stopped.set()

    def close(self):
        try:
            self.store.masters.delete_one({"_id": self.master_id})
        except Exception as exc:
            log.warning("could not deregister this master: %s", exc)
