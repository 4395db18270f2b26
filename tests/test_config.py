"""crawlfleet.config and crawlfleet.defaults: defaults, environment, TOML file, validation."""

import json
import math
import os
from pathlib import Path

import pytest

from crawlfleet.config import ENV_PREFIX, UP_STATE_FILE, Config
from crawlfleet.defaults import BY_NAME, SETTINGS
from crawlfleet.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def home(tmp_path):
    """An empty home folder, so no real up-state file leaks into a test."""
    folder = tmp_path / "home"
    folder.mkdir()
    return folder


@pytest.fixture
def env(home):
    """A minimal environment: only CRAWLFLEET_HOME."""
    return {"CRAWLFLEET_HOME": str(home)}


def write_toml(path, text):
    path.write_text(text)
    return str(path)


def write_up_state(home, **state):
    path = Path(home) / UP_STATE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(state))
    return path


# -- defaults ---------------------------------------------------------------


def test_defaults_when_nothing_is_set(tmp_path, monkeypatch):
    """With an empty environment every setting is its documented default or derived value."""
    monkeypatch.chdir(tmp_path)
    config = Config.load(environ={})
    assert config.home == str((tmp_path / ".crawlfleet").resolve())
    assert config.mongo_uri == "mongodb://127.0.0.1:27017"
    assert config.broker_url == "filesystem://"
    assert config.api_url == "http://127.0.0.1:8080"
    assert config.max_runners == max(2, os.cpu_count() or 1)
    assert config.uses_embedded_broker
    derived = {"home", "mongo_uri", "broker_url", "api_url", "max_runners"}
    for setting in SETTINGS:
        if setting.name not in derived:
            assert getattr(config, setting.name) == setting.default, setting.name


def test_from_dict_matches_load_on_defaults(env):
    """Config.from_dict and Config.load agree when given the same (empty) settings."""
    assert Config.from_dict({"home": env["CRAWLFLEET_HOME"]}).as_dict() == \
        Config.load(environ=env).as_dict()


def test_unknown_attribute_is_attribute_error(env):
    """Reading a setting that does not exist raises AttributeError, not KeyError."""
    config = Config.load(environ=env)
    with pytest.raises(AttributeError):
        config.no_such_setting  # noqa: B018
    assert not hasattr(config, "no_such_setting")


# -- environment ------------------------------------------------------------


def test_environment_overrides_defaults(env):
    """CRAWLFLEET_* variables override defaults and are coerced to each setting's kind."""
    env.update({
        "CRAWLFLEET_MONGO_URI": "mongodb://db.example:27018",
        "CRAWLFLEET_MONGO_DB": "other",
        "CRAWLFLEET_BROKER_URL": "redis://127.0.0.1:6379/3",
        "CRAWLFLEET_WEB_WORKERS": "7",
        "CRAWLFLEET_HEARTBEAT_INTERVAL": "1.5",
        "CRAWLFLEET_MAX_RUNNERS": "3",
        "CRAWLFLEET_API_URL": "http://api.example:9000/",
    })
    config = Config.load(environ=env)
    assert config.mongo_uri == "mongodb://db.example:27018"
    assert config.mongo_db == "other"
    assert config.broker_url == "redis://127.0.0.1:6379/3"
    assert not config.uses_embedded_broker
    assert config.web_workers == 7 and isinstance(config.web_workers, int)
    assert config.heartbeat_interval == 1.5 and isinstance(config.heartbeat_interval, float)
    assert config.max_runners == 3
    assert config.api_url == "http://api.example:9000"  # trailing slash dropped


def test_empty_environment_variable_means_default(env):
    """An empty CRAWLFLEET_* variable counts as unset."""
    env.update({"CRAWLFLEET_MONGO_DB": "", "CRAWLFLEET_WEB_WORKERS": ""})
    config = Config.load(environ=env)
    assert config.mongo_db == BY_NAME["mongo_db"].default
    assert config.web_workers == BY_NAME["web_workers"].default


def test_overrides_beat_environment(env):
    """Keyword overrides to Config.load beat the environment; None overrides are ignored."""
    env["CRAWLFLEET_MONGO_DB"] = "from_env"
    assert Config.load(environ=env, mongo_db="from_arg").mongo_db == "from_arg"
    assert Config.load(environ=env, mongo_db=None).mongo_db == "from_env"


