"""Values computed from the store and kept in this app (this worker) until
what they depend on changes."""

from flask import current_app


def cached(key, version, compute):
    """`compute()`, kept in this app until `version` changes.

    For aggregates over a month of tasks: the version is what changes them
    (the newest task, the latest finish), read from two indexes, so a page
    view costs two index lookups until a task starts or ends."""
    cache = current_app.extensions.setdefault("crawlfleet_ui_cache", {})
    hit = cache.get(key)
    if hit is not None and hit[0] == version:
        return hit[1]
    value = compute()
    cache[key] = (version, value)
    return value
