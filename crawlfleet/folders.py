"""Cache folders kept by a machine (project versions, dependency environments):
each marked ready by a file whose modification time says when it was last used."""

import os
import shutil
import time
from pathlib import Path


def touch(path):
    try:
        os.utime(path)
    except OSError:
        pass


def prune_folders(root, older_than, keep, marker):
    """Remove each folder of `root` whose `marker` was last touched too long ago."""
    cutoff = time.time() - older_than
    removed = []
    for entry in Path(root).iterdir() if Path(root).is_dir() else ():
        if not entry.is_dir() or entry.name.startswith(".") or entry.name in keep:
            continue
        try:
            if (entry / marker).stat().st_mtime >= cutoff:
                continue
        except OSError:
            continue  # not ready yet: being made right now, or left for ensure() to redo
        shutil.rmtree(entry, ignore_errors=True)
        removed.append(entry.name)
    return removed
