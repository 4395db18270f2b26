"""Listing a Scrapy project's spiders where its code may run: never inside
the web server or master process, but in a subprocess that first builds the
project's own environment (its requirements.txt, in the same per-hash
environments nodes use, crawlfleet/venvs.py) and then runs `scrapy list` in
the spider sandbox, as the sandbox user, on a copy of the project, with a
HOME of its own and no platform variable.

Its failures read as what went wrong, with the paths of this machine taken
out: the message first, the traceback after it.
"""

import logging
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from crawlfleet.errors import ProjectError
from crawlfleet.sandbox import Mounts, Sandbox
from crawlfleet.venvs import Virtualenvs, venv_of

log = logging.getLogger(__name__)

PIP_TAIL = 12
TRACEBACK_TAIL = 14


def list_scrapy_spiders(folder, config, timeout):
    """Names printed by `scrapy list` for the project in `folder`."""
    work_root = config.home_path / "inspect"
    work_root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=work_root) as work:
        work = Path(work)
        project, home = work / "project", work / "home"
        # a copy: the sandbox user may read it, whoever owns the original
        shutil.copytree(folder, project, symlinks=True)
        home.mkdir()
        try:
            return _list(project, home, config, timeout)
        except ProjectError as exc:
            raise ProjectError(_without_paths(str(exc), project, work, config)) from None


def _list(project, home, config, timeout):
    sandbox = Sandbox(config)
    said = []
    try:
        python = Virtualenvs(config.home_path / "venvs", sandbox=sandbox).python_for(
            project, said.append)
    except ProjectError as exc:
        pip = [line for line in said if line.startswith("pip: ")][-PIP_TAIL:]
        raise ProjectError(f"its requirements could not be installed ({exc}):\n"
                           + "\n".join(pip)) from None
    venv = venv_of(python)
    for path in (project, *venv):
        sandbox.share(path)
    sandbox.own(home)
    env = {"PATH": os.environ.get("PATH") or "/usr/local/bin:/usr/bin:/bin",
           "LANG": "C.UTF-8", "HOME": str(home), "PYTHONDONTWRITEBYTECODE": "1"}
    argv = sandbox.wrap([python, "-m", "scrapy", "list"],
                        Mounts(readonly=[project, *venv], writable=[home]), project)
    proc = subprocess.Popen(argv, cwd=project, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                            start_new_session=True, text=True, errors="replace",
                            umask=sandbox.umask)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise ProjectError(f"`scrapy list` did not finish within {timeout:g} s") from None
    if proc.returncode != 0:
        raise ProjectError(_readable_failure(err, sandbox.exit_code(proc.returncode)))
    return [line.strip() for line in out.splitlines() if line.strip()]


def _readable_failure(stderr, code):
    """The error line first (e.g. ModuleNotFoundError: No module named 'x'),
    then the traceback that led to it."""
    lines = [line for line in stderr.rstrip().splitlines() if line.strip()]
    last = next((line for line in reversed(lines) if not line.startswith(" ")), "")
    detail = "\n".join(lines[-TRACEBACK_TAIL:])
    head = f"`scrapy list` failed with exit code {code}" + (f": {last.strip()}" if last else "")
    return head + ("\n" + detail if detail else "")


def _without_paths(text, project, work, config):
    for path, name in ((project, "."), (work, "."), (config.home_path / "venvs", "<env>"),
                       (config.home_path, "<home>")):
        text = text.replace(str(path) + "/", "" if name == "." else name + "/")
        text = text.replace(str(path), name)
    return text
