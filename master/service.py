"""The master process: discover projects at start, then reconcile forever."""

from __future__ import annotations

import logging
import os
import socket
import threading
from typing import TYPE_CHECKING, Any

from crawlfleet.broker import Broker
from master import discovery, housekeeping
from crawlfleet.models import now
from master.reconciler import Reconciler
from master.alerts import Alerter
from master.leader import Lease
from master.scheduler import Scheduler

if TYPE_CHECKING:
    from crawlfleet.config import Config
    from crawlfleet.store import Store

log = logging.getLogger(__name__)


class Master:
    def __init__(self, config: Config, store: Store, broker: Broker | None = None) -> None:
        self.config = config
        self.store = store
        self.broker = broker or Broker(config)
        self.reconciler = Reconciler(config, store, self.broker)
        self.stopped = threading.Event()
        self.master_id = f"{socket.gethostname()}-{os.getpid()}"
        # Every master runs these threads; only the lease holder fires schedules
        # and sends alerts (master/leader.py, master/scheduler.py, master/alerts.py).
        self.lease = Lease(store, "scheduler", self.master_id, config.schedule_lease_ttl)
        self.scheduler = Scheduler(config, store, self.broker, self.lease,
                                   master_id=self.master_id)
        self.alerter = Alerter(config, store, self.lease, master_id=self.master_id)
        self.threads: list[threading.Thread] = []

    def start(self) -> dict[str, Any]:
        self.store.ensure_indexes()
        self.start_scheduling()
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

    def serve_forever(self) -> None:
        last_housekeeping = 0.0
        while not self.stopped.is_set():
            try:
                self.store.masters.update_one({"_id": self.master_id},
                                              {"$set": {"heartbeat_at": now()}})
                self.reconciler.run_once()
                if now() - last_housekeeping >= self.config.housekeeping_interval:
                    housekeeping.prune_ledger(self.store, self.config)
                    housekeeping.prune_label_selectors(self.store)
                    housekeeping.prune_crawl_users(self.store, self.config)
                    last_housekeeping = now()
            except Exception:
                log.exception("reconciler pass failed; next pass in %.1f s",
                              self.config.reconcile_interval)
            self.stopped.wait(self.config.reconcile_interval)

    def start_scheduling(self) -> None:
        """The lease, scheduler and alert threads; they end when `stopped` is set."""
        for name, target in (("lease", self.lease.run), ("scheduler", self.scheduler.run),
                             ("alerts", self.alerter.run)):
            thread = threading.Thread(target=target, args=(self.stopped,), daemon=True,
                                      name=f"master-{name}")
            thread.start()
            self.threads.append(thread)

    def stop(self) -> None:
        self.stopped.set()

    def close(self) -> None:
        self.stopped.set()
        for thread in self.threads:  # the lease thread gives the lease up as it ends
            thread.join(timeout=10)
        try:
            self.store.masters.delete_one({"_id": self.master_id})
        except Exception as exc:
            log.warning("could not deregister this master: %s", exc)
