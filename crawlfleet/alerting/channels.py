"""Alert channels: a name and an Apprise URL (crawlfleet/alerting/delivery.py)
each, in the ``alert_channels`` collection.

A channel's URL usually holds a credential (a bot token, a webhook secret, a
mail password), so it is stored encrypted (crawlfleet/secrets.py) and only
ever shown redacted: Apprise's own privacy form of the URL, with what is left
of its path and query shortened. The clear URL is read back only to send.
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from crawlfleet import secrets
from crawlfleet.alerting import delivery
from crawlfleet.errors import BadRequest, Conflict, NotFound
from crawlfleet.models import Doc, now

MAX_NAME = 100
MAX_URL = 4096
FIELDS = ("name", "url", "enabled")


def redact(url: str) -> str:
    """`url` safe to show: Apprise's privacy form, path segments and query cut short."""
    shown = url
    if urlsplit(url).scheme.lower() not in ("http", "https"):  # the settings' webhook is plain
        try:
            shown = str(delivery.instantiate(url).url(privacy=True))
        except delivery.DeliveryFailed:
            pass
    parts = urlsplit(shown)
    netloc = parts.netloc
    if "@" in netloc:  # Apprise masks the password; the user name can be a token too
        user, host = netloc.rsplit("@", 1)
        netloc = f"{_short(user.split(':', 1)[0])}:***@{host}" if ":" in user \
            else f"{_short(user)}@{host}"
    path = "/".join(_short(p) for p in parts.path.split("/"))
    return urlunsplit((parts.scheme, netloc, path, "…" if parts.query else "", ""))


def _short(piece: str) -> str:
    if len(piece) <= 4 or "..." in piece or "*" in piece:
        return piece
    return piece[:2] + "…"


def _name(value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or len(value.strip()) > MAX_NAME:
        raise BadRequest(f"name must be text of 1 to {MAX_NAME} characters")
    return value.strip()


def _url(value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_URL \
            or any(c in value for c in "\0\r\n"):
        raise BadRequest(f"url must be one Apprise URL of at most {MAX_URL} characters")
    try:
        delivery.instantiate(value.strip())
    except delivery.DeliveryFailed as exc:
        raise BadRequest(str(exc)) from None
    return value.strip()


def _enabled(value: Any) -> bool:
    if not isinstance(value, bool):
        raise BadRequest("enabled must be true or false")
    return value


def public(doc: Doc) -> Doc:
    """A channel as it is shown: never its URL in clear."""
    return {"id": doc["_id"], "name": doc["name"], "service": doc.get("service"),
            "url": doc.get("redacted"), "enabled": doc.get("enabled", True),
            "created_at": doc.get("created_at"), "created_by": doc.get("created_by"),
            "updated_at": doc.get("updated_at"), "last_test": doc.get("last_test")}


def _url_fields(config: Any, url: str) -> Doc:
    return {"encrypted_url": secrets.encrypt(config, url), "redacted": redact(url),
            "service": delivery.service_name(url)}


def create(store: Any, config: Any, body: Doc, *, by: str | None = None) -> Doc:
    name, url = _name(body.get("name")), _url(body.get("url"))
    if store.db.alert_channels.find_one({"name": name}, {"_id": 1}):
        raise Conflict(f"a channel named {name!r} exists already")
    doc = {"_id": uuid.uuid4().hex[:12], "name": name,
           "enabled": _enabled(body.get("enabled", True)), "created_at": now(),
           "created_by": by, **_url_fields(config, url)}
    store.db.alert_channels.insert_one(doc)
    return public(doc)


def _replace(store: Any, doc: Doc) -> None:
    # the whole document, not $set: nx-27017 0.8 turns a boolean $set over true into 0
    store.db.alert_channels.replace_one({"_id": doc["_id"]}, doc)


def update(store: Any, config: Any, channel_id: str, body: Doc) -> Doc:
    current = get(store, channel_id)
    change: Doc = {"updated_at": now()}
    if "name" in body:
        change["name"] = _name(body["name"])
        clash = store.db.alert_channels.find_one({"name": change["name"]}, {"_id": 1})
        if clash and clash["_id"] != channel_id:
            raise Conflict(f"a channel named {change['name']!r} exists already")
    if "url" in body:
        change.update(_url_fields(config, _url(body["url"])))
    if "enabled" in body:
        change["enabled"] = _enabled(body["enabled"])
    _replace(store, {**current, **change})
    return public(get(store, channel_id))


def get(store: Any, channel_id: Any) -> Doc:
    doc = store.db.alert_channels.find_one({"_id": channel_id}) \
        if isinstance(channel_id, str) else None
    if doc is None:
        raise NotFound(f"unknown alert channel {channel_id!r}")
    return doc


def list_channels(store: Any) -> list[Doc]:
    return [public(d) for d in store.db.alert_channels.find().sort("name", 1)]


def delete(store: Any, channel_id: str) -> None:
    get(store, channel_id)
    used = [r["_id"] for r in store.db.alert_rules.find({"channels": {"$in": [channel_id]}},
                                                         {"_id": 1})]
    if used:
        raise Conflict(f"rule(s) {', '.join(used)} send to this channel: delete them or "
                       "change their channels first")
    store.db.alert_channels.delete_one({"_id": channel_id})


def clear_url(config: Any, doc: Doc) -> str:
    """The channel's URL in clear, to send with (ConfigError if the key differs)."""
    return secrets.decrypt(config, doc["encrypted_url"])


def record_test(store: Any, channel_id: str, ok: bool, message: str) -> Doc:
    result = {"at": now(), "ok": ok, "message": message}
    doc = store.db.alert_channels.find_one({"_id": channel_id})
    if doc is not None:
        _replace(store, {**doc, "last_test": result})
    return result
