"""The base of every request model, and pydantic's validation errors in gpuyard's words.

A request model refuses keys it does not know (naming them and listing the accepted ones) and a
body that is not a JSON object. Field checks raise :class:`~gpuyard.errors.InvalidInput` with
their own message and code; pydantic's built-in checks (a string where a list belongs …) are
turned into the same kind of message by :func:`as_error`.
"""

from __future__ import annotations

from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from gpuyard.errors import InvalidInput
from gpuyard.query.validate import show
from gpuyard.wire.types import type_name

M = TypeVar("M", bound=BaseModel)


class WireModel(BaseModel):
    """A request body. ``what`` names it in messages ("unknown create-instance field …")."""

    model_config = ConfigDict(extra="forbid", frozen=False, protected_namespaces=())
    what: ClassVar[str] = "request"
    #: Said after the list of accepted fields when a key is unknown.
    unknown_hint: ClassVar[str] = ""
    #: "field" or "key", as the model's messages have always called them.
    unknown_word: ClassVar[str] = "field"
    #: What the object is called in messages when it is not one.
    body_name: ClassVar[str] = "the request body"

    @model_validator(mode="before")
    @classmethod
    def _an_object_with_known_keys(cls, data: Any) -> Any:
        return cls.check_body(data)

    @classmethod
    def check_body(cls, data: Any) -> dict[str, Any]:
        """``data`` is a JSON object whose keys this model knows (else InvalidInput)."""
        if isinstance(data, bytes | bytearray | str):
            raise InvalidInput(
                "the request body must be JSON sent with the header Content-Type: application/json"
            )
        if not isinstance(data, dict):
            raise InvalidInput(f"{cls.body_name} must be a JSON object, not {type_name(data)}")
        if cls.model_config.get("extra") == "forbid":
            known = cls.known_keys()
            unknown = sorted(str(k) for k in data if k not in known)
            if unknown:
                raise InvalidInput(
                    f"unknown {cls.what} {cls.unknown_word}(s): {', '.join(unknown)}. Accepted "
                    f"{cls.unknown_word}s: {', '.join(sorted(known))}{cls.unknown_hint}"
                )
        return data

    @classmethod
    def known_keys(cls) -> set[str]:
        return {f.alias or name for name, f in cls.model_fields.items()}

    def given(self) -> set[str]:
        """The fields the request carried (a null counts as given)."""
        return set(self.model_fields_set)


def parse(model: type[M], data: Any) -> M:
    """``model`` validated from ``data``; every problem is an InvalidInput."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise as_error(exc.errors()) from None


def _where(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path")]
    return ".".join(parts)


def _message(err: dict[str, Any]) -> str:
    kind = err.get("type", "")
    where = _where(tuple(err.get("loc", ())))
    value = err.get("input")
    ctx = err.get("ctx") or {}
    name = where or "the request body"
    if kind == "missing":
        return f"{name} is required"
    if kind in ("string_type", "string_unicode"):
        return f"{name} must be a string, not {type_name(value)}"
    if kind == "string_too_long":
        return f"{name} is {len(value)} characters long; the limit is {ctx.get('max_length')}"
    if kind in ("bool_type", "bool_parsing"):
        return f"{name} must be true or false, not {show(value)}"
    if kind.startswith("int_") or kind.startswith("float_"):
        return f"{name} must be a number, not {show(value)}"
    if kind in ("list_type", "tuple_type"):
        return f"{name} must be a list, not {type_name(value)}"
    if kind == "too_long":
        return f"{name} has {ctx.get('actual_length')} items; the limit is {ctx.get('max_length')}"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return f"{name} must be a JSON object, not {type_name(value)}"
    if kind in ("literal_error", "enum"):
        return f"{name} must be one of {ctx.get('expected')}, not {show(value)}"
    if kind == "json_invalid":
        return f"the request body is not valid JSON ({ctx.get('error')}); send a JSON object"
    if kind == "extra_forbidden":
        return f"unknown field {name}"
    text = str(err.get("msg", "invalid value"))
    return f"{name}: {text}" if where else text


def as_error(errors: list[dict[str, Any]]) -> InvalidInput:
    """One InvalidInput for pydantic's errors (the first three, joined)."""
    parts: list[str] = []
    for err in errors:
        text = _message(err)
        if text not in parts:
            parts.append(text)
    msg = "; ".join(parts[:3]) or "invalid request"
    if len(parts) > 3:
        msg += f" (and {len(parts) - 3} more)"
    return InvalidInput(msg)
