"""Configuration: environment first, then an optional TOML file, then defaults.

`Config.load()` is what every process calls; tests build one from a plain
dict with `Config.from_dict()`. Values are validated here, at start, so a bad
setting stops a process with one clear line instead of a traceback later.
"""

import json
import math
import os
import tomllib
from pathlib import Path

from crawlfleet import labels as labelling
from crawlfleet.defaults import BY_NAME, SETTINGS
from crawlfleet.errors import ConfigError, CrawlfleetError

ENV_PREFIX = "CRAWLFLEET_"
UP_STATE_FILE = "run/up.json"
# The bundled spider projects are data installed next to this package (the
# `spiders` package of pyproject.toml): found by path, never imported, so the
# shared package does not depend on them.
BUNDLED_SPIDERS = Path(__file__).resolve().parent.parent / "spiders"


def _coerce(setting, raw, source):
    def bad():
        return ConfigError(
            f"{source}: expected {setting.kind.__name__} for {setting.name}, got {raw!r}")

    # bool is an int to Python, and a TOML list would become its repr: neither is meant.
    if (isinstance(raw, bool) and setting.kind is not bool) or isinstance(raw, (list, dict, tuple)):
        raise bad()
    if setting.kind is str:
        return raw if isinstance(raw, str) else str(raw)
    if setting.kind is bool:
        if isinstance(raw, bool):
            return raw
        word = str(raw).strip().lower()
        if word in ("1", "true", "yes", "on"):
            return True
        if word in ("0", "false", "no", "off"):
            return False
        raise bad()
    if setting.kind is int and isinstance(raw, float) and not raw.is_integer():
        raise bad()  # int(2.5) would quietly be 2
    try:
        value = setting.kind(raw)
    except (TypeError, ValueError, OverflowError):
        raise bad() from None
    if isinstance(value, float) and not math.isfinite(value):
        raise bad()  # nan passes every `<=` check, inf never elapses
    return value


