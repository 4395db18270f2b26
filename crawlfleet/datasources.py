"""Named data sources: databases (PostgreSQL, MySQL/MariaDB) a spider's items
are also delivered to, besides MongoDB.

Admins manage them (web page, API, CLI); operators choose them per spider
(the spider's ``datasources`` list). A source's password is sealed with
`crawlfleet.secretbox` before it is stored and is never shown again: answers
carry ``has_password`` instead.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

import sqlalchemy as sa

from crawlfleet.errors import BadRequest, NotFound
from crawlfleet.models import now
from crawlfleet.secretbox import SecretBox
from crawlfleet.store import require_known

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
KINDS = {"postgresql": ("postgresql+psycopg", 5432), "mysql": ("mysql+pymysql", 3306)}
FIELDS = ("kind", "host", "port", "database", "user", "password", "description")
CONNECT_TIMEOUT = 10


def check(body: Mapping, existing: Mapping | None = None) -> dict:
    """The stored fields of a source from a request body (password still plain)."""
    unknown = set(body) - set(FIELDS) - {"name"}
    if unknown:
        raise BadRequest(f"unknown data-source fields: {', '.join(sorted(unknown))}; "
                         f"known: {', '.join(FIELDS)}")
    doc = {k: v for k, v in (existing or {}).items() if k in FIELDS}
    doc.update({k: v for k, v in body.items() if k in FIELDS})
    if doc.get("kind") == "mariadb":
        doc["kind"] = "mysql"
    if doc.get("kind") not in KINDS:
        raise BadRequest("kind must be postgresql or mysql (MariaDB is mysql)")
    for field in ("host", "database", "user"):
        value = doc.get(field)
        if not isinstance(value, str) or not value.strip() or len(value) > 255:
            raise BadRequest(f"{field} is required (text, at most 255 characters)")
    port = doc.get("port") or KINDS[doc["kind"]][1]
    try:
        port = int(port)
    except (TypeError, ValueError):
        raise BadRequest("port must be a number") from None
    if not 1 <= port <= 65535:
        raise BadRequest("port must be between 1 and 65535")
    doc["port"] = port
    if doc.get("password") is not None and not isinstance(doc["password"], str):
        raise BadRequest("password must be text")
    doc["description"] = str(doc.get("description") or "")[:500]
    return doc


def save(store, box: SecretBox, name: str, body: Mapping, *, create: bool) -> dict:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise BadRequest(f"invalid data-source name {name!r} (letters, digits, _ . -)")
    existing = store.db.datasources.find_one({"_id": name})
    if create and existing is not None:
        raise BadRequest(f"data source {name!r} exists already")
    if not create and existing is None:
        raise NotFound(f"unknown data source {name!r}")
    doc = check(body, existing)
    password = body.get("password")
    doc.pop("password", None)
    if password is not None:  # absent: keep the sealed one
        doc["password_sealed"] = box.seal(password) if password else ""
    elif existing is not None:
        doc["password_sealed"] = existing.get("password_sealed", "")
    doc["updated_at"] = now()
    store.db.datasources.update_one({"_id": name}, {"$set": doc,
                                                    "$setOnInsert": {"created_at": now()}},
                                    upsert=True)
    return public(get(store, name))


def public(doc: Mapping) -> dict:
    """A source as answers show it: never its password, sealed or not."""
    out = {k: v for k, v in doc.items() if k not in ("password_sealed", "password")}
    out["name"] = doc["_id"]
    out["has_password"] = bool(doc.get("password_sealed"))
    return out


def get(store, name: str) -> dict:
    doc = store.db.datasources.find_one({"_id": name})
    if doc is None:
        raise NotFound(f"unknown data source {name!r}")
    return doc


def list_all(store) -> list[dict]:
    return [public(d) for d in store.db.datasources.find().sort("_id", 1)]


def delete(store, name: str) -> dict:
    get(store, name)
    users = [d["_id"] for d in store.spiders.find({"datasources": name}, {"_id": 1})]
    store.spiders.update_many({"datasources": name}, {"$pull": {"datasources": name}})
    store.db.datasources.delete_one({"_id": name})
    return {"deleted": name, "detached_from": users}


def url(doc: Mapping, box: SecretBox) -> sa.URL:
    driver, _ = KINDS[doc["kind"]]
    sealed = doc.get("password_sealed")
    return sa.URL.create(driver, username=doc["user"],
                         password=box.open(sealed) if sealed else None,
                         host=doc["host"], port=doc["port"], database=doc["database"])


def engine(doc: Mapping, box: SecretBox) -> sa.Engine:
    from crawlfleet.results.sql import make_engine

    args: dict[str, Any] = {"connect_timeout": CONNECT_TIMEOUT}
    return make_engine(url(doc, box), pool_pre_ping=True, connect_args=args)


def check_spider_sources(store, names: Any) -> list[str]:
    """A spider's chosen sources, each known."""
    if names is None:
        return []
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise BadRequest("datasources must be a list of data-source names")
    return require_known(store.db.datasources, names, "unknown data sources: ")


def ping(doc: Mapping, box: SecretBox) -> None:
    """Connect and run SELECT 1; raises the driver's error."""
    eng = engine(doc, box)
    try:
        with eng.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    finally:
        eng.dispose()
