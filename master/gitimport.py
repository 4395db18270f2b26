"""Import a project from a git repository, and pull it again on demand.

`git clone --depth 1` runs with an argument list (never a shell), ``--``
before the URL, no terminal prompts, a timeout and a private temporary
folder. Only ``https://``, ``ssh://`` and ``user@host:path`` URLs are
accepted, plus local repositories inside the folders named by the
``git_local_roots`` setting (off by default: a local path reads the disk of
the machine serving the API). URLs and refs that could be taken for options
or that hold shell metacharacters are refused before git ever runs.

Credentials for a private https repository (a token, or ``user:token``)
are kept sealed in the project's record (`crawlfleet.secretbox`, the key
that seals spider secrets), never shown back, and handed to git as an
``Authorization`` header through ``GIT_CONFIG_*`` environment variables:
not in the URL, the command line or git's error output.
"""

import base64
import os
import re
import shutil
import signal
import subprocess
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from crawlfleet.errors import BadRequest, Conflict, ProjectError
from crawlfleet.secretbox import SecretBox
from crawlfleet.models import now
from master import uploads
from master.versions import get_project

# Characters a shell (or git's own ext:: transport) would give a meaning to.
FORBIDDEN = set(";&|`$<>(){}[]'\"\\*?!#%^\n\r\t ")
SCP_LIKE_RE = re.compile(r"^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[A-Za-z0-9._~/-]+$")
HOST_RE = re.compile(r"^[A-Za-z0-9.-]+(:[0-9]{1,5})?$")
PATH_RE = re.compile(r"^[A-Za-z0-9._~/+=,@-]*$")
REF_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._/+-]{0,199}$")
MAX_URL = 2000
OUTPUT_TAIL = 15  # lines of git's stderr quoted in an error


def redact(url):
    """The URL without a password or token in it, for display and logs."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.password is None and not (parts.username and parts.scheme == "https"):
        return url
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return urlunsplit((parts.scheme, "***@" + host, parts.path, parts.query, parts.fragment))


def local_roots(config):
    return [Path(p).expanduser().resolve() for p in config.git_local_roots.split(":") if p]


def check_url(url, config):
    """(URL to hand git, allowed protocol) or BadRequest saying why not."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL:
        raise BadRequest("git must be a repository URL")
    if url.startswith("-"):
        raise BadRequest(f"refused git URL {url!r}: it starts with '-' (taken for an option)")
    bad = sorted(FORBIDDEN.intersection(url)) or [c for c in url if ord(c) < 32 or ord(c) == 127]
    if bad:
        raise BadRequest(f"refused git URL {url!r}: it holds {''.join(bad)!r}")
    if "::" in url:
        raise BadRequest(f"refused git URL {url!r}: git transports like ext:: are not allowed")
    allowed = "https://, ssh:// or git@host:path"
    if url.startswith(("https://", "ssh://")):
        parts = urlsplit(url)
        host = parts.netloc.rpartition("@")[2]
        if not HOST_RE.match(host) or not PATH_RE.match(parts.path) or len(parts.path) < 2:
            raise BadRequest(f"refused git URL {redact(url)!r}: malformed host or path")
        return url, parts.scheme
    if SCP_LIKE_RE.match(url) and not url.split(":", 1)[1].startswith("-"):
        return url, "ssh"
    roots = local_roots(config)
    path = url[len("file://"):] if url.startswith("file://") else url
    if path.startswith("/"):
        if not roots:
            raise BadRequest(f"refused git URL {url!r}: local repositories are not allowed "
                             "here (the git_local_roots setting is empty)")
        if not PATH_RE.match(path):
            raise BadRequest(f"refused git URL {url!r}: unusual characters in the path")
        resolved = Path(path).resolve()
        if not any(resolved == r or r in resolved.parents for r in roots):
            raise BadRequest(f"refused git URL {url!r}: not inside an allowed local folder "
                             "(git_local_roots)")
        return "file://" + str(resolved), "file"
    raise BadRequest(f"refused git URL {url!r}: use {allowed}"
                     + (" or a local path" if roots else ""))


def check_ref(ref):
    if ref in (None, ""):
        return None
    if (not isinstance(ref, str) or not REF_RE.match(ref) or ".." in ref or "//" in ref
            or ref.endswith((".lock", "/", ".")) or "@{" in ref):
        raise BadRequest(f"refused git ref {ref!r}: a branch or tag name (letters, digits, "
                         "'.', '_', '-', '/', '+'; not starting with '-')")
    return ref


CREDENTIALS_RE = re.compile(r"^[\x21-\x7e]{1,500}$")  # printable, no spaces


def check_credentials(credentials, url):
    """None, or the credentials for an https `url` (BadRequest otherwise)."""
    if credentials in (None, ""):
        return None
    if not isinstance(credentials, str) or not CREDENTIALS_RE.match(credentials):
        raise BadRequest("credentials are a token or user:token (printable, no spaces)")
    if not isinstance(url, str) or not url.startswith("https://"):
        raise BadRequest("credentials go with an https:// URL; over ssh the machine's own "
                         "keys are used")
    return credentials


