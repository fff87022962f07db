"""Soak: mixed slates and rewards for minutes, one worker SIGKILLed every two minutes; nothing answered is lost.

Run: python benchmarks/serve_soak.py [--minutes M] [--kill-every-s S] [--clients C] [--postgres URL]
(prints one JSON document)

One ``slatewise serve`` (127.0.0.1 only, 2 workers) on SQLite, or with ``--postgres``
(default ``$SLATEWISE_TEST_POSTGRES`` when ``--store postgresql``) two hosts on one
PostgreSQL schema of the soak's own (dropped afterwards). ``--clients`` keep-alive
clients post slates and a reward for every other answered slate, bounded by time
and a request cap. Every ``--kill-every-s`` seconds the newest worker of one server
is SIGKILLed (gunicorn starts a new one); the clients reconnect. At the end the
store is read directly:

* ``answered`` (200 slate answers) vs ``stored`` decisions: every answered id must be
  stored (``answered_not_stored`` = 0); a decision committed while its worker was
  killed before answering is ``stored_not_answered``;
* ``rewards_accepted`` (202 answers) vs ``rewards_stored`` (``accepted_not_stored`` = 0);
* resident memory of each worker alive from the first sample to the end (start and
  end, growth under 10%);
* p99 latency of the slate requests per minute.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MAX_REQUESTS_PER_CLIENT = 2_000_000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def store_id(token: str) -> int:
    """The store's int64 id inside an event token (its first 8 bytes, big-endian)."""
    return int.from_bytes(base64.urlsafe_b64decode(token)[:8], "big")


