"""Warm start: Scrapy tasks forked from a process that has imported Scrapy and
the project, as strictly isolated as a fresh process, with a fresh-process
fallback."""

import os
import platform
import signal
import socket
import sys
import threading

from helpers import ROOT, task_log, wait_for, wait_task
from test_node import emb, run  # noqa: F401  (the embedded-broker platform fixture)


def probe(store, task_id):
    task = wait_task(store, task_id)
    assert task["status"] == "finished", task_log(store, task_id)
    return store.results("results_warm_probe").find_one({"_tid": task_id})


def host_pid(inner_pid, start):
    """The PID here of a process another PID namespace calls `inner_pid`,
    recognised by its start time."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = open(f"/proc/{entry}/stat").read()
            status = open(f"/proc/{entry}/status").read()
        except OSError:
            continue
        nspid = next((line.split()[1:] for line in status.splitlines()
                      if line.startswith("NSpid:")), [])
        if (nspid and int(nspid[-1]) == inner_pid
                and int(stat.rsplit(")", 1)[1].split()[19]) == start):
            return int(entry)
    return None


def test_warm_children_start_from_a_pristine_state(emb):
    """Each task is a new child of the same warm process, in its own session,
    seeing neither module state nor environment changes of the task before."""
    config, store, broker, procs = emb
    procs.node(store, max_runners=1)
    first = probe(store, run(config, store, broker, "warm_probe"))
    second = probe(store, run(config, store, broker, "warm_probe"))
    assert first["runs_seen"] == second["runs_seen"] == 1
    assert first["pid"] != second["pid"]
    assert first["parent_start"] == second["parent_start"]  # the same warm process forked both...
    assert "crawlfleet.sdk.warm" in first["parent_cmd"]  # ...not the node
    for item in (first, second):
        assert item["pgid"] == item["pid"] == item["sid"]  # own session and group
        assert item["extra_env"] is None
        assert item["task_env"] == item["_tid"]
        assert item["cwd"].startswith(str(config.home_path / "cache"))
    log = task_log(store, second["_tid"])
    assert not any("warm start unavailable" in line for line in log)


def test_project_that_starts_threads_at_import_runs_fresh(emb):
    """A project that cannot be forked safely falls back to a fresh process."""
    config, store, broker, procs = emb
    procs.node(store)
    task_id = run(config, store, broker, "threaded_import")
    task = wait_task(store, task_id)
    assert task["status"] == "finished", task_log(store, task_id)
    log = task_log(store, task_id)
    assert any("warm start unavailable" in line and "threads" in line for line in log)
    assert store.results("results_threaded_import").count_documents({"_tid": task_id}) == 1


def test_warm_start_can_be_turned_off(emb):
    """CRAWLFLEET_WARM_START=0: every Scrapy task is a fresh interpreter."""
    config, store, broker, procs = emb
    node = procs.node(store, max_runners=1, CRAWLFLEET_WARM_START="0")
    first = probe(store, run(config, store, broker, "warm_probe"))
    second = probe(store, run(config, store, broker, "warm_probe"))
    # started by the node (or the sandbox it wraps them in), each its own fresh parent
    for item in (first, second):
        assert "crawlfleet.sdk.warm" not in item["parent_cmd"]
    assert first["parent_start"] != second["parent_start"] or first["ppid"] == node.pid


def test_killing_the_warm_process_fails_only_its_running_task(emb):
    """If the warm process dies its running child dies too; the next task gets a new one."""
    config, store, broker, procs = emb
    procs.node(store, max_runners=1)
    first = probe(store, run(config, store, broker, "warm_probe"))
    zygote = host_pid(first["ppid"], first["parent_start"])
    assert zygote is not None
    os.kill(zygote, signal.SIGKILL)
    after = probe(store, run(config, store, broker, "warm_probe"))
    assert after["parent_start"] != first["parent_start"]
    assert "crawlfleet.sdk.warm" in after["parent_cmd"]
    assert after["runs_seen"] == 1


def test_warm_books_crawl_matches_a_fresh_one(emb):
    """The books spider forked warm stores exactly the items a fresh process does."""
    config, store, broker, procs = emb
    procs.node(store)
    warm = wait_task(store, run(config, store, broker, "books", args={"max_pages": "2"}))
    again = wait_task(store, run(config, store, broker, "books", args={"max_pages": "2"}))
    for task in (warm, again):
        assert task["status"] == "finished"
        assert task["stats"]["items"] == 40
    titles = lambda t: sorted(i["title"] for i in store.results("results_books").find({"_tid": t["_id"]}))  # noqa: E731
    assert titles(warm) == titles(again)


def warm_processes(node_pid):
    """Pids of the warm processes a node has started (children running crawlfleet.sdk.warm)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(") ", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if b"crawlfleet.sdk.warm" in argv and ppid in (node_pid, *_children(node_pid)):
            found.append(int(entry))
    return found


def ancestors(pid):
    """`pid` and the processes above it, up to init."""
    chain = []
    while pid > 1:
        chain.append(pid)
        try:
            with open(f"/proc/{pid}/stat") as f:
                pid = int(f.read().rsplit(") ", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            break
    return chain


def _children(pid):
    """Direct children of pid (the node may start warm processes through setpriv)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def test_activating_a_version_warms_it_before_the_first_task(emb):
    """A deploy or activation starts the version's warm process at once, so the
    first task after it is forked warm from that very process."""
    from master import versions

    config, store, broker, procs = emb
    node = procs.node(store, max_runners=1)
    assert warm_processes(node.pid) == []  # nothing run yet, nothing deployed since start
    project = store.spiders.find_one({"_id": "warm_probe"})["project"]
    versions.activate(store, project, store.projects.find_one({"_id": project})["current_version"])
    zygotes = wait_for(lambda: warm_processes(node.pid), timeout=90,
                       what="a warm process started by the activation")
    first = probe(store, run(config, store, broker, "warm_probe"))
    # forked by the warm process the activation started (in the sandbox, that
    # process runs under bubblewrap in a PID namespace of its own: its number
    # here is a descendant of the bubblewrap process listed)
    parent = host_pid(first["ppid"], first["parent_start"]) or first["ppid"]
    assert "crawlfleet.sdk.warm" in first["parent_cmd"]
    assert set(ancestors(parent)) & set(zygotes)
    assert warm_processes(node.pid) == zygotes  # the task waited for it, started no other


def test_a_schedule_due_soon_warms_its_version(emb):
    """A schedule due within the next minutes gets its version's warm process now."""
    from crawlfleet.models import now

    config, store, broker, procs = emb
    node = procs.node(store, max_runners=1)
    assert warm_processes(node.pid) == []
    store.schedules.insert_one({"_id": "prewarm-test", "spider": "warm_probe",
                                "cron": "0 0 1 1 *", "enabled": True,
                                "due_at": now() + 120, "next_fire_at": now() + 120})
    wait_for(lambda: warm_processes(node.pid), timeout=90,
             what="a warm process started for the schedule")


def test_closing_a_warm_process_ends_it_through_its_socket():
    """The node closing a warm process ends it by end of file on its socket, at
    once: not by the SIGTERM after it, which the sandbox's bubblewrap ignores
    (here a terminate that does nothing), so that no close waits out its grace
    (every node's stop did, 5 s a warm process)."""
    from node.warmpool import Zygote

    zygote = Zygote(sys.executable, ROOT / "tests" / "fixtures" / "spiders" / "warm_probe",
                    dict(os.environ))
    listener = next(t for t in threading.enumerate() if t.name == f"warm-{zygote.pid}")
    # the bug needs the node's listening thread blocked reading the socket, as it
    # is for a warm process's whole life: closed before that, the read fails at once
    recvmsg = {"x86_64": "47", "aarch64": "212"}[platform.machine()]
    wait_for(lambda: open(f"/proc/self/task/{listener.native_id}/syscall").read().split()[0]
             == recvmsg, what="the warm process's listener reading its socket")
    zygote.proc.terminate = lambda: None
    zygote.close()
    assert zygote.proc.returncode == 0  # it ended by itself; killed, it would be -9


def test_a_task_sent_to_a_warm_process_that_just_died_gets_a_new_one(tmp_path):
    """The node learns that a warm process died when its listener reads the end
    of file, which on a busy machine may come after the next task was sent to
    it: that task gets a new warm process, as it would a moment later, not a
    fresh interpreter (seen in a suite run with one core kept busy)."""
    from node.warmpool import WarmPool

    workdir = ROOT / "tests" / "fixtures" / "spiders" / "warm_probe"
    key = (sys.executable, str(workdir))
    task_dir = tmp_path / "version" / "task"
    task_dir.mkdir(parents=True)
    said = []
    ours, theirs = socket.socketpair()
    pool = WarmPool()

    def spawn():
        return pool.spawn(sys.executable, workdir, ["warm_probe"], dict(os.environ), said.append,
                          channel_fd=theirs.fileno(), task_dir=task_dir)

    try:
        assert spawn() is not None, said
        dead = pool.zygotes[key]
        dead.proc.kill()
        dead.proc.wait(30)
        wait_for(lambda: not dead.alive, what="the listener reading the warm process's end")
        dead.alive = True  # as the node saw it just before its listener read that end
        assert spawn() is not None, said
        assert said == []
        assert pool.zygotes[key] is not dead and pool.zygotes[key].alive
    finally:
        pool.close()
        ours.close()
        theirs.close()
