"""The create-instance request and its merge with a template (docs/merge-rules.md).

Precedence, exactly as the seed document gives it:

* scalar fields (image, disk, runtype, onstart, args, label, …): the request's value, when it
  gives one, overrides the template's;
* ``env``: merged by key — variables by name, ports by container port — the request winning;
* ``extra_filters``: merged by field, the request's conditions replacing the template's for the
  same field.

This module is pure: it reads a request body (the official client's 17 keys of VAST-WIRE §6.1
plus a few of our own) and a template's content, and returns the merged launch. The instance
service decides where it runs.
"""

from __future__ import annotations

import math
import shlex
from typing import Any

from gpuyard.envspec import EnvSpec, env_pairs, merge_env, parse_any, parse_env, render_env
from gpuyard.errors import InvalidInput
from gpuyard.services.template_content import normalize_filters

OFFICIAL_KEYS = (
    "client_id", "image", "env", "price", "disk", "label", "extra", "onstart", "image_login",
    "python_utf8", "lang_utf8", "use_jupyter_lab", "jupyter_dir", "force", "cancel_unavail",
    "template_hash_id", "user", "runtype", "args", "volume_info",
)
# Sent by the official package's smaller SyncClient, or ours.
OTHER_KEYS = ("template_id", "args_str", "target_state", "extra_filters", "dry_run", "vm")
REQUEST_KEYS = OFFICIAL_KEYS + OTHER_KEYS
RUNTYPES = (
    "ssh", "ssh_proxy", "ssh_direc ssh_proxy", "jupyter", "jupyter_proxy ssh_proxy",
    "jupyter_direc ssh_direc ssh_proxy", "args",
)
DEFAULT_DISK = 10.0
DEFAULT_RUNTYPE = "ssh"
MAX_TEXT = 64 * 1024


def _text(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"{key} must be a string, not {type(value).__name__}")
    if len(value) > MAX_TEXT:
        raise InvalidInput(f"{key} is {len(value)} characters long; the limit is {MAX_TEXT}")
    return value


def _flag(body: dict[str, Any], key: str) -> bool | None:
    value = body.get(key)
    if value is None or isinstance(value, bool):
        return value
    raise InvalidInput(f"{key} must be true or false, not {value!r}")


def _number(body: dict[str, Any], key: str, what: str) -> float | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise InvalidInput(f"{key} must be {what}, not {value!r}")
    try:
        number = float(value)
    except ValueError:
        raise InvalidInput(f"{key} must be {what}, not {value!r}") from None
    if not math.isfinite(number) or number <= 0:
        raise InvalidInput(f"{key} must be {what} greater than 0, not {value!r}")
    return number


def _args(body: dict[str, Any]) -> list[str] | None:
    args = body.get("args")
    if args is None:
        text = _text(body, "args_str")
        return shlex.split(text) if text else None
    if isinstance(args, str):
        return shlex.split(args)
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise InvalidInput('args must be a list of strings, e.g. ["-c", "echo hi"]')
    return args


def read_request(body: dict[str, Any]) -> dict[str, Any]:
    """Check a create-instance body and return its values, typed (absent keys are None)."""
    unknown = sorted(set(body) - set(REQUEST_KEYS))
    if unknown:
        raise InvalidInput(
            f"unknown create-instance field(s): {', '.join(unknown)}. Accepted fields: "
            f"{', '.join(REQUEST_KEYS)}"
        )
    client = body.get("client_id")
    if client not in (None, "me"):
        raise InvalidInput(f'client_id must be "me" (instances are rented for yourself), not {client!r}')
    runtype = _text(body, "runtype")
    if runtype is not None and runtype not in RUNTYPES:
        raise InvalidInput(f"runtype must be one of {', '.join(map(repr, RUNTYPES))}, not {runtype!r}")
    target = body.get("target_state")
    if target not in (None, "running", "stopped"):
        raise InvalidInput(f'target_state must be "running" or "stopped", not {target!r}')
    env = body.get("env")
    if env is not None and not isinstance(env, dict | str):
        raise InvalidInput(
            'env must be a Docker-flag string such as "-e VAR=value -p 8000:8000" or an object '
            f'such as {{"VAR": "value", "-p 8000:8000": "1"}}, not {type(env).__name__}',
            code="invalid_env",
        )
    template_id = body.get("template_id")
    if template_id is not None and (isinstance(template_id, bool) or not isinstance(template_id, int)):
        raise InvalidInput(f"template_id must be a numeric template id, not {template_id!r}")
    volume_info = body.get("volume_info")
    if volume_info is not None and not isinstance(volume_info, dict):
        raise InvalidInput(
            'volume_info must be an object such as {"create_new": false, "volume_id": 12, '
            '"mount_path": "/data"}'
        )
    return {
        "image": _text(body, "image"),
        "env": parse_any(env),
        "env_given": env not in (None, "", {}),
        "price": _number(body, "price", "a bid in $/hour"),
        "disk": _number(body, "disk", "a disk size in GB"),
        "label": _text(body, "label"),
        "extra": _text(body, "extra"),
        "onstart": _text(body, "onstart"),
        "image_login": _text(body, "image_login"),
        "python_utf8": _flag(body, "python_utf8"),
        "lang_utf8": _flag(body, "lang_utf8"),
        "use_jupyter_lab": _flag(body, "use_jupyter_lab"),
        "jupyter_dir": _text(body, "jupyter_dir"),
        "force": bool(_flag(body, "force")),
        "cancel_unavail": bool(_flag(body, "cancel_unavail")),
        "template_hash_id": body.get("template_hash_id"),
        "template_id": template_id,
        "runtype": runtype,
        "args": _args(body),
        "volume_info": volume_info,
        "target_state": target or "running",
        "extra_filters": normalize_filters(body.get("extra_filters")),
        "dry_run": bool(_flag(body, "dry_run")),
    }


