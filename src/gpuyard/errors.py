"""Typed errors shared by every layer.

Services raise these; the API maps ``kind`` to an HTTP status; the SDK re-raises the server's
answer as the same class. Nothing here imports a web or database library.
"""

from __future__ import annotations


class GpuyardError(Exception):
    """Base of every gpuyard error. ``code`` is stable and machine readable; ``msg`` is for people."""

    kind = "error"
    status = 500
    default_code = "internal_error"

    def __init__(self, msg: str, code: str | None = None):
        super().__init__(msg)
        self.msg = msg
        self.code = code or self.default_code

    def __str__(self) -> str:
        return self.msg


class InvalidInput(GpuyardError):
    kind = "invalid"
    status = 400
    default_code = "invalid_input"


class QueryError(InvalidInput):
    """A query (text or dict form) that cannot be parsed or does not fit the field list."""

    default_code = "invalid_query"

    def __init__(self, msg: str, clause: str | None = None, code: str | None = None):
        super().__init__(msg, code)
        self.clause = clause


class Unauthorized(GpuyardError):
    kind = "unauthorized"
    status = 401
    default_code = "auth_required"


class Forbidden(GpuyardError):
    kind = "forbidden"
    status = 403
    default_code = "forbidden"


class NotFound(GpuyardError):
    kind = "not_found"
    status = 404
    default_code = "not_found"


class Conflict(GpuyardError):
    kind = "conflict"
    status = 409
    default_code = "conflict"


class Unprocessable(GpuyardError):
    kind = "unprocessable"
    status = 422
    default_code = "unprocessable"


class RateLimited(GpuyardError):
    kind = "rate_limited"
    status = 429
    default_code = "rate_limited"


class Unavailable(GpuyardError):
    """Something gpuyard depends on (a machine's container engine) cannot be reached."""

    kind = "unavailable"
    status = 503
    default_code = "unavailable"


BY_STATUS: dict[int, type[GpuyardError]] = {
    cls.status: cls
    for cls in (InvalidInput, Unauthorized, Forbidden, NotFound, Conflict, Unprocessable, RateLimited,
                Unavailable)
}


def error_for_status(status: int, msg: str, code: str | None = None) -> GpuyardError:
    """Rebuild a typed error from an HTTP answer (used by the SDK)."""
    cls = BY_STATUS.get(status, GpuyardError)
    err = cls(msg, code)
    err.status = status
    return err
