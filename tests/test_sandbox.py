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
