"""Ending child processes started in their own process groups
(`start_new_session=True`) together with whatever they started: the one way
`crawlfleet up`, the benchmarks' platforms and peers, and the tests stop
their children."""

import os
import signal
import subprocess
import time
from collections.abc import Sequence


def stop_group(proc: subprocess.Popen, grace: float = 10.0) -> None:
    """SIGTERM to `proc`'s group, SIGKILL if it is still there after `grace`
    seconds, then SIGKILL to any straggler left in the group (a grandchild
    that outlived its parent would otherwise hold ports and files)."""
    stop_groups([proc], grace)


def stop_groups(procs: Sequence[subprocess.Popen], grace: float = 10.0) -> None:
    """`stop_group` for several processes at once: each gets SIGTERM, they share
    one `grace`, and those still running then get SIGKILL (one after another,
    a test's or a platform's processes would each wait out a grace in turn)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        running = [p for p in procs if p.poll() is None]
        if not running:
            break
        for proc in running:
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace
        for proc in running:
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
    for proc in procs:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # stragglers left in the group
        except (ProcessLookupError, PermissionError):
            pass
