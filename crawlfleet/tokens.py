"""API tokens: made once, shown once, kept only as their SHA-256."""

from __future__ import annotations

import hashlib
import secrets
from pathlib import Path
from typing import TYPE_CHECKING

from crawlfleet.models import Doc, now

if TYPE_CHECKING:
    from crawlfleet.config import Config
    from crawlfleet.store import Store

ROLES = ("admin", "operator", "viewer")
PREFIX = "cft_"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(store: Store, name: str, role: str = "admin") -> str:
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    token = PREFIX + secrets.token_urlsafe(32)
    store.tokens.insert_one({"_id": _digest(token), "name": name, "role": role,
                             "created_at": now(), "last_used_at": None})
    return token


def verify_token(store: Store, token: object) -> Doc | None:
    """The token's document, or None when it is unknown or revoked."""
    if not token or not isinstance(token, str) or len(token) > 200:
        return None
    return store.tokens.find_one({"_id": _digest(token)})


def revoke_token(store: Store, token_id: str) -> bool:
    return store.tokens.delete_one({"_id": token_id}).deleted_count == 1


def admin_token_file(config: Config) -> Path:
    return config.home_path / "admin-token"


def ensure_admin_token(store: Store, config: Config) -> str:
    """The admin token kept in HOME, made (and stored) the first time."""
    path = admin_token_file(config)
    if path.exists():
        token = path.read_text().strip()
        if verify_token(store, token):
            return token
    token = create_token(store, "admin (crawlfleet up)", "admin")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(token + "\n")
    tmp.chmod(0o600)
    tmp.replace(path)
    return token


def read_admin_token(config: Config) -> str:
    try:
        return admin_token_file(config).read_text().strip()
    except OSError:
        return ""
