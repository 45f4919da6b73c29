"""Instance runtimes: what turns an instance row into something running (docs/runtime.md)."""

from gpuyard.runtimes.base import LaunchSpec, Runtime, RuntimeError_, RuntimeState

__all__ = ["LaunchSpec", "Runtime", "RuntimeError_", "RuntimeState"]
