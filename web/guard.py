"""Password guessing, slowed: failed password checks are counted per account
and per client address with Flask-Limiter, and once either count reaches its
limit every further try — right or wrong — is refused with 429 and
``Retry-After`` until the window ends (a short lockout), and logged.

Both doors that take a password go through `check_password`: the login form
and the Scrapyd endpoints' HTTP basic auth. API tokens are not slowed (they
are 256-bit random secrets, not guessable words).

The counters live in Redis when the broker is Redis, else in the store
(`web.limitstore`), or wherever ``CRAWLFLEET_RATELIMIT_STORAGE`` says: every
gunicorn worker and every web server shares them.
"""

from __future__ import annotations

import logging
import math
import time

from flask import Flask, current_app
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from limits import RateLimitItem, parse

from crawlfleet import users
from crawlfleet.config import Config
from crawlfleet.errors import ConfigError, CrawlfleetError
from web import limitstore, services

log = logging.getLogger(__name__)

EXTENSION = "crawlfleet_guard"


class TooManyGuesses(CrawlfleetError):
    """Too many failed password checks for an account or from an address."""

    status_code = 429

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def storage_uri(config: Config) -> str:
    """Where the counters live (see the module's docstring)."""
    if config.ratelimit_storage:
        return config.ratelimit_storage
    if config.broker_url.startswith(("redis://", "rediss://")):
        return config.broker_url
    return limitstore.SCHEME + config.mongo_uri[len("mongodb"):]


class Guard:
    """The limits of one app: Flask-Limiter's storage and strategy, two limits."""

    def __init__(self, app: Flask, config: Config) -> None:
        uri = storage_uri(config)
        options = {"database_name": config.mongo_db} if uri.startswith(limitstore.SCHEME) else {}
        try:
            self.account_limit: RateLimitItem = parse(config.login_account_limit)
            self.address_limit: RateLimitItem = parse(config.login_address_limit)
        except ValueError as exc:
            raise ConfigError(f"login limits: {exc}") from None
        self.limiter = Limiter(get_remote_address, app=app, storage_uri=uri,
                               storage_options=options, strategy="fixed-window",
                               key_prefix=config.queue_prefix, default_limits=[])
        self.prefix = config.queue_prefix

    def _keys(self, name: str, address: str):
        return ((self.account_limit, ("login-account", self.prefix, name.lower()[:100])),
                (self.address_limit, ("login-address", self.prefix, address)))

    def _call(self, method: str, item: RateLimitItem, ids: tuple):
        """A strategy call; an unreachable counter store lets the check pass
        (logged) rather than lock every user out of the platform."""
        try:
            return getattr(self.limiter.limiter, method)(item, *ids)
        except self.limiter.storage.base_exceptions as exc:
            log.error("rate-limit storage unavailable, password check not limited: %s", exc)
            return True if method != "get_window_stats" else None

    def check(self, name: str, password: str) -> dict | None:
        address = get_remote_address() or "unknown"
        keys = self._keys(name, address)
        for item, ids in keys:
            if not self._call("test", item, ids):
                stats = self._call("get_window_stats", item, ids)
                wait = max(1, math.ceil(stats.reset_time - time.time())) if stats else 60
                log.warning("password check refused: too many failures for %s %r "
                            "(locked for %d s more)", ids[0].split("-")[1], ids[-1], wait)
                raise TooManyGuesses(
                    f"too many failed sign-ins; try again in {wait} s", wait)
        user = users.authenticate(services().store, name, password)
        if user is not None:
            return user
        for item, ids in keys:
            self._call("hit", item, ids)
        log.warning("failed password check for user %r from %s", name[:100], address)
        return None


def init_app(app: Flask, config: Config) -> None:
    app.extensions[EXTENSION] = Guard(app, config)


def check_password(name: str, password: str) -> dict | None:
    """The user when the password is right, None when wrong; raises
    `TooManyGuesses` (429) while the account or the address is locked out."""
    if not isinstance(name, str) or not isinstance(password, str):
        return None
    return current_app.extensions[EXTENSION].check(name, password)

