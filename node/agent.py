"""The node agent: registers, heartbeats, consumes task messages and runs them.

A message only announces a task id. The agent claims the task in the ledger
with one atomic update (pending → running, stamped with this node and this
process's session); a message whose task cannot be claimed (already running
elsewhere, finished, cancelled, unknown) is acknowledged and dropped. The
message of a claimed task is acknowledged only after the task's final status
is written. Prefetch equals the node's run slots, so the broker never hands a
node more tasks than it can start. The operator's settings (mode, run slots,
labels) are read every second and applied to the consumer (node/control.py).
"""

import logging
import os
import platform
import queue
import re
import shutil
import socket
import threading
import time
import uuid

import pymongo.errors
from kombu.mixins import ConsumerMixin

from crawlfleet import __version__, counters, ledger, nodehistory
from crawlfleet import labels as labelling
from crawlfleet.broker import Topology, connect
from crawlfleet.errors import ConfigError
from crawlfleet.models import NodeStatus, TaskStatus, default_node_id, now
from crawlfleet.sandbox import Sandbox
from crawlfleet.venvs import Virtualenvs
from node.control import NodeControl
from node.filecache import FileCache
from node.prewarm import Prewarmer
from node.runner import RunKit, TaskRun
from node.warmpool import WarmPool

log = logging.getLogger(__name__)

TASK_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
WATCH_INTERVAL = 1.0


def memory_percent():
    try:
        info = dict(line.split(":", 1) for line in open("/proc/meminfo"))
        total = int(info["MemTotal"].split()[0])
        avail = int(info["MemAvailable"].split()[0])
        return round(100.0 * (total - avail) / total, 1)
    except (OSError, KeyError, ValueError):
        return None


def disk_percent(path):
    """How full the file system holding `path` (the node's home: versions,
    environments, task folders, feeds) is, in percent."""
    try:
        usage = shutil.disk_usage(path)
        return round(100.0 * usage.used / usage.total, 1) if usage.total else None
    except OSError:
        return None