def split_image(image: str) -> tuple[str, str]:
    """``nvidia/cuda:12.1`` → (``nvidia/cuda``, ``12.1``); no tag → ``latest``; a digest
    reference (``name@sha256:…``) is kept whole with an empty tag."""
    image = image.strip()
    if not image or any(c.isspace() for c in image):
        raise InvalidInput(f"image {image!r} is not a Docker image reference such as 'pytorch/pytorch:2.3.0'")
    path, _, last = image.rpartition("/")
    if "@" in last:
        return image, ""
    name, colon, tag = last.partition(":")
    if colon and (not name or not tag):
        raise InvalidInput(f"image {image!r} is not a valid image reference; write name:tag")
    full = f"{path}/{name}" if path else name
    return full, tag or "latest"


def image_uuid(image: str, tag: str) -> str:
    return f"{image}:{tag}" if tag else image


def merge(request: dict[str, Any], template: dict[str, Any] | None) -> dict[str, Any]:
    """The launch configuration: ``template`` (content as stored, or None) overridden and merged
    with ``request`` (from :func:`read_request`)."""
    t = template or {}
    if request["image"]:
        image, tag = split_image(request["image"])
    elif t.get("image"):
        image, tag = t["image"], t.get("tag") or "latest"
    else:
        raise InvalidInput(
            "no image to run: pass image (e.g. 'pytorch/pytorch:latest') or a template_hash_id "
            "whose template names one"
        )
    base_env: EnvSpec = parse_env(t.get("env"))
    env = merge_env(base_env, request["env"])
    filters = dict(t.get("extra_filters") or {})
    filters.update(request["extra_filters"])
    template_args = shlex.split(t["args_str"]) if t.get("args_str") else None

    def pick(key: str, template_key: str | None = None, default: Any = None) -> Any:
        if request.get(key) is not None:
            return request[key]
        value = t.get(template_key or key)
        return default if value is None else value

    disk = request["disk"] if request["disk"] is not None else (
        t.get("recommended_disk_space") or DEFAULT_DISK
    )
    return {
        "image": image,
        "tag": tag,
        "image_uuid": image_uuid(image, tag),
        "env": render_env(env) or None,
        "extra_env": env_pairs(env),
        "env_spec": env,
        "onstart": pick("onstart"),
        "runtype": pick("runtype", default=DEFAULT_RUNTYPE),
        "args": request["args"] if request["args"] is not None else template_args,
        "disk_space": float(disk),
        "label": request["label"],
        "image_login": request["image_login"],
        "docker_login_repo": t.get("docker_login_repo"),
        "jupyter_dir": pick("jupyter_dir"),
        "use_jupyter_lab": bool(pick("use_jupyter_lab", default=False)),
        "python_utf8": bool(request["python_utf8"]),
        "lang_utf8": bool(request["lang_utf8"]),
        "extra": request["extra"],
        "extra_filters": filters,
        "template_id": t.get("template_id"),
        "template_hash_id": t.get("hash_id"),
        "template_name": t.get("name"),
        "is_bid": request["price"] is not None,
        "bid_price": request["price"],
    }
