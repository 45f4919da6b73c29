"""Answers shared by many calls, and the error body every failure carries."""

from __future__ import annotations

from pydantic import BaseModel, Field

from gpuyard.wire.base import WireModel


class ErrorBody(BaseModel):
    """Every error: a stable machine-readable code and a message that says how to fix it."""

    success: bool = Field(False, description="always false")
    error: str = Field(description="stable error code, e.g. invalid_input, template_not_found")
    msg: str = Field(description="what went wrong and how to fix it")


class Done(BaseModel):
    """An action's answer."""

    success: bool
    msg: str


class Health(BaseModel):
    success: bool
    status: str
    version: str


class GpuNames(BaseModel):
    gpu_names: list[str]


class EmptyBody(WireModel):
    """Calls that take no arguments accept ``{}`` (what the official client sends) or no body."""

    what = "request"
    client_id: str | None = Field(None, description='"me" (sent by some clients; ignored)')
