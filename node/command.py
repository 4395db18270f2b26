"""What a spider process runs, as data: kind, entry, spider, arguments, settings.

The runner starts it fresh (`argv`) or forks it from a warm process
(`launch_args`, what `crawlfleet.sdk.launch` takes), and neither has to take
a command line apart again. Arguments and settings travel as list items of
argv, never through a shell.
"""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass, field
from typing import Any

from crawlfleet.models import SpiderKind

PYTHON_NAMES = ("python", "python3")
# How a Scrapy spider runs: crawlfleet's launcher adds its pipeline and stats.
SCRAPY_ENTRY = ("-m", "crawlfleet.sdk.launch")


@dataclass(frozen=True)
class SpiderCommand:
    kind: SpiderKind
    spider: str
    # Scrapy: the interpreter's arguments that start the launcher; a command
    # spider: its manifest's command (a leading python/python3 is the project's).
    entry: tuple[str, ...]
    args: dict[str, str] = field(default_factory=dict)
    settings: dict[str, str] = field(default_factory=dict)

    @property
    def warm_capable(self) -> bool:
        """A warm process preloads Scrapy, so only Scrapy spiders fork from one."""
        return self.kind is SpiderKind.SCRAPY

    def launch_args(self) -> list[str]:
        """The arguments of `crawlfleet.sdk.launch`: SPIDER [-a N=V]... [-s N=V]..."""
        if self.kind is not SpiderKind.SCRAPY:
            raise ValueError("only a Scrapy spider runs through crawlfleet.sdk.launch")
        out = [self.spider]
        for name, value in self.args.items():
            out += ["-a", f"{name}={value}"]
        for name, value in self.settings.items():
            out += ["-s", f"{name}={value}"]
        return out

    def argv(self, python: str | None = None) -> list[str]:
        """The whole command line; `python` is the interpreter of the project's
        environment, by default the node's own."""
        python = python or sys.executable
        if self.kind is SpiderKind.SCRAPY:
            return [python, *self.entry, *self.launch_args()]
        command = list(self.entry)
        if command[0] in PYTHON_NAMES:
            command[0] = python
        return command + [f"--{name}={value}" for name, value in self.args.items()]

    def display(self) -> str:
        """The command line as the task log shows it (without the interpreter path)."""
        argv = self.argv("python")
        # quoted: an argument holding a newline must not forge a log line
        return shlex.join(argv[1:] if argv[0] == "python" else argv)


def spider_command(task: dict[str, Any], spider: dict[str, Any]) -> SpiderCommand:
    """The command of `task`; `spider` holds the version's command for a command spider."""
    kind = SpiderKind(task["kind"])
    return SpiderCommand(
        kind=kind, spider=task["spider"],
        entry=SCRAPY_ENTRY if kind is SpiderKind.SCRAPY else tuple(spider["command"]),
        args=dict(task.get("args") or {}),
        settings=dict(task.get("settings") or {}) if kind is SpiderKind.SCRAPY else {})
