"""Read a version's files for the file viewer, straight from its GridFS zip.

Nothing is extracted: `zipfile` reads the central directory and the one
entry asked for through a seekable GridFS stream. File contents are shown
as text only, and only up to a size limit.
"""

from __future__ import annotations

import contextlib
import zipfile
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from crawlfleet.errors import BadRequest, NotFound, ProjectError
from crawlfleet.models import Doc
from master.versions import find_version

if TYPE_CHECKING:
    from crawlfleet.store import Store

MAX_VIEW_BYTES = 1024 * 1024  # larger files are shown cut, with `truncated`
BINARY_SNIFF = 8192


@contextlib.contextmanager
def open_version_zip(store: Store, version: Doc) -> Iterator[zipfile.ZipFile]:
    stream = store.files.open_download_stream(version["file_id"])
    try:
        with zipfile.ZipFile(stream) as zf:
            yield zf
    except zipfile.BadZipFile as exc:
        raise ProjectError(f"version {version['_id']}: stored zip is unreadable: {exc}") from None
    finally:
        stream.close()


def tree(store: Store, project: str, ref: Any) -> Doc:
    """Every file of a version: [{"path", "size"}], sorted by path."""
    version = find_version(store, project, ref)
    with open_version_zip(store, version) as zf:
        files = [{"path": i.filename, "size": i.file_size} for i in zf.infolist()
                 if not i.is_dir()]
    return {"project": project, "version": version["_id"], "label": version.get("label"),
            "files": sorted(files, key=lambda f: f["path"])}


def check_path(path: Any) -> str:
    if (not isinstance(path, str) or not path or "\x00" in path or "\\" in path
            or any(part in ("", ".", "..") for part in path.split("/"))):
        raise BadRequest(f"invalid file path {path!r}: a relative path inside the project")
    return path


def _decode(data: bytes, cut: bool) -> str | None:
    """Text of `data`, or None for a binary file. A cut may split one character."""
    if b"\x00" in data[:BINARY_SNIFF]:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if cut and exc.start >= len(data) - 3:
            return data[:exc.start].decode("utf-8", errors="strict")
        return None


def read(store: Store, project: str, ref: Any, path: Any,
         limit: int = MAX_VIEW_BYTES) -> Doc:
    """{"path", "size", "content", "truncated"} of one text file of a version."""
    check_path(path)
    version = find_version(store, project, ref)
    with open_version_zip(store, version) as zf:
        try:
            info = zf.getinfo(path)
        except KeyError:
            raise NotFound(f"version {version['_id']} of {project!r} has no file {path!r}") from None
        if info.is_dir():
            raise BadRequest(f"{path!r} is a folder")
        with zf.open(info) as src:
            data = src.read(limit + 1)
    cut = len(data) > limit
    data = data[:limit]
    try:
        text = _decode(data, cut)
    except UnicodeDecodeError:
        text = None
    if text is None:
        raise BadRequest(f"{path!r} is a binary file; the viewer shows text only")
    return {"project": project, "version": version["_id"], "path": path,
            "size": info.file_size, "content": text, "truncated": cut}
