"""The spider sandbox: every spider process, warm process and inspection runs
inside it, so that code uploaded by a user cannot read the platform's files,
processes or credentials.

Modes (setting ``sandbox``):

Used by nodes for tasks and warm processes, and by crawlfleet.inspection
wherever a new version's spiders are listed.

- ``user``: the node runs as root. bubblewrap, run as root, gives the spider a
  mount and PID namespace of its own; inside it, ``setpriv`` becomes the
  unprivileged ``sandbox_user`` (no capabilities, no new privileges, no
  supplementary groups) before the spider starts.
- ``bwrap``: the node runs as a normal user. bubblewrap makes an unprivileged
  user namespace with the same mount and PID namespaces.
- ``none``: the spider runs as the node's own user, with the node's view of
  the machine. For development only; the node says so loudly.
- ``auto`` (default): ``user`` as root, ``bwrap`` otherwise, ``none`` (loudly)
  when bubblewrap cannot run here.

In both sandboxes the spider sees the machine read-only, with a fresh /tmp,
/run and /dev, its own /proc (only its own processes), and CRAWLFLEET_HOME,
/root and the node user's home replaced by empty folders into which only the
task's own folder (writable) and the version's code and environment
(read-only) are mounted back at their usual paths, so no path changes.
The network is shared: spiders crawl (see the README's "Security model").
"""

import functools
import logging
import os
import pwd
import shutil
import site
import subprocess
import sys
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path

from crawlfleet.errors import ConfigError

log = logging.getLogger(__name__)

MODES = ("auto", "user", "bwrap", "none")
NONE_WARNING = ("SANDBOX DISABLED (sandbox=none): spiders run as the node's own user and can "
                "read its files, processes and credentials. Use only for development.")


@dataclass
class SandboxMode:
    """What the node resolved `sandbox` to, and why (shown on the node page)."""

    mode: str
    reason: str = ""
    user: str = ""
    uid: int = -1
    gid: int = -1

    @property
    def warning(self):
        return NONE_WARNING + (f" ({self.reason})" if self.reason else "") if self.mode == "none" else ""

    def describe(self):
        return {"mode": self.mode, "user": self.user or None, "reason": self.reason or None,
                "warning": self.warning or None}


@dataclass
class Mounts:
    """What one sandboxed process may see of CRAWLFLEET_HOME."""

    readonly: list = field(default_factory=list)
    writable: list = field(default_factory=list)


