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


def body_bytes(limit: int) -> bytes:
    """The request's body (413 beyond ``limit`` bytes).

    A body with a ``Content-Length`` within the limit is read straight from the WSGI
    input (the common case, and the cheapest); anything else (chunked bodies) goes
    through Werkzeug, which enforces the same limit while reading.
    """
    length = request.content_length
    if length is not None and length > limit:
        raise too_large(length, limit)
    if length is not None and request.environ.get("HTTP_TRANSFER_ENCODING", "") == "":
        data: bytes = request.environ["wsgi.input"].read(length) if length else b""
        return data
    return request.get_data(cache=False)


def json_body(limit: int) -> dict[str, Any]:
    """The request's JSON object (413 beyond ``limit`` bytes, 400 when not a JSON object)."""
    return parse_json(body_bytes(limit))
