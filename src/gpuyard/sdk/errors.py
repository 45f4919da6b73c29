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


__all__ = [
    "Conflict", "ConnectionFailed", "Forbidden", "GpuyardError", "InvalidInput", "NotFound",
    "QueryError", "RateLimited", "Unauthorized", "Unprocessable", "error_for_status",
]