def auth_header(credentials):
    """The HTTP Basic header for a token ("x-access-token" as its user) or user:token."""
    user, _, token = credentials.partition(":") if ":" in credentials else (
        "x-access-token", ":", credentials)
    return "Authorization: Basic " + base64.b64encode(f"{user}:{token}".encode()).decode()


def _git_env(protocol, credentials=None):
    env = dict(os.environ)
    if credentials:
        # git >= 2.31 reads config from the environment: no file, no argv
        env.update({"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "http.extraHeader",
                    "GIT_CONFIG_VALUE_0": auth_header(credentials)})
    env.update({
        "GIT_TERMINAL_PROMPT": "0",          # never ask for a user name or password
        "GIT_ASKPASS": "/bin/false",
        "SSH_ASKPASS": "/bin/false",
        "GIT_ALLOW_PROTOCOL": protocol,      # the one transport the URL was checked for
        "GIT_CONFIG_NOSYSTEM": "1",
        "LC_ALL": "C",
    })
    env.setdefault("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")
    for name in ("CRAWLFLEET_TOKEN", "CRAWLFLEET_SECRET_KEY", "CRAWLFLEET_ADMIN_PASSWORD"):
        env.pop(name, None)
    return env


def run_git(argv, *, cwd, env, timeout):
    """Run git (argv without the leading "git"); (stdout) or ProjectError."""
    proc = subprocess.Popen(["git", *argv], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            errors="replace", start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # ssh and remote helpers are in its group
        proc.communicate()
        raise ProjectError(f"git {subcommand(argv)} did not finish within {timeout:g} s") \
            from None
    if proc.returncode != 0:
        tail = "\n".join(line for line in err.strip().splitlines()[-OUTPUT_TAIL:])
        # the server's own folders are nobody's business but the server's
        tail = tail.replace(str(cwd), "<work folder>")
        raise ProjectError(f"git {subcommand(argv)} failed (exit code {proc.returncode}): {tail}")
    return out


def subcommand(argv):
    """The git command of `argv` ("clone", not the "-c" of its leading options)."""
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg in ("-c", "-C"):
            skip = True
        elif not arg.startswith("-"):
            return arg
    return "(no command)"


def clone(config, url, ref, dest, credentials=None):
    """Shallow-clone `url` at `ref` into `dest`; returns the commit id."""
    git_url, protocol = check_url(url, config)
    ref = check_ref(ref)
    env = _git_env(protocol, credentials)
    argv = ["-c", "advice.detachedHead=false", "-c", "core.hooksPath=/dev/null",
            "clone", "--depth", "1", "--single-branch", "--no-tags", "--quiet"]
    if ref:
        argv += ["--branch", ref]
    argv += ["--", git_url, str(dest)]
    try:
        run_git(argv, cwd=dest.parent, env=env, timeout=config.git_timeout)
    except ProjectError as exc:
        message = str(exc).replace(git_url, redact(url))
        if credentials:
            message = message.replace(credentials, "***")
        raise ProjectError(message) from None
    commit = run_git(["rev-parse", "HEAD"], cwd=dest, env=env, timeout=30).strip()
    return commit


def check_size(config, folder):
    """Refuse a checkout with more files or bytes than an upload may have."""
    count = total = 0
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if d != ".git"]
        for name in files:
            count += 1
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                continue
            if count > config.max_project_files:
                raise ProjectError(f"the repository has more than {config.max_project_files} files")
            if total > config.max_project_bytes:
                raise ProjectError(f"the repository holds more than {config.max_project_bytes} bytes")


def name_from_url(url):
    tail = url.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1]
    return tail[:-4] if tail.endswith(".git") else tail


def import_git(store, config, url, *, ref=None, project=None, label=None, credentials=None,
               sealed=None):
    """Clone and deploy a project; its URL, ref and credentials (sealed) are
    kept for `pull`. `sealed`: credentials already sealed (a pull's)."""
    check_url(url, config)
    ref = check_ref(ref)
    credentials = check_credentials(credentials, url)
    box = SecretBox.for_config(config) if credentials or sealed else None
    if sealed and not credentials:
        credentials = box.open(sealed)
    elif credentials:
        sealed = box.seal(credentials)
    project = uploads.check_name(project or name_from_url(url))
    uploads.check_label(label)
    with uploads.scratch(config, "git-") as tmp:
        checkout = tmp / "checkout"
        commit = clone(config, url, ref, checkout, credentials)
        shutil.rmtree(checkout / ".git")
        check_size(config, checkout)
        root, _ = uploads.find_root(checkout)
        result = uploads.deploy_folder(store, config, root, project, source="git",
                                       label=label or f"{ref or 'HEAD'}@{commit[:10]}")
    store.projects.update_one(
        {"_id": project},
        {"$set": {"git": {"url": url, "ref": ref, "commit": commit, "pulled_at": now(),
                          "credentials": sealed}}})
    result["commit"] = commit
    return result


def pull(store, config, project):
    """Clone the recorded URL and ref again; a new version only if the content changed."""
    doc = get_project(store, project)
    git = doc.get("git")
    if not git:
        raise Conflict(f"project {project!r} was not imported from git; deploy it again instead")
    before = doc.get("current_version")
    result = import_git(store, config, git["url"], ref=git.get("ref"), project=project,
                        sealed=git.get("credentials"))
    result["changed"] = result["version"] != before
    result["previous_version"] = before
    return result