class Sandbox:
    def __init__(self, config, probe=True):
        self.home = Path(config.home_path).resolve()
        self.hidden_files = [Path(p).resolve() for p in (os.environ.get("CRAWLFLEET_CONFIG"),) if p]
        self.bwrap = shutil.which("bwrap")
        self.state = self._resolve(config.sandbox, config.sandbox_user, probe)
        if self.state.mode == "none":
            log.warning(self.state.warning)
        else:
            log.info("spider sandbox: %s%s", self.state.mode,
                     f" (user {self.state.user})" if self.state.user else "")

    @property
    def mode(self):
        return self.state.mode

    @property
    def umask(self):
        """The umask to start a wrapped command with (Popen's `umask`): bubblewrap
        makes the folders leading to each mount with it, and they must be
        traversable by the sandbox user; the node itself keeps 077."""
        return -1 if self.mode == "none" else 0o022

    # -- choosing the mode ------------------------------------------------------------
    def _resolve(self, wanted, user, probe):
        wanted = (wanted or "auto").lower()
        if wanted not in MODES:
            raise ConfigError(f"sandbox must be one of {', '.join(MODES)}, not {wanted!r}")
        if wanted == "none":
            return SandboxMode("none", "chosen by the sandbox setting")
        root = os.geteuid() == 0
        if wanted == "auto":
            wanted = "user" if root else "bwrap"
            problem = self._problem(wanted, user, probe)
            if problem:
                return SandboxMode("none", f"sandbox=auto found no working sandbox: {problem}")
        else:
            problem = self._problem(wanted, user, probe)
            if problem:
                raise ConfigError(f"sandbox={wanted} cannot work on this node: {problem}")
        if wanted == "user":
            entry = pwd.getpwnam(user)
            return SandboxMode("user", user=user, uid=entry.pw_uid, gid=entry.pw_gid)
        return SandboxMode("bwrap")

    def _problem(self, mode, user, probe):
        """Why `mode` cannot run here, or '' when it can."""
        if self.bwrap is None:
            return "bubblewrap is not installed (apt-get install bubblewrap)"
        if mode == "user":
            if os.geteuid() != 0:
                return "the user sandbox needs a node running as root"
            try:
                entry = pwd.getpwnam(user)
            except KeyError:
                return (f"the sandbox user {user!r} does not exist "
                        "(scripts/services.sh or the Dockerfile create it)")
            if entry.pw_uid == 0:
                return f"the sandbox user {user!r} is root"
            if shutil.which("setpriv") is None:
                return "setpriv (util-linux) is not installed"
            blocked = _unreachable(_python_paths(), _hidden_folders())
            if blocked:
                return (f"the sandbox user {user!r} cannot reach Python's files: {blocked} is "
                        "closed to other users (chmod o+x it, or install crawlfleet where "
                        "other users may read, e.g. /opt)")
        if probe:
            trial = [self.bwrap, *self._namespaces(mode), "--ro-bind", "/", "/", "--proc", "/proc",
                     "--dev", "/dev", "--", "true"]
            try:
                done = subprocess.run(trial, capture_output=True, text=True, timeout=30)
            except (OSError, subprocess.TimeoutExpired) as exc:
                return f"bubblewrap did not run ({exc})"
            if done.returncode != 0:
                return f"bubblewrap failed here: {done.stderr.strip()[:300]}"
        return ""

    @staticmethod
    def _namespaces(mode):
        spaces = ["--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
                  "--die-with-parent"]
        return spaces + (["--unshare-user"] if mode == "bwrap" else [])

    # -- folders -------------------------------------------------------------------
    def own(self, path):
        """Make what the spider writes in (its task folder, its items pipe) its
        own and nobody else's, whatever the umask."""
        path = Path(path)
        path.chmod(0o700 if path.is_dir() else 0o600)
        if self.mode == "user":
            os.chown(path, self.state.uid, self.state.gid)

    def give(self, path):
        """Hand a file or folder the sandbox will write in to the sandbox user
        (an environment pip fills); nothing to do in a user namespace."""
        if self.mode == "user":
            os.chown(path, self.state.uid, self.state.gid, follow_symlinks=False)

    def share(self, path):
        """Code and environments stay private to HOME (0700) but become readable
        inside the sandbox, whatever the umask they were written with. Done
        once per folder (a mark next to it), since folders never change."""
        if self.mode != "user":
            return
        path = Path(path)
        mark = path.with_name(f".{path.name}.shared")
        if mark.exists():
            return
        for root, dirs, files in os.walk(path):
            for name in dirs:
                _add_mode(os.path.join(root, name), 0o555)
            for name in files:
                _add_mode(os.path.join(root, name), 0o444)
        _add_mode(str(path), 0o555)
        mark.touch()

    # -- commands -------------------------------------------------------------------
    def wrap(self, argv, mounts, cwd):
        """argv that runs `argv` in the sandbox, seeing `mounts` of HOME, starting in `cwd`."""
        if self.mode == "none":
            return list(argv)
        # The node stops a task by signalling its process group, which holds
        # bubblewrap too: bubblewrap ignores SIGINT and SIGTERM (a dying
        # bubblewrap would SIGKILL the spider before it could close cleanly),
        # and the spider gets them back at their defaults.
        box = [ENV, "--ignore-signal=INT,TERM", self.bwrap, *self._namespaces(self.mode),
               *self._filesystem(mounts), "--chdir", str(cwd)]
        if self.mode == "user":
            box += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--",
                    ENV, "--default-signal=INT,TERM",
                    shutil.which("setpriv"), "--reuid", str(self.state.uid),
                    "--regid", str(self.state.gid), "--clear-groups", "--no-new-privs",
                    "--inh-caps=-all", "--bounding-set=-all", "--"]
        else:
            box += ["--", ENV, "--default-signal=INT,TERM"]
        return box + list(argv)

    def exit_code(self, code):
        """The spider's exit code as Popen would give it unwrapped: bubblewrap
        reports a spider killed by signal N as 128 + N."""
        if self.mode != "none" and code is not None and 128 < code < 128 + 65:
            return -(code - 128)
        return code

    def _filesystem(self, mounts):
        args = ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
                "--perms", "1777", "--tmpfs", "/dev/shm"]
        hidden = _hidden_folders()
        for folder in hidden:
            args += (["--perms", "1777"] if folder in TMP_FOLDERS else []) + ["--tmpfs", folder]
        # what Python needs back from under a hidden folder (an interpreter in
        # /root/.pyenv, the node's virtualenv under /tmp or a home)
        made = set()
        for path in _python_paths():
            if any(_under(path, h) for h in hidden) and not _under(path, self.home):
                args += _parents(path, hidden, made) + ["--ro-bind", path, path]
        # HOME last: whatever was mounted back above, HOME stays hidden
        args += ["--tmpfs", str(self.home)]
        hidden = [*hidden, str(self.home)]
        for path in self.hidden_files:
            if path.is_file():
                args += ["--ro-bind", "/dev/null", str(path)]
        for path in mounts.readonly:
            args += _parents(path, hidden, made) + ["--ro-bind", str(path), str(path)]
        for path in mounts.writable:
            args += _parents(path, hidden, made) + ["--bind", str(path), str(path)]
        return args


