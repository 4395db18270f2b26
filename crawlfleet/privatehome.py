"""CRAWLFLEET_HOME is the platform's private folder: mode 0700, and what the
platform writes in it 0600, whatever the umask a process was started with.
Spiders never see it (crawlfleet/sandbox.py); other users of the machine cannot
either."""

import os
from pathlib import Path

PRIVATE_UMASK = 0o077


def secure_home(home) -> Path:
    """Make HOME (if missing) and close it to everyone else; from now on this
    process (and what it starts) creates private files only."""
    os.umask(PRIVATE_UMASK)
    home = Path(home)
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    if home.stat().st_mode & 0o077:
        home.chmod(0o700)
    for entry in home.iterdir():  # files an older version left readable
        try:
            if entry.is_file() and not entry.is_symlink() and entry.stat().st_mode & 0o077:
                entry.chmod(0o600)
        except OSError:
            pass
    return home


def write_private(path, text: str) -> None:
    """Write a file only its owner can read, atomically (temp file, rename)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, text.encode())
    finally:
        os.close(fd)
    os.replace(tmp, path)
