"""Request bodies as plain JSON that the store can hold, or a 400 that says
what is wrong in one line.

Python's json module accepts what MongoDB (and BSON) cannot take and would
turn into a 500 further down: ``NaN`` and ``Infinity`` (also ``1e400``, read
as infinity), integers past 64 bits, lone UTF-16 surrogates (``"\\ud800"``),
and nesting deep enough to exhaust the recursion limit.
"""

from __future__ import annotations

import json
import math

from crawlfleet.errors import BadRequest

MAX_DEPTH = 32
INT64 = (-(2 ** 63), 2 ** 63 - 1)


def _no_constants(name: str):
    raise ValueError(f"{name} is not a number JSON allows here")


def loads(raw: bytes | str) -> object:
    """The parsed body; BadRequest for anything the store could not hold."""
    try:
        value = json.loads(raw, parse_constant=_no_constants)
    except RecursionError:
        raise BadRequest(f"request body is nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:
        raise BadRequest(f"request body is not valid JSON: {exc}") from None
    check_plain(value)
    return value


def check_plain(value: object, where: str = "body") -> None:
    """BadRequest unless `value` is JSON the store can hold (see the docstring)."""
    stack = [(value, where, 0)]
    while stack:
        item, path, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise BadRequest(f"request body is nested deeper than {MAX_DEPTH} levels")
        if isinstance(item, bool) or item is None:
            continue
        if isinstance(item, float):
            if not math.isfinite(item):
                raise BadRequest(f"{path}: numbers must be finite")
        elif isinstance(item, int):
            if not INT64[0] <= item <= INT64[1]:
                raise BadRequest(f"{path}: integers must fit in 64 bits")
        elif isinstance(item, str):
            _check_text(item, path)
        elif isinstance(item, dict):
            for key, sub in item.items():
                _check_text(key, path)
                stack.append((sub, f"{path}.{key}"[:200], depth + 1))
        elif isinstance(item, list):
            stack.extend((sub, f"{path}[{n}]", depth + 1) for n, sub in enumerate(item))


def _check_text(text: str, path: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise BadRequest(f"{path}: text holds a lone surrogate (not valid Unicode)") from None
