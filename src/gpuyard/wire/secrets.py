"""Account secrets (env vars), VAST-WIRE §14: ``/api/v0/secrets/`` with the name in the body as
``key`` and the value as ``value``. A value is never echoed in a message."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, Field, WithJsonSchema, model_validator

from gpuyard.errors import InvalidInput
from gpuyard.wire.base import WireModel
from gpuyard.wire.types import type_name

NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
MAX_NAME = 100
MAX_VALUE = 32 * 1024  # characters
NAME_SCHEMA = {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$", "minLength": 1,
               "maxLength": MAX_NAME, "description": "an env variable name, e.g. HF_TOKEN"}
VALUE_SCHEMA = {"anyOf": [{"type": "string", "maxLength": MAX_VALUE}, {"type": "number"}],
                "description": f"the value (at most {MAX_VALUE} characters)"}


def check_name(value: Any) -> str:
    """An env variable name (``[A-Za-z_][A-Za-z0-9_]*``, at most MAX_NAME characters)."""
    if value is None:
        raise InvalidInput("key is required: the secret's name, an env variable name such as HF_TOKEN")
    if not isinstance(value, str):
        raise InvalidInput(f"key (the secret's name) must be a string such as HF_TOKEN, not "
                           f"{type_name(value)}")
    if len(value) > MAX_NAME:
        raise InvalidInput(f"key (the secret's name) is {len(value)} characters long; the limit is "
                           f"{MAX_NAME}", "too_long")
    if not NAME_RE.fullmatch(value):
        raise InvalidInput(
            f"key {value[:MAX_NAME]!r} is not an env variable name: use letters, digits and _, not "
            "starting with a digit (e.g. HF_TOKEN)", "invalid_secret_name")
    return value


def check_value(value: Any) -> str:
    """The value: text (a number is taken as its text), at most MAX_VALUE characters. The
    messages never repeat the value."""
    if value is None:
        raise InvalidInput("value is required: the secret's value (use '' for an empty one)")
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = repr(value) if isinstance(value, float) else str(value)
    if not isinstance(value, str):
        raise InvalidInput(f"value must be a string, not {type_name(value)}")
    if len(value) > MAX_VALUE:
        raise InvalidInput(f"value is {len(value)} characters long; the limit is {MAX_VALUE} (32 KiB): "
                           "keep large files out of secrets", "too_long")
    return value


SecretName = Annotated[str, BeforeValidator(check_name), WithJsonSchema(NAME_SCHEMA)]
SecretValue = Annotated[str, BeforeValidator(check_value), WithJsonSchema(VALUE_SCHEMA)]


class SecretWrite(WireModel):
    """``POST`` (create) or ``PUT`` (update) ``/api/v0/secrets/``: ``{"key": NAME, "value": V}``."""

    what = "secret"
    unknown_word = "key"
    key: SecretName = Field(description="the name, e.g. HF_TOKEN")
    value: SecretValue = Field(description="the value")

    @model_validator(mode="before")
    @classmethod
    def _both(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for name in ("key", "value"):
                if name not in data:
                    (check_name if name == "key" else check_value)(None)
        return data


class SecretDelete(WireModel):
    """``DELETE /api/v0/secrets/``: ``{"key": NAME}``."""

    what = "secret"
    unknown_word = "key"
    key: SecretName = Field(description="the name of the secret to delete")

    @model_validator(mode="before")
    @classmethod
    def _named(cls, data: Any) -> Any:
        if isinstance(data, dict) and "key" not in data:
            check_name(None)
        return data


class SecretList(BaseModel):
    success: bool
    secrets: dict[str, str] = Field(description="name → value (the official clients mask them)")


class SecretDone(BaseModel):
    success: bool
    msg: str
    key: str
