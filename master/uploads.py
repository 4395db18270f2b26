"""Deploy a project that arrives as a zip (or any folder made from one):
unpack it in a private temporary folder, find the project in it, list its
spiders and register it as a version.

A failed deploy changes nothing: the unpack limits, the project's name, its
spiders and their ownership are all checked before the first write to the
store, and the temporary folder is removed whatever happens. Temporary
folders live under HOME/tmp, so nothing lands outside the platform's home.
"""

from __future__ import annotations

import configparser
import contextlib
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from crawlfleet import packaging
from crawlfleet.errors import BadRequest, Conflict, ProjectError
from crawlfleet.models import SPIDER_NAME_RE, Doc, now
from master import discovery, inspections

if TYPE_CHECKING:
    from crawlfleet.config import Config
    from crawlfleet.store import Store

ZipSource = str | Path | IO[bytes]

PROJECT_NAME_RE = SPIDER_NAME_RE
LABEL_RE = re.compile(r"^[^\x00-\x1f\x7f]{1,100}$")
# What archivers add next to the real content; ignored when looking for the root.
JUNK = {"__MACOSX", ".DS_Store", "Thumbs.db"}


STALE_AFTER = 24 * 3600  # a scratch folder this old was left by a killed process


def scratch_root(config: Config) -> Path:
    root = config.home_path / "tmp"
    root.mkdir(parents=True, exist_ok=True)
    return root


def remove_stale(root: Path, prefix: str) -> None:
    limit = time.time() - STALE_AFTER
    for path in root.glob(prefix + "*"):
        try:
            if path.lstat().st_mtime < limit:
                shutil.rmtree(path, ignore_errors=True)
        except OSError:
            continue


@contextlib.contextmanager
def scratch(config: Config, prefix: str = "deploy-") -> Iterator[Path]:
    """A private temporary folder under HOME/tmp, removed on exit."""
    root = scratch_root(config)
    remove_stale(root, prefix)
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=root))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def unpack(config: Config, zip_source: ZipSource, dest: Path) -> Path:
    """packaging.unpack with the configured limits."""
    return packaging.unpack(zip_source, dest, max_files=config.max_project_files,
                            max_total=config.max_project_bytes, max_ratio=config.max_zip_ratio)


def find_root(folder: str | Path) -> tuple[Path, str | None]:
    """(project folder, name of the zip's single top folder or None).

    The project is at the top of the zip, or alone in one top folder
    (`myproject/scrapy.cfg`), as zipping a folder usually makes it.
    """
    folder = Path(folder)
    if discovery.project_kind(folder) is not None:
        return folder, None
    entries = [p for p in folder.iterdir() if p.name not in JUNK]
    if len(entries) == 1 and entries[0].is_dir() and not entries[0].is_symlink():
        if discovery.project_kind(entries[0]) is not None:
            return entries[0], entries[0].name
    raise ProjectError(f"no {discovery.SCRAPY_CFG} or {discovery.MANIFEST} at the top of the "
                       "zip, nor inside a single top folder: is this a spider project?")


def cfg_project(root: str | Path) -> str | None:
    """The `[deploy] project` of scrapy.cfg, or None."""
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(Path(root) / discovery.SCRAPY_CFG, encoding="utf-8")
        return parser.get("deploy", "project", fallback=None) or None
    except (configparser.Error, UnicodeDecodeError, OSError):
        return None


def check_name(name: Any) -> str:
    if not isinstance(name, str) or not PROJECT_NAME_RE.match(name):
        raise BadRequest(f"invalid project name {name!r}: 1-100 letters, digits, '_', '.' "
                         "or '-', starting with a letter or digit")
    return name


def check_label(label: Any) -> str | None:
    if label in (None, ""):
        return None
    if not isinstance(label, str) or not LABEL_RE.match(label):
        raise BadRequest("a version label is 1-100 printable characters")
    return label


def choose_name(given: str | None, top_folder: str | None, root: Path) -> str:
    """The form's name, else the zip's top folder, else scrapy.cfg's [deploy] project."""
    name = given or top_folder or cfg_project(root)
    if not name:
        raise BadRequest("name the project: send a `project` field, or put the project in "
                         "a top folder of that name inside the zip")
    return check_name(name)


def check_owners(store: Store, project: str, spiders: list[Doc]) -> None:
    """Refuse spiders that already belong to another project (nothing is written)."""
    names = [s["name"] for s in spiders]
    clashes = [(d["_id"], d["project"]) for d in store.spiders.find(
        {"_id": {"$in": names}, "project": {"$ne": project}}, {"project": 1})]
    if clashes:
        listed = ", ".join(f"{name!r} (project {owner!r})" for name, owner in sorted(clashes))
        raise Conflict(f"spider names already taken by other projects: {listed}; "
                       "rename the spiders or delete those projects first")


