"""The embedded broker under concurrent writers and readers: every message is
delivered exactly once and none is ever read half-written."""

import json
import multiprocessing
import os
import threading
import zlib

import pytest
from kombu import Consumer, Producer

from crawlfleet.broker import Topology, connect
from crawlfleet.config import Config
from helpers import wait_for

PRODUCERS = 4
CONSUMERS = 4
PER_PRODUCER = 600  # 2,400 messages racing 4 readers


def _config(home):
    # A prefix per folder: kombu keeps declared bindings per process, by name.
    return Config.from_dict({"home": str(home), "broker_url": "filesystem://",
                             "queue_prefix": f"stress{zlib.crc32(str(home).encode()):08x}"})


def _produce(home, producer_no, ready):
    config = _config(home)
    topology = Topology(config.queue_prefix)
    ready.wait()
    with connect(config) as conn:
        producer = Producer(conn.channel())
        for n in range(PER_PRODUCER):
            producer.publish({"task_id": f"p{producer_no}-{n}", "pad": "x" * (n % 7 * 40000)},
                             exchange=topology.task_exchange, routing_key="any",
                             declare=[topology.shared_queue], serializer="json")


def _consume(home, out_path, total_done, ready):
    config = _config(home)
    topology = Topology(config.queue_prefix)
    seen = []
    ready.wait()
    with connect(config) as conn:
        def on_message(body, message):
            seen.append(body["task_id"])
            message.ack()

        with Consumer(conn.channel(), queues=[topology.shared_queue], callbacks=[on_message],
                      accept=["json"], prefetch_count=10):
            while not total_done.is_set():
                try:
                    conn.drain_events(timeout=0.2)
                except TimeoutError:
                    pass
    with open(out_path, "w") as f:
        json.dump(seen, f)


def test_thousands_of_concurrent_publishes_and_consumes_lose_and_garble_nothing(tmp_path):
    """4 writer and 4 reader processes share the embedded broker: 2,400 messages,
    each consumed exactly once, no reader ever fails on a partial file."""
    ctx = multiprocessing.get_context("fork")
    ready, done = ctx.Event(), ctx.Event()
    _config(tmp_path)  # validates the settings once here
    with connect(_config(tmp_path)) as conn:  # declare the queue before anyone publishes
        Topology(_config(tmp_path).queue_prefix).shared_queue(conn.channel()).declare()
    writers = [ctx.Process(target=_produce, args=(tmp_path, n, ready)) for n in range(PRODUCERS)]
    outputs = [tmp_path / f"seen-{n}.json" for n in range(CONSUMERS)]
    readers = [ctx.Process(target=_consume, args=(tmp_path, out, done, ready)) for out in outputs]
    for proc in writers + readers:
        proc.start()
    ready.set()
    try:
        for proc in writers:
            proc.join(120)
            assert proc.exitcode == 0, "a writer failed"
        queue_dir = tmp_path / "broker" / "queue"

        def drained():
            return not [n for n in os.listdir(queue_dir) if n.endswith(".msg")]

        deadline_checks = 0
        while not drained() and deadline_checks < 1200:
            assert all(p.is_alive() for p in readers), "a reader died while reading"
            done.wait(0.1)
            deadline_checks += 1
        assert drained(), "messages were left in the queue"
    finally:
        done.set()
        for proc in writers + readers:
            proc.join(30)
            if proc.is_alive():
                proc.kill()
    assert [p.exitcode for p in readers] == [0] * CONSUMERS, "a reader died"
    seen = [tid for out in outputs for tid in json.loads(out.read_text())]
    expected = {f"p{p}-{n}" for p in range(PRODUCERS) for n in range(PER_PRODUCER)}
    assert len(seen) == len(expected), f"{len(seen) - len(expected)} delivered twice or lost"
    assert set(seen) == expected


