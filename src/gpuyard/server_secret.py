"""The server secret: the one secret gpuyard keeps outside its database.

Console session cookies are signed, and stored credentials are encrypted, with keys derived
from it, so that reading the database alone forges no session and reveals no password. It comes
from ``GPUYARD_SECRET_KEY`` when that is set (every replica of a server must then be given the
same value), else from the file ``secret_key`` in the data directory, made on first start with
mode 0600. Nothing here runs at import; see docs/security.md.
"""

from __future__ import annotations

import logging
import os
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path

ENV_VAR = "GPUYARD_SECRET_KEY"
FILE_NAME = "secret_key"
MIN_LENGTH = 32  # characters; a made secret has 64

log = logging.getLogger("gpuyard.secret")


class ServerSecretError(Exception):
    """The secret is set or stored in a way that cannot be used; the message says how to fix it."""


@dataclass(frozen=True)
class ServerSecret:
    value: bytes = field(repr=False)
    source: str  # "GPUYARD_SECRET_KEY" or the file's path, for the start-up message

    def derive(self, purpose: str, length: int = 32) -> bytes:
        """A key for one purpose (HKDF-SHA256 with the purpose as its label): keys for
        different purposes are unrelated, and none of them reveals the secret."""
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.kdf.hkdf import HKDF

        return HKDF(hashes.SHA256(), length, salt=None, info=f"gpuyard {purpose}".encode()).derive(
            self.value
        )


def load_server_secret(data_dir: Path, environ: dict[str, str] | None = None) -> ServerSecret:
    """``GPUYARD_SECRET_KEY`` if set, else the data directory's ``secret_key`` (made if missing)."""
    env = os.environ if environ is None else environ
    given = (env.get(ENV_VAR) or "").strip()
    if given:
        if len(given) < MIN_LENGTH:
            raise ServerSecretError(
                f"{ENV_VAR} is {len(given)} characters long; use at least {MIN_LENGTH} random "
                "characters, e.g. the output of: python3 -c 'import secrets; "
                "print(secrets.token_urlsafe(48))'"
            )
        return ServerSecret(given.encode(), ENV_VAR)
    path = Path(data_dir) / FILE_NAME
    try:
        return _read(path)
    except FileNotFoundError:
        _create(path)
        return _read(path)


def _read(path: Path) -> ServerSecret:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        log.warning("%s can be read by other users of this machine (mode %o): chmod 600 it", path, mode)
    value = path.read_text(encoding="utf-8").strip()
    if len(value) < MIN_LENGTH:
        raise ServerSecretError(
            f"{path} does not hold a usable server secret (at least {MIN_LENGTH} characters). "
            f"Restore it from your backup, or set {ENV_VAR}; a new secret signs out every console "
            "session and leaves stored registry logins unreadable"
        )
    return ServerSecret(value.encode(), str(path))


def _create(path: Path) -> None:
    """Write a new secret to ``path`` unless it exists. The secret is written to a private
    temporary file (O_CREAT|O_EXCL, mode 0600) that is then hard-linked to ``path``: the link
    appears complete or not at all, and fails if ``path`` exists, so when two processes start at
    once the one that links first wins and the other reads the winner's file."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_name(f".{FILE_NAME}.{os.getpid()}.{secrets.token_hex(8)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(secrets.token_urlsafe(48) + "\n")
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass  # another process made it first: theirs is the secret
    finally:
        temporary.unlink(missing_ok=True)
