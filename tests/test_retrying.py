"""The named retry policies: how many tries, how long between them, what stops them."""

import pymongo.errors
import pytest

from crawlfleet.retrying import (ALERT_DELIVERY, FINAL_STATUS, STORE_OUTAGE, STORE_UNREACHABLE,
                                 poll_until)


def flaky(failures, error=pymongo.errors.AutoReconnect("store away")):
    """An operation that fails `failures` times, then answers "ok"."""
    calls = []

    def operation():
        calls.append(1)
        if len(calls) <= failures:
            raise error
        return "ok"

    return operation, calls


def test_waits_double_up_to_the_cap():
    assert STORE_OUTAGE.waits() == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0, 10.0]
    assert ALERT_DELIVERY.waits() == [1.0, 2.0]
    assert len(FINAL_STATUS.waits()) == 29 and max(FINAL_STATUS.waits()) == 10.0


def test_an_outage_shorter_than_the_policy_is_waited_out():
    sleeps, told = [], []
    operation, calls = flaky(3)
    result = STORE_OUTAGE.call(operation, sleep=sleeps.append,
                               on_retry=lambda exc, attempt, wait: told.append((attempt, wait)))
    assert result == "ok" and len(calls) == 4
    assert sleeps == [0.5, 1.0, 2.0]
    assert told == [(1, 0.5), (2, 1.0), (3, 2.0)]


def test_a_lasting_outage_raises_the_last_error_after_every_attempt():
    sleeps = []
    operation, calls = flaky(100)
    with pytest.raises(pymongo.errors.AutoReconnect):
        STORE_OUTAGE.call(operation, sleep=sleeps.append)
    assert len(calls) == STORE_OUTAGE.attempts
    assert sleeps == STORE_OUTAGE.waits()


def test_errors_outside_the_policy_are_not_retried():
    """A spider's SDK retries only an unreachable store, not a bad write."""
    operation, calls = flaky(1, pymongo.errors.OperationFailure("bad update"))
    with pytest.raises(pymongo.errors.OperationFailure):
        STORE_OUTAGE.call(operation, retry_on=STORE_UNREACHABLE, sleep=lambda s: None)
    assert len(calls) == 1


def test_give_up_on_stops_at_once():
    class Permanent(Exception):
        pass

    operation, calls = flaky(5, Permanent("HTTP 404"))
    with pytest.raises(Permanent):
        ALERT_DELIVERY.call(operation, retry_on=(Exception,), give_up_on=(Permanent,),
                            sleep=lambda s: None)
    assert len(calls) == 1


def test_poll_until_returns_the_first_true_value_or_none_past_the_timeout():
    answers = iter([None, 0, {"status": "done"}])
    assert poll_until(lambda: next(answers), timeout=5, interval=0.01) == {"status": "done"}
    assert poll_until(lambda: False, timeout=0.05, interval=0.01) is None
