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


def validate_args(args: Any) -> dict[str, str]:
    if args is None:
        return {}
    if not isinstance(args, dict):
        raise BadRequest("args must be an object of name → string")
    out = {}
    for key, value in args.items():
        if not isinstance(key, str) or not ARG_NAME_RE.match(key):
            raise BadRequest(f"invalid argument name {key!r}: use letters, digits and _")
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise BadRequest(f"argument {key!r} must be a string or a number")
        value = str(value)
        if len(value) > MAX_VALUE_LEN or "\x00" in value:
            raise BadRequest(f"argument {key!r} is too long or holds a NUL byte")
        out[key] = value
    return out


def validate_settings(settings: Any) -> dict[str, str]:
    if settings is None:
        return {}
    if not isinstance(settings, dict):
        raise BadRequest("settings must be an object of NAME → value")
    out = {}
    for key, value in settings.items():
        if not isinstance(key, str) or not SETTING_NAME_RE.match(key):
            raise BadRequest(f"invalid setting name {key!r}: Scrapy settings are UPPER_CASE")
        if not isinstance(value, (str, int, float, bool)):
            raise BadRequest(f"setting {key!r} must be a string, number or boolean")
        value = str(value)
        if len(value) > MAX_VALUE_LEN or "\x00" in value:
            raise BadRequest(f"setting {key!r} is too long or holds a NUL byte")
        out[key] = value
    return out


def validate_options(timeout: Any, priority: Any) -> tuple[float | None, int]:
    """(timeout or None, priority) of a run request."""
    if timeout is not None:
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout < 0:
            raise BadRequest("timeout must be a number of seconds ≥ 0")
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
