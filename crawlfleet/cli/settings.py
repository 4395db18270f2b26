"""`crawlfleet config`: the settings in force, or the documented list as Markdown."""

import click

from crawlfleet.defaults import SETTINGS


def markdown_table():
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for s in SETTINGS:
        default = f"`{s.default}`" if s.default not in ("", None) else "(empty)"
        rows.append(f"| `CRAWLFLEET_{s.name.upper()}` | {default} | {s.help} |")
    return "\n".join(rows)


@click.command("config")
@click.option("--markdown", is_flag=True, help="Print the documented list as a Markdown table.")
def config_command(markdown):
    """Show the configuration in force (secrets hidden)."""
    if markdown:
        click.echo(markdown_table())
        return
    from crawlfleet.cli import load_config

    values = load_config().as_dict()
    for name in ("token", "secret_key", "alert_smtp_password"):
        if values.get(name):
            values[name] = "(set)"
    width = max(len(k) for k in values)
    for name, value in values.items():
        click.echo(f"{name.ljust(width)}  {value}")


def register(main):
    main.add_command(config_command)
