"""JSON in and out of the wire: orjson, with the limits every request body and JSON-valued query
argument obeys.

* nesting: at most :data:`MAX_DEPTH` levels of objects and arrays (the deepest legitimate body,
  an API key's permission document, has 7);
* strings: no NUL character (PostgreSQL cannot store it) and no unpaired surrogate (orjson
  refuses those while parsing);
* numbers: finite (orjson refuses ``1e400``); integers beyond 64 bits arrive as floats, which the
  id and number types refuse.

Every problem is an :class:`~gpuyard.errors.InvalidInput` (400) that says what to change.
"""

from __future__ import annotations

from typing import Any

import orjson

from gpuyard.errors import InvalidInput

MAX_DEPTH = 32


def loads(raw: bytes | str, where: str = "the request body") -> Any:
    """Parse JSON text, enforcing the limits of this module."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if "depth limit" in str(exc) or "recursion" in str(exc):
            raise too_deep(where) from None
        raise InvalidInput(f"{where} is not valid JSON ({exc}); send a JSON object") from None
    check(value, raw, where)
    return value


def too_deep(where: str) -> InvalidInput:
    return InvalidInput(
        f"{where} is nested more than {MAX_DEPTH} levels deep; no gpuyard call needs that much "
        "nesting: send the flat objects the API documents (see /docs)",
        "too_deep",
    )


def check(value: Any, raw: bytes | str, where: str) -> None:
    """Depth and NUL checks. Cheap for the usual bodies: the tree is walked only when the text
    holds more brackets than the depth bound, or an escaped NUL."""
    raw_bytes = raw.encode() if isinstance(raw, str) else raw
    brackets = raw_bytes.count(b"[") + raw_bytes.count(b"{")
    has_nul = b"\\u0000" in raw_bytes
    if brackets <= MAX_DEPTH and not has_nul:
        return
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            if depth > MAX_DEPTH:
                raise too_deep(where)
            for key, item in node.items():
                if has_nul and "\x00" in key:
                    raise nul_error(where)
                stack.append((item, depth + 1))
        elif isinstance(node, list):
            if depth > MAX_DEPTH:
                raise too_deep(where)
            stack.extend((item, depth + 1) for item in node)
        elif has_nul and isinstance(node, str) and "\x00" in node:
            raise nul_error(where)


def nul_error(where: str) -> InvalidInput:
    return InvalidInput(
        f"{where} holds a NUL character (\\u0000) in a string; remove it (no gpuyard field "
        "can store one)",
        "invalid_text",
    )


def dumps(value: Any) -> bytes:
    """JSON bytes of an answer (non-string dict keys allowed, as Python's json module does)."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