def test_other_variables_are_ignored(env):
    """Variables without the prefix, or with an unknown name after it, change nothing."""
    env.update({"MONGO_DB": "nope", "CRAWLFLEET_NOT_A_SETTING": "x", "CRAWLFLEET_DEMO_URL": "x"})
    assert Config.load(environ=env).mongo_db == BY_NAME["mongo_db"].default


@pytest.mark.parametrize("name,raw", [
    ("web_workers", "two"),
    ("web_workers", "2.5"),
    ("max_runners", ""),  # empty means default: not an error (checked below)
    ("log_max_lines", "1e3"),
    ("heartbeat_interval", "fast"),
    ("node_timeout", "nan"),
    ("task_timeout", "inf"),
    ("cancel_grace", "-inf"),
])
def test_bad_number_in_environment_names_the_setting(env, name, raw):
    """A malformed int or float in the environment is a ConfigError naming the variable and setting."""
    env[ENV_PREFIX + name.upper()] = raw
    if raw == "":
        Config.load(environ=env)
        return
    with pytest.raises(ConfigError) as info:
        Config.load(environ=env)
    message = str(info.value)
    assert ENV_PREFIX + name.upper() in message
    assert name in message
    assert repr(raw) in message


# -- TOML file --------------------------------------------------------------


def test_toml_file_is_read(env, tmp_path):
    """The TOML file named by CRAWLFLEET_CONFIG sets values, lower-case keys."""
    env["CRAWLFLEET_CONFIG"] = write_toml(tmp_path / "c.toml", """
mongo_db = "from_file"
web_workers = 5
heartbeat_interval = 2      # an int where a float goes is fine
node_timeout = 20.5
queue_prefix = "filed"
""")
    config = Config.load(environ=env)
    assert config.mongo_db == "from_file"
    assert config.web_workers == 5
    assert config.heartbeat_interval == 2.0 and isinstance(config.heartbeat_interval, float)
    assert config.node_timeout == 20.5
    assert config.queue_prefix == "filed"


def test_environment_beats_toml_file(env, tmp_path):
    """A CRAWLFLEET_* variable wins over the same key in the file; other file keys stay."""
    env["CRAWLFLEET_CONFIG"] = write_toml(
        tmp_path / "c.toml", 'mongo_db = "from_file"\nweb_workers = 5\n')
    env["CRAWLFLEET_MONGO_DB"] = "from_env"
    config = Config.load(environ=env)
    assert config.mongo_db == "from_env"
    assert config.web_workers == 5


def test_toml_file_can_set_home(tmp_path):
    """home set in the file is used (and its up-state read) when the environment has none."""
    home = tmp_path / "filehome"
    write_up_state(home, mongo_uri="mongodb://from-up:1")
    config = Config.load(environ={"CRAWLFLEET_CONFIG": write_toml(
        tmp_path / "c.toml", f'home = "{home}"\n')})
    assert config.home == str(home.resolve())
    assert config.mongo_uri == "mongodb://from-up:1"


def test_unknown_key_in_toml_file(env, tmp_path):
    """A key the file should not have is a ConfigError naming the key and the file."""
    path = write_toml(tmp_path / "c.toml", 'mongo_db = "x"\nmongo_url = "mongodb://typo"\n')
    env["CRAWLFLEET_CONFIG"] = path
    with pytest.raises(ConfigError, match="unknown setting 'mongo_url'") as info:
        Config.load(environ=env)
    assert path in str(info.value)


def test_toml_table_is_an_unknown_key(env, tmp_path):
    """A [section] in the file is refused as an unknown setting, not silently flattened."""
    env["CRAWLFLEET_CONFIG"] = write_toml(tmp_path / "c.toml", '[mongo]\nuri = "mongodb://x"\n')
    with pytest.raises(ConfigError, match="unknown setting 'mongo'"):
        Config.load(environ=env)


