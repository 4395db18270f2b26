"""Who a request is, decided in one place for every surface that needs it:
the JSON API, the Scrapyd endpoints and /metrics.

A request is either token-authenticated or session-authenticated, never a
mix: when it carries an ``Authorization`` header, that header alone decides
(the session cookie is not looked at, so a forged header cannot borrow a
signed-in browser's cookie past the CSRF check); without one, the UI's
session stands in (``web.auth`` has checked its CSRF token already).

- ``Bearer <token>``: an API token; tokens are random 256-bit secrets, so
  they are not rate limited.
- HTTP basic (Scrapyd tools): an API token as the password, else a web
  user's name and password; the latter is a password guess and goes through
  `web.guard`, like the login form.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import pymongo.errors
from flask import g, request

from crawlfleet.models import now
from crawlfleet.tokens import verify_token
from web import guard, services

log = logging.getLogger(__name__)

TOKEN_TOUCH_INTERVAL = 60.0  # seconds between `last_used_at` updates of a token
WRITE_ROLES = frozenset({"admin", "operator"})


@dataclass(frozen=True)
class Principal:
    """The authenticated party of one request."""

    name: str
    role: str
    via: str                      # "token", "password" or "session"
    token: dict | None = None     # the token's document when via == "token"

    @property
    def may_write(self) -> bool:
        return self.role in WRITE_ROLES


def identify(*, allow_basic: bool = False) -> Principal | None:
    """The request's principal, or None when it has no valid credentials.

    Raises `guard.TooManyGuesses` when a basic-auth password is tried for an
    account or from an address that is locked out."""
    if "Authorization" not in request.headers:
        user = g.get("user")
        return Principal(user["_id"], user["role"], "session") if user else None
    auth = request.authorization
    if auth is None:
        return None
    store = services().store
    if auth.type == "bearer":
        return _from_token(verify_token(store, auth.token))
    if auth.type == "basic" and allow_basic:
        found = _from_token(verify_token(store, auth.password))
        if found is not None or not auth.username:
            return found
        user = guard.check_password(auth.username, auth.password)
        return Principal(user["_id"], user["role"], "password") if user else None
    return None


def _from_token(doc: dict | None) -> Principal | None:
    if doc is None:
        return None
    touch(doc)
    return Principal(doc.get("name") or "token", doc.get("role") or "viewer", "token", doc)


def touch(doc: dict) -> None:
    """Record when a token was last used, at most once a minute (bookkeeping only:
    a store hiccup here must not refuse the request)."""
    stamp = now()
    if stamp - (doc.get("last_used_at") or 0) <= TOKEN_TOUCH_INTERVAL:
        return
    try:
        services().store.tokens.update_one({"_id": doc["_id"]},
                                           {"$set": {"last_used_at": stamp}})
    except pymongo.errors.PyMongoError as exc:
        log.warning("could not record token use: %s", exc)

