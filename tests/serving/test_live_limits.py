"""The real server (gunicorn) against stalled clients, chunked bodies and wrong methods."""

from __future__ import annotations

import http.client
import json
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.serving.live import ROOT, free_port, request, start_server, stop_server

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


def drip(port: int, stop: threading.Event) -> None:
    """A client that sends its body one byte every 0.3 s (each read well within any read timeout)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"POST /v1/slates HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\n\r\n" % len(BODY))
            for i in range(len(BODY)):
                if stop.wait(0.3):
                    return
                sock.sendall(BODY[i:i + 1])
    except OSError:
        return


def answers_within(port: int, seconds: float) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=seconds)
    try:
        conn.request("POST", "/v1/slates", body=BODY, headers={"Content-Type": "application/json"})
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


def start_nginx(workdir: Path, listen: int, upstream: int) -> subprocess.Popen[bytes]:
    """nginx with the documented server block (docs/serving-nginx.conf), ports replaced."""
    block = (ROOT / "docs" / "serving-nginx.conf").read_text()
    block = block.replace("127.0.0.1:8000", f"127.0.0.1:{upstream}").replace("127.0.0.1:8080",
                                                                             f"127.0.0.1:{listen}")
    temp = " ".join(f"{kind}_temp_path {workdir}/{kind};" for kind in
                    ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    conf = workdir / "nginx.conf"
    conf.write_text(f"daemon off; pid {workdir}/nginx.pid; error_log {workdir}/nginx.log;\n"
                    f"events {{ worker_connections 256; }}\nhttp {{ access_log off; {temp}\n{block}\n}}\n")
    proc = subprocess.Popen(["nginx", "-p", str(workdir), "-c", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", listen), timeout=1):
                return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"nginx did not start: {(workdir / 'nginx.log').read_text()[-2000:]}")


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed (apt-get install nginx)")
def test_the_documented_proxy_keeps_dripping_clients_off_the_workers(tmp_path: Path) -> None:
    port, front = free_port(), free_port()
    proc = start_server(tmp_path, port, ENV, workers=1, threads=2)
    nginx = start_nginx(tmp_path, front, port)
    stop = threading.Event()
    try:
        direct = [threading.Thread(target=drip, args=(port, stop)) for _ in range(4)]
        for t in direct:
            t.start()
        time.sleep(0.5)
        assert not answers_within(port, 3.0)  # straight at the workers, the drips hold both threads
        stop.set()
        for t in direct:
            t.join(timeout=10)
        stop.clear()
        assert answers_within(port, 10.0)  # free again
        proxied = [threading.Thread(target=drip, args=(front, stop)) for _ in range(6)]
        for t in proxied:
            t.start()
        time.sleep(0.5)
        assert answers_within(front, 3.0)  # through nginx, they wait in nginx
    finally:
        stop.set()
        nginx.send_signal(signal.SIGQUIT)
        try:
            nginx.wait(timeout=10)
        except subprocess.TimeoutExpired:
            nginx.kill()
        stop_server(proc)