class NodeAgent(ConsumerMixin):
    def __init__(self, config, store):
        self.config = config
        self.store = store
        self.node_id = config.node_id or default_node_id()
        self.session = uuid.uuid4().hex
        self.topology = Topology(config.queue_prefix)
        self.control = NodeControl(store, self.node_id, config.max_runners, self.topology)
        # one sample a minute of what the heartbeat reports, for the node page's charts
        self.sampler = nodehistory.Sampler(store, self.node_id, config.node_history_days)
        self.task_consumer = None
        self.connection = connect(config)
        self.cache = FileCache(store, config.home_path / "cache")
        self.sandbox = Sandbox(config)
        self.venvs = Virtualenvs(config.home_path / "venvs", sandbox=self.sandbox)
        self.warm = (WarmPool(config.warm_idle_seconds, self.sandbox, config)
                     if config.warm_start else None)
        self.prewarm = (Prewarmer(store, self.cache, self.venvs, self.warm)
                        if self.warm is not None else None)
        self.kit = RunKit(store=store, config=config, cache=self.cache, venvs=self.venvs,
                          node_id=self.node_id, session=self.session, warm=self.warm,
                          sandbox=self.sandbox)
        self.runs = {}
        self.runs_lock = threading.Lock()
        self.acks = queue.SimpleQueue()
        self.channel = None
        self.stopped = threading.Event()

    # -- life cycle -----------------------------------------------------------
    def register(self):
        node = self.store.nodes.find_one({"_id": self.node_id})
        if (node and node.get("session") != self.session
                and node.get("status") == NodeStatus.ONLINE.value
                and now() - (node.get("heartbeat_at") or 0) < self.config.node_timeout):
            raise ConfigError(
                f"node id {self.node_id!r} is in use by a running node "
                f"(pid {node.get('pid')} on {node.get('hostname')}); "
                "give this one another id with CRAWLFLEET_NODE_ID or --id")
        own_labels = labelling.validate(self.config.node_labels, "node_labels")
        self.store.nodes.update_one(  # before the refresh: the labels this node starts with
            {"_id": self.node_id}, {"$set": {f"labels.{k}": v for k, v in own_labels.items()}}
            if own_labels else {"$setOnInsert": {"labels": {}}}, upsert=True)
        self.control.refresh()  # the mode, slots and labels an operator left on this node
        stamp = now()
        self.store.nodes.update_one({"_id": self.node_id}, {"$set": {
            "hostname": socket.gethostname(), "pid": os.getpid(), "session": self.session,
            "max_runners": self.slots, "own_slots": self.control.own_slots,
            "status": NodeStatus.ONLINE.value, "started_at": stamp,
            "heartbeat_at": stamp, "running": [], "version": __version__,
            "platform": platform.platform(), "cpus": os.cpu_count(),
            "sandbox": self.sandbox.state.describe(),
        }}, upsert=True)
        # Tasks an earlier process of this node was running cannot still be running.
        swept = ledger.sweep_node_restart(self.store, self.node_id, self.session)
        if swept:
            log.warning("marked %d task(s) of a previous run of this node abnormal", swept)
        log.info("node %s registered (session %s, %d runners)", self.node_id,
                 self.session[:8], self.slots)

    def start_background(self):
        threading.Thread(target=self._heartbeat_loop, name="heartbeat", daemon=True).start()
        if self.prewarm is not None:
            self.prewarm.start(self.stopped)

    def stop(self):
        """Ask the consume loop to end (safe from a signal handler)."""
        self.should_stop = True
        self.stopped.set()

    def shutdown(self, grace=None):
        """Stop the spiders still running and record them; then deregister."""
        with self.runs_lock:
            runs = list(self.runs.values())
        for run in runs:
            run.shutdown_reason = "the node shut down while the task ran"
            run.cancel()
        deadline = time.monotonic() + (grace or self.config.cancel_grace * 3 + 5)
        for run in runs:
            run.thread.join(max(0.1, deadline - time.monotonic()))
        if self.warm is not None:
            self.warm.close()
        try:
            self.store.nodes.update_one({"_id": self.node_id, "session": self.session},
                                        {"$set": {"status": NodeStatus.STOPPED.value,
                                                  "running": []}})
        except pymongo.errors.PyMongoError as exc:
            log.warning("could not record the node as stopped: %s", exc)

    # -- consuming --------------------------------------------------------------
    @property
    def slots(self):
        return self.control.slots

    def get_consumers(self, Consumer, channel):
        self.control.forget_applied()
        self.task_consumer = tasks = Consumer(
            queues=[self.topology.shared_queue, self.topology.node_queue(self.node_id)],
            callbacks=[self.on_task_message], accept=["json"], prefetch_count=self.slots)
        control = Consumer(
            queues=[self.topology.control_queue(self.node_id)],
            callbacks=[self.on_control_message], accept=["json"], no_ack=True)
        return [tasks, control]

    def on_consume_ready(self, connection, channel, consumers, **kwargs):
        self.channel = channel
        self.apply_control()
        log.info("node %s consuming from %s", self.node_id, connection.as_uri())

    def on_connection_error(self, exc, interval):
        log.warning("broker unreachable (%s); retrying in %.1f s", exc, interval)

    def on_decode_error(self, message, exc):
        log.error("dropped a message that is not valid JSON (%s): %r", exc, message.body[:200])
        message.ack()

    def apply_control(self):
        """Mode, run slots and label queues as last read (on the consuming thread)."""
        amqp = self.connection.transport.driver_type == "amqp"
        self.control.apply(self.task_consumer, self.channel, amqp)

    def on_iteration(self):
        if self.task_consumer is not None and self.channel is not None:
            self.apply_control()
        while True:
            try:
                message = self.acks.get_nowait()
            except queue.Empty:
                return
            if message.channel is not self.channel:
                # It came on a connection since lost: the broker gives it out again,
                # and the ledger drops that copy.
                log.info("not acking a message from a previous connection")
                continue
            try:
                message.ack()
            except (self.connection.connection_errors + self.connection.channel_errors) as exc:
                # A failed ack means the connection is gone, even when no read has
                # noticed yet (all slots busy: nothing polls the broker). Reconnect.
                log.warning("ack failed (%s); reconnecting to the broker", exc)
                raise

    def on_task_message(self, body, message):
        task_id = body.get("task_id") if isinstance(body, dict) else None
        if not isinstance(task_id, str) or not TASK_ID_RE.match(task_id):
            log.error("dropped a malformed task message: %r", body)
            message.ack()
            return
        with self.runs_lock:
            if task_id in self.runs:
                message.ack()
                return
            busy = len(self.runs)
        if not self.control.accepting or busy >= self.slots:
            # Delivered just before a drain, a disable or fewer slots took effect:
            # back to the broker, for another node or for later.
            message.requeue()
            return
        try:
            if self.via_label_queue(message) and not self.may_take(task_id):
                message.requeue()
                return
            task = self.claim(task_id)
        except pymongo.errors.PyMongoError as exc:
            log.warning("cannot reach the store to claim %s (%s); message requeued", task_id, exc)
            time.sleep(1)
            message.requeue()
            return
        if task is None:
            message.ack()
            return
        self.start_run(task, message)

    def on_control_message(self, body, message):
        if not isinstance(body, dict) or body.get("op") != "cancel":
            log.error("dropped a malformed control message: %r", body)
            return
        with self.runs_lock:
            run = self.runs.get(body.get("task_id"))
        if run is not None:
            log.info("cancel requested for task %s", run.task_id)
            run.cancel()

    # -- the ledger ---------------------------------------------------------------
    @staticmethod
    def via_label_queue(message):
        """Whether a message came through a label selector's queue: only there
        may a node hold a task whose labels it does not carry (the shared queue
        holds tasks that ask for none, a node's own queue tasks named for it)."""
        return Topology.is_label_route((message.delivery_info or {}).get("routing_key"))

    def may_take(self, task_id):
        """Whether this node carries the labels a task for any node asks for. A
        message this node may not take came through a label queue it no longer
        satisfies: it goes back, and the next refresh drops that queue."""
        task = self.store.tasks.find_one({"_id": task_id}, {"labels": 1, "target": 1})
        if task is None or task.get("target") not in (None, "any"):
            return True  # the claim decides (unknown task, or addressed to a node by id)
        with self.control.lock:
            carried = dict(self.control.labels)
        if labelling.matches(task.get("labels"), carried):
            return True
        log.info("task %s asks for labels %s this node does not carry; requeued", task_id,
                 labelling.describe(task.get("labels")))
        return False

    def claim(self, task_id):
        """Take a pending task for this node, or explain in the log why not."""
        task = ledger.claim(self.store, task_id, self.node_id, self.session)
        if task is not None:
            if task.get("cancel_requested"):
                ledger.finish(self.store, task_id, self.session, TaskStatus.CANCELLED,
                              error="cancelled before it started")
                return None
            return task
        current = self.store.tasks.find_one({"_id": task_id}, {"status": 1, "node_id": 1})
        if current is None:
            log.warning("dropped a message for unknown task %s", task_id)
        else:
            log.info("dropped a message for task %s: it is %s (node %s)", task_id,
                     current["status"], current.get("node_id"))
        return None

    def start_run(self, task, message):
        run = TaskRun(task, self.kit)
        run.thread = threading.Thread(target=self._run_then_ack, args=(run, message),
                                      name=f"task-{task['_id']}", daemon=True)
        with self.runs_lock:
            self.runs[task["_id"]] = run
        log.info("task %s: running %s", task["_id"], task["spider"])
        run.thread.start()

    def _run_then_ack(self, run, message):
        try:
            status = run.run()
            log.info("task %s: %s", run.task_id, status)
        finally:
            with self.runs_lock:
                self.runs.pop(run.task_id, None)
            self.acks.put(message)
        counters.add_task_items(self.store, run.task_id, self.session)  # for /metrics

    # -- heartbeat and ledger watch ---------------------------------------------------
    def _heartbeat_loop(self):
        last_beat = 0.0
        last_housekeeping = time.monotonic()
        while not self.stopped.is_set():
            try:
                if time.monotonic() - last_beat >= self.config.heartbeat_interval:
                    self._beat()
                    last_beat = time.monotonic()
                self._watch_running()
                self.control.refresh()
                if self.warm is not None:
                    self.warm.prune()
                if time.monotonic() - last_housekeeping >= self.config.housekeeping_interval:
                    self.prune_local()
                    last_housekeeping = time.monotonic()
            except pymongo.errors.PyMongoError as exc:
                log.warning("store unreachable from the heartbeat: %s", exc)
            self.stopped.wait(WATCH_INTERVAL)

    def prune_local(self):
        """Forget versions and environments this node has not used for a while."""
        if self.config.cache_retention_days <= 0:
            return
        with self.runs_lock:
            in_use = {run.task["version"] for run in self.runs.values()}
        older_than = self.config.cache_retention_days * 86400
        removed = self.cache.prune(older_than, keep=in_use) + self.venvs.prune(older_than)
        if removed:
            log.info("retention: removed %d unused cache folders", len(removed))

    def _beat(self):
        with self.runs_lock:
            running = list(self.runs)
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
        memory = memory_percent()
        self.store.nodes.update_one({"_id": self.node_id, "session": self.session}, {"$set": {
            "heartbeat_at": now(), "status": NodeStatus.ONLINE.value, "running": running,
            "busy": len(running), "free": max(0, self.slots - len(running)),
            "max_runners": self.slots,
            "load": load, "memory_percent": memory,
            "disk_percent": disk_percent(self.config.home_path),
        }})
        self.sampler.offer(load, memory, len(running), self.slots)

    def _watch_running(self):
        """Stop runs the ledger says to stop: cancel asked, or the claim was lost."""
        with self.runs_lock:
            runs = dict(self.runs)
        if not runs:
            return
        for doc in self.store.tasks.find({"_id": {"$in": list(runs)}},
                                         {"status": 1, "session": 1, "cancel_requested": 1}):
            run = runs[doc["_id"]]
            if doc.get("cancel_requested"):
                run.cancel()
            elif doc.get("session") not in (None, self.session) or (
                    doc.get("status") != TaskStatus.RUNNING.value and run.proc is not None):
                run.shutdown_reason = f"the ledger gave this task up ({doc.get('status')})"
                run.disown(run.shutdown_reason)
                run.cancel()
