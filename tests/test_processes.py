"""Stopping a child's whole process group: a polite SIGTERM first, SIGKILL for
what ignores it, and no straggler left behind in the group."""

import os
import signal
import subprocess
import sys
import time

from crawlfleet.processes import stop_group


def group_alive(pgid):
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


def spawn(code):
    return subprocess.Popen([sys.executable, "-c", code], start_new_session=True,
                            stdout=subprocess.PIPE)


def test_a_child_and_its_grandchild_are_stopped_together():
    """The grandchild outlives a SIGTERM'd parent unless the whole group is ended."""
    proc = spawn("import subprocess, sys, time; "
                 "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
                 "print('ready', flush=True); time.sleep(60)")
    assert proc.stdout.readline().strip() == b"ready"
    stop_group(proc, grace=5)
    assert proc.returncode == -signal.SIGTERM
    deadline = time.monotonic() + 5
    while group_alive(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not group_alive(proc.pid)
    proc.stdout.close()


def test_a_child_that_ignores_sigterm_is_killed_after_the_grace():
    proc = spawn("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                 "print('ready', flush=True); time.sleep(60)")
    assert proc.stdout.readline().strip() == b"ready"
    started = time.monotonic()
    stop_group(proc, grace=0.5)
    assert proc.returncode == -signal.SIGKILL
    assert time.monotonic() - started < 5
    proc.stdout.close()


def test_a_child_that_already_exited_is_left_alone():
    proc = spawn("pass")
    proc.wait(10)
    stop_group(proc)
    assert proc.returncode == 0
    proc.stdout.close()
