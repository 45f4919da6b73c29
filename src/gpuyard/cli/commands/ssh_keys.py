"""show ssh-keys, create/update/delete ssh-key, attach ssh, detach ssh, ssh-url, scp-url (the
official CLI's names and flags), and ``gpuyard ssh ID [-- CMD]``.

Unlike the official ``create ssh-key KEY``, which sends its argument verbatim, ours reads KEY
when it names a file (``~/.ssh/id_ed25519.pub``), and never sends a private key."""

from __future__ import annotations

import argparse
from pathlib import Path

from gpuyard.cli.commands._common import handles_errors, sdk_from, show_result
from gpuyard.cli.output import fail, print_json, print_table, when

DEFAULT_KEYS = ("id_ed25519.pub", "id_ecdsa.pub", "id_rsa.pub")
KEY_COLUMNS = [
    ("id", "id"),
    ("type", "key_type"),
    ("fingerprint", "fingerprint"),
    ("comment", "comment"),
    ("created", lambda r: when(r.get("created_at"))),
]


class KeyError_(Exception):
    pass


def key_text(given: str | None) -> str:
    """The public key text for KEY: the file's text when KEY names a file, KEY itself when it is
    key text, the first of ~/.ssh/id_{ed25519,ecdsa,rsa}.pub when it is not given."""
    if not given:
        home = Path.home() / ".ssh"
        found = next((home / name for name in DEFAULT_KEYS if (home / name).is_file()), None)
        if found is None:
            raise KeyError_("no KEY given and no ~/.ssh/id_ed25519.pub (or id_ecdsa.pub, id_rsa.pub): "
                            "make a key pair with 'ssh-keygen -t ed25519' and run this again")
        given = str(found)
    path = Path(given).expanduser()
    words = given.split()
    if len(words) == 1 and len(given) < 4096:
        if path.is_file():
            try:
                text = path.read_text(encoding="utf-8", errors="replace")
            except OSError as exc:
                raise KeyError_(f"cannot read {given}: {exc.strerror}") from None
            if "PRIVATE KEY" in text:
                raise KeyError_(f"{given} is a PRIVATE key: never send it anywhere. Give the public "
                                f"key file instead ({given}.pub)")
            return text.strip()
        if given.endswith(".pub") or "/" in given:
            raise KeyError_(f"no such file: {given}. Give a public key file (e.g. ~/.ssh/id_ed25519.pub) "
                            "or the key text")
    if "PRIVATE KEY" in given:
        raise KeyError_("that is a PRIVATE key: never send it anywhere. Give the public key (the .pub file)")
    return given.strip()


def _key(args: argparse.Namespace) -> str | None:
    try:
        return key_text(args.ssh_key)
    except KeyError_ as exc:
        fail(str(exc))
        return None


@handles_errors
def show_ssh_keys(args: argparse.Namespace) -> int:
    with sdk_from(args) as sdk:
        rows = sdk.show_ssh_keys()
    if getattr(args, "raw", False):
        print_json(rows)
    elif not rows:
        print("No ssh keys yet: add one with 'gpuyard create ssh-key ~/.ssh/id_ed25519.pub'.")
    else:
        print_table(rows, KEY_COLUMNS)
    return 0


@handles_errors
def create_ssh_key(args: argparse.Namespace) -> int:
    text = _key(args)
    if text is None:
        return 1
    with sdk_from(args) as sdk:
        result = sdk.create_ssh_key(text)
    return show_result(args, result, result.get("msg") or "ssh key added.")


@handles_errors
def update_ssh_key(args: argparse.Namespace) -> int:
    text = _key(args)
    if text is None:
        return 1
    with sdk_from(args) as sdk:
        result = sdk.update_ssh_key(args.id, text)
    return show_result(args, result, result.get("msg") or f"ssh key {args.id} replaced.")


@handles_errors
def delete_ssh_key(args: argparse.Namespace) -> int:
    with sdk_from(args) as sdk:
        result = sdk.delete_ssh_key(args.id)
    return show_result(args, result, result.get("msg") or f"ssh key {args.id} deleted.")


@handles_errors
def attach_ssh(args: argparse.Namespace) -> int:
    text = _key(args)
    if text is None:
        return 1
    with sdk_from(args) as sdk:
        result = sdk.attach_ssh(args.instance_id, text)
    return show_result(args, result, result.get("msg") or "key attached.")


@handles_errors
def detach_ssh(args: argparse.Namespace) -> int:
    with sdk_from(args) as sdk:
        result = sdk.detach_ssh(args.instance_id, args.ssh_key_id)
    return show_result(args, result, result.get("msg") or "key detached.")


def _url(args: argparse.Namespace, scheme: str) -> str | None:
    with sdk_from(args) as sdk:
        url = sdk.ssh_url(args.id) if scheme == "ssh" else sdk.scp_url(args.id)
    if not url:
        fail(f"instance {args.id} has no {scheme} address yet: is it running? (show instance {args.id})")
        return None
    return url


@handles_errors
def ssh_url(args: argparse.Namespace) -> int:
    url = _url(args, "ssh")
    if url is None:
        return 1
    print(url)
    return 0


@handles_errors
def scp_url(args: argparse.Namespace) -> int:
    url = _url(args, "scp")
    if url is None:
        return 1
    print(url)
    return 0