ENV = shutil.which("env") or "/usr/bin/env"
TMP_FOLDERS = ("/tmp", "/var/tmp", "/run", "/dev/shm")


def _hidden_folders():
    folders = list(TMP_FOLDERS[:3]) + ["/root"]
    try:
        own_home = pwd.getpwuid(os.getuid()).pw_dir
    except KeyError:
        own_home = ""
    for path in (own_home, os.environ.get("HOME", "")):
        if path and path != "/" and os.path.isdir(path) and path not in folders:
            folders.append(path)
    # a folder inside another must come after it, or the outer tmpfs hides it
    return sorted(folders, key=lambda p: p.count("/"))


@functools.lru_cache(maxsize=1)
def _python_paths():
    """The folders a spider's Python needs: the interpreter, its environment and
    the crawlfleet package (the SDK), not the checkout around it nor whatever
    else is on the node's `sys.path` (a source checkout may hold a settings
    file with credentials)."""
    package = os.path.dirname(os.path.abspath(__file__))  # the crawlfleet package
    paths = {sys.prefix, sys.base_prefix, sysconfig.get_path("purelib"), sysconfig.get_path("platlib"),
             package}
    paths.update(site.getsitepackages() if hasattr(site, "getsitepackages") else [])
    # what .pth files and PYTHONPATH added (another environment's site-packages,
    # say), but not the checkout around the package nor the working folder
    left_out = {os.path.realpath(os.path.dirname(package)), os.path.realpath(os.getcwd())}
    paths.update(p for p in sys.path if p and os.path.realpath(p) not in left_out)
    real = {os.path.realpath(p) for p in paths if p and os.path.isdir(p)}
    # a folder that holds another is mounted whole
    return sorted(p for p in real if not any(q != p and _under(p, q) for q in real))


def _unreachable(paths, hidden):
    """The first folder other users cannot cross on the way to one of `paths`
    (''), for the user sandbox. Under a hidden folder the sandbox makes the
    folders leading to a mount itself (0755), so only the mount counts there."""
    for path in paths:
        roots = [h for h in hidden if _under(path, h)]
        if roots:
            root = Path(max(roots, key=len))
            steps = [Path(path)] if Path(path) != root else []
        else:
            steps = [*reversed(Path(path).parents), Path(path)]
        for step in steps:
            try:
                if not os.stat(step).st_mode & 0o001:
                    return str(step)
            except OSError:
                return str(step)
    return ""


def _parents(path, hidden, made):
    """bubblewrap makes the folders leading to a mount point 0700, which the
    sandbox user could not cross: make those inside a hidden folder 0755 first."""
    path = Path(path)
    roots = [Path(h) for h in hidden if _under(path, h)]
    if not roots:
        return []
    root = max(roots, key=lambda r: len(r.parts))
    args = []
    for parent in reversed(path.parents):
        if len(parent.parts) > len(root.parts) and parent not in made:
            made.add(parent)
            args += ["--perms", "0755", "--dir", str(parent)]
    return args


def _under(path, folder):
    path, folder = str(path), str(folder)
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def _add_mode(path, bits):
    try:
        mode = os.stat(path, follow_symlinks=False).st_mode
        if not os.path.islink(path) and (mode & bits) != bits:
            os.chmod(path, (mode | bits) & 0o7777)
    except OSError:
        pass
