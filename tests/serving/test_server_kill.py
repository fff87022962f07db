"""The real server under load, killed with SIGKILL: no answered decision is lost."""

from __future__ import annotations

import base64
import http.client
import signal
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from tests.serving.live import free_port, request, start_server, stop_server

ENV = {"SLATEWISE_N_ITEMS": "30", "SLATEWISE_K": "3", "SLATEWISE_DIM_CONTEXT": "4",
       "SLATEWISE_LEARN_INTERVAL_S": "0.2", "SLATEWISE_RELOAD_INTERVAL_S": "0.2"}


def store_id(token: str) -> int:
    """The store's int64 id inside an event token (its first 8 bytes, big-endian)."""
    return int.from_bytes(base64.urlsafe_b64decode(token)[:8], "big")


def load(port: int, answered: list[int], stop: threading.Event, thread: int) -> None:
    """POST slates (and a reward for every other one) until told to stop or the server dies."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        for i in range(5_000):  # bounded
            if stop.is_set():
                return
            status, body = request(port, "POST", "/v1/slates",
                                   {"user_id": f"t{thread}-{i}", "context": [0.1 * thread, 1, -1, 0.5]},
                                   conn=conn)
            if status != 200:
                return
            answered.append(store_id(body["event_id"]))
            if i % 2 == 0:
                request(port, "POST", "/v1/rewards", {"event_id": body["event_id"], "clicks": [1, 0, 0]},
                        conn=conn)
    except (OSError, http.client.HTTPException):
        return  # the server was killed under us
    finally:
        conn.close()


@pytest.mark.slow
def test_sigkill_mid_load_loses_no_answered_decision(tmp_path: Path) -> None:
    port = free_port()
    proc = start_server(tmp_path, port, ENV)
    answered: list[int] = []
    stop = threading.Event()
    threads = [threading.Thread(target=load, args=(port, answered, stop, t)) for t in range(6)]
    try:
        for t in threads:
            t.start()
        deadline = time.monotonic() + 15.0
        while len(answered) < 200 and time.monotonic() < deadline:
            time.sleep(0.02)
        stop_server(proc, signal.SIGKILL)  # mid-load: the threads are still sending
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=10)
        if proc.poll() is None:
            stop_server(proc, signal.SIGKILL)
    assert len(answered) >= 50, (tmp_path / "server.log").read_text()[-2000:]

    db = tmp_path / "serving.db"
    with sqlite3.connect(db) as conn:  # recovery of the WAL happens on open
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        stored = {r[0] for r in conn.execute("SELECT event_id FROM decisions")}
    assert set(answered) <= stored

    # the service restarts on the same store and keeps counting from there
    port2 = free_port()
    proc2 = start_server(tmp_path, port2, ENV)
    try:
        status, body = request(port2, "POST", "/v1/slates", {"user_id": "after", "context": [0, 0, 0, 0]})
        assert status == 200 and store_id(body["event_id"]) > max(answered)
        status, report = request(port2, "GET", "/v1/experiments/default")
        assert status == 200 and report["arms"][0]["decisions"] == len(stored) + 1
    finally:
        stop_server(proc2)
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
