"""Instance runtimes: what turns an instance row into something running (docs/runtime.md)."""

from gpuyard.runtimes.base import (
    EngineUnreachable,
    ImageUnavailable,
    LaunchSpec,
    Runtime,
    RuntimeError_,
    RuntimeState,
)

__all__ = ["EngineUnreachable", "ImageUnavailable", "LaunchSpec", "Runtime", "RuntimeError_",
           "RuntimeState"]
