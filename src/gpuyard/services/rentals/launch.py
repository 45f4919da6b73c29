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

from typing import Any

from gpuyard import shellwords
from gpuyard.envspec import EnvSpec, env_pairs, merge_env, parse_env, render_env
from gpuyard.errors import InvalidInput
from gpuyard.wire.instances import LaunchRequest

DEFAULT_DISK = 10.0
DEFAULT_RUNTYPE = "ssh"


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


def merge(
    request: LaunchRequest,
    template: dict[str, Any] | None,
    *,
    disk: float | None = None,
    args: list[str] | None = None,
) -> dict[str, Any]:
    """The launch configuration: ``template`` (content as stored, or None) overridden and merged
    with ``request`` (checked at the edge). ``disk`` replaces the request's disk (an update keeps
    the rented disk); ``args`` are used when the request gives none."""
    t = template or {}
    if request.image:
        image, tag = split_image(request.image)
    elif t.get("image"):
        image, tag = t["image"], t.get("tag") or "latest"
    else:
        raise InvalidInput(
            "no image to run: pass image (e.g. 'pytorch/pytorch:latest') or a template_hash_id "
            "whose template names one"
        )
    base_env: EnvSpec = parse_env(t.get("env"), limit=None)  # stored content
    env = merge_env(base_env, request.env_spec)
    filters = dict(t.get("extra_filters") or {})
    filters.update(request.filters)
    template_args = shellwords.split(t["args_str"]) if t.get("args_str") else None

    def pick(value: Any, template_key: str, default: Any = None) -> Any:
        if value is not None:
            return value
        stored = t.get(template_key)
        return default if stored is None else stored

    wanted_disk = disk if disk is not None else request.disk
    recommended = t.get("recommended_disk_space")
    disk_note = None
    if disk is None and request.client_default_disk and recommended:
        wanted_disk = recommended
        disk_note = (f"disk {recommended:g} GB: the template's recommended disk (your client sent "
                     f"its default of {request.disk:g} GB; pass --disk to choose)")
    if wanted_disk is None:
        wanted_disk = recommended or DEFAULT_DISK
    own_args = request.arg_list if request.arg_list is not None else args
    return {
        "image": image,
        "tag": tag,
        "image_uuid": image_uuid(image, tag),
        "env": render_env(env) or None,
        "extra_env": env_pairs(env),
        "env_spec": env,
        "onstart": pick(request.onstart, "onstart"),
        "runtype": pick(request.runtype, "runtype", DEFAULT_RUNTYPE),
        "args": own_args if own_args is not None else template_args,
        "disk_space": float(wanted_disk),
        "disk_note": disk_note,
        "label": request.label,
        "image_login": request.image_login,
        "docker_login_repo": t.get("docker_login_repo"),
        "jupyter_dir": pick(request.jupyter_dir, "jupyter_dir"),
        "use_jupyter_lab": bool(pick(request.use_jupyter_lab, "use_jupyter_lab", False)),
        "python_utf8": bool(request.python_utf8),
        "lang_utf8": bool(request.lang_utf8),
        "extra": request.extra,
        "extra_filters": filters,
        "template_id": t.get("template_id"),
        "template_hash_id": t.get("hash_id"),
        "template_name": t.get("name"),
        "is_bid": request.price is not None,
        "bid_price": request.price,
    }
