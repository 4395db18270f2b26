"""A node's local copy of each spider version, keyed by version id.

A version is downloaded from GridFS, its SHA-256 checked, unpacked into a
temporary folder next to the cache and renamed into place, so a half-written
copy is never used; an fcntl lock keeps node processes sharing a home from
fetching the same version twice at once.
"""

from __future__ import annotations

import fcntl
import hashlib
import shutil
import tempfile
from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING

from crawlfleet import packaging
from crawlfleet.errors import ProjectError
from crawlfleet.folders import prune_folders, touch
from crawlfleet.models import Doc

if TYPE_CHECKING:
    from crawlfleet.store import Store

READY = ".crawlfleet-ready"


class FileCache:
    def __init__(self, store: Store, root: str | Path) -> None:
        self.store = store
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.versions: dict[str, Doc] = {}

    def version(self, version_id: str) -> Doc:
        """A version's document; versions never change, so each is read once."""
        doc = self.versions.get(version_id)
        if doc is None:
            doc = self.store.versions.find_one({"_id": version_id}) or {}
            if doc:
                self.versions[version_id] = doc
        return doc

    def path(self, version_id: str) -> Path:
        return self.root / version_id

    def ensure(self, version_id: str) -> Path:
        """The folder holding `version_id`'s files, fetched if needed."""
        target = self.path(version_id)
        if (target / READY).exists():
            touch(target / READY)
            return target
        with open(self.root / f".{version_id}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if (target / READY).exists():
                return target
            self._fetch(version_id, target)
        return target

    def _fetch(self, version_id: str, target: Path) -> None:
        version = self.version(version_id)
        if not version:
            raise ProjectError(f"version {version_id} is not in the store")
        with tempfile.TemporaryDirectory(dir=self.root, prefix=".fetch-") as tmp:
            zip_path = Path(tmp) / "project.zip"
            digest = hashlib.sha256()
            with open(zip_path, "wb") as out:
                stream = self.store.files.open_download_stream(version["file_id"])
                while chunk := stream.read(1 << 20):
                    digest.update(chunk)
                    out.write(chunk)
            if digest.hexdigest() != version["sha256"]:
                raise ProjectError(f"version {version_id}: downloaded zip fails its SHA-256 check")
            unpacked = Path(tmp) / "files"
            packaging.unpack(zip_path, unpacked)
            (unpacked / READY).write_text(version["sha256"] + "\n")
            if target.exists():  # a copy without its ready mark: left by a crash
                shutil.rmtree(target)
            packaging.replace_dir(unpacked, target)

    def prune(self, older_than: float, keep: Collection[str] = ()) -> list[str]:
        """Delete versions unused for `older_than` seconds, except those in `keep`."""
        return prune_folders(self.root, older_than, keep, READY)
