"""Per-project and per-spider environment variables and secrets, as Crawlab
Pro and Scrapy Cloud offer. A variable set for a project reaches every
spider of it; one set for a spider (same name) wins over the project's.
Secrets are encrypted at rest (crawlfleet/secrets.py), shown masked to
everyone after creation, given only to that project's spider processes, and
never written to a task document, an export or an API answer.
"""

import re

from crawlfleet import secrets
from crawlfleet.errors import BadRequest, NotFound
from crawlfleet.models import now

NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
# the platform's own names: a spider may not shadow them
RESERVED = re.compile(r"^(CRAWLFLEET_|CRAWLAB_|PATH$|HOME$|PYTHON|LD_)")
MAX_VALUE = 32 * 1024


def get_project(store, name):
    doc = store.projects.find_one({"_id": name}, {"_id": 1}) if isinstance(name, str) else None
    if doc is None:
        raise NotFound(f"unknown project {name!r}")
    return doc


def _key(project, spider, name):
    return f"{project}/{spider or '*'}/{name}"


def set_variable(store, config, project, name, value, *, spider=None, secret=False, by=None):
    doc = get_project(store, project)
    if not isinstance(name, str) or not NAME_RE.match(name) or RESERVED.match(name):
        raise BadRequest(f"invalid variable name {name!r}: letters, digits and _, not starting "
                         "with a digit, and not one of the platform's (CRAWLFLEET_*, CRAWLAB_*, "
                         "PATH, HOME, PYTHON*, LD_*)")
    if not isinstance(value, str) or len(value) > MAX_VALUE or "\0" in value:
        raise BadRequest(f"the value must be text of at most {MAX_VALUE} characters")
    if spider is not None:
        if store.spiders.find_one({"_id": spider, "project": doc["_id"]}, {"_id": 1}) is None:
            raise NotFound(f"project {project!r} has no spider {spider!r}")
    entry = {"_id": _key(doc["_id"], spider, name), "project": doc["_id"], "spider": spider,
             "name": name, "secret": bool(secret), "updated_at": now(), "updated_by": by}
    if secret:
        entry["encrypted"] = secrets.encrypt(config, value)
    else:
        entry["value"] = value
    store.db.spider_env.replace_one({"_id": entry["_id"]}, entry, upsert=True)
    # lets a node skip the lookup for the many projects that have none
    store.projects.update_one({"_id": doc["_id"]}, {"$set": {"has_env": True}})
    return public(entry)


def remove_variable(store, project, name, *, spider=None):
    get_project(store, project)
    if store.db.spider_env.delete_one({"_id": _key(project, spider, name)}).deleted_count != 1:
        where = f"spider {spider!r}" if spider else f"project {project!r}"
        raise NotFound(f"{where} has no variable {name!r}")
    if store.db.spider_env.find_one({"project": project}, {"_id": 1}) is None:
        store.projects.update_one({"_id": project}, {"$set": {"has_env": False}})


def list_variables(store, project, *, spider=None):
    """Masked: a secret's value is never shown again after it was set."""
    get_project(store, project)
    query = {"project": project}
    if spider is not None:
        query["spider"] = {"$in": [None, spider]}
    return [public(d) for d in store.db.spider_env.find(query).sort([("spider", 1), ("name", 1)])]


def public(doc):
    return {"project": doc["project"], "spider": doc.get("spider"), "name": doc["name"],
            "secret": bool(doc.get("secret")),
            "value": secrets.MASK if doc.get("secret") else doc.get("value"),
            "updated_at": doc.get("updated_at"), "updated_by": doc.get("updated_by")}


def for_spider(store, config, project, spider):
    """(variables, secret values) for one spider process: the project's, then
    the spider's own over them, secrets decrypted."""
    env, hidden = {}, []
    docs = list(store.db.spider_env.find({"project": project, "spider": {"$in": [None, spider]}}))
    for doc in sorted(docs, key=lambda d: d.get("spider") is not None):
        value = secrets.decrypt(config, doc["encrypted"]) if doc.get("secret") else doc.get("value")
        env[doc["name"]] = value
        if doc.get("secret"):
            hidden.append(value)
    return env, hidden
