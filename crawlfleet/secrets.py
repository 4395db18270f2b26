"""Encryption at rest of spider secrets (and any other secret the platform
keeps in the store): Fernet (AES-128-CBC + HMAC-SHA256) from `cryptography`,
with a key that is never in the store — ``CRAWLFLEET_SECRETS_KEY``, else a
key made once and kept in HOME/secrets.key (0600).

Every process that must read secrets (the web server to check them, the
nodes to hand them to spiders) needs the same key: on one machine they share
HOME; across machines set ``CRAWLFLEET_SECRETS_KEY`` everywhere.
"""

import os

from cryptography.fernet import Fernet, InvalidToken

from crawlfleet.errors import ConfigError
from crawlfleet.privatehome import write_private

KEY_FILE = "secrets.key"
MASK = "••••••"


def _key(config):
    if config.secrets_key:
        return config.secrets_key.encode()
    path = config.home_path / KEY_FILE
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key()
    # first writer wins: a hard link fails if another process made it meanwhile
    tmp = path.with_name(f".{KEY_FILE}.{os.getpid()}")
    write_private(tmp, key.decode() + "\n")
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    return path.read_bytes().strip()


def cipher(config) -> Fernet:
    try:
        return Fernet(_key(config))
    except ValueError as exc:
        raise ConfigError(f"the secrets key is not a Fernet key: {exc}") from None


def encrypt(config, value: str) -> str:
    return cipher(config).encrypt(value.encode()).decode()


def decrypt(config, token: str) -> str:
    """The secret, or ConfigError when this machine's key did not encrypt it."""
    try:
        return cipher(config).decrypt(token.encode()).decode()
    except InvalidToken:
        raise ConfigError("a secret cannot be decrypted with this machine's key "
                          "(set the same CRAWLFLEET_SECRETS_KEY on every machine)") from None


def mask_in(text: str, secrets) -> str:
    """`text` with every secret value in it replaced by a mask."""
    for value in secrets:
        if value and len(value) >= 4 and value in text:
            text = text.replace(value, MASK)
    return text