@pytest.mark.parametrize("line,name", [
    ('web_workers = "many"', "web_workers"),
    ("web_workers = 2.5", "web_workers"),
    ("web_workers = true", "web_workers"),
    ('heartbeat_interval = "soon"', "heartbeat_interval"),
    ("heartbeat_interval = nan", "heartbeat_interval"),
    ("node_timeout = inf", "node_timeout"),
    ("mongo_db = [1, 2]", "mongo_db"),
    ("secret_key = { a = 1 }", "secret_key"),
])
def test_bad_value_in_toml_file_names_the_setting(env, tmp_path, line, name):
    """A value of the wrong kind in the file is a ConfigError naming the setting and the file."""
    path = write_toml(tmp_path / "c.toml", line + "\n")
    env["CRAWLFLEET_CONFIG"] = path
    with pytest.raises(ConfigError) as info:
        Config.load(environ=env)
    assert name in str(info.value)
    assert path in str(info.value)


def test_unreadable_or_invalid_toml_file(env, tmp_path):
    """A missing file or one that is not TOML is a ConfigError naming the file."""
    env["CRAWLFLEET_CONFIG"] = str(tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match="cannot read config file .*missing.toml"):
        Config.load(environ=env)
    env["CRAWLFLEET_CONFIG"] = write_toml(tmp_path / "bad.toml", "mongo_db = \n")
    with pytest.raises(ConfigError, match="cannot read config file .*bad.toml"):
        Config.load(environ=env)


# -- validation -------------------------------------------------------------


@pytest.mark.parametrize("values,message", [
    ({"mongo_uri": "mysql://127.0.0.1"}, "mongo_uri must start with mongodb://"),
    ({"mongo_uri": "127.0.0.1:27017"}, "mongo_uri must start with mongodb://"),
    ({"broker_url": "kafka://127.0.0.1:9092"}, "broker_url must be"),
    ({"broker_url": "redis"}, "broker_url must be"),
    ({"queue_prefix": "has space"}, "queue_prefix"),
    ({"queue_prefix": "a.b"}, "queue_prefix"),
    ({"queue_prefix": "a/b"}, "queue_prefix"),
    ({"queue_prefix": ""}, "queue_prefix"),
    ({"heartbeat_interval": 0}, "heartbeat_interval must be positive"),
    ({"reconcile_interval": -1}, "reconcile_interval must be positive"),
    ({"heartbeat_interval": 5.0, "node_timeout": 5.0}, "node_timeout must be longer"),
    ({"heartbeat_interval": 5.0, "node_timeout": 4.0}, "node_timeout must be longer"),
    ({"max_runners": -1}, "max_runners must be at least 1"),
    ({"mongo_uri_typo": "x"}, "unknown settings: mongo_uri_typo"),
])
def test_invalid_settings_are_config_errors(home, values, message):
    """Bad URIs, broker schemes, queue prefixes and intervals stop loading with a clear line."""
    with pytest.raises(ConfigError, match=message):
        Config.from_dict({"home": str(home), **values})


def test_invalid_settings_from_environment_too(env):
    """Validation applies to values that came from the environment as well."""
    env["CRAWLFLEET_BROKER_URL"] = "sqs://queue"
    with pytest.raises(ConfigError, match="broker_url"):
        Config.load(environ=env)


@pytest.mark.parametrize("url", [
    "redis://127.0.0.1:6379/0", "rediss://h:6380/0", "amqp://guest:guest@127.0.0.1:5672//",
    "amqps://h//", "pyamqp://h//", "filesystem://", "memory://",
])
def test_supported_broker_schemes(home, url):
    """Every broker scheme crawlfleet supports is accepted."""
    assert Config.from_dict({"home": str(home), "broker_url": url}).broker_url == url


def test_valid_queue_prefix_and_intervals(home):
    """Letters, digits, '-' and '_' make a valid prefix; node_timeout just above heartbeat is fine."""
    config = Config.from_dict({"home": str(home), "queue_prefix": "cf-test_01",
                               "heartbeat_interval": 1.0, "node_timeout": 1.5})
    assert config.queue_prefix == "cf-test_01"


# -- home and the up-state file ---------------------------------------------


