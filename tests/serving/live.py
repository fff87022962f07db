"""Start the real server (``slatewise serve``) on a free loopback port, and stop it, for tests."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(workdir: Path, port: int, env: dict[str, str], workers: int = 2,
                 threads: int = 4) -> subprocess.Popen[bytes]:
    """``python -m experiments serve`` in its own process group, waited on until /healthz answers."""
    full_env = {**os.environ, "SLATEWISE_DB_PATH": str(workdir / "serving.db"),
                "SLATEWISE_MODEL_DIR": str(workdir / "models"), **env}
    with open(workdir / "server.log", "ab") as log:  # the child keeps its own descriptor
        proc = subprocess.Popen(
            [sys.executable, "-m", "experiments", "serve", "--host", "127.0.0.1", "--port", str(port),
             "--workers", str(workers), "--threads", str(threads)],
            cwd=ROOT, env=full_env, stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)
    deadline = time.monotonic() + 30.0
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}: "
                               f"{(workdir / 'server.log').read_text()[-2000:]}")
        try:
            status, _ = request(port, "GET", "/readyz")
            if status == 200:
                return proc
        except OSError:
            pass
        time.sleep(0.1)
    stop_server(proc, signal.SIGKILL)
    raise RuntimeError("server did not become ready within 30 s")


def stop_server(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    """Signal the server's whole process group (master and workers) and wait for the master."""
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=15)


def request(port: int, method: str, path: str, body: Any = None,
            conn: http.client.HTTPConnection | None = None) -> tuple[int, Any]:
    own = conn is None
    conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        payload = None if body is None else json.dumps(body).encode()
        conn.request(method, path, body=payload, headers={"Content-Type": "application/json"})
        res = conn.getresponse()
        data = res.read()
        return res.status, json.loads(data) if data[:1] in (b"{", b"[") else data
    finally:
        if own:
            conn.close()
