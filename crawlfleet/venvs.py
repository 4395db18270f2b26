"""Per-project dependencies: a virtual environment for each distinct
`requirements.txt`, keyed by the file's hash, made once per node and reused by
every task of every version with the same file.

The environment sees the node's own packages too (crawlfleet, Scrapy, pymongo)
through a `.pth` file placed after its own site-packages, so a project pins
what it needs and inherits the rest. pip's output goes to the task log.
"""

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

from crawlfleet.errors import ProjectError
from crawlfleet.folders import prune_folders, touch

REQUIREMENTS = "requirements.txt"
READY = ".crawlfleet-ready"


# pip's own configuration and the way out to an index: what pip may see of
# the environment of the process that makes an environment
PIP_ENV = re.compile(r"^(PATH|LANG|LC_[A-Z]+|PIP_[A-Z_]+|(http|https|no|all)_proxy|"
                     r"(HTTP|HTTPS|NO|ALL)_PROXY|SSL_CERT_FILE|SSL_CERT_DIR|REQUESTS_CA_BUNDLE)$")


class Virtualenvs:
    def __init__(self, root, timeout=600.0, sandbox=None):
        self.root = Path(root)
        self.timeout = timeout
        # pip runs a project's setup code (sdists): in the spider sandbox when given
        self.sandbox = sandbox

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
            self._install(venv, requirements, say)
        except ProjectError:
            shutil.rmtree(venv, ignore_errors=True)
            raise
        (venv / READY).write_text(key + "\n")
        say(f"dependencies: environment {key} ready")

    def _install(self, venv, requirements, say):
        """pip install -r, in the sandbox (seeing only the environment it fills,
        writable, and its own copy of the requirements) unless there is none."""
        argv = [str(venv / "bin" / "python"), "-m", "pip", "install",
                "--disable-pip-version-check", "--no-input", "-r"]
        box = self.sandbox
        if box is None or box.mode == "none":
            return self._run(argv + [str(requirements)], say)
        from crawlfleet.sandbox import Mounts

        copy = venv / ".requirements.txt"
        shutil.copyfile(requirements, copy)
        home = venv / ".pip-home"
        home.mkdir()
        for root, dirs, files in os.walk(venv):  # the sandbox user fills it
            for name in dirs + files:
                box.give(os.path.join(root, name))
        box.give(str(venv))
        env = {k: v for k, v in os.environ.items() if PIP_ENV.match(k)}
        env.update({"HOME": str(home), "PIP_NO_CACHE_DIR": "1", "PYTHONDONTWRITEBYTECODE": "1"})
        env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
        self._run(box.wrap(argv + [str(copy)], Mounts(writable=[venv]), venv), say, env=env,
                  umask=box.umask)
        box.share(venv)

    def _run(self, argv, say, env=None, umask=-1):
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, text=True, errors="replace",
                                start_new_session=True, env=env, umask=umask)
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
