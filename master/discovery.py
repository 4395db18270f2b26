"""Find spider projects in folders, list their spiders, and register versions.

A project is a folder holding either ``scrapy.cfg`` (a Scrapy project; its
spiders are listed by ``scrapy list`` in the project's own environment, in
the spider sandbox, with a timeout: crawlfleet/inspection.py) or
``crawlfleet.json`` (generic spiders in any language, each naming its
command). Each distinct content becomes an immutable version, stored as a
zip in GridFS; the project's spiders then point at that version.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pymongo.errors

from crawlfleet import packaging
from crawlfleet.errors import CrawlfleetError, ProjectError
from crawlfleet.inspection import list_scrapy_spiders
from crawlfleet.models import SPIDER_NAME_RE, Doc, SpiderKind, check_results_collection, now
from crawlfleet.runrequest import validate_retry
from master.spiderrows import sync_spider_rows, version_entry

if TYPE_CHECKING:
    from crawlfleet.config import Config
    from crawlfleet.store import Store

log = logging.getLogger(__name__)

MANIFEST = "crawlfleet.json"
SCRAPY_CFG = "scrapy.cfg"


def project_kind(folder: str | Path) -> SpiderKind | None:
    folder = Path(folder)
    if (folder / SCRAPY_CFG).is_file():
        return SpiderKind.SCRAPY
    if (folder / MANIFEST).is_file():
        return SpiderKind.COMMAND
    return None


def read_manifest(folder: str | Path) -> list[Doc]:
    path = Path(folder) / MANIFEST
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ProjectError(f"{MANIFEST} is not valid JSON: {exc}") from None
    entries = data.get("spiders") if isinstance(data, dict) else None
    if entries is None and isinstance(data, dict) and "name" in data:
        entries = [data]
    if not isinstance(entries, list) or not entries:
        raise ProjectError(f'{MANIFEST} must hold {{"spiders": [{{"name": ..., "command": [...]}}]}}')
    spiders = []
    for entry in entries:
        if not isinstance(entry, dict):
            raise ProjectError(f"{MANIFEST}: each spider must be an object")
        command = entry.get("command")
        if isinstance(command, str):
            command = command.split()
        if not command or not all(isinstance(c, str) and c for c in command):
            raise ProjectError(f"{MANIFEST}: spider {entry.get('name')!r} needs a command list")
        spiders.append({
            "name": entry.get("name"),
            "command": command,
            "description": str(entry.get("description", "")),
            "results_collection": _manifest_results_collection(entry),
            "retry": _manifest_retry(entry),
        })
        if entry.get("dedup") is not None:
            spiders[-1]["dedup"] = _manifest_dedup(entry)
    return spiders


def _manifest_results_collection(entry: Doc) -> str | None:
    try:
        return check_results_collection(entry.get("results_collection"))
    except ValueError as exc:
        raise ProjectError(f"{MANIFEST}: spider {entry.get('name')!r}: {exc}") from None


def _manifest_dedup(entry: Doc) -> Doc | None:
    """The spider's dedup policy: ``"dedup": {"keys": ["url"], "mode": "overwrite"}``."""
    from crawlfleet.results import dedup

    raw = entry.get("dedup")
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise ProjectError(f'{MANIFEST}: spider {entry.get("name")!r}: dedup must be '
                           '{"keys": [...], "mode": "overwrite" or "ignore"}')
    try:
        policy = dedup.parse(raw.get("keys"), raw.get("mode"))
    except CrawlfleetError as exc:
        raise ProjectError(f"{MANIFEST}: spider {entry.get('name')!r}: {exc}") from None
    return policy.as_doc() if policy else None


def _manifest_retry(entry: Doc) -> Doc | None:
    """The spider's own retry policy, checked like a run request's."""
    try:
        return validate_retry(entry.get("retry"))
    except CrawlfleetError as exc:
        raise ProjectError(f"{MANIFEST}: spider {entry.get('name')!r}: {exc}") from None


def inspect(folder: Path, config: Config) -> tuple[SpiderKind, list[Doc]]:
    """(kind, spider entries) of a project folder, or ProjectError saying why not."""
    kind = project_kind(folder)
    if kind is SpiderKind.SCRAPY:
        # never imported here: in the project's environment, in the sandbox
        names = list_scrapy_spiders(folder, config, config.scrapy_list_timeout)
        spiders = [{"name": n, "command": None, "description": "", "results_collection": None}
                   for n in names]
    elif kind is SpiderKind.COMMAND:
        spiders = read_manifest(folder)
    else:
        raise ProjectError(f"neither {SCRAPY_CFG} nor {MANIFEST} found")
    if not spiders:
        raise ProjectError("the project defines no spiders")
    seen = set()
    for spider in spiders:
        if not isinstance(spider["name"], str) or not SPIDER_NAME_RE.match(spider["name"]):
            raise ProjectError(f"invalid spider name {spider['name']!r}")
        if spider["name"] in seen:
            raise ProjectError(f"spider name {spider['name']!r} is defined more than once")
        seen.add(spider["name"])
    return kind, spiders