class Config:
    """Resolved settings, read as attributes: `config.mongo_uri`."""

    def __init__(self, values):
        unknown = set(values) - set(BY_NAME)
        if unknown:
            raise ConfigError(f"unknown settings: {', '.join(sorted(unknown))}")
        self._values = {s.name: s.default for s in SETTINGS}
        for name, raw in values.items():
            self._values[name] = _coerce(BY_NAME[name], raw, "config")
        self._resolve()
        self._validate()

    @classmethod
    def from_dict(cls, values=None):
        return cls(dict(values or {}))

    @classmethod
    def load(cls, environ=None, **overrides):
        """Settings from a TOML file (CRAWLFLEET_CONFIG), the environment, then overrides."""
        environ = os.environ if environ is None else environ
        values = {}
        path = environ.get(ENV_PREFIX + "CONFIG")
        if path:
            try:
                with open(path, "rb") as f:
                    data = tomllib.load(f)
            except (OSError, tomllib.TOMLDecodeError) as exc:
                raise ConfigError(f"cannot read config file {path}: {exc}") from None
            for key, raw in data.items():
                if key not in BY_NAME:
                    raise ConfigError(f"{path}: unknown setting {key!r}")
                values[key] = _coerce(BY_NAME[key], raw, path)
        for setting in SETTINGS:
            raw = environ.get(ENV_PREFIX + setting.name.upper())
            if raw not in (None, ""):
                values[setting.name] = _coerce(setting, raw, ENV_PREFIX + setting.name.upper())
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(values)

    def __getattr__(self, name):
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(name) from None

    def as_dict(self):
        return dict(self._values)

    def replace(self, **changes):
        values = self.as_dict()
        values.update(changes)
        return Config(values)

    def as_environ(self):
        """The settings as CRAWLFLEET_* variables, for child processes."""
        return {ENV_PREFIX + k.upper(): str(v) for k, v in self._values.items()}

    # -- derived values ------------------------------------------------------
    def _resolve(self):
        v = self._values
        v["home"] = str(Path(v["home"]).expanduser().resolve())
        # only text values: a hand-edited file must not turn into an AttributeError
        state = {k: val for k, val in self.up_state().items() if isinstance(val, str)}
        if not v["mongo_uri"]:
            v["mongo_uri"] = state.get("mongo_uri") or "mongodb://127.0.0.1:27017"
        if not v["broker_url"]:
            v["broker_url"] = state.get("broker_url") or "filesystem://"
        if not v["api_url"]:
            v["api_url"] = state.get("api_url") or "http://127.0.0.1:8080"
        v["api_url"] = v["api_url"].rstrip("/")
        if not v["max_runners"]:
            v["max_runners"] = max(2, os.cpu_count() or 1)

    def _validate(self):
        v = self._values
        if not v["mongo_uri"].startswith(("mongodb://", "mongodb+srv://")):
            raise ConfigError(f"mongo_uri must start with mongodb://, got {v['mongo_uri']!r}")
        scheme, sep, _ = v["broker_url"].partition("://")  # "redis" alone is not a URL
        if not sep or scheme not in ("redis", "rediss", "amqp", "amqps", "pyamqp",
                                     "filesystem", "memory"):
            raise ConfigError(
                f"broker_url must be redis://, amqp:// or filesystem://, got {v['broker_url']!r}"
            )
        if not v["queue_prefix"].replace("_", "").replace("-", "").isalnum():
            raise ConfigError("queue_prefix may hold only letters, digits, '-' and '_'")
        for name in ("heartbeat_interval", "node_timeout", "reconcile_interval"):
            if v[name] <= 0:
                raise ConfigError(f"{name} must be positive")
        if v["node_timeout"] <= v["heartbeat_interval"]:
            raise ConfigError("node_timeout must be longer than heartbeat_interval")
        if v["log_format"] not in ("text", "json"):
            raise ConfigError(f"log_format must be text or json, got {v['log_format']!r}")
        if v["web_timeout"] <= 0:
            raise ConfigError("web_timeout must be positive")
        for name in ("login_account_limit", "login_address_limit"):
            _check_limit(name, v[name])
        if v["web_worker_class"] not in ("gevent", "gthread"):
            raise ConfigError(f"web_worker_class must be gevent or gthread, "
                              f"got {v['web_worker_class']!r}")
        if v["max_runners"] < 1:
            raise ConfigError("max_runners must be at least 1")
        try:
            labelling.validate(v["node_labels"], "node_labels")
        except CrawlfleetError as exc:
            raise ConfigError(str(exc)) from None
        if v["schedule_lease_ttl"] <= 0 or v["schedule_misfire_grace"] < 0:
            raise ConfigError("schedule_lease_ttl must be positive, schedule_misfire_grace ≥ 0")
        if v["schedule_catchup"] < v["schedule_lease_ttl"]:
            # a failover must fit in the catch-up window, or a tick would be missed
            raise ConfigError("schedule_catchup must be at least schedule_lease_ttl")
        if v["node_history_days"] < 0:
            raise ConfigError("node_history_days must be 0 (record none) or more")
        for name in ("max_upload_bytes", "max_project_files", "max_project_bytes",
                     "max_zip_ratio", "git_timeout"):
            if v[name] <= 0:
                raise ConfigError(f"{name} must be positive")

    # -- paths ---------------------------------------------------------------
    @property
    def home_path(self):
        return Path(self.home)

    @property
    def feeds_path(self):
        """Where local feed files land (node/crawlresults.py)."""
        return Path(self.feeds_dir) if self.feeds_dir else self.home_path / "feeds"

    def up_state(self):
        """What a running `crawlfleet up` recorded about itself, or {}."""
        try:
            state = json.loads((Path(self._values["home"]) / UP_STATE_FILE).read_text())
        except (OSError, ValueError):
            return {}
        return state if isinstance(state, dict) else {}

    @property
    def spider_folders(self):
        if self.spiders_path:
            return [Path(p).expanduser().resolve() for p in self.spiders_path.split(":") if p]
        return [BUNDLED_SPIDERS]

    @property
    def uses_embedded_broker(self):
        return self.broker_url.startswith("filesystem://")


def _check_limit(name, text):
    """A rate limit in Flask-Limiter's notation, e.g. "10 per 5 minutes"."""
    from limits import parse

    try:
        parse(text)
    except ValueError:
        raise ConfigError(f"{name} must read like '10 per 5 minutes', got {text!r}") from None