def test_home_resolves_to_absolute_path(tmp_path, monkeypatch):
    """A relative or ~ home becomes an absolute, resolved path."""
    monkeypatch.chdir(tmp_path)
    config = Config.load(environ={"CRAWLFLEET_HOME": "rel/../here"})
    assert config.home == str(tmp_path.resolve() / "here")
    assert Path(config.home).is_absolute()
    assert config.home_path == Path(config.home)
    monkeypatch.setenv("HOME", str(tmp_path / "userhome"))
    config = Config.load(environ={"CRAWLFLEET_HOME": "~/cf"})
    assert config.home == str((tmp_path / "userhome" / "cf").resolve())


def test_up_state_fills_empty_settings(env, home):
    """mongo_uri, broker_url and api_url left empty are taken from <home>/run/up.json."""
    write_up_state(home, pid=1, mongo_uri="mongodb://127.0.0.1:40001",
                   broker_url="redis://127.0.0.1:6379/9", api_url="http://127.0.0.1:40002/")
    config = Config.load(environ=env)
    assert config.mongo_uri == "mongodb://127.0.0.1:40001"
    assert config.broker_url == "redis://127.0.0.1:6379/9"
    assert config.api_url == "http://127.0.0.1:40002"
    assert config.up_state()["pid"] == 1


def test_explicit_settings_beat_up_state(env, home):
    """A setting given in the environment is not replaced by the up-state file."""
    write_up_state(home, mongo_uri="mongodb://127.0.0.1:40001", api_url="http://up:1")
    env["CRAWLFLEET_MONGO_URI"] = "mongodb://explicit:27017"
    config = Config.load(environ=env)
    assert config.mongo_uri == "mongodb://explicit:27017"
    assert config.api_url == "http://up:1"


@pytest.mark.parametrize("text", ["", "{not json", "[1, 2]", '"a string"',
                                  '{"mongo_uri": 5, "api_url": null}'])
def test_broken_up_state_is_ignored(env, home, text):
    """An unreadable, non-object or mistyped up.json is ignored and defaults apply."""
    path = Path(home) / UP_STATE_FILE
    path.parent.mkdir(parents=True)
    path.write_text(text)
    config = Config.load(environ=env)
    assert config.mongo_uri == "mongodb://127.0.0.1:27017"
    assert config.api_url == "http://127.0.0.1:8080"


# -- round trips and derived values -----------------------------------------


def test_as_environ_round_trips(env, tmp_path):
    """Config.load(environ=config.as_environ()) gives back exactly the same settings."""
    env.update({
        "CRAWLFLEET_MONGO_URI": "mongodb://u:p@h1:27017,h2:27017/?replicaSet=rs",
        "CRAWLFLEET_BROKER_URL": "amqp://guest:guest@127.0.0.1:5672//",
        "CRAWLFLEET_QUEUE_PREFIX": "rt-1",
        "CRAWLFLEET_HEARTBEAT_INTERVAL": "0.1",
        "CRAWLFLEET_NODE_TIMEOUT": "0.30000000000000004",
        "CRAWLFLEET_WEB_WORKERS": "9",
        "CRAWLFLEET_SPIDERS_PATH": f"{tmp_path}/a:{tmp_path}/b",
        "CRAWLFLEET_SECRET_KEY": "s3cr3t with spaces",
    })
    config = Config.load(environ=env)
    environ = config.as_environ()
    assert set(environ) == {ENV_PREFIX + s.name.upper() for s in SETTINGS}
    assert all(isinstance(v, str) for v in environ.values())
    again = Config.load(environ=environ)
    assert again.as_dict() == config.as_dict()
    assert again.as_environ() == environ


def test_as_environ_round_trips_defaults(env):
    """The default config survives the trip through the environment too."""
    config = Config.load(environ=env)
    assert Config.load(environ=config.as_environ()).as_dict() == config.as_dict()


def test_replace_revalidates(env):
    """replace() returns a new, validated config and leaves the original alone."""
    config = Config.load(environ=env)
    other = config.replace(mongo_db="x", web_workers="4")
    assert other.mongo_db == "x" and other.web_workers == 4
    assert config.mongo_db == BY_NAME["mongo_db"].default
    with pytest.raises(ConfigError):
        config.replace(broker_url="nope://")
    with pytest.raises(ConfigError):
        config.replace(nonsense=1)


