"""Compare two versions of a project: which files were added, removed or
changed, and a unified diff (difflib) of the text files among them.

Both zips are read in place (`master.browse.open_version_zip`), nothing is
extracted. Files are compared by CRC and size first, so unchanged files are
never read; the diff is cut at `MAX_DIFF_BYTES` so a huge change cannot
make a huge answer.
"""

from __future__ import annotations

import difflib
import zipfile
from typing import TYPE_CHECKING, Any

from crawlfleet.models import Doc
from master.browse import BINARY_SNIFF, open_version_zip
from master.versions import find_version

if TYPE_CHECKING:
    from crawlfleet.store import Store

MAX_FILE_BYTES = 1024 * 1024   # larger files are listed as changed, not diffed
MAX_DIFF_BYTES = 512 * 1024    # the whole diff text is cut here


def _entries(zf: zipfile.ZipFile) -> dict[str, zipfile.ZipInfo]:
    return {i.filename: i for i in zf.infolist() if not i.is_dir()}


def _text(zf: zipfile.ZipFile, info: zipfile.ZipInfo | None) -> list[str] | None:
    """The file's lines, [] when absent, None for a binary or too-large file."""
    if info is None:
        return []
    if info.file_size > MAX_FILE_BYTES:
        return None
    data = zf.read(info)
    if b"\x00" in data[:BINARY_SNIFF]:
        return None
    try:
        return data.decode("utf-8").splitlines(keepends=True)
    except UnicodeDecodeError:
        return None


def _status(old: zipfile.ZipInfo | None, new: zipfile.ZipInfo | None) -> str | None:
    if old is None:
        return "added"
    if new is None:
        return "removed"
    if old.CRC != new.CRC or old.file_size != new.file_size:
        return "changed"
    return None


def compare(store: Store, project: str, base_ref: Any, other_ref: Any) -> Doc:
    """{"from", "to", "files": [{"path", "status"}], "diff", "truncated"}:
    what changed from version `base_ref` to version `other_ref`."""
    base = find_version(store, project, base_ref)
    other = find_version(store, project, other_ref)
    files: list[Doc] = []
    chunks: list[str] = []
    size = 0
    truncated = False
    with open_version_zip(store, base) as old_zip, open_version_zip(store, other) as new_zip:
        old, new = _entries(old_zip), _entries(new_zip)
        for path in sorted(set(old) | set(new)):
            status = _status(old.get(path), new.get(path))
            if status is None:
                continue
            files.append({"path": path, "status": status})
            if truncated:
                continue
            before, after = _text(old_zip, old.get(path)), _text(new_zip, new.get(path))
            if before is None or after is None:
                chunk = f"Binary or large file {path} {status}\n"
            else:
                chunk = "".join(difflib.unified_diff(
                    before, after, fromfile=f"a/{path}" if path in old else "/dev/null",
                    tofile=f"b/{path}" if path in new else "/dev/null"))
                if chunk and not chunk.endswith("\n"):
                    chunk += "\n\\ No newline at end of file\n"
            if size + len(chunk) > MAX_DIFF_BYTES:
                truncated = True
                continue
            chunks.append(chunk)
            size += len(chunk)
    return {"project": project,
            "from": {"id": base["_id"], "label": base.get("label")},
            "to": {"id": other["_id"], "label": other.get("label")},
            "files": files, "diff": "".join(chunks), "truncated": truncated,
            "counts": {s: sum(1 for f in files if f["status"] == s)
                       for s in ("added", "removed", "changed")}}
