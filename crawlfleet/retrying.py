"""Retry policies: how long each kind of work waits out an outage (tenacity).

Every retried operation names one of the policies below instead of writing
its own loop, so the constants live in one place and read as a table:

| policy | for | attempts | waits |
|---|---|---|---|
| `STORE_OUTAGE` | a node's or a spider's store writes and reads (version fetch, items, counts) | 10 | 0.5 s doubling to 10 s (about a minute in all) |
| `FINAL_STATUS` | the final status of a task (the broker ack waits for it) | 30 | 0.5 s doubling to 10 s (about four and a half minutes) |
| `ALERT_DELIVERY` | one alert to one webhook or mail server | 3 | 1 s, then 2 s |

An operation that still fails after its last attempt raises the last error
(`reraise`), so callers handle a lasting outage exactly as they handled a
single failure.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import pymongo.errors
from tenacity import (RetryCallState, Retrying, retry_if_exception_type,
                      retry_if_not_exception_type, stop_after_attempt, wait_exponential)

T = TypeVar("T")

log = logging.getLogger(__name__)

# Anything the store raises: what the node retries (its writes are idempotent).
STORE_ERRORS: tuple[type[BaseException], ...] = (pymongo.errors.PyMongoError,)
# Only an unreachable store (connection refused or reset, no server selected, a
# timeout): what a spider's SDK retries, where a bad write is the spider's bug.
STORE_UNREACHABLE: tuple[type[BaseException], ...] = (pymongo.errors.ConnectionFailure,)


@dataclass(frozen=True)
class Policy:
    """A named retry policy: `attempts` tries, waiting `first_wait` seconds after
    the first failure and twice as long after each next one, at most `max_wait`."""

    name: str
    attempts: int
    first_wait: float
    max_wait: float

    def waits(self) -> list[float]:
        """The pauses between attempts, in order (for docs and tests)."""
        return [min(self.first_wait * 2 ** i, self.max_wait) for i in range(self.attempts - 1)]

    def retrying(self, retry_on: tuple[type[BaseException], ...] = STORE_ERRORS, *,
                 give_up_on: tuple[type[BaseException], ...] = (),
                 on_retry: Callable[[BaseException, int, float], None] | None = None,
                 sleep: Callable[[float], Any] = time.sleep) -> Retrying:
        """A tenacity `Retrying` for this policy.

        Errors of `retry_on` are tried again, except those of `give_up_on`;
        `on_retry(error, attempt, wait)` is told of each failure that is tried
        again (to say so in a task's log); `sleep` is replaceable in unit tests.
        """
        def before_sleep(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            wait = state.next_action.sleep if state.next_action else 0.0
            if on_retry is not None and error is not None:
                on_retry(error, state.attempt_number, wait)
            else:
                log.warning("%s: attempt %d failed (%s); retrying in %.1f s", self.name,
                            state.attempt_number, error, wait)

        return Retrying(
            stop=stop_after_attempt(self.attempts),
            wait=wait_exponential(multiplier=self.first_wait, min=self.first_wait,
                                  max=self.max_wait),
            retry=(retry_if_exception_type(retry_on) & retry_if_not_exception_type(give_up_on)
                   if give_up_on else retry_if_exception_type(retry_on)),
            before_sleep=before_sleep,
            sleep=sleep,
            reraise=True,
        )

    def call(self, operation: Callable[[], T],
             retry_on: tuple[type[BaseException], ...] = STORE_ERRORS, *,
             give_up_on: tuple[type[BaseException], ...] = (),
             on_retry: Callable[[BaseException, int, float], None] | None = None,
             sleep: Callable[[float], Any] = time.sleep) -> T:
        """Run `operation` under this policy; its result, or its last error."""
        return self.retrying(retry_on, give_up_on=give_up_on, on_retry=on_retry,
                             sleep=sleep)(operation)


STORE_OUTAGE = Policy("store outage", attempts=10, first_wait=0.5, max_wait=10.0)
FINAL_STATUS = Policy("final status", attempts=30, first_wait=0.5, max_wait=10.0)
ALERT_DELIVERY = Policy("alert delivery", attempts=3, first_wait=1.0, max_wait=2.0)

POLICIES = {p.name: p for p in (STORE_OUTAGE, FINAL_STATUS, ALERT_DELIVERY)}


def poll_until(predicate: Callable[[], T], timeout: float, interval: float = 0.05) -> T | None:
    """`predicate`'s first true value, asked every `interval` seconds; None when
    none came within `timeout` seconds (the caller says what it waited for).
    For waiting on a state, where the policies above wait out failures."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return None
