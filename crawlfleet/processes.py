"""Ending a child process started in its own process group
(`start_new_session=True`) together with whatever it started: the one way
`crawlfleet up`, the benchmarks' platforms and peers, and the tests stop
their children."""

import os
import signal
import subprocess


def stop_group(proc: subprocess.Popen, grace: float = 10.0) -> None:
    """SIGTERM to `proc`'s group, SIGKILL if it is still there after `grace`
    seconds, then SIGKILL to any straggler left in the group (a grandchild
    that outlived its parent would otherwise hold ports and files)."""
    if proc.poll() is None:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(grace)
                break
            except subprocess.TimeoutExpired:
                continue
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
