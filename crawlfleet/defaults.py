"""Every tunable of crawlfleet, with its default and what it means.

The list itself is data, `defaults.toml` next to this module: a table per
setting (its default, whose type is the setting's, and its help), kept in the
format of the file a user names with ``CRAWLFLEET_CONFIG``, as Scrapyd keeps
its defaults in ``default_scrapyd.conf``. `crawlfleet.config` reads each
setting from the environment as ``CRAWLFLEET_<NAME>`` (upper case), or from
that file (lower-case keys), and falls back to the value there. The README's
configuration table is generated from it (`crawlfleet config --markdown`), so
the two cannot drift apart.
"""

import tomllib
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Setting:
    name: str
    default: object
    kind: type
    help: str


def _load() -> list[Setting]:
    # next to this module, as package data (importlib.resources would add about
    # 18 ms to the start of every crawlfleet process for the same file)
    text = Path(__file__).with_name("defaults.toml").read_text(encoding="utf-8")
    return [Setting(name, entry["default"], type(entry["default"]), entry["help"])
            for name, entry in tomllib.loads(text).items()]


SETTINGS = _load()

BY_NAME = {s.name: s for s in SETTINGS}

TASK_STATUSES_DOC = "pending, running, finished, error, cancelled, timeout, abnormal"
