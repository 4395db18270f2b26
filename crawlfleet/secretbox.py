"""Data-source passwords sealed at rest: a `SecretBox` over the installation's
one Fernet key (`crawlfleet.secrets`: ``CRAWLFLEET_SECRETS_KEY``, else
``HOME/secrets.key``, 0600), the same key that seals spider secrets.
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken

from crawlfleet import secrets
from crawlfleet.errors import ConfigError


class SecretBox:
    def __init__(self, fernet: Fernet):
        self.fernet = fernet

    @classmethod
    def for_config(cls, config) -> "SecretBox":
        return cls(secrets.cipher(config))

    def seal(self, plain: str) -> str:
        return self.fernet.encrypt(plain.encode()).decode()

    def open(self, sealed: str) -> str:
        try:
            return self.fernet.decrypt(sealed.encode()).decode()
        except InvalidToken:
            raise ConfigError("a stored secret cannot be decrypted with this installation's "
                              "key (CRAWLFLEET_SECRETS_KEY or HOME/secrets.key differ between "
                              "processes?)") from None
