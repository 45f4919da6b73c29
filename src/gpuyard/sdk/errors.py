"""SDK errors: the typed errors of ``gpuyard.errors``, rebuilt from the server's answer."""

from gpuyard.errors import (
    Conflict,
    Forbidden,
    GpuyardError,
    InvalidInput,
    NotFound,
    QueryError,
    RateLimited,
    Unauthorized,
    Unprocessable,
    error_for_status,
)


class ConnectionFailed(GpuyardError):
    """The server could not be reached."""

    kind = "connection"
    status = 0
    default_code = "connection_failed"


class InvalidArgument(InvalidInput, ValueError):
    """A bad combination of SDK arguments, caught before anything is sent (the official SDK
    raises ValueError for these, so this is one too)."""

    default_code = "invalid_argument"


class InstanceFailed(GpuyardError):
    """``wait_for_instance``: the instance reached a state it will not leave on its own."""

    kind = "instance_failed"
    default_code = "instance_failed"

    def __init__(self, msg: str, instance: dict | None = None):
        super().__init__(msg)
        self.instance = instance


class WaitTimeout(GpuyardError, TimeoutError):
    """A wait (instance status, log text) ran out of time."""

    kind = "timeout"
    default_code = "timeout"

    def __init__(self, msg: str, instance: dict | None = None):
        super().__init__(msg)
        self.instance = instance


__all__ = [
    "Conflict", "ConnectionFailed", "Forbidden", "GpuyardError", "InstanceFailed", "InvalidArgument",
    "InvalidInput", "NotFound", "QueryError", "RateLimited", "Unauthorized", "Unprocessable",
    "WaitTimeout", "error_for_status",
]
