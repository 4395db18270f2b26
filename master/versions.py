"""A project's versions: list them, see which is current, roll back to an
older one, delete one no task needs, delete a whole project.

Versions are immutable (``versions``, ``_id`` = content hash, zip in GridFS)
and made by `master.discovery.register`; this module only chooses between
them. A version is named by its id or by one of its labels (``labels``: the
first, ``label``, and any given later to the same content; the newest
version with that label wins when several share it).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import gridfs.errors

from crawlfleet.errors import BadRequest, Conflict, NotFound
from crawlfleet.models import ACTIVE_VALUES, Doc, now
from crawlfleet.store import get_named
from master.spiderrows import sync_spider_rows

if TYPE_CHECKING:
    from crawlfleet.store import Store

log = logging.getLogger(__name__)

VERSION_FIELDS = {"_id": 1, "project": 1, "label": 1, "labels": 1, "kind": 1, "source": 1,
                  "parent": 1, "message": 1,
                  "size": 1, "files": 1, "sha256": 1, "spiders": 1, "created_at": 1}


def get_project(store: Store, name: Any) -> Doc:
    return get_named(store.projects, name, "project")


def find_version(store: Store, project: str, ref: Any) -> Doc:
    """The version of `project` whose id (or, failing that, label) is `ref`."""
    if not isinstance(ref, str) or not ref:
        raise BadRequest("name a version by its id or label")
    doc = store.versions.find_one({"_id": ref, "project": project})
    for field in ("labels", "label"):  # every name a version has, then its first
        if doc is None:
            found = list(store.versions.find({"project": project, field: ref})
                         .sort("created_at", -1).limit(1))
            doc = found[0] if found else None
    if doc is None:
        get_project(store, project)  # an unknown project is the clearer error
        raise NotFound(f"project {project!r} has no version {ref!r}")
    return doc


def public_version(doc: Doc, current: str | None = None) -> Doc:
    out = {k: doc.get(k) for k in VERSION_FIELDS if k != "_id"}
    out["id"] = doc["_id"]
    out["spiders"] = [s["name"] for s in doc.get("spiders") or [] if isinstance(s, dict)]
    out["label"] = doc.get("label") or doc["_id"]
    if current is not None:
        out["current"] = doc["_id"] == current
    return out


def versions_of(store: Store, project: str) -> list[Doc]:
    """A project's versions, newest first."""
    return list(store.versions.find({"project": project}, VERSION_FIELDS).sort("created_at", -1))


def public_project(store: Store, doc: Doc, *, with_versions: bool = False) -> Doc:
    spiders = [d["_id"] for d in store.spiders.find({"project": doc["_id"]}, {"_id": 1})
               .sort("_id", 1)]
    out = {
        "name": doc["_id"],
        "current_version": doc.get("current_version"),
        "kind": doc.get("kind"),
        "source": doc.get("source"),
        "updated_at": doc.get("updated_at"),
        "spiders": spiders,
        # spiders of this project get the store's address (master/storeaccess.py)
        "store_access": bool(doc.get("store_access")),
    }
    if doc.get("git"):
        git = dict(doc["git"])
        from master.gitimport import redact

        git["url"] = redact(git.get("url", ""))
        git["credentials"] = bool(git.get("credentials"))  # sealed; never shown
        out["git"] = git
    versions = versions_of(store, doc["_id"])
    out["version_count"] = len(versions)
    current = next((v for v in versions if v["_id"] == doc.get("current_version")), None)
    out["current_label"] = (current or {}).get("label")
    if with_versions:
        out["versions"] = [public_version(v, doc.get("current_version")) for v in versions]
    return out


def list_projects(store: Store) -> list[Doc]:
    return [public_project(store, d) for d in store.projects.find().sort("_id", 1)]


def list_versions(store: Store, project: str) -> Doc:
    doc = get_project(store, project)
    current = doc.get("current_version")
    return {"project": project, "current_version": current,
            "versions": [public_version(v, current) for v in versions_of(store, project)]}


def active_tasks(store: Store, query: Doc, limit: int = 5) -> list[str]:
    """Ids of pending or running tasks matching `query` (a few, to name them)."""
    query = dict(query, status={"$in": ACTIVE_VALUES})
    return [d["_id"] for d in store.tasks.find(query, {"_id": 1}).limit(limit)]


def activate(store: Store, project: str, ref: Any) -> Doc:
    """Make an existing version the project's current one (a rollback, or forward again).

    The project's spiders become exactly those of that version, as it
    defined them; tasks already asked for keep the version they recorded.
    """
    doc = get_project(store, project)
    version = find_version(store, project, ref)
    entries = [s for s in version.get("spiders") or [] if isinstance(s, dict) and s.get("name")]
    names = [s["name"] for s in entries]
    taken = sorted((d["_id"], d["project"]) for d in store.spiders.find(
        {"_id": {"$in": names}, "project": {"$ne": project}}, {"project": 1}))
    if taken:
        raise Conflict("spider names of that version now belong to other projects: "
                       + ", ".join(f"{n!r} ({p!r})" for n, p in taken))
    stamp = now()
    store.projects.update_one(
        {"_id": project},
        {"$set": {"current_version": version["_id"], "kind": version["kind"],
                  "updated_at": stamp}})
    sync_spider_rows(store, project, version["kind"], version["_id"], entries, stamp)
    log.info("project %s: version %s (%s) is current (was %s)", project, version["_id"],
             version.get("label"), doc.get("current_version"))
    return public_project(store, get_project(store, project))


def _delete_file(store: Store, version: Doc) -> None:
    if version.get("file_id") is None:
        return
    try:
        store.files.delete(version["file_id"])
    except gridfs.errors.NoFile:
        pass


def delete_version(store: Store, project: str, ref: Any) -> Doc:
    """Delete a version that is not current and that no pending or running task needs."""
    doc = get_project(store, project)
    version = find_version(store, project, ref)
    if version["_id"] == doc.get("current_version"):
        raise Conflict(f"version {version['_id']} is the current version of {project!r}; "
                       "activate another version first (or delete the project)")
    busy = active_tasks(store, {"version": version["_id"]})
    if busy:
        raise Conflict(f"version {version['_id']} is used by pending or running tasks: "
                       f"{', '.join(busy)}")
    store.versions.delete_one({"_id": version["_id"]})
    _delete_file(store, version)
    return {"project": project, "deleted": version["_id"], "label": version.get("label")}


def delete_project(store: Store, project: str) -> Doc:
    """Delete a project, its versions (and their zips) and its spiders.

    Refused while any of its tasks is pending or running; finished tasks,
    their logs and their results stay. A project found in a spiders folder
    comes back at the next scan.
    """
    get_project(store, project)
    busy = active_tasks(store, {"project": project})
    if busy:
        raise Conflict(f"project {project!r} has pending or running tasks: {', '.join(busy)}; "
                       "cancel them or wait for them to end")
    spiders = [d["_id"] for d in store.spiders.find({"project": project}, {"_id": 1})]
    versions = list(store.versions.find({"project": project}, {"file_id": 1}))
    store.spiders.delete_many({"project": project})
    store.projects.delete_one({"_id": project})
    for version in versions:
        store.versions.delete_one({"_id": version["_id"]})
        _delete_file(store, version)
    return {"deleted": project, "versions": [v["_id"] for v in versions],
            "spiders": sorted(spiders)}