def default_label(stamp: float) -> str:
    """A version's label when none is given: its creation time, UTC."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(stamp))


def register(store: Store, project: str, folder: Path, kind: SpiderKind, spiders: list[Doc], *,
             source: str, label: str | None = None) -> Doc:
    """Store the folder as a version of `project` (if new) and make it current.

    `label` names a new version for people (default: its creation time); the
    same content uploaded again is the same version and keeps its first label
    as its name, and a new label given with it names that version too (a
    label names one version of a project: it moves from the one it named).
    """
    version_id, data, zip_sha256, files = packaging.pack(project, folder)
    created = now()
    given = label
    label = label or default_label(created)
    known = store.versions.find_one({"_id": version_id}, {"label": 1})
    if known is None:
        file_id = store.files.upload_from_stream(
            f"{project}-{version_id}.zip", data, metadata={"sha256": zip_sha256})
        try:
            store.versions.insert_one({
                "_id": version_id, "project": project, "kind": kind.value,
                "file_id": file_id, "sha256": zip_sha256, "size": len(data),
                "files": len(files),
                "spiders": [version_entry(s) for s in spiders],
                "source": source, "label": label, "labels": [label], "created_at": created,
            })
        except pymongo.errors.DuplicateKeyError:
            # Another master registered the same content a moment ago.
            store.files.delete(file_id)
    else:
        label = known.get("label") or label
    if given:
        add_label(store, project, version_id, given)
    store.projects.update_one(
        {"_id": project},
        {"$set": {"current_version": version_id, "kind": kind.value, "source": source,
                  "updated_at": created}},
        upsert=True,
    )
    taken = {d["_id"]: d["project"] for d in store.spiders.find(
        {"_id": {"$in": [s["name"] for s in spiders]}}, {"project": 1})}
    errors = [f"spider {s['name']!r} already belongs to project {taken[s['name']]!r}"
              for s in spiders if taken.get(s["name"]) not in (None, project)]
    mine = [s for s in spiders if taken.get(s["name"]) in (None, project)]
    registered = sync_spider_rows(store, project, kind.value, version_id,
                                  [version_entry(s) for s in mine], created)
    return {"project": project, "version": version_id, "label": label,
            "spiders": registered, "errors": errors}


def add_label(store: Store, project: str, version_id: str, label: str) -> None:
    """`label` names `version_id` too, and no other version of `project`."""
    store.versions.update_many({"project": project, "_id": {"$ne": version_id}, "labels": label},
                               {"$pull": {"labels": label}})
    doc = store.versions.find_one({"_id": version_id}, {"label": 1, "labels": 1}) or {}
    labels = doc.get("labels") or ([doc["label"]] if doc.get("label") else [])
    if label not in labels:
        store.versions.update_one({"_id": version_id}, {"$set": {"labels": labels + [label]}})


def _known_listing(store: Store, folder: Path) -> tuple[SpiderKind, list[Doc]] | None:
    """A Scrapy project's spiders as listed when this exact content was first
    registered: versions are content-hashed and immutable, so listing them
    again (running the project's code in the sandbox, seconds a project) at
    every master start would only repeat the answer."""
    if project_kind(folder) is not SpiderKind.SCRAPY:
        return None  # a manifest is read, not run: always fresh, retry policies included
    try:
        version_id = packaging.content_hash(folder.name, folder)[:16]
    except OSError:
        return None
    known = store.versions.find_one({"_id": version_id, "project": folder.name},
                                    {"kind": 1, "spiders": 1})
    if not known or known.get("kind") != SpiderKind.SCRAPY.value or not known.get("spiders"):
        return None
    return SpiderKind.SCRAPY, [{"name": s["name"], "command": None, "description": "",
                                "results_collection": None} for s in known["spiders"]]


def scan(store: Store, config: Config) -> Doc:
    """Discover every project in the configured spider folders."""
    report: Doc = {"projects": [], "errors": []}
    for base in config.spider_folders:
        if not base.is_dir():
            report["errors"].append({"path": str(base), "error": "folder does not exist"})
            continue
        for folder in sorted(p for p in base.iterdir() if p.is_dir()):
            if project_kind(folder) is None:
                continue
            deployed = store.projects.find_one({"_id": folder.name}, {"source": 1}) or {}
            if not str(deployed.get("source", "folder:")).startswith("folder:"):
                # Deployed by upload, git or scrapyd: that version wins over the
                # folder, or every restart would quietly undo the deploy.
                log.info("project %s: deployed (%s); folder %s not used",
                         folder.name, deployed["source"], folder)
                continue
            try:
                kind, spiders = _known_listing(store, folder) or inspect(folder, config)
                result = register(store, folder.name, folder, kind, spiders,
                                  source=f"folder:{folder}")
            except ProjectError as exc:
                log.warning("project %s skipped: %s", folder, exc)
                report["errors"].append({"path": str(folder), "error": str(exc)})
                continue
            for error in result.pop("errors"):
                report["errors"].append({"path": str(folder), "error": error})
            report["projects"].append(result)
            log.info("project %s: version %s, spiders %s", result["project"],
                     result["version"], ", ".join(result["spiders"]))
    return report
