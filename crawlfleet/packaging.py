"""Project files <-> content-hashed zips, safely in both directions.

A version's id is a hash of the project name and of every file's path and
bytes, so the same tree always gives the same version whoever packs it. The
zip is written deterministically (sorted entries, fixed timestamps) and its
own SHA-256 is what a node checks after download.

Unpacking refuses what could write outside the target folder or exhaust the
disk: absolute paths, `..`, symlinks, too many entries, too large a total, a
suspicious compression ratio — all checked while reading, entry by entry.
"""

import hashlib
import io
import os
import shutil
import stat
import zipfile
from pathlib import Path, PurePosixPath
from typing import IO

from crawlfleet.errors import ProjectError

IGNORED_DIRS = {".git", ".hg", ".svn", "__pycache__", ".scrapy", ".venv", "venv",
                "node_modules", "build", "dist", ".mypy_cache", ".pytest_cache"}
IGNORED_SUFFIXES = (".pyc", ".pyo", ".egg-info")
FIXED_DATE = (1980, 1, 1, 0, 0, 0)

MAX_FILES = 10_000
MAX_TOTAL_BYTES = 512 * 1024 * 1024
MAX_RATIO = 200


def project_files(folder: str | Path) -> list[str]:
    """Relative POSIX paths of the files that make up a project, sorted."""
    folder = Path(folder)
    out = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d not in IGNORED_DIRS and not d.endswith(IGNORED_SUFFIXES))
        for name in files:
            if name.endswith(IGNORED_SUFFIXES):
                continue
            path = Path(root) / name
            if path.is_symlink() or not path.is_file():
                continue
            rel = path.relative_to(folder).as_posix()
            try:
                rel.encode()
            except UnicodeEncodeError:  # a name os.walk could only decode with surrogates
                raise ProjectError(f"file name is not valid UTF-8: {rel!r}") from None
            out.append(rel)
    return sorted(out)


def _is_executable(path: Path) -> bool:
    # The mode bits, not os.access(): the same tree must pack the same for every user.
    return bool(path.stat().st_mode & 0o111)


def content_hash(project: str, folder: str | Path, files: list[str] | None = None) -> str:
    folder = Path(folder)
    digest = hashlib.sha256(project.encode() + b"\0")
    for rel in files if files is not None else project_files(folder):
        # The exec bit is in the zip, so it is part of the version too.
        digest.update(rel.encode() + (b"\0x" if _is_executable(folder / rel) else b"\0-"))
        digest.update(hashlib.sha256((folder / rel).read_bytes()).digest())
    return digest.hexdigest()


def pack(project: str, folder: str | Path) -> tuple[str, bytes, str, list[str]]:
    """(version_id, zip bytes, zip sha256, file list) for a project folder."""
    folder = Path(folder)
    files = project_files(folder)
    if not files:
        raise ProjectError(f"project {project!r} has no files")
    version_id = content_hash(project, folder, files)[:16]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for rel in files:
            src = folder / rel
            info = zipfile.ZipInfo(rel, FIXED_DATE)
            mode = 0o755 if _is_executable(src) else 0o644
            info.external_attr = (stat.S_IFREG | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, src.read_bytes())
    data = buf.getvalue()
    return version_id, data, hashlib.sha256(data).hexdigest(), files


def _safe_target(dest: Path, name: str) -> Path:
    if "\\" in name or name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise ProjectError(f"unsafe path in zip: {name!r}")
    parts = PurePosixPath(name).parts
    if any(p == ".." for p in parts):
        raise ProjectError(f"unsafe path in zip: {name!r}")
    target = (dest / name).resolve()
    if target != dest and dest not in target.parents:
        raise ProjectError(f"unsafe path in zip: {name!r}")
    return target


def unpack(zip_source: str | Path | IO[bytes], dest: str | Path, *, max_files: int = MAX_FILES,
           max_total: int = MAX_TOTAL_BYTES, max_ratio: float = MAX_RATIO) -> Path:
    """Extract a zip (path or file object) into `dest`, refusing anything unsafe."""
    dest = Path(dest).resolve()
    dest.mkdir(parents=True, exist_ok=True)
    try:
        zf = zipfile.ZipFile(zip_source)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ProjectError(f"not a valid zip file: {exc}") from None
    with zf:
        infos = zf.infolist()
        if len(infos) > max_files:
            raise ProjectError(f"zip has {len(infos)} entries, more than the limit of {max_files}")
        total = 0
        for info in infos:
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise ProjectError(f"symbolic links are not allowed in a project: {info.filename!r}")
            target = _safe_target(dest, info.filename)
            written = 0
            try:
                if info.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(target, "wb") as out:
                    while chunk := src.read(1 << 16):
                        written += len(chunk)
                        total += len(chunk)
                        if total > max_total:
                            raise ProjectError(
                                f"zip unpacks to more than {max_total} bytes; refused")
                        if written > 1 << 20 and written > max_ratio * max(info.compress_size, 1):
                            raise ProjectError(
                                f"{info.filename!r} expands more than {max_ratio}x: "
                                "refused as a zip bomb")
                        out.write(chunk)
            except (zipfile.BadZipFile, EOFError, zlib_error()) as exc:
                raise ProjectError(f"corrupt zip entry {info.filename!r}: {exc}") from None
            except (RuntimeError, NotImplementedError) as exc:  # encrypted, unknown method
                raise ProjectError(f"cannot read zip entry {info.filename!r}: {exc}") from None
            except OSError as exc:  # entries clashing: a file where a folder goes, or back
                raise ProjectError(
                    f"cannot write zip entry {info.filename!r}: {exc.strerror or exc}") from None
            if mode & 0o111:
                target.chmod(0o755)
    return dest


def zlib_error() -> type[Exception]:
    import zlib

    return zlib.error


def replace_dir(src: str | Path, dst: str | Path) -> None:
    """Move a fully prepared folder into place, atomically when dst does not exist."""
    try:
        os.rename(src, dst)
    except OSError:
        if Path(dst).exists():
            shutil.rmtree(src, ignore_errors=True)
        else:
            raise