def test_spider_folders_default_to_bundled_spiders(env):
    """With spiders_path empty, spider_folders is the repository's bundled spiders/ folder."""
    folders = Config.load(environ=env).spider_folders
    assert folders == [(ROOT / "spiders").resolve()]
    assert (folders[0] / "books" / "scrapy.cfg").is_file()


def test_spider_folders_from_path_list(env, tmp_path, monkeypatch):
    """spiders_path is split on ':', empty parts dropped, each made absolute."""
    monkeypatch.chdir(tmp_path)
    env["CRAWLFLEET_SPIDERS_PATH"] = f"one::{tmp_path}/two:"
    folders = Config.load(environ=env).spider_folders
    assert folders == [(tmp_path / "one").resolve(), (tmp_path / "two").resolve()]


# -- the defaults module ----------------------------------------------------


def test_every_setting_is_documented_and_typed():
    """Each setting has a unique lower-case name, non-empty help and a default of its kind."""
    names = [s.name for s in SETTINGS]
    assert len(names) == len(set(names))
    assert set(BY_NAME) == set(names)
    for setting in SETTINGS:
        assert setting.name.isidentifier() and setting.name == setting.name.lower(), setting
        assert isinstance(setting.help, str) and len(setting.help.strip()) > 10, setting.name
        assert setting.kind in (str, int, float, bool), setting.name
        assert type(setting.default) is setting.kind, setting.name
        if setting.kind is float:
            assert math.isfinite(setting.default), setting.name


def test_every_setting_can_be_set_from_environment(env, tmp_path):
    """Each setting is read from CRAWLFLEET_<NAME>: none is silently ignored."""
    samples = {str: None, int: "3", float: "4.5", bool: "True"}
    special = {
        "home": str(tmp_path / "h2"), "mongo_uri": "mongodb://x:1", "broker_url": "memory://",
        "queue_prefix": "qp", "api_url": "http://x:2", "heartbeat_interval": "1.0",
        "node_timeout": "9.0", "spiders_path": str(tmp_path / "sp"), "log_format": "json",
        "web_worker_class": "gthread", "login_account_limit": "3 per minute",
        "login_address_limit": "7 per hour", "node_labels": "region=eu,proxy=yes",
    }
    for setting in SETTINGS:
        raw = special.get(setting.name) or samples[setting.kind] or f"v-{setting.name}"
        config = Config.load(environ={**env, ENV_PREFIX + setting.name.upper(): raw})
        assert str(getattr(config, setting.name)) == raw, setting.name


def test_bool_settings_read_words_and_log_format_is_checked(env):
    """A bool setting reads true/false words (bool("false") would be True); anything
    else stops the process; log_format is text or json."""
    for raw, expected in (("false", False), ("0", False), ("No", False), ("off", False),
                          ("true", True), ("1", True), ("YES", True), ("on", True)):
        config = Config.load(environ={**env, "CRAWLFLEET_METRICS_PUBLIC": raw})
        assert config.metrics_public is expected, raw
    with pytest.raises(ConfigError, match="metrics_public"):
        Config.load(environ={**env, "CRAWLFLEET_METRICS_PUBLIC": "maybe"})
    assert Config.load(environ={**env, "CRAWLFLEET_LOG_FORMAT": "json"}).log_format == "json"
    with pytest.raises(ConfigError, match="log_format"):
        Config.load(environ={**env, "CRAWLFLEET_LOG_FORMAT": "xml"})


def test_web_worker_class_and_login_limits_are_checked(env):
    """A worker class other than gevent or gthread, or a limit Flask-Limiter cannot
    read, stops the process with one line naming the setting."""
    with pytest.raises(ConfigError, match="web_worker_class"):
        Config.load(environ={**env, "CRAWLFLEET_WEB_WORKER_CLASS": "sync"})
    with pytest.raises(ConfigError, match="login_account_limit"):
        Config.load(environ={**env, "CRAWLFLEET_LOGIN_ACCOUNT_LIMIT": "lots"})
    config = Config.load(environ={**env, "CRAWLFLEET_LOGIN_ADDRESS_LIMIT": "50 per 10 minutes"})
    assert config.login_address_limit == "50 per 10 minutes"
