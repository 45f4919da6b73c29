"""OpenSSH public keys: parsed and checked with asyncssh, normalised to one authorized_keys line.

A key is accepted when it is one OpenSSH public key of type ed25519, ecdsa (nistp256/384/521) or
rsa of at least 2048 bits. Its normal form is ``type base64 [comment]`` on one line (the comment
kept when it is printable), and its identity is its SHA256 fingerprint (``SHA256:…``, as
``ssh-keygen -lf`` prints it). Everything else is an :class:`~gpuyard.errors.InvalidInput` whose
message says to send the public key text: the official ``create ssh-key KEY`` sends its argument
verbatim, so a file name (``key.pub``) or a private key arrive here as text.

Pure: no database, no network; asyncssh is imported on first use.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gpuyard.errors import InvalidInput

MAX_KEY_TEXT = 16 * 1024  # characters; an RSA-16384 public key is about 2,800
MIN_RSA_BITS = 2048
MAX_COMMENT = 200
ALGORITHMS = ("ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
              "ssh-rsa")
HOW = 'pass the public key text, e.g. "$(cat ~/.ssh/id_ed25519.pub)"'
_COMMENT_OK = re.compile(r"[\x20-\x7e]*")


@dataclass(frozen=True)
class PublicKey:
    line: str  # "type base64 [comment]"
    fingerprint: str  # "SHA256:…"
    algorithm: str
    comment: str


def _looks_like_path(text: str) -> bool:
    return (" " not in text and len(text) < 1000 and not text.startswith("AAAA")
            and (text.endswith(".pub") or "/" in text or text.startswith("~") or "\\" in text))


def parse(text: object, name: str = "ssh_key") -> PublicKey:
    """``text`` as a :class:`PublicKey`, or an InvalidInput that says how to send it."""
    if text is None or (isinstance(text, str) and not text.strip()):
        raise InvalidInput(f"{name} is required: {HOW}", "ssh_key_required")
    if not isinstance(text, str):
        raise InvalidInput(f"{name} must be the public key text (a string): {HOW}", "invalid_ssh_key")
    if len(text) > MAX_KEY_TEXT:
        raise InvalidInput(f"{name} is {len(text)} characters long, longer than any public key (the "
                           f"limit is {MAX_KEY_TEXT}): {HOW}", "invalid_ssh_key")
    stripped = text.strip()
    if "PRIVATE KEY" in stripped:
        raise InvalidInput(f"{name} is a PRIVATE key: keep it secret and never send it. Send the public "
                           f"half instead: {HOW}", "private_key")
    if _looks_like_path(stripped):
        raise InvalidInput(f"{name} {stripped!r} looks like a file name, and the server cannot read "
                           f"your files: {HOW}", "invalid_ssh_key")
    lines = [line for line in stripped.splitlines() if line.strip()]
    if len(lines) > 1:
        raise InvalidInput(f"{name} holds {len(lines)} lines: send one public key per request",
                           "invalid_ssh_key")
    words = stripped.split()
    algorithm = words[0]
    if algorithm.startswith("AAAA"):
        raise InvalidInput(f"{name} holds only the key's base64 part: send the whole line, type first "
                           f"('ssh-ed25519 AAAA… comment'): {HOW}", "invalid_ssh_key")
    if algorithm not in ALGORITHMS and len(words) >= 2 and algorithm.startswith(("ssh-", "ecdsa-", "sk-")):
        raise InvalidInput(f"{name}: keys of type {algorithm[:60]} are not accepted; use ed25519 "
                           "(ssh-keygen -t ed25519), ecdsa or rsa of at least 2048 bits",
                           "ssh_key_type")
    from asyncssh import KeyImportError, import_public_key

    try:
        key = import_public_key(" ".join(words[:2]))
    except (KeyImportError, ValueError, TypeError):
        raise InvalidInput(f"{name} is not an OpenSSH public key (expected 'ssh-ed25519 AAAA… "
                           f"comment'): {HOW}", "invalid_ssh_key") from None
    algorithm = key.get_algorithm()
    if algorithm not in ALGORITHMS:  # e.g. a certificate, or "ssh-rsa" naming another key's data
        raise InvalidInput(f"{name}: keys of type {algorithm} are not accepted; use ed25519, ecdsa or "
                           "rsa of at least 2048 bits", "ssh_key_type")
    if algorithm == "ssh-rsa":
        bits = key.pyca_key.key_size
        if bits < MIN_RSA_BITS:
            raise InvalidInput(f"{name} is an RSA key of {bits} bits, too weak: use at least "
                               f"{MIN_RSA_BITS} bits, or better an ed25519 key (ssh-keygen -t ed25519)",
                               "ssh_key_too_weak")
    body = key.export_public_key("openssh").decode().split()[1]
    comment = " ".join(words[2:])[:MAX_COMMENT]
    if not _COMMENT_OK.fullmatch(comment):
        comment = ""
    line = f"{algorithm} {body} {comment}".strip()
    return PublicKey(line=line, fingerprint=key.get_fingerprint("sha256"), algorithm=algorithm,
                     comment=comment)