def children(pid: int) -> list[int]:
    """Live child processes of ``pid`` (gunicorn's workers of a master)."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                out.append(int(entry.name))
    return sorted(out)


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def start_host(port: int, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "experiments", "serve", "--host", "127.0.0.1", "--port", str(port),
           "--workers", "2", "--threads", "4"]
    with open(log, "ab") as handle:
        proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.DEVNULL,
                                stderr=handle, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"serve exited: {log.read_text()[-2000:]}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/readyz")
            if conn.getresponse().status == 200 and len(children(proc.pid)) >= 2:
                return proc
        except OSError:
            pass
        time.sleep(0.2)
    stop_host(proc)
    raise RuntimeError("serve did not become ready")


def stop_host(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=20)


class Client(threading.Thread):
    """Posts slates (and a reward for every other one) to ``port`` until ``deadline``."""

    def __init__(self, index: int, port: int, t0: float, deadline: float, d: int) -> None:
        super().__init__(daemon=True)
        self.index, self.port, self.t0, self.deadline, self.d = index, port, t0, deadline, d
        self.answered: list[int] = []
        self.rewarded: list[int] = []
        self.latency: list[tuple[float, float]] = []  # (seconds since start, seconds)
        self.errors = 0

    def run(self) -> None:
        rng = np.random.default_rng(self.index)
        conn: http.client.HTTPConnection | None = None
        for i in range(MAX_REQUESTS_PER_CLIENT):
            if time.monotonic() >= self.deadline:
                break
            try:
                conn = conn or http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                body = {"user_id": f"c{self.index}-{rng.integers(5000)}",
                        "context": rng.standard_normal(self.d).round(3).tolist()}
                t = time.monotonic()
                status, answer = _post(conn, "/v1/slates", body)
                self.latency.append((t - self.t0, time.monotonic() - t))
                if status != 200:
                    self.errors += 1
                    continue
                self.answered.append(store_id(answer["event_id"]))
                if i % 2 == 0:
                    clicks = [int(x) for x in rng.random(len(answer["slate"])) < 0.2]
                    status, _ = _post(conn, "/v1/rewards", {"event_id": answer["event_id"], "clicks": clicks})
                    if status == 202:
                        self.rewarded.append(self.answered[-1])
            except (OSError, http.client.HTTPException, ValueError):
                self.errors += 1  # the worker was killed under us: reconnect
                if conn is not None:
                    conn.close()
                conn = None
                time.sleep(0.05)
        if conn is not None:
            conn.close()


def _post(conn: http.client.HTTPConnection, path: str, body: Any) -> tuple[int, Any]:
    conn.request("POST", path, body=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    res = conn.getresponse()
    data = res.read()
    return res.status, json.loads(data) if data[:1] == b"{" else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--kill-every-s", type=float, default=120.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--store", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--postgres", default=os.environ.get("SLATEWISE_TEST_POSTGRES", ""),
                        help="postgresql:// URL of the server for --store postgresql")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from serving.store import open_store

    d = 8
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        env = {"SLATEWISE_DB_PATH": str(work / "serving.db"), "SLATEWISE_MODEL_DIR": str(work / "models"),
               "SLATEWISE_N_ITEMS": "80", "SLATEWISE_K": "3", "SLATEWISE_DIM_CONTEXT": str(d),
               "SLATEWISE_LEARN_INTERVAL_S": "2"}
        target = str(work / "serving.db")
        schema = ""
        n_hosts = 1
        if args.store == "postgresql":
            import psycopg

            if not args.postgres:
                parser.error("--store postgresql needs --postgres URL (or $SLATEWISE_TEST_POSTGRES)")
            schema = f"soak_{os.getpid()}"
            with psycopg.connect(args.postgres, autocommit=True) as conn:
                conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE".encode())
                conn.execute(f"CREATE SCHEMA {schema}".encode())
            target = f"{args.postgres}{'&' if '?' in args.postgres else '?'}options=-csearch_path%3D{schema}"
            env["SLATEWISE_STORE"] = target
            n_hosts = 2
        hosts: list[tuple[int, subprocess.Popen[bytes]]] = []
        clients: list[Client] = []
        kills: list[dict[str, Any]] = []
        try:
            for h in range(n_hosts):
                port = free_port()
                hosts.append((port, start_host(port, env, work / f"host{h}.log")))
            t0 = time.monotonic()
            deadline = t0 + args.minutes * 60
            clients = [Client(c, hosts[c % n_hosts][0], t0, deadline, d) for c in range(args.clients)]
            for c in clients:
                c.start()
            time.sleep(min(10.0, args.minutes * 6))  # warm: imports and first policies done
            rss_start = {pid: rss_mb(pid) for _, proc in hosts for pid in children(proc.pid)}
            next_kill = t0 + args.kill_every_s
            victim_host = 0
            while time.monotonic() < deadline:
                time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
                if time.monotonic() >= next_kill and time.monotonic() < deadline - 5:
                    _, proc = hosts[victim_host % n_hosts]
                    workers = children(proc.pid)
                    if workers:
                        victim = workers[-1]  # the newest: the first workers live through the soak
                        os.kill(victim, signal.SIGKILL)
                        kills.append({"at_s": round(time.monotonic() - t0, 1), "host": victim_host % n_hosts,
                                      "pid": victim})
                    victim_host += 1
                    next_kill += args.kill_every_s
            for c in clients:
                c.join(timeout=30)
            rss_end = {pid: rss_mb(pid) for _, proc in hosts for pid in children(proc.pid)}
        finally:
            for _, proc in hosts:
                stop_host(proc)
        store = open_store(target)
        stored, rewards_stored = store.event_ids(), store.rewarded_event_ids()
        store.close()
        if schema:
            import psycopg

            with psycopg.connect(args.postgres, autocommit=True) as conn:
                conn.execute(f"DROP SCHEMA {schema} CASCADE".encode())
    answered = {e for c in clients for e in c.answered}
    rewarded = {e for c in clients for e in c.rewarded}
    lat = [x for c in clients for x in c.latency]
    minutes = int(np.ceil(args.minutes))
    p99 = []
    for m in range(minutes):
        xs = np.array([s for at, s in lat if m * 60 <= at < (m + 1) * 60])
        p99.append(round(float(np.percentile(xs, 99) * 1e3), 2) if xs.size else None)
    survivors = sorted(set(rss_start) & set(rss_end))
    workers = [{"pid": pid, "rss_mb_start": round(rss_start[pid] or 0, 1), "rss_mb_end": round(rss_end[pid] or 0, 1),
                "growth": round((rss_end[pid] or 0) / (rss_start[pid] or 1) - 1, 4)} for pid in survivors]
    print(json.dumps({
        "benchmark": "serve_soak",
        "setup": {"store": args.store, "hosts": n_hosts, "workers_per_host": 2, "threads": 4,
                  "clients": args.clients, "minutes": args.minutes, "kill_every_s": args.kill_every_s},
        "kills": kills,
        "answered": len(answered), "stored": len(stored),
        "answered_not_stored": len(answered - stored), "stored_not_answered": len(stored - answered),
        "rewards_accepted": len(rewarded), "rewards_stored": len(rewards_stored),
        "rewards_accepted_not_stored": len(rewarded - rewards_stored),
        "client_errors": sum(c.errors for c in clients),
        "workers_rss": workers,
        "p99_ms_per_minute": p99,
        "goals": {"answered_all_stored": not answered - stored,
                  "rewards_all_stored": not rewarded - rewards_stored,
                  "rss_growth<10%": bool(workers) and all(w["growth"] < 0.10 for w in workers)},
    }, indent=2))


if __name__ == "__main__":
    main()