def test_an_unreadable_message_is_dropped_and_the_next_one_delivered(tmp_path, caplog):
    """A damaged message file is logged and skipped; the consumer stays up."""
    config = _config(tmp_path)
    topology = Topology(config.queue_prefix)
    with connect(config) as conn:
        channel = conn.channel()
        topology.shared_queue(channel).declare()
        queue_dir = tmp_path / "broker" / "queue"
        (queue_dir / f"0_damaged.{topology.shared_queue.name}.msg").write_bytes(b'{"bod')
        Producer(channel).publish({"task_id": "good"}, exchange=topology.task_exchange,
                                  routing_key="any", serializer="json")
        got = []
        with Consumer(channel, queues=[topology.shared_queue], accept=["json"],
                      callbacks=[lambda body, message: (got.append(body), message.ack())]):
            conn.drain_events(timeout=5)
    assert got == [{"task_id": "good"}]
    assert "unreadable broker message" in caplog.text


def test_fanout_bindings_survive_concurrent_binds(tmp_path):
    """Control queues bound at once by many processes all stay in the exchange table."""
    ctx = multiprocessing.get_context("fork")
    ready = ctx.Event()

    def bind(n):
        config = _config(tmp_path)
        topology = Topology(config.queue_prefix)
        ready.wait()
        with connect(config) as conn:
            topology.control_queue(f"n{n}")(conn.channel()).declare()

    procs = [ctx.Process(target=bind, args=(n,)) for n in range(12)]
    for proc in procs:
        proc.start()
    ready.set()
    for proc in procs:
        proc.join(60)
    assert [p.exitcode for p in procs] == [0] * 12
    with connect(_config(tmp_path)) as conn:
        table = conn.channel().get_table(f"{_config(tmp_path).queue_prefix}-control")
    assert len({row.queue for row in table}) == 12


@pytest.mark.parametrize("payload", [{"task_id": "a"}, {"op": "cancel", "task_id": "b"}])
def test_control_messages_reach_every_bound_queue(tmp_path, payload):
    """A fan-out message is copied to each node's control queue."""
    config = _config(tmp_path)
    topology = Topology(config.queue_prefix)
    with connect(config) as conn:
        channel = conn.channel()
        queues = [topology.control_queue(f"n{n}")(channel) for n in range(3)]
        for queue in queues:
            queue.declare()
        Producer(channel).publish(payload, exchange=topology.control_exchange,
                                  routing_key="", serializer="json")
        for queue in queues:
            message = queue.get(no_ack=True)
            assert message is not None and message.payload == payload


def test_a_waiting_consumer_is_woken_by_the_publish_not_by_polling(tmp_path):
    """A consumer that would look again only after an hour takes a message as soon
    as it is published: publishers ring the waiting consumers' doorbells."""
    config = _config(tmp_path)
    topology = Topology(config.queue_prefix)
    bells = tmp_path / "broker" / "doorbells"
    got = []
    with connect(config) as conn:
        conn.transport_options["polling_interval"] = 3600
        channel = conn.channel()
        topology.shared_queue(channel).declare()

        def consume():
            with Consumer(channel, queues=[topology.shared_queue], accept=["json"],
                          callbacks=[lambda body, message: (got.append(body), message.ack())]):
                conn.drain_events(timeout=600)

        consumer = threading.Thread(target=consume, daemon=True)
        consumer.start()
        wait_for(lambda: list(bells.glob("*.bell")), 30, "the consumer's doorbell")
        with connect(config) as publisher:
            Producer(publisher.channel()).publish(
                {"task_id": "rung"}, exchange=topology.task_exchange, routing_key="any",
                serializer="json")
        consumer.join(120)
        assert not consumer.is_alive(), "the publish did not wake the waiting consumer"
    assert got == [{"task_id": "rung"}]
    assert not list(bells.glob("*.bell")), "a closed connection leaves its doorbell behind"


def test_a_doorbell_nobody_listens_on_is_removed_by_the_next_publish(tmp_path):
    """A consumer killed without closing leaves its pipe: the next publish clears it."""
    config = _config(tmp_path)
    topology = Topology(config.queue_prefix)
    with connect(config) as conn:
        channel = conn.channel()
        topology.shared_queue(channel).declare()
        stale = tmp_path / "broker" / "doorbells" / "999999-deadbeef.bell"
        os.mkfifo(stale, 0o600)
        Producer(channel).publish({"task_id": "x"}, exchange=topology.task_exchange,
                                  routing_key="any", serializer="json")
    assert not stale.exists()
