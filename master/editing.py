"""Save an edited copy of a version as a new version, like a commit.

The browser editor (and the API) send the version they started from and
the operations done on it, in order: ``rename`` (a file or a folder),
``delete`` (a file or a folder), ``write`` (a file's text, or its bytes in
base64 for an uploaded file). They are applied to an unpacked copy of that
version in a private scratch folder, which then goes through the same path
as an upload (`master.uploads.deploy_folder`: inspection, spider listing,
content-hashed version). The new version records its ``parent`` and the
``message``; the answer carries the diff against the parent. An edit that
changes nothing gives back the same version, marked ``unchanged``.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crawlfleet.errors import BadRequest, NotFound
from crawlfleet.models import Doc
from master import inspections, uploads, versiondiff
from master.browse import check_path
from master.versions import find_version, get_project

if TYPE_CHECKING:
    from crawlfleet.config import Config
    from crawlfleet.store import Store

MAX_OPS = 2000
MAX_MESSAGE = 2000
OPS = ("write", "delete", "rename")


def check_message(message: Any) -> str | None:
    if message in (None, ""):
        return None
    if not isinstance(message, str) or len(message) > MAX_MESSAGE or "\x00" in message:
        raise BadRequest(f"a version message is text of at most {MAX_MESSAGE} characters")
    return message.strip() or None


def check_ops(ops: Any) -> list[Doc]:
    if not isinstance(ops, list) or len(ops) > MAX_OPS:
        raise BadRequest(f'"ops" is a list of at most {MAX_OPS} operations')
    out = []
    for n, op in enumerate(ops, 1):
        if not isinstance(op, dict) or op.get("op") not in OPS:
            raise BadRequest(f"operation {n}: an object whose op is one of {', '.join(OPS)}")
        if op["op"] == "rename":
            check_path(op.get("from"))
            check_path(op.get("to"))
        else:
            check_path(op.get("path"))
        if op["op"] == "write":
            has_text, has_bytes = isinstance(op.get("content"), str), isinstance(
                op.get("base64"), str)
            if has_text == has_bytes:
                raise BadRequest(f"operation {n}: a write has either content (text) "
                                 "or base64 (bytes)")
        out.append(op)
    return out


def _inside(root: Path, rel: str) -> Path:
    """root/rel, refusing a path through a symbolic link or out of root."""
    target = root.joinpath(*rel.split("/"))
    for parent in [target, *target.parents]:
        if parent == root:
            break
        if parent.is_symlink():
            raise BadRequest(f"{rel!r} goes through a symbolic link")
    return target


def apply(root: Path, ops: list[Doc]) -> None:
    """Apply the operations to the unpacked project in `root`."""
    for n, op in enumerate(ops, 1):
        if op["op"] == "rename":
            src, dst = _inside(root, op["from"]), _inside(root, op["to"])
            if not src.exists():
                raise NotFound(f"operation {n}: nothing to rename at {op['from']!r}")
            if dst.exists():
                raise BadRequest(f"operation {n}: {op['to']!r} already exists")
            if src.is_dir() and dst.is_relative_to(src):
                raise BadRequest(f"operation {n}: a folder cannot move into itself")
            dst.parent.mkdir(parents=True, exist_ok=True)
            src.rename(dst)
        elif op["op"] == "delete":
            target = _inside(root, op["path"])
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
            else:
                raise NotFound(f"operation {n}: nothing to delete at {op['path']!r}")
        else:
            target = _inside(root, op["path"])
            if target.is_dir():
                raise BadRequest(f"operation {n}: {op['path']!r} is a folder")
            if "content" in op and isinstance(op["content"], str):
                data = op["content"].encode("utf-8")
            else:
                try:
                    data = base64.b64decode(op["base64"], validate=True)
                except (binascii.Error, ValueError):
                    raise BadRequest(f"operation {n}: base64 is not valid") from None
            for parent in target.parents:  # a file where a folder must go
                if parent == root:
                    break
                if parent.exists() and not parent.is_dir():
                    raise BadRequest(f"operation {n}: {parent.relative_to(root)} is a file")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)


def save(store: Store, config: Config, project: str, base_ref: Any, ops: Any, *,
         label: Any = None, message: Any = None, wait: float | None = None) -> Doc:
    """A new version of `project` made of version `base_ref` with `ops` applied.

    It becomes the current version (as an upload does). Returns the deploy's
    answer plus ``parent``, ``message``, ``unchanged`` and ``diff``
    (`master.versiondiff.compare` against the parent). With `wait`, as for
    an upload (`master.uploads.deploy_zip`): past that many seconds the
    answer is the inspection still running (``status`` ``inspecting``), and
    the thread finishes the version, its parent and message.
    """
    get_project(store, project)
    base = find_version(store, project, base_ref)
    ops = check_ops(ops)
    label = uploads.check_label(label)
    message = check_message(message)
    total = sum(len(op.get("content") or op.get("base64") or "") for op in ops)
    if total > config.max_project_bytes:
        raise BadRequest(f"the edit holds more than {config.max_project_bytes} bytes")
    with contextlib.ExitStack() as owned:
        tmp = owned.enter_context(uploads.scratch(config, "edit-"))
        root = tmp / "files"
        root.mkdir()
        stream = store.files.open_download_stream(base["file_id"])
        try:
            uploads.unpack(config, stream, root)
        finally:
            stream.close()
        apply(root, ops)
        if wait is None:
            return _register(store, config, root, project, base, label, message)
        inspection_id = inspections.begin(store, config, project, label=label, source="editor")
        cleanup = owned.pop_all()  # the thread removes the folder now

    def work() -> Doc:
        with cleanup:
            return _register(store, config, root, project, base, label, message, inspection_id)

    result = inspections.Background(work).start().wait(wait)
    if result is not None:
        return result
    return {"project": project, "label": label, "status": inspections.INSPECTING,
            "inspection": inspection_id, "new": None, "spiders": None,
            "parent": base["_id"], "message": message}


def _register(store: Store, config: Config, root: Path, project: str, base: Doc,
              label: str | None, message: str | None, inspection_id: str | None = None) -> Doc:
    result = uploads.deploy_folder(store, config, root, project, label=label, source="editor",
                                   inspection_id=inspection_id)
    if result.get("new"):
        store.versions.update_one({"_id": result["version"]},
                                  {"$set": {"parent": base["_id"], "message": message}})
    result.update(parent=base["_id"], message=message,
                  unchanged=result["version"] == base["_id"],
                  diff=versiondiff.compare(store, project, base["_id"], result["version"]))
    return result
