"""The checks a run request passes: spider arguments, Scrapy settings, timeout,
priority and retry policy.

Shared because a run is described in three places that must agree: a run
asked for now (`master.dispatch`), a schedule that stores what its runs will
be given (`crawlfleet.schedules`), and a spider's own manifest
(`master.discovery`). Each rejects bad input with a one-line `BadRequest`.
"""

import re
from typing import Any

from crawlfleet.errors import BadRequest
from crawlfleet.models import RETRYABLE_VALUES

ARG_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")
SETTING_NAME_RE = re.compile(r"^[A-Z][A-Z0-9_]{0,99}$")
MAX_VALUE_LEN = 10_000
RETRYABLE = tuple(RETRYABLE_VALUES)


def _text_values(mapping: Any, *, field: str, what: str, shape: str, name_re: re.Pattern[str],
                 name_hint: str, types: tuple[type, ...], types_hint: str) -> dict[str, str]:
    """A mapping of checked names to values kept as text (they reach argv)."""
    if mapping is None:
        return {}
    if not isinstance(mapping, dict):
        raise BadRequest(f"{field} must be an object of {shape}")
    out = {}
    for key, value in mapping.items():
        if not isinstance(key, str) or not name_re.match(key):
            raise BadRequest(f"invalid {what} name {key!r}: {name_hint}")
        if not isinstance(value, types) or (bool not in types and isinstance(value, bool)):
            raise BadRequest(f"{what} {key!r} must be {types_hint}")
        value = str(value)
        if len(value) > MAX_VALUE_LEN or "\x00" in value:
            raise BadRequest(f"{what} {key!r} is too long or holds a NUL byte")
        out[key] = value
    return out


def validate_args(args: Any) -> dict[str, str]:
    """Spider arguments: name → string (numbers are written as text)."""
    return _text_values(args, field="args", what="argument", shape="name → string",
                        name_re=ARG_NAME_RE, name_hint="use letters, digits and _", types=(str, int, float),
                        types_hint="a string or a number")


def validate_settings(settings: Any) -> dict[str, str]:
    """Scrapy settings: NAME → value (strings, numbers and booleans, as text)."""
    return _text_values(settings, field="settings", what="setting", shape="NAME → value",
                        name_re=SETTING_NAME_RE, name_hint="Scrapy settings are UPPER_CASE",
                        types=(str, int, float, bool),
                        types_hint="a string, number or boolean")


MAX_TIMEOUT = 366 * 86400


def validate_options(timeout: Any, priority: Any) -> tuple[float | None, int]:
    """(timeout or None, priority) of a run request."""
    if timeout is not None:
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) \
                or not 0 <= timeout <= MAX_TIMEOUT:
            # (NaN fails both comparisons; past a year a deadline overflows timers)
            raise BadRequest(f"timeout must be a number of seconds from 0 to {MAX_TIMEOUT}")
    if priority is None:
        priority = 0
    if isinstance(priority, bool) or not isinstance(priority, int) or not 0 <= priority <= 9:
        raise BadRequest("priority must be an integer from 0 to 9")
    return timeout or None, priority


def validate_retry(retry: Any) -> dict[str, Any] | None:
    """A retry policy ``{"max_attempts": 1-20, "backoff": s, "on": [statuses]}``, or None.

    `max_attempts` counts every attempt (1 = no retry); attempt k+1 waits
    `backoff` × 2^(k-1) seconds; `on` defaults to error, timeout and abnormal.
    """
    if retry is None:
        return None
    if not isinstance(retry, dict) or set(retry) - {"max_attempts", "backoff", "on"}:
        raise BadRequest('retry must be {"max_attempts": n, "backoff": seconds, "on": [statuses]}')
    attempts = retry.get("max_attempts", 1)
    backoff = retry.get("backoff", 0)
    on = retry.get("on", list(RETRYABLE))
    if isinstance(attempts, bool) or not isinstance(attempts, int) or not 1 <= attempts <= 20:
        raise BadRequest("retry.max_attempts must be an integer from 1 to 20")
    if isinstance(backoff, bool) or not isinstance(backoff, (int, float)) or backoff < 0:
        raise BadRequest("retry.backoff must be a number of seconds ≥ 0")
    if isinstance(on, str):
        on = [x for x in on.split(",") if x]
    if not isinstance(on, list) or not on or any(x not in RETRYABLE for x in on):
        raise BadRequest(f"retry.on must list statuses among {', '.join(RETRYABLE)}")
    return {"max_attempts": attempts, "backoff": float(backoff), "on": sorted(set(on))}


def default_retry(config: Any) -> dict[str, Any]:
    """Without a policy only platform failures (`abnormal`) are retried."""
    return {"max_attempts": config.retry_abnormal_attempts, "backoff": config.retry_backoff,
            "on": ["abnormal"]}
