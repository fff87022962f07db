"""The HTTP answers of :class:`~simulator.errors.ServingError`: each maps to a status and a JSON body."""

from __future__ import annotations

from typing import Any

from simulator.errors import ServingError

#: The body of an unexpected error (500); the details go to the server log only.
INTERNAL_ERROR: dict[str, Any] = {
    "error": {"code": "internal", "message": "internal error; see the server log.", "field": None}}


class BadRequest(ServingError):
    """The body is not JSON, or not a JSON object (400)."""

    status = 400
    code = "bad_request"


class InvalidField(ServingError):
    """A field is missing, of the wrong type or out of range (422)."""

    status = 422
    code = "invalid_field"

    def __init__(self, field: str, expected: str, found: str, fix: str = "") -> None:
        text = f"`{field}`: expected {expected}, found {found}."
        super().__init__(f"{text} {fix}".strip(), field=field)


class Unauthorized(ServingError):
    """The admin bearer token is missing or wrong (401)."""

    status = 401
    code = "unauthorized"


class NotFound(ServingError):
    """An unknown event or experiment (404)."""

    status = 404
    code = "not_found"


class RequestTimeout(ServingError):
    """The client stopped sending its request (408)."""

    status = 408
    code = "request_timeout"


class Conflict(ServingError):
    """A reward repeats an event with a different outcome (409)."""

    status = 409
    code = "conflict"


class Gone(ServingError):
    """A reward arrived after the configured reward window (410)."""

    status = 410
    code = "gone"


class PayloadTooLarge(ServingError):
    """The body exceeds the configured limit (413)."""

    status = 413
    code = "payload_too_large"


class NotReady(ServingError):
    """The service cannot answer yet (503)."""

    status = 503
    code = "not_ready"
