"""Reading a JSON request body within the size limit."""

from __future__ import annotations

from typing import Any

from flask import request

from serving.errors import PayloadTooLarge
from serving.validation import parse_json


def too_large(length: int, limit: int) -> PayloadTooLarge:
    """The 413 error for a body of ``length`` bytes over ``limit``."""
    return PayloadTooLarge(f"the body is {length} bytes, more than the limit of {limit} "
                           "(serving.max_body_bytes); send a smaller body.", field="body")


def declared_length(environ: dict[str, Any]) -> int | None:
    """The body's ``Content-Length`` (bytes) from a WSGI environ; None when absent or chunked."""
    length = environ.get("CONTENT_LENGTH", "")
    if not (length.isascii() and length.isdigit()) or environ.get("HTTP_TRANSFER_ENCODING"):
        return None
    return int(length)


def read_body(environ: dict[str, Any], length: int, limit: int) -> bytes:
    """A declared-length body's ``length`` bytes, straight from the WSGI input (413 beyond ``limit``)."""
    if length > limit:
        raise too_large(length, limit)
    data: bytes = environ["wsgi.input"].read(length) if length else b""
    return data


def body_bytes(limit: int) -> bytes:
    """The request's body (413 beyond ``limit`` bytes).

    A body with a ``Content-Length`` is read straight from the WSGI input (the
    common case, and the cheapest); anything else (chunked bodies) goes through
    Werkzeug, which enforces the app's ``MAX_CONTENT_LENGTH``.
    """
    length = declared_length(request.environ)
    if length is None:
        return request.get_data(cache=False)
    return read_body(request.environ, length, limit)


def json_body(limit: int) -> dict[str, Any]:
    """The request's JSON object (413 beyond ``limit`` bytes, 400 when not a JSON object)."""
    return parse_json(body_bytes(limit))
