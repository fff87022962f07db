"""Benchmark: generate 1,000,000 logged decisions (k = 3) in the default world.

Prints one JSON document. Goal: under 10 s on a 2-core machine for the uniform
logging policy (exact pscore / pscore_item recorded). Also measures the
epsilon-greedy logger on a smaller run, quoted as a ratio to uniform measured
side by side.
"""

from __future__ import annotations

import json
import math
import platform
import time

import numpy as np

from simulator.world import World, generate_log, make_logging_policy

TARGET = 1_000_000


def main() -> None:
    world = World.default(seed=0)
    uniform = make_logging_policy("uniform")
    pilot = generate_log(world, uniform, 5_000, seed=123)
    mean_len = pilot.n_rounds / 5_000
    n_sessions = math.ceil(TARGET / mean_len)
    t0 = time.perf_counter()
    log = generate_log(world, uniform, n_sessions, seed=0)
    seconds = time.perf_counter() - t0
    per_second = log.n_rounds / seconds
    eps = make_logging_policy("epsilon_greedy", epsilon=0.1)
    small = 20_000
    t1 = time.perf_counter()
    log_u = generate_log(world, uniform, small, seed=1)
    t_u = time.perf_counter() - t1
    t2 = time.perf_counter()
    log_e = generate_log(world, eps, small, seed=1)
    t_e = time.perf_counter() - t2
    doc = {
        "benchmark": "world.generate_log",
        "world": "World.default(seed=0): 300 items, 12 categories, k=3, max_steps=20",
        "policy": "uniform",
        "sessions": n_sessions,
        "decisions": log.n_rounds,
        "seconds": round(seconds, 3),
        "decisions_per_second": round(per_second),
        "seconds_per_million_decisions": round(1e6 / per_second, 3),
        "goal_seconds": 10.0,
        "meets_goal": bool(1e6 / per_second < 10.0),
        "mean_session_length": round(float(np.bincount(log.session_id).mean()), 3),
        "epsilon_greedy_vs_uniform_time_per_decision": round(
            (t_e / log_e.n_rounds) / (t_u / log_u.n_rounds), 3),
        "machine": {"python": platform.python_version(), "processor": platform.machine()},
    }
    print(json.dumps(doc, indent=2))


if __name__ == "__main__":
    main()
