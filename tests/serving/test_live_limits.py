"""The real server (gunicorn) against stalled clients, chunked bodies and wrong methods."""

from __future__ import annotations

import http.client
import json
import socket
import time
from pathlib import Path

import pytest

from tests.serving.live import free_port, request, start_server, stop_server

ENV = {"SLATEWISE_N_ITEMS": "30", "SLATEWISE_K": "3", "SLATEWISE_DIM_CONTEXT": "4",
       "SLATEWISE_CLIENT_TIMEOUT_S": "1.0", "SLATEWISE_LEARNER": "0"}
BODY = json.dumps({"user_id": "u", "context": [0.1, 1, -1, 0.5]}).encode()


def stalled(port: int) -> socket.socket:
    """A client that sends the headers and part of the body, then stops."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(b"POST /v1/slates HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: %d\r\n\r\n%s" % (len(BODY), BODY[:10]))
    return sock


def post_chunked(port: int, body: bytes) -> bytes:
    """POST ``body`` chunked (64 KiB chunks) on a raw socket; the answer's first bytes.

    The server may answer (413) and close before the client has sent everything.
    """
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        try:
            sock.sendall(b"POST /v1/slates HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
            for i in range(0, len(body), 65_536):
                part = body[i:i + 65_536]
                sock.sendall(b"%x\r\n%s\r\n" % (len(part), part))
            sock.sendall(b"0\r\n\r\n")
        except OSError:  # answered and closed early
            pass
        return sock.recv(200)


@pytest.mark.slow
def test_stalled_clients_chunked_bodies_and_methods_on_the_real_server(tmp_path: Path) -> None:
    port = free_port()
    proc = start_server(tmp_path, port, ENV, workers=1, threads=2)
    clients: list[socket.socket] = []
    try:
        clients = [stalled(port) for _ in range(6)]  # three times the threads
        time.sleep(0.2)  # let the worker take them up
        started = time.monotonic()
        status, body = request(port, "POST", "/v1/slates", json.loads(BODY))
        assert status == 200 and len(body["event_id"]) == 32
        assert time.monotonic() - started < 8.0  # freed by the 1 s read timeout, not stuck
        answers = []
        for sock in clients:  # each stalled body was answered 408 (or its connection closed)
            try:
                answers.append(sock.recv(200).split(b"\r\n", 1)[0])
            except OSError:
                answers.append(b"")
        assert all(a.startswith(b"HTTP/1.1 408") or a == b"" for a in answers), answers
        assert any(a.startswith(b"HTTP/1.1 408") for a in answers), answers

        assert post_chunked(port, BODY + b" " * 10_000_000).startswith(b"HTTP/1.1 413")  # 10 MB valid JSON
        assert post_chunked(port, BODY + b" " * 1000).startswith(b"HTTP/1.1 200")

        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/v1/slates")
        res = conn.getresponse()
        assert res.status == 405 and set(res.getheader("Allow", "").split(", ")) == {"OPTIONS", "POST"}
        conn.close()
    finally:
        for sock in clients:
            sock.close()
        stop_server(proc)
