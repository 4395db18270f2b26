"""Node labels (``region=eu``, ``proxy=yes``) and the label selectors of runs.

A node carries labels; a run may ask for labels, and then only a node that
carries every one of them (same key, same value) may take its tasks. Keys
hold no dot or ``$`` because they are stored as the field names of a document
(``labels.region``), values no ``=`` or ``,`` because the CLI and query
strings write a selector as ``k=v,k=v``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from typing import Any

from crawlfleet.errors import BadRequest

KEY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")
VALUE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,62}$")
MAX_LABELS = 20
KEY_RULE = "1-63 letters, digits, '_' or '-', starting with a letter or digit"
VALUE_RULE = "1-63 letters, digits, '_', '-', '.', ':' or '/', starting with a letter or digit"


def check_key(key: Any) -> str:
    if not isinstance(key, str) or not KEY_RE.match(key):
        raise BadRequest(f"invalid label key {str(key)[:70]!r}: a key is {KEY_RULE}")
    return key


def check_value(key: str, value: Any) -> str:
    if not isinstance(value, str) or not VALUE_RE.match(value):
        raise BadRequest(f"invalid value {str(value)[:70]!r} for label {key!r}: "
                         f"a value is {VALUE_RULE}")
    return value


def validate(labels: Any, what: str = "labels") -> dict[str, str]:
    """A checked ``{key: value}`` dict from a dict, a ``k=v,k=v`` string, a list of
    ``k=v`` strings, or None (no labels)."""
    if labels is None or labels == "":
        return {}
    if isinstance(labels, str):
        labels = [p for p in labels.split(",") if p.strip()]
    if isinstance(labels, list):
        return parse_pairs(labels, what)
    if not isinstance(labels, dict):
        raise BadRequest(f'{what} must be an object like {{"region": "eu"}} '
                         'or a string like "region=eu,proxy=yes"')
    if len(labels) > MAX_LABELS:
        raise BadRequest(f"{what}: at most {MAX_LABELS} labels")
    return {check_key(k): check_value(k, v) for k, v in sorted(labels.items())}


def parse_pairs(pairs: Iterable[Any], what: str = "labels") -> dict[str, str]:
    """``["region=eu", "proxy=yes"]`` as a checked dict; a key given twice is an error."""
    out: dict[str, str] = {}
    for pair in pairs:
        if not isinstance(pair, str) or "=" not in pair:
            raise BadRequest(f"{what}: expected KEY=VALUE, got {str(pair)[:70]!r}")
        key, value = (part.strip() for part in pair.split("=", 1))
        check_key(key)
        if key in out:
            raise BadRequest(f"{what}: label {key!r} given twice")
        out[key] = check_value(key, value)
    if len(out) > MAX_LABELS:
        raise BadRequest(f"{what}: at most {MAX_LABELS} labels")
    return dict(sorted(out.items()))


def matches(wanted: Mapping[str, str] | None, carried: Mapping[str, str] | None) -> bool:
    """Whether a node carrying `carried` satisfies the selector `wanted` (all must match)."""
    carried = carried or {}
    return all(carried.get(k) == v for k, v in (wanted or {}).items())


def describe(labels: Mapping[str, str] | None) -> str:
    """``region=eu,proxy=yes`` (sorted), or '' for none."""
    return ",".join(f"{k}={v}" for k, v in sorted((labels or {}).items()))


def selector_key(labels: Mapping[str, str]) -> str:
    """A short stable name for a selector, used in its broker queue's name."""
    return hashlib.sha256(describe(labels).encode()).hexdigest()[:16]
