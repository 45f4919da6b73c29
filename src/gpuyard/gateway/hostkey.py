"""The gateway's host key: an ed25519 key kept in the data directory, made on first start, so
clients see the same key across restarts (and on every replica that shares the file)."""

from __future__ import annotations

import os
from pathlib import Path

import asyncssh

FILE = "ssh_host_ed25519_key"


def load_host_key(data_dir: Path) -> asyncssh.SSHKey:
    path = Path(data_dir) / FILE
    if path.exists():
        return asyncssh.read_private_key(str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    key = asyncssh.generate_private_key("ssh-ed25519", comment="gpuyard gateway")
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key.export_private_key())
    try:
        os.link(tmp, path)  # another process that made one first wins
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    return asyncssh.read_private_key(str(path))


def fingerprint(key: asyncssh.SSHKey) -> str:
    """``SHA256:…``, as ``ssh`` shows it."""
    return key.get_fingerprint("sha256")


def stored_fingerprint(data_dir: Path) -> str | None:
    """The fingerprint of the data directory's host key, None before the gateway made one (for
    the console, which may run without a gateway)."""
    path = Path(data_dir) / (FILE + ".pub")
    try:
        return fingerprint(asyncssh.import_public_key(path.read_text()))
    except (OSError, ValueError, asyncssh.KeyImportError):
        return None


def write_public(data_dir: Path, key: asyncssh.SSHKey) -> None:
    path = Path(data_dir) / (FILE + ".pub")
    text = key.export_public_key().decode()
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
