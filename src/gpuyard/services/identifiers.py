"""The two template identifiers, and errors that say which one a call takes."""

from __future__ import annotations

import re
from typing import Any

from gpuyard.errors import InvalidInput, NotFound
from gpuyard.store.db import ROW_ID_RANGE

HASH_RE = re.compile(r"^[0-9a-f]{32}$")


def looks_like_hash(value: Any) -> bool:
    return isinstance(value, str) and bool(HASH_RE.match(value.strip().lower()))


def looks_like_id(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return (
        isinstance(value, str) and value.strip().isascii() and value.strip().isdigit()
        and len(value.strip()) != 32
    )


def require_hash(value: Any, where: str) -> str:
    """A template hash_id (32 hex digits); a numeric id here is a 400 that says so."""
    if looks_like_id(value):
        raise InvalidInput(
            f"{where} takes the template's hash_id (32 hex characters, e.g. "
            f"'4e17788f74f075dd9aab7d0d4427968f'), but {value!r} is a numeric template id. "
            "Find its hash by searching templates with 'id == "
            f"{str(value).strip()}'",
            code="hash_id_expected",
        )
    if not isinstance(value, str) or not looks_like_hash(value):
        raise InvalidInput(
            f"{where} takes a template hash_id of 32 hex characters, not {value!r}",
            code="hash_id_expected",
        )
    return value.strip().lower()


#: Ids are 32-bit integer columns (PostgreSQL INTEGER); anything larger names nothing.
MAX_ID = ROW_ID_RANGE.stop - 1


def require_id(value: Any, where: str) -> int:
    """A numeric id (of a template, offer, instance …); a template hash here is a 400 that
    says so; a number no row can have is a 404."""
    if looks_like_hash(value):
        raise InvalidInput(
            f"{where} takes the numeric template id (e.g. 334548), but {value!r} is a hash_id. "
            "Pass it as hash_id instead",
            code="template_id_expected",
        )
    if not looks_like_id(value):
        raise InvalidInput(
            f"{where} takes a numeric id such as 334548, not {value!r}",
            code="template_id_expected",
        )
    number = int(value)
    if number < 1 or number > MAX_ID:
        raise NotFound(f"{where}: there is no {number} (ids are 1 to {MAX_ID})", "not_found")
    return number
