"""The spider sandbox (crawlfleet/sandbox.py) on its own: how the mode is
chosen, and what a sandboxed process can and cannot reach, with real
bubblewrap processes."""

import os
import subprocess
import sys

import pytest

from crawlfleet.errors import ConfigError
from crawlfleet.sandbox import Mounts, Sandbox


def sandbox(config, **settings):
    return Sandbox(config.replace(**settings))


def test_none_is_chosen_only_on_purpose_and_says_so(config):
    box = sandbox(config, sandbox="none")
    assert box.mode == "none" and "SANDBOX DISABLED" in box.state.describe()["warning"]
    with pytest.raises(ConfigError, match="sandbox must be one of"):
        sandbox(config, sandbox="chroot")


def test_auto_without_bubblewrap_falls_back_loudly_and_explicit_modes_refuse(config, monkeypatch):
    monkeypatch.setattr("shutil.which", lambda name: None if name == "bwrap" else "/usr/bin/" + name)
    box = sandbox(config, sandbox="auto")
    assert box.mode == "none" and "bubblewrap is not installed" in box.state.reason
    with pytest.raises(ConfigError, match="bubblewrap is not installed"):
        sandbox(config, sandbox="bwrap")


def test_python_is_mounted_back_without_the_checkout_around_it():
    """A checkout under /tmp or a home holds more than the SDK (a settings file
    with credentials, say): only the interpreter, its environment and the
    crawlfleet package go back into the sandbox."""
    import crawlfleet
    from crawlfleet.sandbox import _python_paths

    checkout = os.path.dirname(os.path.dirname(os.path.realpath(crawlfleet.__file__)))
    paths = _python_paths()
    assert os.path.dirname(os.path.realpath(crawlfleet.__file__)) in paths or any(
        os.path.realpath(crawlfleet.__file__).startswith(p + "/") for p in paths)
    assert checkout not in paths or os.path.realpath(sys.prefix) == checkout


def test_a_folder_closed_to_other_users_is_named():
    """The user sandbox cannot cross a 0700 folder on the way to Python; it says
    which, instead of every spider failing with "No module named scrapy"."""
    import pathlib
    import shutil
    import tempfile

    from crawlfleet.sandbox import _unreachable

    # pytest's own tmp_path lies under a 0700 folder: start from an open one
    tmp_path = pathlib.Path(tempfile.mkdtemp(dir="/var/tmp"))
    try:
        _check_closed_folders(tmp_path, _unreachable)
    finally:
        shutil.rmtree(tmp_path)


def _check_closed_folders(tmp_path, _unreachable):
    closed = tmp_path / "closed"
    venv = closed / "venv"
    venv.mkdir(parents=True)
    os.chmod(tmp_path, 0o755)
    os.chmod(closed, 0o700)
    assert _unreachable([str(venv)], hidden=[]) == str(closed)
    # under a hidden folder the sandbox makes the folders on the way itself
    assert _unreachable([str(venv)], hidden=[str(tmp_path)]) == ""
    os.chmod(venv, 0o700)
    assert _unreachable([str(venv)], hidden=[str(tmp_path)]) == str(venv)
    os.chmod(closed, 0o755)
    os.chmod(venv, 0o755)
    assert _unreachable([str(venv)], hidden=[]) == ""


def test_exit_codes_read_as_unwrapped(config):
    box = sandbox(config, sandbox="none")
    assert box.exit_code(130) == 130
    box.state.mode = "bwrap"
    assert box.exit_code(130) == -2 and box.exit_code(1) == 1 and box.exit_code(0) == 0


@pytest.fixture
def box(config):
    box = Sandbox(config)
    if box.mode == "none":
        pytest.skip(f"no sandbox can run here: {box.state.reason}")
    return box


def test_a_sandboxed_process_sees_only_its_own_folder_of_home(box, config):
    home = config.home_path
    home.mkdir(parents=True, exist_ok=True)
    (home / "admin-token").write_text("cft_secret\n")
    task = home / "tasks" / "v1" / "t1"
    code = home / "cache" / "v1"
    task.mkdir(parents=True)
    code.mkdir(parents=True)
    (code / "spider.py").write_text("print('code is readable')\n")
    box.share(code)
    box.own(task.parent)
    box.own(task)
    script = (
        "import glob, os, sys\n"
        f"home = {str(home)!r}\n"
        "print('token', os.path.exists(os.path.join(home, 'admin-token')))\n"
        "print('code', open(os.path.join(home, 'cache/v1/spider.py')).read().strip())\n"
        "open(os.path.join(home, 'tasks/v1/t1/out.txt'), 'w').write('ok')\n"
        "print('pids', len(glob.glob('/proc/[0-9]*')))\n"
        "print('uid', os.getuid())\n"
        "try:\n"
        "    open(os.path.join(home, 'cache/v1/x'), 'w')\n"
        "    print('code writable')\n"
        "except OSError:\n"
        "    print('code read-only')\n")
    argv = box.wrap([sys.executable, "-c", script], Mounts(readonly=[code], writable=[task]), task)
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, umask=box.umask,
                          env={"PATH": os.environ["PATH"]})
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "token False" in out and "code is readable" in out and "code read-only" in out
    assert (task / "out.txt").read_text() == "ok"
    pids = int(out.split("pids ")[1].split()[0])
    assert pids <= 3, out
    if os.geteuid() == 0:
        assert "uid 0" not in out
