"""What viewers do not see: where alerts go. Webhook URLs (which often carry
a secret in their path) and email addresses are shown to operators and admins
only, in task documents (``alert.deliveries``) and schedules (``alerts``)."""

from __future__ import annotations

import copy

from flask import g

HIDDEN = "(hidden: operators and admins only)"


def may_see_targets() -> bool:
    principal = g.get("principal")
    if principal is not None:
        return principal.may_write
    user = g.get("user")
    return bool(user) and user.get("role") in ("operator", "admin")


def task(doc: dict | None) -> dict | None:
    if doc is None or may_see_targets() or not (doc.get("alert") or {}).get("deliveries"):
        return doc
    out = dict(doc)
    out["alert"] = copy.deepcopy(doc["alert"])
    for delivery in out["alert"]["deliveries"]:
        delivery["target"] = HIDDEN
    return out


def schedule(doc: dict | None) -> dict | None:
    if doc is None or may_see_targets() or not doc.get("alerts"):
        return doc
    out = dict(doc)
    out["alerts"] = {k: (HIDDEN if k in ("webhook", "email") and v else v)
                     for k, v in doc["alerts"].items()} if isinstance(doc["alerts"], dict) \
        else HIDDEN
    return out
