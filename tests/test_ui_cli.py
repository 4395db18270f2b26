"""`crawlfleet user create/passwd/list` (crawlfleet/cli/users.py) against a real store."""

import subprocess
import sys

from helpers import process_env
from crawlfleet import users


def cli(config, *args, stdin=""):
    return subprocess.run([sys.executable, "-m", "crawlfleet", "user", *args], input=stdin,
                          env=process_env(config), capture_output=True, text=True, timeout=60,
                          start_new_session=True)


def test_user_create_passwd_and_list(config, store):
    """A user made from the CLI signs in; passwd changes the password; list shows roles."""
    made = cli(config, "create", "bob", "--role", "operator", "--password-stdin",
               stdin="first-password\n")
    assert made.returncode == 0, made.stderr
    assert "user bob created with role operator: deploys, runs" in made.stdout
    assert users.authenticate(store, "bob", "first-password")["role"] == "operator"
    viewer = cli(config, "create", "eve", "--password-stdin", stdin="eve-password\n")
    # the default role, and what it cannot do, said where the user sees it
    assert "created with role viewer: reads only" in viewer.stdout
    assert "need --role operator" in viewer.stdout
    generated = cli(config, "passwd", "bob", "--generate")
    assert generated.returncode == 0, generated.stderr
    password = generated.stdout.strip().rsplit(" ", 1)[1]
    assert users.authenticate(store, "bob", password)
    assert users.authenticate(store, "bob", "first-password") is None
    assert "bob\toperator" in cli(config, "list").stdout


def test_user_errors_are_one_line(config, store):
    """A duplicate name, a short password or an unknown user is a one-line error, exit 1."""
    cli(config, "create", "carol", "--generate")
    again = cli(config, "create", "carol", "--generate")
    assert again.returncode == 1 and "already exists" in again.stderr
    short = cli(config, "create", "dave", "--password-stdin", stdin="short\n")
    assert short.returncode == 1 and "8 to 200 characters" in short.stderr
    missing = cli(config, "passwd", "nobody", "--generate")
    assert missing.returncode == 1 and "unknown user" in missing.stderr
    assert "Traceback" not in again.stderr + short.stderr + missing.stderr
