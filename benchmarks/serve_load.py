"""Serving throughput: POST /v1/slates (LinUCB, 80 items, k = 3, decisions stored) beside a bare Flask app.

Run: python benchmarks/serve_load.py [--seconds S] [--concurrency C] [--workers W] [--threads T]
[--baseline CHECKOUT] [--postgres URL] (prints one JSON document)

The servers run the same way (gunicorn, gthread workers, keep-alive, 127.0.0.1
only): ``slatewise serve`` as shipped (``slates``: /v1/slates answered by the
mounted sub-application ``SlatesApp``), the same service with ``slates_app = false``
(``slates_flask_route``: through the Flask route), a bare Flask JSON endpoint
(``bare_flask``), and with ``--baseline`` the shipped service of another checkout
of the repository (``baseline``, e.g. ``git worktree add /tmp/base <commit>``),
run from that checkout, and the shipped service on PostgreSQL (``slates_postgresql``:
``serving.store`` = ``--postgres``, default ``$SLATEWISE_TEST_POSTGRES``, in a schema
of its own, dropped afterwards; skipped when neither is given). ``stores`` puts the
two stores side by side: every 200 answer is a committed decision, so answered
requests/s are stored decisions/s. They are loaded in rotating rounds in the same run (medians
reported); the load generator is the same for all: ``wrk`` with
``--concurrency`` keep-alive connections when wrk is on the PATH (latency
percentiles from wrk's own report), else (or with ``--python-client``) raw
sockets spread over two client processes, each request timed on the client. All
are warmed up first with as many connections as the rounds use. Loops are
bounded by time and by a request cap. This load is closed: the connections send
as fast as answers come, so its p99 is the saturated service's. With ``--rate R``
the python generator offers ``R`` requests/s per server instead (``--pg-rate``,
default 1,000, for PostgreSQL) on a fixed schedule and times each request from
when it was due, so the p99 is the latency at that load; a store meets its
throughput goal there when it answers 99% of the offered requests in the time.

Goals on a 2-core machine (checked on ``slates``): >= 2,000 requests/s, p99 < 25 ms,
and >= 70% of the bare endpoint's throughput (the load generator shares the two cores);
on PostgreSQL (the server on the same machine): >= 1,000 stored decisions/s, p99 < 50 ms.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MAX_REQUESTS_PER_CONNECTION = 200_000


def make_bare_app() -> Any:
    """The baseline: a Flask app whose one endpoint parses a JSON body and answers JSON."""
    from flask import Flask, request

    app = Flask("bare")

    @app.post("/v1/slates")
    def bare() -> dict[str, Any]:
        body = request.get_json(force=True)
        return {"event_id": 1, "slate": [0, 1, 2], "propensity": 1.0, "user": body.get("user_id")}

    return app


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def request_bytes(port: int, n_variants: int, d: int, seed: int) -> list[bytes]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n_variants):
        body = json.dumps({"user_id": f"user-{seed}-{i}",
                           "context": rng.standard_normal(d).round(4).tolist()}).encode()
        out.append(b"POST /v1/slates HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json\r\n"
                   b"Content-Length: %d\r\n\r\n%s" % (port, len(body), body))
    return out


def _read_response(sock: socket.socket, buf: bytearray) -> int:
    """Read one HTTP response from ``sock`` (keep-alive); returns the status code."""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("server closed the connection")
        buf += chunk
    head, _, rest = bytes(buf).partition(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("server closed the connection")
        rest += chunk
    del buf[:]
    buf += rest[length:]
    return status


def _client_process(port: int, connections: int, seconds: float, warmup: float, d: int, seed: int,
                    out: Any, period: float = 0.0, phase: float = 0.0) -> None:
    """``connections`` keep-alive clients in threads, their latencies and counts put on ``out``.

    Closed loop, or with ``period`` > 0 one request every ``period`` seconds per connection on a
    fixed schedule shifted by ``phase`` (open loop), each timed from when it was due.
    """
    t_base = time.perf_counter()
    start = t_base + warmup
    stop = start + seconds
    results: list[tuple[list[float], int, int]] = []
    lock = threading.Lock()

    def run(conn_id: int) -> None:
        reqs = request_bytes(port, 256, d, seed * 1000 + conn_id)
        lat: list[float] = []
        errors = 0
        done = 0
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            buf = bytearray()
            for i in range(MAX_REQUESTS_PER_CONNECTION):
                t0 = time.perf_counter()
                if period:  # due at its slot of the schedule; a late request keeps its due time
                    due = t_base + phase + (conn_id / connections + i) * period
                    if due > t0:
                        time.sleep(due - t0)
                    t0 = due
                if t0 >= stop:
                    break
                sock.sendall(reqs[i % len(reqs)])
                status = _read_response(sock, buf)
                t1 = time.perf_counter()
                if t0 >= start:
                    done += 1
                    lat.append(t1 - t0)
                    errors += status != 200
        with lock:
            results.append((lat, done, errors))

    threads = [threading.Thread(target=run, args=(c,)) for c in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lat = [x for r in results for x in r[0]]
    out.put({"latencies": lat, "requests": sum(r[1] for r in results), "errors": sum(r[2] for r in results)})


def load(port: int, concurrency: int, seconds: float, warmup: float, d: int,
         rate: float = 0.0) -> dict[str, Any]:
    """Drive ``concurrency`` keep-alive connections for ``seconds`` (after ``warmup``).

    Closed loop (each connection sends as soon as its last answer came), or with ``rate`` > 0 an
    offered load of ``rate`` requests/s in all, spread evenly over the connections, with latency
    counted from each request's due time (so a slow answer delays and charges the ones behind it).
    """
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    n_proc = 2 if concurrency >= 2 else 1
    split = [concurrency // n_proc + (i < concurrency % n_proc) for i in range(n_proc)]
    period = concurrency / rate if rate > 0 else 0.0
    procs = [ctx.Process(target=_client_process,
                         args=(port, c, seconds, warmup, d, i, queue, period, i * period / n_proc))
             for i, c in enumerate(split)]
    for p in procs:
        p.start()
    parts = [queue.get(timeout=seconds + warmup + 60) for _ in procs]
    for p in procs:
        p.join(timeout=10)
    lat = np.array([x for part in parts for x in part["latencies"]])
    n = int(sum(part["requests"] for part in parts))
    return {"requests": n, "errors": int(sum(part["errors"] for part in parts)),
            "requests_per_s": n / seconds, "offered_per_s": rate or None,
            "p50_ms": float(np.percentile(lat, 50) * 1e3) if lat.size else None,
            "p99_ms": float(np.percentile(lat, 99) * 1e3) if lat.size else None,
            "mean_ms": float(lat.mean() * 1e3) if lat.size else None}


WRK_DONE = """
done = function(summary, latency, requests)
  io.write(string.format("JSON {\\"requests\\": %d, \\"p50_us\\": %d, \\"p99_us\\": %d, \\"errors\\": %d}\\n",
    summary.requests, latency:percentile(50), latency:percentile(99),
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.timeout))
end
"""


def _wrk_script(workdir: Path, d: int) -> Path:
    """A wrk Lua script: POST slate requests of varying users, print a JSON summary at the end."""
    script = workdir / "post.lua"
    context = ", ".join(f"{0.1 * (i + 1):.1f}" for i in range(d))
    body = '{"user_id": "wrk-\' .. counter .. \'", "context": [' + context + "]}"
    script.write_text(
        'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\ncounter = 0\n'
        "request = function()\n  counter = counter + 1\n"
        f"  return wrk.format(nil, nil, nil, '{body}')\nend\n" + WRK_DONE)
    return script


def wrk_load(port: int, concurrency: int, seconds: float, d: int, workdir: Path) -> dict[str, Any]:
    script = _wrk_script(workdir, d)
    out = subprocess.run(["wrk", "-t2", f"-c{concurrency}", f"-d{seconds:g}s", "-s", str(script),
                          f"http://127.0.0.1:{port}/v1/slates"], capture_output=True, text=True,
                         timeout=seconds + 60, check=True).stdout
    data = json.loads(out.split("JSON ", 1)[1].splitlines()[0])
    return {"requests": data["requests"], "errors": data["errors"],
            "requests_per_s": data["requests"] / seconds, "p50_ms": data["p50_us"] / 1e3,
            "p99_ms": data["p99_us"] / 1e3, "mean_ms": None}


def group_cpu_seconds(pgid: int) -> float:
    """User + system CPU seconds of every live process in the process group ``pgid``."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # fields after the command: state, ppid, pgrp, ...
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def start(cmd: list[str], env: dict[str, str], port: int, log: Path,
          cwd: Path = ROOT) -> subprocess.Popen[bytes]:
    with open(log, "ab") as handle:
        proc = subprocess.Popen(cmd, cwd=cwd, env={**os.environ, **env}, stdout=subprocess.DEVNULL,
                                stderr=handle, start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{cmd} exited: {log.read_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return proc
        except OSError:
            time.sleep(0.1)
    stop(proc)
    raise RuntimeError(f"{cmd} did not start")


def stop(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=20)


def run_round(name: str, port: int, proc: subprocess.Popen[bytes], args: argparse.Namespace, d: int,
              work: Path, use_wrk: bool) -> dict[str, Any]:
    cpu0 = group_cpu_seconds(proc.pid)
    t0 = time.perf_counter()
    rate = (args.pg_rate if name == "slates_postgresql" else args.rate) if args.rate else 0.0
    if use_wrk and not rate:
        result = wrk_load(port, args.concurrency, args.seconds, d, work)
    else:
        result = load(port, args.concurrency, args.seconds, args.warmup, d, rate)
    wall = time.perf_counter() - t0
    cpu = group_cpu_seconds(proc.pid) - cpu0
    # server CPU per answered request (the warm-up of the python client is counted in wall time only)
    result["server_cpu_ms_per_request"] = cpu / max(result["requests"] * wall / args.seconds, 1) * 1e3
    result["name"] = name
    return result


def median_of(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    keys = ("requests_per_s", "p50_ms", "p99_ms", "server_cpu_ms_per_request")  # medians of the rounds
    out: dict[str, Any] = {key: float(np.median([r[key] for r in rounds])) for key in keys}
    out["requests"] = int(sum(r["requests"] for r in rounds))
    out["errors"] = int(sum(r["errors"] for r in rounds))
    out["rounds"] = [{key: round(r[key], 3) for key in keys} for r in rounds]
    return out


def _pg_schema(url: str, action: str) -> Any:
    """``create``: a new schema on ``url``, returning a URL that uses it; ``drop``: its decisions, then drop it."""
    import psycopg

    if action == "create":
        schema = f"serve_load_{os.getpid()}"
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE".encode())
            conn.execute(f"CREATE SCHEMA {schema}".encode())
        return f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"
    _, _, options = url.partition("options=-csearch_path%3D")
    schema = options.split("&")[0]
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(b"SELECT count(*) FROM decisions").fetchone()
        conn.execute(f"DROP SCHEMA {schema} CASCADE".encode())
    return int(row[0]) if row else 0


def _store_row(result: dict[str, Any], goal_per_s: float, goal_p99_ms: float,
               offered: float = 0.0) -> dict[str, Any]:
    """One store's line of the side-by-side table (answered decisions are stored decisions).

    With an offered rate, the throughput goal is that the store kept up with at least ``goal_per_s``
    offered: 99% of the offered requests answered in the time.
    """
    per_s = result["requests_per_s"]
    kept_up = per_s >= goal_per_s if not offered else offered >= goal_per_s and per_s >= 0.99 * offered
    return {"stored_decisions_per_s": per_s, "offered_per_s": offered or None, "p50_ms": result["p50_ms"],
            "p99_ms": result["p99_ms"], "errors": result["errors"],
            "server_cpu_ms_per_request": result["server_cpu_ms_per_request"],
            "goals": {f"decisions_per_s>={goal_per_s:g}": kept_up,
                      f"p99_ms<{goal_p99_ms:g}": result["p99_ms"] < goal_p99_ms}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="load per round and server")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds (medians reported)")
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2, help="per server (slatewise serve's default)")
    parser.add_argument("--threads", type=int, default=4, help="per worker (slatewise serve's default)")
    parser.add_argument("--synchronous", default="NORMAL", choices=["NORMAL", "FULL"])
    parser.add_argument("--dim-context", type=int, default=22, help="context width (the default world's)")
    parser.add_argument("--python-client", action="store_true",
                        help="use the python load generator even when wrk is installed")
    parser.add_argument("--rate", type=float, default=0.0,
                        help="offered requests/s per server (open loop, python generator, latency from each "
                             "request's due time); 0: closed loop")
    parser.add_argument("--pg-rate", type=float, default=1000.0,
                        help="with --rate: the offered requests/s of the PostgreSQL server")
    parser.add_argument("--baseline", type=Path, default=None,
                        help="another checkout whose shipped service is measured side by side")
    parser.add_argument("--postgres", default=os.environ.get("SLATEWISE_TEST_POSTGRES", ""),
                        help="postgresql:// URL of a server for the PostgreSQL run (a schema is made and dropped)")
    args = parser.parse_args()
    if args.rate < 0 or args.pg_rate <= 0:
        parser.error("--rate must be >= 0 and --pg-rate > 0 (requests per second)")
    sys.path.insert(0, str(ROOT))
    from experiments.cli.serve import gunicorn_options

    use_wrk = not args.python_client and shutil.which("wrk") is not None
    load_at_start = os.getloadavg()[0]
    d = args.dim_context
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        opts = gunicorn_options("127.0.0.1", 0, args.workers, args.threads)
        bare_port, slates_port = free_port(), free_port()
        bare_cmd = [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{bare_port}", "--workers",
                    str(args.workers), "--worker-class", "gthread", "--threads", str(args.threads),
                    "--keep-alive", str(opts["keepalive"]), "--log-level", "warning", "--chdir",
                    str(ROOT / "benchmarks"), "serve_load:make_bare_app()"]
        env = {"SLATEWISE_DB_PATH": str(work / "serving.db"), "SLATEWISE_MODEL_DIR": str(work / "models"),
               "SLATEWISE_N_ITEMS": "80", "SLATEWISE_K": "3", "SLATEWISE_DIM_CONTEXT": str(d),
               "SLATEWISE_SYNCHRONOUS": args.synchronous}
        # the same service with /v1/slates sent through the Flask route (slates_app = false),
        # on its own store, so the cost of Flask's per-request machinery is measured beside it
        flask_env = {**env, "SLATEWISE_SLATES_APP": "0", "SLATEWISE_DB_PATH": str(work / "flask_route.db"),
                     "SLATEWISE_MODEL_DIR": str(work / "flask_route_models")}
        ports = {"bare_flask": bare_port, "slates": slates_port, "slates_flask_route": free_port()}
        if args.baseline is not None:
            ports["baseline"] = free_port()
        pg_url = ""
        if args.postgres:
            pg_url = _pg_schema(args.postgres, "create")
            ports["slates_postgresql"] = free_port()

        def serve_cmd(port: int) -> list[str]:
            return [sys.executable, "-m", "experiments", "serve", "--host", "127.0.0.1", "--port", str(port),
                    "--workers", str(args.workers), "--threads", str(args.threads)]

        procs: dict[str, subprocess.Popen[bytes]] = {}
        rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in ports}
        try:
            procs["bare_flask"] = start(bare_cmd, {}, bare_port, work / "bare.log")
            procs["slates"] = start(serve_cmd(slates_port), env, slates_port, work / "serve.log")
            procs["slates_flask_route"] = start(serve_cmd(ports["slates_flask_route"]), flask_env,
                                                ports["slates_flask_route"], work / "flask_route.log")
            if args.baseline is not None:
                base = args.baseline.resolve()
                base_env = {**env, "SLATEWISE_DB_PATH": str(work / "baseline.db"),
                            "SLATEWISE_MODEL_DIR": str(work / "baseline_models"), "PYTHONPATH": str(base)}
                procs["baseline"] = start(serve_cmd(ports["baseline"]), base_env, ports["baseline"],
                                          work / "baseline.log", cwd=base)
            if pg_url:
                pg_env = {**env, "SLATEWISE_STORE": pg_url, "SLATEWISE_MODEL_DIR": str(work / "pg_models")}
                procs["slates_postgresql"] = start(serve_cmd(ports["slates_postgresql"]), pg_env,
                                                   ports["slates_postgresql"], work / "postgresql.log")
            if use_wrk:  # warm all up once (imports, compiled kernels, caches) with as many
                # connections as the rounds use, so every worker has answered before timing starts
                for port in ports.values():
                    subprocess.run(["wrk", "-t2", f"-c{args.concurrency}", f"-d{args.warmup:g}s", "-s",
                                    str(_wrk_script(work, d)), f"http://127.0.0.1:{port}/v1/slates"],
                                   capture_output=True, timeout=60, check=False)
            order = list(ports)
            for i in range(args.rounds):  # rotate the order, so all see the same machine load
                shift = i % len(order)
                for name in order[shift:] + order[:shift]:
                    rounds[name].append(run_round(name, ports[name], procs[name], args, d, work, use_wrk))
        finally:
            for proc in procs.values():
                stop(proc)
            pg_stored = _pg_schema(pg_url, "drop") if pg_url else None
        with sqlite3.connect(work / "serving.db") as conn:
            stored = conn.execute("SELECT count(*) FROM decisions").fetchone()[0]
            integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
    s, b = median_of(rounds["slates"]), median_of(rounds["bare_flask"])
    f = median_of(rounds["slates_flask_route"])
    ratio = s["requests_per_s"] / b["requests_per_s"]
    baseline: dict[str, Any] = {}
    if args.baseline is not None:
        base_result = median_of(rounds["baseline"])
        baseline = {"baseline": base_result,
                    "baseline_ratio_vs_bare": base_result["requests_per_s"] / b["requests_per_s"],
                    "slates_over_baseline": s["requests_per_s"] / base_result["requests_per_s"]}
    stores: dict[str, Any] = {"sqlite": _store_row(s, 2000, 25.0, args.rate)}
    if pg_url:
        pg = median_of(rounds["slates_postgresql"])
        stores["postgresql"] = {**_store_row(pg, 1000, 50.0, args.pg_rate if args.rate else 0.0),
                                "decisions_stored": pg_stored}
    print(json.dumps({
        "benchmark": "serve_load",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_average_1m_at_start": load_at_start,
                    "load_average_1m_at_end": os.getloadavg()[0]},
        "setup": {"policy": "linucb", "n_items": 80, "k": 3, "dim_context": d,
                  "concurrency": args.concurrency, "seconds_per_round": args.seconds, "rounds": args.rounds,
                  "workers": args.workers, "threads": args.threads, "sqlite_synchronous": args.synchronous,
                  "load_generator": ("wrk" if use_wrk and not args.rate else "python raw sockets (2 processes)")
                  + (f", open loop at {args.rate:g}/s (PostgreSQL {args.pg_rate:g}/s)" if args.rate else
                     ", closed loop")},
        "slates": s,
        "bare_flask": b,
        "slates_flask_route": f,
        "flask_route_ratio_vs_bare": f["requests_per_s"] / b["requests_per_s"],
        **baseline,
        "stores": stores,
        "decisions_stored": stored,
        "store_integrity": integrity,
        "throughput_ratio_vs_bare": ratio,
        "server_cpu_ratio_bare_over_slates": b["server_cpu_ms_per_request"] / s["server_cpu_ms_per_request"],
        "goals": {"requests_per_s>=2000": stores["sqlite"]["goals"]["decisions_per_s>=2000"],
                  "p99_ms<25": s["p99_ms"] < 25,
                  "ratio>=0.7": ratio >= 0.7},
    }, indent=2))


if __name__ == "__main__":
    main()
