"""Learning from logs alone, checked against the world's truth; prints one JSON document.

Logs of ``--sizes`` decisions from the default world under a uniform and a softmax
logger. For each log: every learner of ``slatewise learn`` that is cheap enough
(``offline_pl`` and warm-started bandits) is fitted, and each policy's true value
(``experiments.cli.world.policy_truth``: Monte Carlo per session, with its standard
error) is set beside the logger's, the best policies the world knows (``greedy``,
``patient``: they read the world's truth) and the same bandit class trained online for
the same number of sessions (for ``offline_pl``: refitted on its own served sessions in
``ONLINE_PL_ROUNDS`` equal batches, see :func:`online_pl`). Goals (issue 18): the best offline-learned policy
>= 1.5x the uniform logger's true value and >= 90% of the same class trained
online. Then ``--honesty-runs`` small runs (one-decision sessions of the default
world, 2,000 uniform-logged decisions, ``learn`` with a 20% hold-out): the share of
runs whose held-out lower bound of the improvement lies below the true improvement
(goal >= 95%). Last, ``learn`` on a log of ``--big`` decisions, timed end to end
(goal < 60 s), with its CPU seconds and the load average beside the wall time (the
machine is shared).

    python benchmarks/offline_learning.py [--sizes 10000,100000] [--honesty-runs 100] [--big 1000000]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bandits.offline.policy import OfflinePLPolicy
from bandits.offline.train import fit_offline_pl
from bandits.offline.warm import warm_start
from experiments.agents import build_agent
from experiments.cli.learn import learn
from experiments.cli.world import policy_truth
from experiments.online import train_online
from simulator.logs import SlateLog, save_parquet
from simulator.world import World, generate_log, make_logging_policy
from simulator.world.truth import ValueEstimate

LOGGERS = {"uniform": {}, "softmax": {"temperature": 0.5}}
BANDITS = {"linucb": {"alpha": 0.1}, "epsilon_greedy": {"epsilon": 0.05}}
ONLINE_PL_ROUNDS = 8


def decisions_log(world: World, logger: str, n: int, seed: int) -> SlateLog:
    """The first ``n`` decisions of a log of enough sessions."""
    policy = make_logging_policy(logger, **LOGGERS[logger])
    sessions = max(2, n // 3)
    log = generate_log(world, policy, sessions, seed=seed)
    while log.n_rounds < n:
        sessions = int(sessions * 1.2 * n / max(log.n_rounds, 1)) + 1
        log = generate_log(world, policy, sessions, seed=seed)
    return log.take(np.arange(n))


def online_pl(world: World, n_sessions: int, seed: int, rounds: int = ONLINE_PL_ROUNDS) -> OfflinePLPolicy:
    """``offline_pl``'s class trained online: ``rounds`` equal batches of sessions, each served by the
    policy fitted (``fit_offline_pl``, IPS on the policy's own exact propensities) on every batch
    before it; the first batch is served uniformly (the untrained policy)."""
    policy = OfflinePLPolicy(world.n_items, world.k, world.dim_context, seed=seed)
    logs: list[SlateLog] = []
    per = max(1, -(-n_sessions // rounds))
    for r in range(-(-n_sessions // per)):
        batch = generate_log(world, policy, min(per, n_sessions - r * per), seed=seed + 100 + r)
        offset = sum(log.n_rounds for log in logs)  # each batch numbers its events and sessions from 0
        logs.append(dataclasses.replace(batch, event_id=np.asarray(batch.event_id) + offset,
                                        session_id=np.asarray(batch.session_id) + offset))
        policy = fit_offline_pl(SlateLog.concat(logs), seed=seed).policy
    return policy


def truth_json(v: ValueEstimate) -> dict[str, float]:
    return {"value": round(v.value, 3), "stderr": round(v.stderr, 3)}


def one_log(world: World, logger: str, n: int, sessions: int, seed: int) -> dict[str, Any]:
    log = decisions_log(world, logger, n, seed)
    n_sessions = int(np.unique(np.asarray(log.session_id)).size)
    rows: dict[str, Any] = {}
    began = time.perf_counter()
    fit = fit_offline_pl(log, seed=seed)
    fit_s = time.perf_counter() - began
    began = time.perf_counter()
    online = online_pl(world, n_sessions, seed)
    rows["offline_pl"] = {"fit_seconds": round(fit_s, 2),
                          "true": policy_truth(world, fit.policy, n_sessions=sessions, seed=99).per_session,
                          "online_same_sessions": policy_truth(world, online, n_sessions=sessions,
                                                               seed=99).per_session,
                          "online_seconds": round(time.perf_counter() - began, 2)}
    for name, params in BANDITS.items():
        agent = build_agent(name, world, seed, params)
        began = time.perf_counter()
        warm_start(agent.policy, log, seed=seed)
        fit_s = time.perf_counter() - began
        online = build_agent(name, world, seed, params)
        began = time.perf_counter()
        train_online(world, online, n_sessions, 200, np.random.default_rng(seed + 7))
        rows[f"{name} (warm-resample)"] = {
            "fit_seconds": round(fit_s, 2),
            "true": policy_truth(world, agent.policy, n_sessions=sessions, seed=99).per_session,
            "online_same_sessions": policy_truth(world, online.policy, n_sessions=sessions, seed=99).per_session,
            "online_seconds": round(time.perf_counter() - began, 2)}
    logger_truth = policy_truth(world, make_logging_policy(logger, **LOGGERS[logger]), n_sessions=sessions,
                                seed=99).per_session
    out: dict[str, Any] = {"logger": logger, "logger_params": LOGGERS[logger], "decisions": n,
                           "sessions": n_sessions, "logger_true": truth_json(logger_truth), "learned": {}}
    for name, row in rows.items():
        entry = {"fit_seconds": row["fit_seconds"], "true": truth_json(row["true"]),
                 "vs_logger": round(row["true"].value / logger_truth.value, 3)}
        if "online_same_sessions" in row:
            entry["online_same_sessions"] = truth_json(row["online_same_sessions"])
            entry["vs_online"] = round(row["true"].value / row["online_same_sessions"].value, 3)
        out["learned"][name] = entry
    return out


def honesty(runs: int, n: int) -> dict[str, Any]:
    """Share of runs whose held-out lower bound of the improvement is below the true improvement."""
    world = World.default().with_config(max_steps=1)
    uniform = make_logging_policy("uniform")
    logger_value = policy_truth(world, uniform, n_sessions=40_000, seed=5).per_decision.value
    below: dict[str, list[bool]] = {}
    gains: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(runs):
            path = Path(tmp) / "log.parquet"
            save_parquet(generate_log(world, uniform, n, seed=1000 + r), path)
            report = learn(path, "offline_pl", Path(tmp) / "p.npz", holdout=0.2, seed=r, n_bootstrap=0)
            from bandits import SlatePolicy

            truth = policy_truth(world, SlatePolicy.load(Path(tmp) / "p.npz"), n_sessions=20_000,
                                 seed=7).per_decision.value
            gain = truth - logger_value
            gains.append(gain)
            for e in report.estimates:
                below.setdefault(e.estimator, []).append(e.lower_bound < gain)
    return {"runs": runs, "decisions": n, "world": "default, one decision per session",
            "mean_true_improvement": round(float(np.mean(gains)), 3),
            "bound_below_truth_share": {k: float(np.mean(v)) for k, v in below.items()}}


def big(n: int) -> dict[str, Any]:
    world = World.default()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.parquet"
        began = time.perf_counter()
        save_parquet(decisions_log(world, "uniform", n, seed=3), path)
        made = time.perf_counter() - began
        load = os.getloadavg()[0]
        began, cpu = time.perf_counter(), time.process_time()
        report = learn(path, "offline_pl", Path(tmp) / "p.npz", n_bootstrap=0)
        total, cpu = time.perf_counter() - began, time.process_time() - cpu
    return {"decisions": n, "log_seconds": round(made, 1), "learn_seconds": round(total, 1),
            "learn_cpu_seconds": round(cpu, 1), "load_average_1min": round(load, 1),
            "fit_seconds": report.fit_seconds, "scored_rows": report.test_rows, "goal_seconds": 60}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--sessions", type=int, default=4000, help="Monte Carlo sessions per true value.")
    parser.add_argument("--honesty-runs", type=int, default=100)
    parser.add_argument("--big", type=int, default=1_000_000)
    args = parser.parse_args()
    world = World.default()
    best = {name: truth_json(policy_truth(world, make_logging_policy(name), n_sessions=args.sessions,
                                          seed=99).per_session) for name in ("greedy", "patient")}
    logs = [one_log(world, logger, int(n), args.sessions, seed=1)
            for n in args.sizes.split(",") for logger in LOGGERS]
    uniform_true = {entry["decisions"]: entry["logger_true"]["value"] for entry in logs
                    if entry["logger"] == "uniform"}
    for entry in logs:
        values = {k: v["true"]["value"] for k, v in entry["learned"].items()}
        top = max(values, key=lambda k: values[k])
        entry["best_learned"] = top
        entry["best_vs_uniform_logger"] = round(values[top] / uniform_true[entry["decisions"]], 3)
        entry["best_vs_world_best"] = round(values[top] / max(b["value"] for b in best.values()), 3)
    doc = {"benchmark": "offline_learning", "unit": "true revenue per session (Monte Carlo, stderr)",
           "world_best_known": best, "logs": logs,
           "honesty": honesty(args.honesty_runs, 2_000) if args.honesty_runs else None,
           "big": big(args.big) if args.big else None}
    print(json.dumps(doc, indent=2))


if __name__ == "__main__":
    main()
