"""API tokens: made once, shown once, kept only as their SHA-256."""

import hashlib
import secrets

from crawlfleet.models import now

ROLES = ("admin", "operator", "viewer")
PREFIX = "cft_"


def _digest(token):
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(store, name, role="admin"):
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    token = PREFIX + secrets.token_urlsafe(32)
    store.tokens.insert_one({"_id": _digest(token), "name": name, "role": role,
                             "created_at": now(), "last_used_at": None})
    return token


def verify_token(store, token):
    """The token's document, or None when it is unknown or revoked."""
    if not token or not isinstance(token, str) or len(token) > 200:
        return None
    return store.tokens.find_one({"_id": _digest(token)})


def revoke_token(store, token_id):
    return store.tokens.delete_one({"_id": token_id}).deleted_count == 1


def admin_token_file(config):
    return config.home_path / "admin-token"


def ensure_admin_token(store, config):
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


def read_admin_token(config):
    try:
        return admin_token_file(config).read_text().strip()
    except OSError:
        return ""
