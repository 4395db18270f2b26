"""The web process: a Flask application built by `create_app`, which gunicorn
calls (``gunicorn 'web:create_app()'``). There is no module-level app: every
process builds its own store client and broker connection from config.
"""

import logging
import os
import secrets

import pymongo
from flask import Flask, current_app, jsonify
from flask.json.provider import DefaultJSONProvider

from crawlfleet.broker import Broker
from crawlfleet.config import Config
from crawlfleet.store import Store
from web import export, metrics

log = logging.getLogger(__name__)

SECRET_KEY_FILE = "secret-key"
HEALTH_TIMEOUT = 3.0


class JSONProvider(DefaultJSONProvider):
    """JSON for store documents: ObjectId and dates as strings, NaN as null."""

    sort_keys = False

    def dumps(self, obj, **kwargs):
        kwargs.setdefault("ensure_ascii", self.ensure_ascii)
        kwargs.setdefault("sort_keys", self.sort_keys)
        return export.dumps(obj, **kwargs)


class Services:
    """What request handlers share: config, store and broker of this process."""

    def __init__(self, config, store, broker):
        self.config = config
        self.store = store
        self.broker = broker

    def close(self):
        self.broker.close()
        self.store.close()


def secret_key(config):
    """config.secret_key, else a random key made once and kept in HOME (0600).

    Several gunicorn workers may start at once: the key is written to a
    private temporary file and hard-linked into place, so exactly one wins
    and the others read the winner's key.
    """
    if config.secret_key:
        return config.secret_key
    path = config.home_path / SECRET_KEY_FILE
    try:
        key = path.read_text().strip()
        if key:
            return key
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    tmp = path.with_name(f".{SECRET_KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, (key + "\n").encode())
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)
    except FileExistsError:
        key = path.read_text().strip()
    finally:
        tmp.unlink()
    return key


def create_app(config=None):
    config = config or Config.load()
    app = Flask(__name__)
    app.config["SECRET_KEY"] = secret_key(config)
    app.config["MAX_CONTENT_LENGTH"] = 16 * 1024 * 1024
    app.json = JSONProvider(app)

    store = Store(config)
    store.ensure_indexes()
    app.extensions["crawlfleet"] = Services(config, store, Broker(config))

    from web import (admin, alerts_ui, api, auth, crawls_ui, errors, guard, i18n, projects_ui,
                     results, results_ui, schedules_ui, scrapyd, spiderenv_ui, store_access,
                     templating, ui)

    guard.init_app(app, config)
    auth.init_app(app)
    i18n.init_app(app)  # after auth: the locale is the signed-in user's choice
    app.register_blueprint(api.bp)  # with /projects and /schedules nested in it
    scrapyd.register(app)  # under /scrapyd/; the root listener is web.scrapyd.root
    for blueprint in (ui.bp, results.bp, admin.bp, projects_ui.bp, schedules_ui.bp,
                      results_ui.bp, crawls_ui.bp, spiderenv_ui.bp, store_access.ui, alerts_ui.bp):
        app.register_blueprint(blueprint)
    templating.register_filters(app)
    app.add_url_rule("/healthz", "healthz", healthz)
    metrics.init_app(app)  # /metrics, Prometheus text format
    errors.init_app(app)
    first_admin(store)
    return app


def first_admin(store):
    """The first web user, when there is none (`crawlfleet up` makes it first and
    prints its password in its banner; a bare `crawlfleet web` logs it once)."""
    from crawlfleet.users import ensure_first_admin

    made = ensure_first_admin(store)
    if made and made[1]:
        log.warning("created the first web user %r with password %s (shown once; change it "
                    "under Account, or with `crawlfleet user passwd %s`)", made[0], made[1],
                    made[0])


def healthz():
    store = services().store
    try:
        with pymongo.timeout(HEALTH_TIMEOUT):
            store.ping()
    except pymongo.errors.PyMongoError as exc:
        log.warning("health check: store does not answer: %s", exc)
        return jsonify({"ok": False, "error": "the store does not answer"}), 503
    return jsonify({"ok": True})


def services():
    """The `Services` of the app handling the current request."""
    return current_app.extensions["crawlfleet"]