def deploy_folder(store: Store, config: Config, root: Path, project: str, *,
                  label: str | None = None, source: str,
                  inspection_id: str | None = None) -> Doc:
    """Inspect a project folder and register it as the current version of
    `project`, under an inspection record (master/inspections.py): begun
    here, or by the caller that already answered with its id."""
    check_name(project)
    label = check_label(label)
    return inspections.tracked(
        store, config, project, label=label, source=source, inspection_id=inspection_id,
        work=lambda: _inspect_and_register(store, config, root, project, label, source))


def _inspect_and_register(store: Store, config: Config, root: Path, project: str,
                          label: str | None, source: str) -> Doc:
    kind, spiders = discovery.inspect(root, config)
    check_owners(store, project, spiders)
    started = now()
    result = discovery.register(store, project, root, kind, spiders, source=source, label=label)
    if result["errors"]:  # an owner appeared between the check and the write
        raise Conflict("; ".join(result["errors"]))
    version = store.versions.find_one({"_id": result["version"]}) or {}
    return {
        "project": project,
        "version": result["version"],
        "label": result["label"],
        "new": version.get("created_at", 0) >= started,
        "kind": kind.value,
        "spiders": result["spiders"],
        "files": version.get("files"),
        "size": version.get("size"),
    }


def deploy_zip(store: Store, config: Config, zip_source: ZipSource, *,
               project: str | None = None, label: str | None = None,
               source: str = "upload", wait: float | None = None) -> Doc:
    """Deploy a zip (path or seekable file object); returns what deploy_folder does.

    With `wait`, the spiders are listed in a thread of this process: when that
    takes longer than `wait` seconds, the answer is the inspection still
    running (``status`` ``inspecting``, its ``inspection`` id) and the
    thread carries on, removing the unpacked zip when it ends. The zip is
    unpacked and named before that, so a bad zip is still refused at once.
    """
    if project not in (None, ""):
        check_name(project)
    label = check_label(label)
    with contextlib.ExitStack() as owned:
        tmp = owned.enter_context(scratch(config, "upload-"))
        files = unpack(config, zip_source, tmp / "files")
        root, top = find_root(files)
        name = choose_name(project or None, top, root)
        if wait is None:
            return deploy_folder(store, config, root, name, label=label, source=source)
        inspection_id = inspections.begin(store, config, name, label=label, source=source)
        cleanup = owned.pop_all()  # the thread removes the folder now

    def work() -> Doc:
        with cleanup:
            return deploy_folder(store, config, root, name, label=label, source=source,
                                 inspection_id=inspection_id)

    result = inspections.Background(work).start().wait(wait)
    if result is not None:
        return result
    return {"project": name, "label": label, "status": inspections.INSPECTING,
            "inspection": inspection_id, "new": None, "spiders": None}


EGG_INFO = "EGG-INFO"
MODULE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


def egg_settings_module(folder: str | Path) -> str:
    """The `[scrapy] settings = pkg.settings` entry point of an unpacked egg."""
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(Path(folder) / EGG_INFO / "entry_points.txt", encoding="utf-8")
        module = parser.get("scrapy", "settings", fallback="").strip()
    except (configparser.Error, UnicodeDecodeError, OSError) as exc:
        raise ProjectError(f"the egg's {EGG_INFO}/entry_points.txt is unreadable: {exc}") from None
    if not module:
        raise ProjectError(f"the egg has no [scrapy] settings entry point in "
                           f"{EGG_INFO}/entry_points.txt (is it a Scrapy project egg?)")
    if not MODULE_RE.match(module):
        raise ProjectError(f"the egg's settings entry point {module!r} is not a module name")
    return module


def egg_requirements(folder: str | Path) -> str | None:
    """The egg's own requirements (`install_requires` of its setup.py, kept in
    EGG-INFO/requires.txt) as a requirements.txt, or None. Extras, in the
    `[name]` sections after them, are not required."""
    try:
        text = (Path(folder) / EGG_INFO / "requires.txt").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    wanted = []
    for line in text.splitlines():
        if line.strip().startswith("["):
            break
        if line.strip():
            wanted.append(line.strip())
    return "\n".join(wanted) + "\n" if wanted else None


def deploy_egg(store: Store, config: Config, egg_source: ZipSource, *, project: str,
               label: str | None = None, source: str = "scrapyd") -> Doc:
    """Deploy a Scrapy project egg (as scrapyd-deploy builds it) as a version of
    `project`: its files plus a scrapy.cfg naming its settings entry point,
    and a requirements.txt made of its `install_requires` when it has none."""
    check_name(project)
    check_label(label)
    with scratch(config, "egg-") as tmp:
        files = unpack(config, egg_source, tmp / "files")
        module = egg_settings_module(files)
        requirements = egg_requirements(files)
        if requirements and not (files / "requirements.txt").exists():
            (files / "requirements.txt").write_text(
                "# written by crawlfleet from the egg's install_requires\n" + requirements)
        shutil.rmtree(files / EGG_INFO)
        (files / discovery.SCRAPY_CFG).write_text(
            f"# written by crawlfleet from the egg's entry point\n"
            f"[settings]\ndefault = {module}\n\n[deploy]\nproject = {project}\n")
        return deploy_folder(store, config, files, project, label=label, source=source)
