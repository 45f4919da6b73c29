"""Request bodies the SDK sends for instances: pure functions, no I/O.

They follow the official ``vastai`` 1.9.1 client (VAST-WIRE §6.1, §9) so that a body built here
is byte-for-byte what the official SDK would send, except that a malformed ``env`` string is
rejected with a message saying how to fix it instead of being silently trimmed.
"""

from __future__ import annotations

import re
import shlex
from typing import Any

from gpuyard.envspec import parse_env
from gpuyard.sdk.errors import InvalidArgument, InvalidInput

VALID_MOUNT_PATH = re.compile(r"^(/)?([^/\0]+(/)?)+$")

JUPYTER = "jupyter_proxy ssh_proxy"
JUPYTER_DIRECT = "jupyter_direc ssh_direc ssh_proxy"
SSH = "ssh_proxy"
SSH_DIRECT = "ssh_direc ssh_proxy"


def env_to_wire(env: str | dict | None) -> dict[str, str]:
    """The create-instance ``env`` object: a Docker-flag string becomes the official client's flat
    dict (``-e K=V`` → ``{"K": "V"}``, ``-p 8000:8000`` → ``{"-p 8000:8000": "1"}``,
    ``-h NAME`` → ``{"-h": "NAME"}``, ``-v``/``-n`` like ``-p``); a dict is sent as given.

    Strings are checked with :func:`gpuyard.envspec.parse_env` first, so ``"A=1"`` (no ``-e``)
    or ``-p 99999`` raise :class:`InvalidArgument` (a ValueError) instead of vanishing from the request.
    """
    if env is None:
        return {}
    if isinstance(env, dict):
        return dict(env)
    try:
        parse_env(env)
    except InvalidInput as exc:  # re-raised as a ValueError too, like the SDK's other checks
        raise InvalidArgument(exc.msg, code=exc.code) from None
    tokens = shlex.split(env)
    wire: dict[str, str] = {}
    for flag, value in zip(tokens[::2], tokens[1::2], strict=True):
        if flag == "-e":
            name, _, val = value.partition("=")
            wire[name] = val
        elif flag == "-h":
            wire["-h"] = value
        else:
            wire[f"{flag} {value}"] = "1"
    return wire


def resolve_runtype(
    runtype: str | None,
    *,
    ssh: bool = False,
    jupyter: bool = False,
    direct: bool = False,
    args: list[str] | None = None,
    jupyter_lab: bool = False,
    jupyter_dir: str | None = None,
) -> tuple[str | None, list[str] | None]:
    """``(runtype, args)`` from the connection flags, exactly as the official SDK resolves them:
    no flag → ``None`` (the key is left out and the server picks the default)."""
    empty_args = args in ("", [""], [])
    if empty_args:
        args = None
    if runtype:
        if ssh or jupyter or direct:
            raise InvalidArgument("pass either runtype= or the ssh/jupyter/direct flags, not both")
        return runtype, args
    resolved: str | None = "args" if args or empty_args else None
    jupyter = jupyter or bool(jupyter_dir) or jupyter_lab
    if jupyter and resolved == "args":
        raise InvalidArgument("jupyter and args cannot be combined; use onstart_cmd instead of args")
    if jupyter:
        resolved = JUPYTER_DIRECT if direct else JUPYTER
    elif ssh:
        resolved = SSH_DIRECT if direct else SSH
    elif direct:
        raise InvalidArgument("direct=True needs ssh=True or jupyter=True")
    return resolved, args


