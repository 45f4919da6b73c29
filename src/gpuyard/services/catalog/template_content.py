"""A template's content: validation, defaults, the canonical form and the hash_id.

The canonical form is documented in docs/templates.md and pinned by tests/services/test_hash_golden.py.
Changing anything here changes hash ids for every user: don't, without a new hash version.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

from gpuyard.envspec import validate_env
from gpuyard.errors import InvalidInput, QueryError
from gpuyard.query import OFFER_FIELDS, normalize_query, parse_query

HASH_PREFIX = b"gpuyard-template-v1\n"

TEXT_FIELDS = (
    "name", "desc", "readme", "onstart", "args_str", "jupyter_dir", "docker_login_repo", "href",
    "repo",
)
BOOL_DEFAULTS = {
    "readme_visible": True,
    "use_ssh": False,
    "ssh_direct": False,
    "jup_direct": False,
    "use_jupyter_lab": False,
    "private": True,
}
RUNTYPES = ("args", "ssh", "jupyter")
# Every content field, in canonical order (the canonical JSON sorts keys anyway).
CONTENT_FIELDS = (
    "name", "image", "tag", "desc", "readme", "readme_visible", "env", "onstart", "runtype",
    "args_str", "use_ssh", "ssh_direct", "jup_direct", "jupyter_dir", "use_jupyter_lab",
    "docker_login_repo", "extra_filters", "recommended_disk_space", "href", "repo", "private",
)
MAX_TEXT = 64 * 1024


def _text(key: str, value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise InvalidInput(f"{key} must be a string, not {type(value).__name__}")
    value = str(value)
    if len(value) > MAX_TEXT:
        raise InvalidInput(f"{key} is {len(value)} characters long; the limit is {MAX_TEXT}")
    return value if value.strip() else None


def _bool(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise InvalidInput(f"{key} must be true or false, not {value!r}")


def _disk(value: Any) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise InvalidInput("recommended_disk_space must be a number of GB, not a boolean")
    try:
        disk = float(value)
    except (TypeError, ValueError):
        raise InvalidInput(
            f"recommended_disk_space must be a number of GB such as 50 or 8.0, not {value!r}"
        ) from None
    if not math.isfinite(disk) or disk < 0:
        raise InvalidInput(f"recommended_disk_space must be a positive number of GB, not {value!r}")
    return disk


def normalize_filters(value: Any) -> dict:
    """Offer filters (text or dict form) checked and typed, as templates and launches store them."""
    if value is None or value == "":
        return {}
    try:
        if isinstance(value, str):
            value = parse_query(value, OFFER_FIELDS)
        return normalize_query(value, OFFER_FIELDS)
    except QueryError as exc:
        raise QueryError(f"extra_filters: {exc.msg}", clause=exc.clause) from None


def normalize_field(key: str, value: Any) -> Any:
    """Validate one content field and return its stored value (defaults applied)."""
    if key in TEXT_FIELDS:
        return _text(key, value)
    if key in BOOL_DEFAULTS:
        return BOOL_DEFAULTS[key] if value is None else _bool(key, value)
    if key == "image":
        image = _text(key, value)
        if image is None:
            raise InvalidInput(
                "image is required: give the Docker image path, e.g. image='vllm/vllm-openai'"
            )
        if any(c.isspace() for c in image.strip()):
            raise InvalidInput(f"image {image!r} contains spaces; give a Docker image path")
        return image.strip()
    if key == "tag":
        tag = _text(key, value)
        return tag.strip() if tag else "latest"
    if key == "env":
        return validate_env(value)
    if key == "runtype":
        if value is None:
            return "args"
        if value not in RUNTYPES:
            raise InvalidInput(f"runtype must be one of {', '.join(RUNTYPES)}, not {value!r}")
        return value
    if key == "extra_filters":
        return normalize_filters(value)
    if key == "recommended_disk_space":
        return _disk(value)
    raise InvalidInput(f"{key} is not a template field")


def build_content(
    changes: dict[str, Any], base: dict[str, Any] | None = None, *, checked: bool = False
) -> dict[str, Any]:
    """Full, validated content: ``base`` (or the defaults) with ``changes`` applied.
    ``checked``: the non-null values of ``changes`` were already normalized (by the wire model
    at the edge), so only nulls get their defaults here."""
    content: dict[str, Any] = {}
    for key in CONTENT_FIELDS:
        if key in changes:
            value = changes[key]
            content[key] = value if checked and value is not None else normalize_field(key, value)
        elif base is not None:
            content[key] = base[key]
        else:
            content[key] = normalize_field(key, None) if key != "image" else None
    if content["image"] is None:
        normalize_field("image", None)  # raises the "image is required" error
    _split_image_tag(content, changes)
    return content


def _split_image_tag(content: dict[str, Any], changes: dict[str, Any]) -> None:
    """``image="repo/name:1.0"`` stores image ``repo/name`` and tag ``1.0`` (the same content as
    giving the tag apart). A different explicit tag is a contradiction, not a guess."""
    image = content["image"]
    path, _, last = image.rpartition("/")
    if "@" in last or ":" not in last:
        return
    name, _, tag = last.partition(":")
    if not name or not tag:
        raise InvalidInput(f"image {image!r} is not a valid image reference; write name:tag")
    given = changes.get("tag")
    if given not in (None, "") and str(given).strip() != tag:
        raise InvalidInput(
            f"image {image!r} names tag {tag!r} but the tag given is {given!r}; "
            "give the tag in one place"
        )
    content["image"] = f"{path}/{name}" if path else name
    content["tag"] = tag


def canonical_json(content: dict[str, Any]) -> str:
    """Sorted keys, no spaces, UTF-8 characters kept, floats in Python's shortest repr."""
    return json.dumps(
        {k: content[k] for k in CONTENT_FIELDS},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    )


def content_hash(content: dict[str, Any]) -> str:
    digest = hashlib.sha256(HASH_PREFIX + canonical_json(content).encode("utf-8"))
    return digest.hexdigest()[:32]
