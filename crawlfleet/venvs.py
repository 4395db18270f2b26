"""Per-project dependencies: a virtual environment for each distinct
`requirements.txt`, keyed by the file's hash, made once per node and reused by
every task of every version with the same file.

The environment sees the node's own packages too (crawlfleet, Scrapy, pymongo)
through a `.pth` file placed after its own site-packages, so a project pins
what it needs and inherits the rest. pip's output goes to the task log.
"""

import fcntl
import hashlib
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

from crawlfleet.errors import ProjectError
from crawlfleet.folders import prune_folders, touch

REQUIREMENTS = "requirements.txt"
READY = ".crawlfleet-ready"


class Virtualenvs:
    def __init__(self, root, timeout=600.0):
        self.root = Path(root)
        self.timeout = timeout

    def python_for(self, project_dir, say):
        """The interpreter for a project: its environment's, or the node's own."""
        requirements = Path(project_dir) / REQUIREMENTS
        if not requirements.is_file():
            return sys.executable
        data = requirements.read_bytes()
        if not any(line.strip() and not line.strip().startswith(b"#") for line in data.splitlines()):
            return sys.executable
        key = hashlib.sha256(data).hexdigest()[:16]
        venv = self.root / key
        python = venv / "bin" / "python"
        if (venv / READY).exists():
            touch(venv / READY)
            say(f"dependencies: reusing environment {key}")
            return str(python)
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / f".{key}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not (venv / READY).exists():
                self._create(venv, requirements, key, say)
        return str(python)

    def _create(self, venv, requirements, key, say):
        if venv.exists():  # left half-made by a crash
            shutil.rmtree(venv)
        say(f"dependencies: making environment {key} for {REQUIREMENTS}")
        try:
            self._run([sys.executable, "-m", "venv", "--without-pip", str(venv)], say)
            site = Path(sysconfig.get_path("purelib", vars={"base": str(venv), "platbase": str(venv)}))
            node_site = sysconfig.get_path("purelib")
            # "zz" sorts last: the project's own packages win over the node's.
            (site / "zz-crawlfleet-node.pth").write_text(
                f"import site; site.addsitedir({node_site!r})\n")
            self._run([str(venv / "bin" / "python"), "-m", "pip", "install",
                       "--disable-pip-version-check", "--no-input", "-r", str(requirements)], say)
        except ProjectError:
            shutil.rmtree(venv, ignore_errors=True)
            raise
        (venv / READY).write_text(key + "\n")
        say(f"dependencies: environment {key} ready")

    def _run(self, argv, say):
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, text=True, errors="replace",
                                start_new_session=True)
        try:
            for line in proc.stdout:
                say("pip: " + line.rstrip())
            code = proc.wait(self.timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise ProjectError(f"dependency install took longer than {self.timeout:g} s") from None
        if code != 0:
            raise ProjectError(f"dependency install failed (exit code {code}); see the log")

    def prune(self, older_than, keep=()):
        """Delete environments unused for `older_than` seconds."""
        return prune_folders(self.root, older_than, keep, READY)


def venv_of(python):
    """The project environment an interpreter belongs to, as a list (empty for
    the node's own interpreter, which the sandbox shows anyway)."""
    venv = Path(python).parent.parent
    if Path(python) == Path(sys.executable) or not (venv / "pyvenv.cfg").is_file():
        return []
    return [venv]
