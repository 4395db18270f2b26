"""`crawlfleet user …`: web UI users, managed against the store directly (for
real deployments, where no one reads `crawlfleet up`'s banner)."""

import sys

import click

from crawlfleet.errors import CrawlfleetError
from crawlfleet.tokens import ROLES


def _store():
    from crawlfleet.cli import load_config
    from crawlfleet.store import Store

    store = Store(load_config())
    store.ensure_indexes()
    return store


def _password(from_stdin, generate):
    from crawlfleet.users import new_password

    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n"), False
    if generate:
        return new_password(), True
    return click.prompt("Password", hide_input=True, confirmation_prompt=True), False


def _run(action):
    import pymongo.errors

    store = _store()
    try:
        return action(store)
    except CrawlfleetError as exc:
        raise click.ClickException(str(exc)) from None
    except pymongo.errors.PyMongoError as exc:
        raise click.ClickException(f"cannot reach the store: {exc}") from None
    finally:
        store.close()


ROLE_MEANING = {
    "viewer": "reads only (deploying and scheduling, in the UI, the API or through "
              "Scrapyd's, need --role operator)",
    "operator": "deploys, runs, cancels and schedules spiders, in the UI, the API and "
                "through Scrapyd's",
    "admin": "everything, users and tokens too",
}


@click.group()
def user():
    """Web UI users (talks to the store directly)."""


@user.command("create")
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), default="viewer", show_default=True,
              help="viewer reads only; operator also deploys and runs (Scrapyd clients "
                   "need it to deploy); admin does everything.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.option("--generate", is_flag=True, help="Make a random password and print it.")
def create(name, role, password_stdin, generate):
    """Make a user who can sign in to the web UI."""
    from crawlfleet import users

    password, show = _password(password_stdin, generate)
    _run(lambda store: users.create_user(store, name, password, role))
    click.echo(f"user {name} created with role {role}: {ROLE_MEANING[role]}"
               + (f"; password: {password}" if show else ""))


@user.command("passwd")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.option("--generate", is_flag=True, help="Make a random password and print it.")
def passwd(name, password_stdin, generate):
    """Set a user's password (their open sessions end)."""
    from crawlfleet import users

    password, show = _password(password_stdin, generate)
    _run(lambda store: users.set_password(store, name, password))
    click.echo(f"password of {name} changed" + (f"; new password: {password}" if show else ""))


@user.command("list")
def list_users():
    """The users and their roles."""
    from crawlfleet import users

    for doc in _run(users.list_users):
        click.echo(f"{doc['_id']}\t{doc['role']}")


def register(main):
    main.add_command(user)
