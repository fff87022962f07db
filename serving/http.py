"""What every route shares at the WSGI level: the JSON codec, the request body, error answers, metrics.

* :func:`encode` writes JSON (orjson; compact, newline-terminated).
* :func:`read_body` reads a request body within ``serving.max_body_bytes``, with a
  ``Content-Length`` or chunked alike (413 beyond it, never cut silently).
* :func:`error_answer` turns any exception into the one JSON error answer
  (status, headers, body) the service gives, and records its code in the environ.
* :class:`MetricsMiddleware` wraps the whole WSGI application and counts every
  request (route, method, status, latency) and every error code, whichever
  application answered it: no Flask request hooks.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import orjson
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.http import HTTP_STATUS_CODES
from werkzeug.routing import Map

from serving.errors import INTERNAL_ERROR, PayloadTooLarge, RequestTimeout
from serving.metrics import Metrics
from simulator.errors import ServingError

logger = logging.getLogger(__name__)

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

#: environ keys: the route template that answered, and the error code of an error answer
ROUTE_KEY = "slatewise.route"
ERROR_KEY = "slatewise.error"
UNMATCHED = "unmatched"

#: the status lines Werkzeug writes ("422 UNPROCESSABLE ENTITY")
STATUS_LINES = {code: f"{code} {reason.upper()}" for code, reason in HTTP_STATUS_CODES.items()}

_READ_CHUNK = 65_536


def encode(value: Any) -> bytes:
    """Compact JSON bytes of ``value``, newline-terminated (what the answers carry)."""
    return orjson.dumps(value) + b"\n"


def status_line(status: int) -> str:
    """The HTTP status line of ``status``, as Werkzeug writes it."""
    return STATUS_LINES.get(status, f"{status} UNKNOWN")


def too_large(length: int | None, limit: int) -> PayloadTooLarge:
    """The 413 error for a body of ``length`` bytes (None: unknown, chunked) over ``limit``."""
    size = "more bytes" if length is None else f"{length} bytes, more"
    return PayloadTooLarge(f"the body is {size} than the limit of {limit} (serving.max_body_bytes); "
                           "send a smaller body.", field="body")


def read_body(environ: dict[str, Any], limit: int) -> bytes:
    """The request body, at most ``limit`` bytes.

    With a ``Content-Length`` the declared length is checked first and exactly that
    many bytes are read. A body without one (``Transfer-Encoding: chunked``, which the
    server has already unframed and marked ``wsgi.input_terminated``) is read to its
    end, but never more than ``limit + 1`` bytes: a longer body is refused, not cut.
    Without either the body is empty (the WSGI rule).

    Raises:
        PayloadTooLarge: the body is longer than ``limit`` (413).
        RequestTimeout: the client stopped sending the body (408).
    """
    stream = environ["wsgi.input"]
    length = environ.get("CONTENT_LENGTH", "")
    try:
        if length and not environ.get("HTTP_TRANSFER_ENCODING"):
            if not (length.isascii() and length.isdigit()):
                raise ServingError(f"`Content-Length` must be a number of bytes, found {length[:20]!r}.",
                                   field="Content-Length")
            n = int(length)
            if n > limit:
                raise too_large(n, limit)
            data: bytes = stream.read(n) if n else b""
            return data
        if not environ.get("wsgi.input_terminated"):
            return b""
        parts: list[bytes] = []
        got = 0
        while got <= limit:
            part = stream.read(min(_READ_CHUNK, limit + 1 - got))
            if not part:
                return b"".join(parts)
            parts.append(part)
            got += len(part)
        raise too_large(None, limit)
    except TimeoutError:
        raise RequestTimeout("the client stopped sending the request body; send the whole body at once.",
                             field="body") from None


def error_answer(environ: dict[str, Any], err: BaseException,
                 max_body_bytes: int) -> tuple[int, list[tuple[str, str]], bytes]:
    """The JSON error answer for ``err`` (status, headers, body); records its code under :data:`ERROR_KEY`.

    A :class:`~simulator.errors.ServingError` answers its own status and body;
    Werkzeug's HTTP errors (404, 405, 413 ...) answer their status with a JSON body
    and keep their headers (``Allow`` on a 405); anything else is logged and is a
    500 whose body says only that.
    """
    headers = [("Content-Type", "application/json")]
    if isinstance(err, ServingError):
        status, code, body = err.status, err.code, err.to_json()
    elif isinstance(err, HTTPException):
        status = err.code or 500
        code = (err.name or "error").lower().replace(" ", "_")
        field = None
        message = err.description or err.name
        if status == 413:
            field, message = "body", str(too_large(None, max_body_bytes))
        body = {"error": {"code": code, "message": message, "field": field}}
        headers += [(k, v) for k, v in err.get_headers(environ) if k.lower() != "content-type"]
    else:
        logger.error("unexpected error answering %s %s", environ.get("REQUEST_METHOD"),
                     environ.get("PATH_INFO"), exc_info=err)
        status, code = 500, "internal"
        body = INTERNAL_ERROR
    environ[ERROR_KEY] = code
    data = encode(body)
    return status, [*headers, ("Content-Length", str(len(data)))], data


class RouteLabels:
    """The route template of a request path (``/v1/experiments/<name>``), for metric labels.

    Matches the app's URL map once per (method, path) and remembers up to
    :data:`MAX_CACHED` answers, so label values never grow with what clients send.
    """

    MAX_CACHED = 1024

    def __init__(self, url_map: Map) -> None:
        self._adapter = url_map.bind("localhost")
        self._cache: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()

    def __call__(self, method: str, path: str) -> str:
        """The template of the rule ``path`` matches for ``method``, or :data:`UNMATCHED`."""
        key = (method, path)
        label = self._cache.get(key)
        if label is not None:
            return label
        try:
            rule, _ = self._adapter.match(path, method=method, return_rule=True)
            label = str(rule.rule)
        except (NotFound, MethodNotAllowed, HTTPException):
            label = UNMATCHED
        with self._lock:
            if len(self._cache) < self.MAX_CACHED:
                self._cache[key] = label
        return label


class MetricsMiddleware:
    """WSGI middleware that counts every request and error answer of the application it wraps.

    Args:
        app: the whole application (Flask and any mounted sub-application).
        metrics: the process's counters.
        labels: route template of a path (used when the answering application did not
            set :data:`ROUTE_KEY`).
    """

    def __init__(self, app: WSGIApp, metrics: Metrics, labels: Callable[[str, str], str]) -> None:
        self.app = app
        self.metrics = metrics
        self.labels = labels

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """Answer through the wrapped application, then count the answer."""
        started = time.perf_counter()
        method = environ.get("REQUEST_METHOD", "")
        path = environ.get("PATH_INFO", "")  # before a dispatcher rewrites it
        seen: list[int] = []

        def observe_start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            seen.append(int(status[:3]))
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

        body = self.app(environ, observe_start)
        route = environ.get(ROUTE_KEY) or self.labels(method, path)
        status = seen[-1] if seen else 500
        code = environ.get(ERROR_KEY)
        if code is not None:
            self.metrics.error(route, code)
        self.metrics.observe(route, method, status, time.perf_counter() - started)
        return body
