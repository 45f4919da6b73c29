"""Volume requests (VAST-WIRE §7; docs/volumes.md): create, and ``volume_info`` at launch."""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, Field, WithJsonSchema, model_validator

from gpuyard.errors import InvalidInput
from gpuyard.services.identifiers import MAX_ID
from gpuyard.wire.base import WireModel
from gpuyard.wire.types import MAX_WIRE_ID, field_name

DEFAULT_SIZE = 15  # GB, as the official client
MAX_NAME = 200
MAX_MOUNT_PATH = 1000
TYPES = ("all_volume", "local_volume", "network_volume")
NAME_SCHEMA = {"anyOf": [{"type": "string", "maxLength": MAX_NAME}, {"type": "null"}]}


def _int_id(value: Any, where: str, example: str) -> int:
    if isinstance(value, float) and value.is_integer() and abs(value) <= MAX_WIRE_ID:
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"{where} must be an integer id such as {example}, not {value!r}")
    if value > MAX_WIRE_ID:
        raise InvalidInput(f"{where} {value} is not an id: ids are whole numbers below 2^63",
                           "id_out_of_range")
    if value < 1 or value > MAX_ID:
        raise InvalidInput(f"{where}: {value} is not a valid id")
    return value


def _size(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidInput(f"{where} must be a number of GB such as {DEFAULT_SIZE}, not {value!r}")
    if value <= 0 or value > 1e9:
        raise InvalidInput(f"{where} must be a positive number of GB, not {value!r}")
    return float(value)


def _name(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"{where} must be a string, not {value!r}")
    name = value.strip()
    if len(name) > MAX_NAME:
        raise InvalidInput(f"{where} is longer than {MAX_NAME} characters")
    return name or None


def normalize_mount_path(value: Any) -> str:
    """A Unix path of non-empty segments (leading and trailing '/' optional), stored absolute."""
    if value is None or value == "":
        raise InvalidInput(
            "volume_info.mount_path is required: where the volume appears inside the instance, "
            "e.g. \"/root/vol\""
        )
    if not isinstance(value, str):
        raise InvalidInput(f"volume_info.mount_path must be a string such as \"/data\", not {value!r}")
    segments = value.removeprefix("/").removesuffix("/").split("/")
    bad = [s for s in segments if s in ("", ".", "..") or "\0" in s]
    if bad or len(value) > MAX_MOUNT_PATH:
        raise InvalidInput(
            f"volume_info.mount_path {value!r} is not a valid Unix path: write non-empty segments "
            "separated by single '/', without '.' or '..' (e.g. \"/root/vol\")"
        )
    return "/" + "/".join(segments)


def _checked(fn: Any, where: str) -> BeforeValidator:
    return BeforeValidator(lambda v, info: None if v is None else fn(v, where.format(field_name(info))))


class VolumeCreate(WireModel):
    """``PUT /api/v0/volumes/``: ``{"size": GB, "id": <volume offer id>, "name"?}``."""

    what = "create-volume"
    unknown_word = "key"
    id: Annotated[int | None, BeforeValidator(
        lambda v: None if v is None else _int_id(v, "id (the volume offer)", "12345")),
        Field(description="a volume offer id from search volumes")] = None
    size: Annotated[float, _checked(_size, "{}"), Field(description="GB (default 15)")] = DEFAULT_SIZE
    name: Annotated[str | None, _checked(_name, "{}"), WithJsonSchema(NAME_SCHEMA)] = None

    @model_validator(mode="after")
    def _needs_id(self) -> VolumeCreate:
        if self.id is None:
            raise InvalidInput("id is required: the id of a volume offer from 'search volumes'")
        return self


class VolumeLaunch(WireModel):
    """A create-instance body's ``volume_info``: create a volume from a volume offer of the
    rented machine (``create_new`` true, ``volume_id`` = the volume offer) or link one of yours
    (``create_new`` false, ``volume_id`` = the volume)."""

    what = "volume_info"
    unknown_word = "key"
    mount_path: Annotated[str, BeforeValidator(normalize_mount_path),
                          Field(max_length=MAX_MOUNT_PATH, description="e.g. /root/vol")]
    create_new: Any = Field(None, description="true: create from a volume offer; false: link")
    volume_id: Any = Field(None, description="a volume offer id (create) or a volume id (link)")
    name: Annotated[str | None, _checked(_name, "volume_info.{}"), WithJsonSchema(NAME_SCHEMA)] = None
    size: Annotated[float | None, _checked(_size, "volume_info.{}"),
                    Field(description="GB, only when creating (default 15)")] = None

    @model_validator(mode="before")
    @classmethod
    def _mount_path_first(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            raise InvalidInput(
                "volume_info must be an object such as "
                '{"mount_path": "/root/vol", "create_new": true, "volume_id": 12345, "size": 15}'
            )
        data = cls.check_body(data)
        if data.get("mount_path") in (None, ""):
            normalize_mount_path(None)  # the "mount_path is required" message
        return data

    @model_validator(mode="after")
    def _consistent(self) -> VolumeLaunch:
        if not isinstance(self.create_new, bool):
            raise InvalidInput(
                "volume_info.create_new must be true (create a volume from a volume offer) or false "
                f"(link an existing volume), not {self.create_new!r}"
            )
        what = ("a volume offer id from 'search volumes'" if self.create_new
                else "a volume id from 'show volumes'")
        if self.volume_id is None:
            raise InvalidInput(f"volume_info.volume_id is required: {what}")
        self.volume_id = _int_id(self.volume_id, f"volume_info.volume_id ({what})", "12345")
        if not self.create_new and "size" in self.model_fields_set:
            raise InvalidInput(
                "volume_info.size only applies when creating a volume (create_new true); "
                "a linked volume keeps its size"
            )
        if self.create_new and self.size is None:
            self.size = float(DEFAULT_SIZE)
        return self


# -- answers -------------------------------------------------------------------------------------
class VolumeRow(BaseModel):
    model_config = {"extra": "allow"}
    id: int
    machine_id: int
    disk_space: float
    name: str | None = None
    status: str
    start_date: float
    instances: list[int]


class VolumeCreated(BaseModel):
    success: bool
    msg: str
    volume_id: int
    volume: VolumeRow


class VolumeList(BaseModel):
    success: bool
    volumes: list[VolumeRow]


class VolumeDeleted(BaseModel):
    success: bool
    msg: str
    volume_id: int
