"""Web UI users: a name, a role and a werkzeug password hash, in ``users``.

Roles are the API tokens' roles: ``admin`` (everything, users and tokens),
``operator`` (deploy, run, cancel, schedule) and ``viewer`` (read only).
The first admin is made at first start (`ensure_first_admin`) with the
password from ``CRAWLFLEET_ADMIN_PASSWORD``, else a generated one that is
printed once and never stored in clear.
"""

import datetime
import os
import re
import secrets

import pymongo.errors
from werkzeug.security import check_password_hash, generate_password_hash

from crawlfleet.errors import BadRequest, Conflict, NotFound
from crawlfleet.models import now
from crawlfleet.tokens import ROLES

USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
MIN_PASSWORD = 8
MAX_PASSWORD = 200
ADMIN_PASSWORD_ENV = "CRAWLFLEET_ADMIN_PASSWORD"
FIRST_ADMIN = "admin"
SESSIONS = "web_sessions"
# A hash to check against when the user does not exist, so a wrong name costs
# as long as a wrong password and timing does not tell which names exist.
_DUMMY_HASH = generate_password_hash(secrets.token_hex(16))


def _check_name(name):
    if not isinstance(name, str) or not USERNAME_RE.match(name):
        raise BadRequest("user names are 1-64 letters, digits, '_', '.', '@' or '-'")
    return name


def _check_role(role):
    if role not in ROLES:
        raise BadRequest(f"role must be one of {', '.join(ROLES)}")
    return role


def _check_password(password):
    if not isinstance(password, str) or not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise BadRequest(f"passwords are {MIN_PASSWORD} to {MAX_PASSWORD} characters")
    return password


def new_password():
    return secrets.token_urlsafe(12)


def create_user(store, name, password, role="viewer"):
    doc = {"_id": _check_name(name), "role": _check_role(role),
           "password_hash": generate_password_hash(_check_password(password)),
           "created_at": now(), "last_login_at": None}
    try:
        store.users.insert_one(doc)
    except pymongo.errors.DuplicateKeyError:
        raise Conflict(f"user {name!r} already exists") from None
    return doc


def get_user(store, name):
    return store.users.find_one({"_id": name}) if isinstance(name, str) else None


def list_users(store):
    return list(store.users.find({}, {"password_hash": 0}).sort("_id", 1))


def authenticate(store, name, password):
    """The user's document when `password` is right, else None."""
    user = get_user(store, name) if isinstance(name, str) and len(name) <= 64 else None
    if not isinstance(password, str) or len(password) > MAX_PASSWORD:
        return None
    if user is None:
        check_password_hash(_DUMMY_HASH, password)
        return None
    if not check_password_hash(user["password_hash"], password):
        return None
    store.users.update_one({"_id": user["_id"]}, {"$set": {"last_login_at": now()}})
    return user


def set_password(store, name, password, keep_session=None):
    """A new password; every session of the user but `keep_session` ends."""
    result = store.users.update_one(
        {"_id": name},
        {"$set": {"password_hash": generate_password_hash(_check_password(password)),
                  "password_changed_at": now()}})
    if result.matched_count == 0:
        raise NotFound(f"unknown user {name!r}")
    end_sessions(store, name, keep=keep_session)


LOCALES = ("en", "zh_CN")


def set_locale(store, name, locale):
    """The user's UI language (web/i18n.py), kept on the user document."""
    if locale not in LOCALES:
        raise BadRequest(f"unknown language {locale!r}; one of {', '.join(LOCALES)}")
    result = store.users.update_one({"_id": name}, {"$set": {"locale": locale}})
    if result.matched_count == 0:
        raise NotFound(f"unknown user {name!r}")


def _admins(store):
    return [u["_id"] for u in store.users.find({"role": "admin"}, {"_id": 1})]


def set_role(store, name, role):
    _check_role(role)
    user = get_user(store, name)
    if user is None:
        raise NotFound(f"unknown user {name!r}")
    if user["role"] == "admin" and role != "admin" and _admins(store) == [name]:
        raise Conflict("the last admin cannot lose the admin role")
    store.users.update_one({"_id": name}, {"$set": {"role": role}})
    end_sessions(store, name)


def delete_user(store, name):
    user = get_user(store, name)
    if user is None:
        raise NotFound(f"unknown user {name!r}")
    if user["role"] == "admin" and _admins(store) == [name]:
        raise Conflict("the last admin cannot be deleted")
    store.users.delete_one({"_id": name})
    end_sessions(store, name)


# -- web sessions ------------------------------------------------------------------
# Kept on the server, so that signing out, a password change, a role change or
# deleting the user really ends them: the cookie only names a session here.

def _sessions(store):
    return store.db[SESSIONS]


def open_session(store, name, lifetime):
    """A new session of user `name` lasting `lifetime` seconds; returns its id."""
    sid = secrets.token_urlsafe(32)
    stamp = now()
    _sessions(store).insert_one({"_id": sid, "user": name, "created_at": stamp,
                                 "expires_at": stamp + lifetime,
                                 "drop_after": datetime.datetime.fromtimestamp(
                                     stamp + lifetime, datetime.timezone.utc)})
    return sid


def session_user(store, sid):
    """The user of a live session, or None (unknown, ended or expired)."""
    if not isinstance(sid, str) or not sid:
        return None
    doc = _sessions(store).find_one({"_id": sid})
    if doc is None or doc.get("expires_at", 0) <= now():
        return None
    return get_user(store, doc["user"])


def end_session(store, sid):
    if isinstance(sid, str) and sid:
        _sessions(store).delete_one({"_id": sid})


def end_sessions(store, name, keep=None):
    """End every session of user `name`, except the one with id `keep`."""
    query = {"user": name}
    if keep:
        query["_id"] = {"$ne": keep}
    _sessions(store).delete_many(query)


def ensure_first_admin(store, environ=None):
    """Make the user `admin` when there is no user at all.

    Returns ``(name, password)`` when a password was generated (to print
    once), ``(name, None)`` when it came from the environment, and None when
    users already exist.
    """
    environ = os.environ if environ is None else environ
    if store.users.find_one({}, {"_id": 1}) is not None:
        return None
    given = environ.get(ADMIN_PASSWORD_ENV) or ""
    password = given or new_password()
    try:
        create_user(store, FIRST_ADMIN, password, "admin")
    except Conflict:  # another process made it at the same moment
        return None
    return FIRST_ADMIN, (None if given else password)
