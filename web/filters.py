"""The results browser's filter language, parsed into a MongoDB query.

A filter is ``FIELD OP VALUE``, one per line or per ``q`` parameter; several
filters all apply (AND):

=========  ======================================  ================================
operator   meaning                                 example
=========  ======================================  ================================
``=``      equals (a number also matches its text)  ``price = 12.5``, ``in_stock = true``
``!=``     differs                                 ``category != books``
``~``      contains, ignoring case                 ``title ~ escape``
``>`` ``>=`` ``<`` ``<=``  range                   ``price >= 10``
``?``      the field exists (``VALUE`` empty)      ``rating ?``
=========  ======================================  ================================

A value in double quotes is always text (``code = "007"``); otherwise
``true``, ``false``, ``null`` and numbers are typed. User input never becomes
an operator: field names are checked (letters, digits, ``_``, ``-``, dotted
paths; no ``$``, no empty part), values are plain strings, numbers, booleans
or null, and "contains" escapes the text with `re.escape`. Anything else is a
`FilterError`.
"""

import re

from crawlfleet.errors import BadRequest

MAX_FILTERS = 10
MAX_VALUE = 500
FIELD_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,99}(\.[A-Za-z0-9_][A-Za-z0-9_-]{0,99}){0,5}$")
FILTER_RE = re.compile(r"^\s*([^\s!=~<>?]+)\s*(!=|>=|<=|=|~|>|<|\?)\s*(.*?)\s*$", re.S)
RANGE_OPS = {">": "$gt", ">=": "$gte", "<": "$lt", "<=": "$lte"}
NUMBER_RE = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


class FilterError(BadRequest):
    """A filter of the results browser cannot be parsed."""


def check_field(name):
    if not isinstance(name, str) or not FIELD_RE.match(name):
        raise FilterError(f"invalid field name {name!r}: use letters, digits, '_', '-' "
                          "and '.' between parts")
    return name


def parse_value(text):
    """A typed value: quoted text, true/false/null, a number, or the text itself."""
    if len(text) > MAX_VALUE or "\x00" in text:
        raise FilterError("filter values are at most 500 characters, without NUL")
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1], True
    low = text.lower()
    if low in ("true", "false"):
        return low == "true", False
    if low == "null":
        return None, False
    if NUMBER_RE.match(text):
        number = float(text)
        if number.is_integer() and abs(number) < 2 ** 53 and not any(c in text for c in ".eE"):
            return int(number), False
        return number, False
    return text, True


def parse_one(text):
    """One filter as (field, op, value) — value typed as `parse_value` says."""
    match = FILTER_RE.match(text or "")
    if not match:
        raise FilterError(f"cannot read filter {text!r}: write FIELD OP VALUE, "
                          "e.g. price >= 10 or title ~ shoe")
    field, op, raw = match.groups()
    check_field(field)
    if op == "?":
        if raw:
            raise FilterError(f"'{field} ?' takes no value")
        return field, op, None
    if raw == "":
        raise FilterError(f"filter {text!r} needs a value")
    value, is_text = parse_value(raw)
    if op == "~":
        value = raw[1:-1] if is_text and raw.startswith('"') and raw.endswith('"') \
            and len(raw) >= 2 else raw
    return field, op, value


def condition(field, op, value):
    """The MongoDB condition of one parsed filter; only operators chosen here."""
    if op == "?":
        return {field: {"$exists": True}}
    if op == "~":
        return {field: {"$regex": re.escape(str(value)), "$options": "i"}}
    if op in ("=", "!="):
        choices = [value]
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            choices.append(_number_text(value))  # scraped numbers are often text
        if op == "=":
            return {field: value if len(choices) == 1 else {"$in": choices}}
        return {field: {"$nin": choices}}
    if value is None or isinstance(value, bool):
        raise FilterError(f"{op} needs a number or a text, not {value!r}")
    return {field: {RANGE_OPS[op]: value}}


def _number_text(value):
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def parse(filters):
    """A MongoDB query from a list of filter texts (blank ones ignored)."""
    filters = [f for f in (filters or []) if f and f.strip()]
    if len(filters) > MAX_FILTERS:
        raise FilterError(f"at most {MAX_FILTERS} filters")
    parts = [condition(*parse_one(text)) for text in filters]
    return merge(parts)


def merge(parts):
    """One flat query when the filters can share one (``a = 1`` and ``b > 2``, or
    ``price >= 10`` and ``price < 20``), else ``$and``. Both mean the same;
    the flat form lets nx-27017 use an index, where it scans the whole
    collection for ``$and``."""
    merged = {}
    for part in parts:
        (field, cond), = part.items()
        if field not in merged:
            merged[field] = cond
            continue
        old = merged[field]
        if (isinstance(old, dict) and isinstance(cond, dict)
                and all(key.startswith("$") for key in (*old, *cond))
                and not set(old) & set(cond)):
            merged[field] = {**old, **cond}
            continue
        return {"$and": parts}
    return merged
