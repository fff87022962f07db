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


@pytest.mark.slow
def test_sigkill_of_one_of_two_hosts_on_postgresql_loses_nothing(tmp_path: Path, pg_durable_url: str) -> None:
    import psycopg

    env = {**ENV, "SLATEWISE_STORE": pg_durable_url, "SLATEWISE_MODEL_DIR": str(tmp_path / "models")}
    hosts = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        port = free_port()
        hosts.append((port, start_server(tmp_path / name, port, env)))
    (port_a, proc_a), (port_b, _) = hosts
    answered_a: list[int] = []
    answered_b: list[int] = []
    stop = threading.Event()
    threads = [threading.Thread(target=load, args=(port, out, stop, t))
               for t, (port, out) in enumerate([(port_a, answered_a)] * 3 + [(port_b, answered_b)] * 3)]
    try:
        for t in threads:
            t.start()
        deadline = time.monotonic() + 20.0
        while len(answered_a) < 150 and time.monotonic() < deadline:
            time.sleep(0.02)
        stop_server(proc_a, signal.SIGKILL)  # host a dies mid-load; host b's load goes on
        before = len(answered_b)
        deadline = time.monotonic() + 20.0
        while len(answered_b) < before + 150 and time.monotonic() < deadline:
            time.sleep(0.02)
        status, body = request(port_b, "POST", "/v1/slates", {"user_id": "after", "context": [0, 0, 0, 0]})
        assert status == 200, body  # the surviving host keeps answering
        answered_b.append(store_id(body["event_id"]))
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=10)
        for _, proc in hosts:
            if proc.poll() is None:
                stop_server(proc, signal.SIGKILL)
    logs = (tmp_path / "a" / "server.log").read_text()[-1000:] + (tmp_path / "b" / "server.log").read_text()[-1000:]
    assert len(answered_a) >= 50 and len(answered_b) >= before + 150, logs
    with psycopg.connect(pg_durable_url) as conn:
        stored = {int(r[0]) for r in conn.execute(b"SELECT event_id FROM decisions")}
    assert set(answered_a) | set(answered_b) <= stored  # nothing answered by either host is lost
    assert not set(answered_a) & set(answered_b)  # the hosts never handed out the same id
