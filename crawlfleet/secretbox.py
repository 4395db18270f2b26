"""Secrets encrypted at rest (data-source passwords), with cryptography's Fernet.

The key never lives in the store: it is the ``secrets_key`` setting
(``CRAWLFLEET_SECRETS_KEY``, a Fernet key), else a key file
``HOME/secrets.key`` made once with mode 0600. Every process that must read
a secret (the web to test a connection, nodes to deliver) needs the same key:
on several machines, set ``CRAWLFLEET_SECRETS_KEY`` everywhere.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from crawlfleet.errors import ConfigError

KEY_FILE = "secrets.key"


def load_key(config) -> bytes:
    """The Fernet key of this installation (made on first use when unset)."""
    if getattr(config, "secrets_key", ""):
        key = config.secrets_key.encode()
        try:
            Fernet(key)
        except ValueError:
            raise ConfigError("secrets_key is not a Fernet key (32 url-safe base64 bytes; "
                              "make one with `python -c 'from cryptography.fernet import "
                              "Fernet; print(Fernet.generate_key().decode())'`)") from None
        return key
    path = Path(config.home_path) / KEY_FILE
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key()
    # written privately then linked into place: of processes starting together, one wins
    tmp = path.with_name(f".{KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, key + b"\n")
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)
    except FileExistsError:
        key = path.read_bytes().strip()
    finally:
        tmp.unlink()
    return key


class SecretBox:
    def __init__(self, key: bytes):
        self.fernet = Fernet(key)

    @classmethod
    def for_config(cls, config) -> "SecretBox":
        return cls(load_key(config))

    def seal(self, plain: str) -> str:
        return self.fernet.encrypt(plain.encode()).decode()

    def open(self, sealed: str) -> str:
        try:
            return self.fernet.decrypt(sealed.encode()).decode()
        except InvalidToken:
            raise ConfigError("a stored secret cannot be decrypted with this installation's "
                              "key (CRAWLFLEET_SECRETS_KEY or HOME/secrets.key differ between "
                              "processes?)") from None
