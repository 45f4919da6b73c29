"""Execute and copy requests and answers (VAST-WIRE §16.1, §16.2)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, Field, WithJsonSchema

from gpuyard.errors import InvalidInput
from gpuyard.wire.base import WireModel
from gpuyard.wire.types import Text, type_name

MAX_COMMAND = 4096  # characters of an execute command line
MAX_PATH = 4096  # characters of a copy path
MAX_LOCATION = 100  # characters of a copy location id ("777", "C.11824", "local")


class ExecuteRequest(WireModel):
    """``PUT /api/v0/instances/command/{id}/``: ``{"command": "ls -l /workspace"}``."""

    what = "execute"
    command: Text(MAX_COMMAND, description="ls, rm or du with their arguments (no shell)")


def _location(value: Any, name: str) -> Any:
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    if isinstance(value, str) and len(value) <= MAX_LOCATION:
        return value
    raise InvalidInput(f"{name} must be an instance id (a number or a string of at most "
                       f"{MAX_LOCATION} characters) or null, not {type_name(value)}")


Location = Annotated[
    int | str | None,
    BeforeValidator(lambda v, info: _location(v, info.field_name or "id")),
    WithJsonSchema({"anyOf": [{"type": "integer"}, {"type": "string", "maxLength": MAX_LOCATION},
                              {"type": "null"}],
                    "description": "an instance id, 'local', or null for a local path"}),
]


class CopyRequest(WireModel):
    """``PUT /api/v0/commands/copy_direct/`` and ``PUT /api/v0/commands/rsync/`` (the official
    ``copy``): ``{"client_id": "me", "src_id": …, "dst_id": …, "src_path": …, "dst_path": …}``."""

    what = "copy"
    client_id: Text(20, description='"me"') | None = None
    src_id: Location = None
    dst_id: Location = None
    src_path: Text(MAX_PATH, description="the source path") | None = None
    dst_path: Text(MAX_PATH, description="the destination path") | None = None


class ExecuteReady(BaseModel):
    success: bool
    result_url: str = Field(description="the command's output as text, fetchable without a key "
                            "for 10 minutes")
    exit_code: int | None = Field(description="the command's exit status (null: its output was "
                                  "cut while it still ran)")
    msg: str
