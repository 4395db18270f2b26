"""A project's spider rows (`spiders`) made to match one of its versions.

Registering a new version and activating an older one (a rollback) both end
here, so a spider row always holds exactly what its version recorded: kind,
command, description, results collection, retry policy and dedup policy. Fields a version
records live in `VERSION_ENTRY_FIELDS`; a field added there is kept with the
version and restored by a rollback without touching either caller.
"""

from typing import Any

from crawlfleet.models import results_collection_for

# What a version stores of each spider (whole entries, so a rollback restores
# each spider as it was).
VERSION_ENTRY_FIELDS = ("name", "command", "description", "results_collection", "retry",
                        "dedup")


def version_entry(spider: dict[str, Any]) -> dict[str, Any]:
    """The entry a version stores for one spider found in its project."""
    return {field: spider.get(field) for field in VERSION_ENTRY_FIELDS}


def sync_spider_rows(store: Any, project: str, kind: str, version_id: str,
                     entries: list[dict[str, Any]], stamp: float) -> list[str]:
    """Make `project`'s spider rows those of `entries` (a version's spiders).

    Rows of spiders the version does not define are deleted, so they stop
    being runnable; the caller has checked that no entry's name belongs to
    another project. Returns the names written.
    """
    names = [entry["name"] for entry in entries]
    for entry in entries:
        fields = {
            "project": project, "kind": kind, "version": version_id,
            "command": entry.get("command"),
            "results_collection": entry.get("results_collection")
            or results_collection_for(entry["name"]),
            # A version made before retry policies were kept had none to keep.
            "retry": entry.get("retry"),
            # the project's own dedup policy; one set through the API wins (`dedup`)
            "manifest_dedup": entry.get("dedup"),
            "updated_at": stamp,
        }
        if "description" in entry:  # versions made before descriptions were kept
            fields["description"] = entry["description"]
        store.spiders.update_one({"_id": entry["name"]},
                                 {"$set": fields, "$setOnInsert": {"created_at": stamp}},
                                 upsert=True)
    store.spiders.delete_many({"project": project, "_id": {"$nin": names}})
    return names