def build_volume_info(
    *,
    create_volume: int | None = None,
    link_volume: int | None = None,
    volume_size: float | None = None,
    mount_path: str | None = None,
    volume_label: str | None = None,
) -> dict[str, Any] | None:
    """The ``volume_info`` blob for creating or linking a volume, or None when none is asked for."""
    if volume_size is not None and not create_volume:
        raise InvalidArgument("volume_size only works with create_volume (a volume offer id)")
    if not (create_volume or link_volume):
        if mount_path or volume_label:
            raise InvalidArgument("mount_path and volume_label need create_volume or link_volume")
        return None
    if create_volume and link_volume:
        raise InvalidArgument("pass either create_volume or link_volume, not both")
    if not mount_path:
        raise InvalidArgument("mount_path is required with a volume, e.g. mount_path='/workspace'")
    if not VALID_MOUNT_PATH.match(mount_path):
        raise InvalidArgument(f"mount_path {mount_path!r} is not a valid Linux path, e.g. /workspace")
    info: dict[str, Any] = {
        "mount_path": mount_path,
        "create_new": bool(create_volume),
        "volume_id": create_volume or link_volume,
    }
    if volume_label:
        info["name"] = volume_label
    if volume_size:
        info["size"] = volume_size
    elif create_volume:
        info["size"] = 15
    return info


def apply_portal_config(env: dict[str, str], runtype: str | None) -> dict[str, str]:
    """Drop the jupyter entries of ``PORTAL_CONFIG`` when the instance does not run Jupyter."""
    if (runtype and "jupyter" in runtype) or "PORTAL_CONFIG" not in env:
        return env
    kept = [c for c in str(env["PORTAL_CONFIG"]).split("|") if "jupyter" not in c.lower()]
    if not kept:
        raise InvalidArgument(
            "env PORTAL_CONFIG must keep at least one entry that is not about jupyter when the "
            "instance does not run Jupyter"
        )
    return {**env, "PORTAL_CONFIG": "|".join(kept)}


def create_instance_body(
    *,
    image: str | None = None,
    disk: float = 10,
    env: str | dict | None = None,
    price: float | None = None,
    bid_price: float | None = None,
    label: str | None = None,
    extra: str | None = None,
    onstart_cmd: str | None = None,
    login: str | None = None,
    python_utf8: bool = False,
    lang_utf8: bool = False,
    jupyter_lab: bool = False,
    jupyter_dir: str | None = None,
    force: bool = False,
    cancel_unavail: bool = False,
    template_hash: str | None = None,
    user: str | None = None,
    runtype: str | None = None,
    ssh: bool = False,
    jupyter: bool = False,
    direct: bool = False,
    args: list[str] | None = None,
    volume_info: dict | None = None,
    create_volume: int | None = None,
    link_volume: int | None = None,
    volume_size: float | None = None,
    mount_path: str | None = None,
    volume_label: str | None = None,
) -> dict[str, Any]:
    """The ``PUT /api/v0/asks/{id}/`` body: 17 keys always, then ``runtype``, ``args`` and
    ``volume_info`` when they apply (VAST-WIRE §6.1)."""
    if price is not None and bid_price is not None:
        raise InvalidArgument("pass either price= or bid_price= (they are the same bid), not both")
    if price is None:
        price = bid_price
    wire_env = env_to_wire(env)
    if template_hash is None:
        runtype, args = resolve_runtype(
            runtype, ssh=ssh, jupyter=jupyter, direct=direct, args=args,
            jupyter_lab=jupyter_lab, jupyter_dir=jupyter_dir,
        )
    wire_env = apply_portal_config(wire_env, runtype)
    if volume_info is None:
        volume_info = build_volume_info(
            create_volume=create_volume, link_volume=link_volume, volume_size=volume_size,
            mount_path=mount_path, volume_label=volume_label,
        )
    elif create_volume or link_volume:
        raise InvalidArgument("pass either volume_info= or create_volume/link_volume, not both")
    body: dict[str, Any] = {
        "client_id": "me",
        "image": image,
        "env": wire_env,
        "price": price,
        "disk": disk,
        "label": label,
        "extra": extra,
        "onstart": onstart_cmd,
        "image_login": login,
        "python_utf8": python_utf8,
        "lang_utf8": lang_utf8,
        "use_jupyter_lab": jupyter_lab,
        "jupyter_dir": jupyter_dir,
        "force": force,
        "cancel_unavail": cancel_unavail,
        "template_hash_id": template_hash,
        "user": user,
    }
    if runtype:
        body["runtype"] = runtype
    if args is not None:
        body["args"] = args
    if volume_info:
        body["volume_info"] = volume_info
    return body
