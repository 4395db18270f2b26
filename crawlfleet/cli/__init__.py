"""The `crawlfleet` command: process verbs (up, master, node, web) and client
verbs that talk to the JSON API."""

import click

from crawlfleet import logformat
from crawlfleet.cli import (alerts, client, crawls, data, health, nodes, projects, schedules,
                            server, settings, spiderenv, spiderhistory, taskactions, users)
from crawlfleet.config import Config
from crawlfleet.errors import ConfigError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="crawlfleet")
def main():
    """crawlfleet — a distributed web-crawler platform."""


def load_config(**overrides):
    """The configuration, or a one-line error and exit status 2."""
    try:
        return Config.load(**overrides)
    except ConfigError as exc:
        raise click.ClickException(f"configuration error: {exc}") from None


def setup_logging(config, name):
    """This process's log on stderr: text, or one JSON object per line
    (`log_format`; crawlfleet/logformat.py)."""
    logformat.setup(config.log_format, config.log_level, name)


server.register(main)
nodes.register(main)  # subcommands of `crawlfleet node`, which server registers
client.register(main)
taskactions.register(main)  # subcommands of client's `tasks`
crawls.register(main)
settings.register(main)
users.register(main)
projects.register(main)
schedules.register(main)
health.register(main)
data.register(main)
spiderhistory.register(main)  # `spider history`, in data's `spider` group
spiderenv.register(main)
alerts.register(main)
