"""Direct store access for a project's spiders: off unless an admin switches
it on. Spiders written for Crawlab's SDK connect to MongoDB with the
``CRAWLAB_MONGO_*`` variables; with access on, the node gives those (the
platform's own store address and credentials) to that project's spiders,
which can then read and write the whole database. crawlfleet's own SDK never
needs it: items go through the node.
"""

from crawlfleet.errors import BadRequest
from crawlfleet.models import now
from master.versions import get_project


def set_store_access(store, project, enabled, by):
    """Switch a project's direct store access; returns the new state."""
    if not isinstance(enabled, bool):
        raise BadRequest("send {\"enabled\": true} or {\"enabled\": false}")
    doc = get_project(store, project)
    store.projects.update_one({"_id": doc["_id"]}, {"$set": {
        "store_access": enabled, "store_access_by": by, "store_access_at": now()}})
    return store_access(store, project)


def store_access(store, project):
    doc = get_project(store, project)
    return {"project": doc["_id"], "enabled": bool(doc.get("store_access")),
            "by": doc.get("store_access_by"), "at": doc.get("store_access_at")}
