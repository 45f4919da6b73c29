"""Values encrypted at rest: registry logins today, account secrets next.

A stored value is ``enc:v1:`` followed by a Fernet token (AES-128-CBC with HMAC-SHA256, a fresh
IV each time) made with a key derived from the server secret (``gpuyard.server_secret``) for the
purpose "stored credentials v1". The version in the prefix names that scheme, so another one can
come later beside it.

Columns declare the type :class:`EncryptedText`; it encrypts on the way in and decrypts on the
way out, so services read and write plain text and never see a ciphertext. The cipher belongs
to the engine: ``install_cipher(engine, cipher)`` (the app factory does it) makes it the one
every connection of that engine uses. Values written before the column was encrypted (no
prefix) read as they are, and :func:`encrypt_plain_values` encrypts them; the app factory runs
it at start-up. See docs/security.md.
"""

from __future__ import annotations

import base64
import weakref

from sqlalchemy import Engine, MetaData, Text, select, type_coerce, update
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session
from sqlalchemy.types import TypeDecorator

from gpuyard.server_secret import ServerSecret

PREFIX = "enc:v1:"
PURPOSE = "stored credentials v1"


class CryptoError(Exception):
    """A stored value cannot be decrypted (or no cipher is installed); the message says why."""


class Cipher:
    """Encrypts and decrypts text with one Fernet key."""

    def __init__(self, key: bytes):
        from cryptography.fernet import Fernet

        if len(key) != 32:
            raise ValueError("a Fernet key is 32 bytes")
        self._fernet = Fernet(base64.urlsafe_b64encode(key))

    @classmethod
    def from_secret(cls, secret: ServerSecret) -> Cipher:
        return cls(secret.derive(PURPOSE))

    def encrypt(self, plain: str) -> str:
        return PREFIX + self._fernet.encrypt(plain.encode("utf-8")).decode("ascii")

    def decrypt(self, stored: str) -> str:
        from cryptography.fernet import InvalidToken

        if not is_encrypted(stored):
            raise CryptoError(f"not an encrypted value (it does not start with {PREFIX!r})")
        try:
            return self._fernet.decrypt(stored[len(PREFIX):].encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError):
            raise CryptoError(
                "a stored value was encrypted with another server secret: give this server the "
                "secret the database was written with (GPUYARD_SECRET_KEY, or the secret_key file "
                "of its data directory)"
            ) from None

    def __repr__(self) -> str:
        return "Cipher(...)"


def is_encrypted(value: str) -> bool:
    return value.startswith(PREFIX)


# Each engine's cipher, keyed by its dialect object (one per engine, and the one a column type
# is handed when it converts a value); weak, so that a disposed engine takes its cipher along.
_CIPHERS: weakref.WeakKeyDictionary[Dialect, Cipher] = weakref.WeakKeyDictionary()


def install_cipher(engine: Engine, cipher: Cipher) -> None:
    _CIPHERS[engine.dialect] = cipher


def _cipher(dialect: Dialect) -> Cipher:
    cipher = _CIPHERS.get(dialect)
    if cipher is None:
        raise CryptoError(
            "no cipher for encrypted columns on this database engine: call "
            "gpuyard.store.crypto.install_cipher(engine, Cipher.from_secret(secret)) first"
        )
    return cipher


class EncryptedText(TypeDecorator):
    """Text stored encrypted (see the module's docstring); ``None`` stays ``None``."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str):
            raise TypeError(f"an encrypted column takes text, not {type(value).__name__}")
        return _cipher(dialect).encrypt(value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> str | None:
        if value is None or not is_encrypted(value):
            return value  # written before encryption; encrypt_plain_values() takes care of it
        return _cipher(dialect).decrypt(value)


def encrypt_plain_values(session: Session, metadata: MetaData) -> int:
    """Encrypt every value of an :class:`EncryptedText` column that is still plain text; return
    how many. Safe to run from several processes at once: a row is only rewritten while it still
    holds the plain value that was read."""
    done = 0
    for table in metadata.sorted_tables:
        for column in table.columns:
            if not isinstance(column.type, EncryptedText):
                continue
            (key,) = table.primary_key.columns
            raw = type_coerce(column, Text)  # the stored text, not decrypted
            plain_rows = session.execute(
                select(key, raw).where(raw.is_not(None), ~raw.startswith(PREFIX, autoescape=True))
            ).all()
            for row_key, plain in plain_rows:
                result = session.execute(
                    update(table).where(key == row_key, raw == plain).values({column.name: plain})
                )
                done += result.rowcount
    return done
