"""Why a results filter matched nothing, when the rows say so: a field no
row has (a typo), or a value of another type than the field holds (``price
> 10`` where prices are text like "£51.77"). The results browser shows these
instead of a bare "No row matches"; a filter it cannot read is an error of
`web.filters` before it gets here."""

from __future__ import annotations

from typing import Any

from web import filters

MAX_NAMED = 12   # field names listed in a hint


def value_at(doc: dict, path: str) -> Any:
    """The value at a dotted path of `doc`, or `missing`."""
    for part in path.split("."):
        if not isinstance(doc, dict) or part not in doc:
            return missing
        doc = doc[part]
    return doc


missing = object()


def kind(value: Any) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "numbers"
    if isinstance(value, str):
        return "text"
    if value is None:
        return "null"
    return "other values"


def hints(texts: list[str], sample: list[dict], columns: list[str]) -> list[str]:
    """One sentence per filter that explains an empty answer, from `sample`
    (the newest rows); none when every filter looks reasonable."""
    out = []
    for text in texts:
        if not text.strip():
            continue
        field, op, value = filters.parse_one(text)
        present = [v for v in (value_at(d, field) for d in sample) if v is not missing]
        if not present:
            known = ", ".join(columns[:MAX_NAMED]) + (", …" if len(columns) > MAX_NAMED else "")
            out.append(f"no row of the newest {len(sample)} has a field {field!r}; "
                       f"the fields are: {known}")
            continue
        if op in ("?", "~", "!="):
            continue
        held = {kind(v) for v in present}
        asked = kind(value)
        if asked not in held and not (asked == "numbers" and op == "="):
            example = next(v for v in present if v is not None) if any(
                v is not None for v in present) else None
            fix = (' (quote a value to compare it as text: price = "10")'
                   if asked == "numbers" else "")
            out.append(f"{field!r} holds {', '.join(sorted(held))} (e.g. {example!r}), "
                       f"but {text.strip()!r} compares {asked}{fix}")
    return out
