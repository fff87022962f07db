"""Environment speed: single-session steps/s, batched slate-steps/s, replay steps/s.

Run: python benchmarks/envs.py [--seconds S] [--world default|toy] [--profile]
(prints one JSON document).

Goals on a 2-core machine (default world, k = 3): the single session
environment at least 20,000 steps/s; the batched environment with 1,024
sessions at least 500,000 slate-steps/s. Only time inside ``env.step`` (and
the resets it needs) is counted; the trivial policy that picks the slates is
timed apart. Each figure is quoted with the same measurement over a world that
does no work (``null_world``), so the environment's own overhead and the
world's share are measured side by side in one run.
"""

from __future__ import annotations

import argparse
import cProfile
import importlib
import io
import json
import os
import platform
import pstats
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from simulator.envs import BatchSessionEnv, ReplayEnv, SessionEnv, ToyWorld, WorldLike, top_k
from simulator.logs import import_obd

ROOT = Path(__file__).resolve().parents[1]
SHARED_OBD = ROOT.parent / "shared" / "data" / "obd"
TEST_OBD = ROOT / "tests" / "data" / "obd"
SINGLE_GOAL = 20_000
BATCH_GOAL = 500_000


@dataclass(frozen=True)
class _NullState:
    rows: np.ndarray

    def take(self, rows: Any) -> _NullState:
        return _NullState(self.rows[rows])


class _NullOutcome:
    def __init__(self, n: int, k: int, state: Any) -> None:
        self.click = np.zeros((n, k))
        self.purchase = np.zeros((n, k))
        self.revenue = np.zeros((n, k))
        self.reward = np.zeros(n)
        self.expected_reward = np.zeros(n)
        self.cross_sell = np.zeros((n, k), dtype=bool)
        self.up_sell = np.zeros((n, k), dtype=bool)
        self.checkout = np.zeros(n, dtype=bool)
        self.abandon = np.zeros(n, dtype=bool)
        self.anchor_changed = np.zeros(n, dtype=bool)
        self.state = state


@dataclass(frozen=True)
class _NullObservation:
    context: np.ndarray
    eligible: np.ndarray
    required: None = None


class NullWorld:
    """Same shapes as the world, no work: measures the environment's own overhead."""

    reward_type = "click"

    def __init__(self, n_items: int, k: int, d: int, max_steps: int) -> None:
        self.n_items, self.k, self.dim_context, self.max_steps = n_items, k, d, max_steps

    def new_sessions(self, n: int, rng: np.random.Generator) -> Any:
        return _NullState(np.zeros(n))

    def replace_sessions(self, state: Any, rows: Any, rng: np.random.Generator) -> Any:
        return state

    def observe(self, state: Any, bounds: Any = None) -> Any:
        return _NullObservation(self.context(state), self.eligible(state))

    def context(self, state: Any) -> Any:
        return np.zeros((state.rows.shape[0], self.dim_context))

    def eligible(self, state: Any) -> Any:
        return np.ones((state.rows.shape[0], self.n_items), dtype=bool)

    def cross_sell(self, state: Any) -> Any:
        return np.zeros((state.rows.shape[0], self.n_items), dtype=bool)

    up_sell = cross_sell

    def expected_reward(self, state: Any, slate: Any) -> Any:
        return np.zeros(state.rows.shape[0])

    def best_slate(self, state: Any, *, rows: Any = None, seen: Any = None) -> Any:
        n = state.rows.shape[0] if rows is None else len(rows)
        return np.tile(np.arange(self.k), (n, 1)), np.zeros(n)

    def step(self, state: Any, slate: Any, rng: np.random.Generator, *, in_place: bool = False) -> Any:
        return _NullOutcome(state.rows.shape[0], self.k, state)


def make_world(name: str) -> tuple[WorldLike, str]:
    """The world to measure and what it is (the toy world when simulator.world is missing)."""
    if name == "default":
        try:
            module = importlib.import_module("simulator.world")
        except ImportError:
            name = "toy (simulator.world is not available)"
        else:
            world: WorldLike = module.World.default(seed=0)
            return world, "default"
    return ToyWorld(n_items=20, k=3), name


def bench_single(world: WorldLike, seconds: float, diagnostics: bool) -> dict[str, Any]:
    env = SessionEnv(world, diagnostics=diagnostics)
    _, info = env.reset(seed=0)
    k = env.k
    preferred = np.arange(k, dtype=np.int64)
    steps = episodes = 0
    in_env = in_policy = 0.0
    wall, cpu = time.perf_counter(), time.process_time()
    while time.perf_counter() - wall < seconds:
        for _ in range(200):
            t0 = time.perf_counter()
            mask = info["action_mask"]
            action = preferred if mask[preferred].all() else np.flatnonzero(mask)[:k]
            t1 = time.perf_counter()
            _, _, terminated, truncated, info = env.step(action)
            steps += 1
            if terminated or truncated:
                _, info = env.reset()
                episodes += 1
            t2 = time.perf_counter()
            in_policy += t1 - t0
            in_env += t2 - t1
    env_cpu = _env_cpu_seconds(time.process_time() - cpu, in_env, in_policy)
    return {"steps": steps, "episodes": episodes, "env_seconds": round(in_env, 4),
            "policy_seconds": round(in_policy, 4), "steps_per_second": round(steps / in_env, 1),
            "steps_per_cpu_second": round(steps / env_cpu, 1)}


def _env_cpu_seconds(cpu: float, in_env: float, in_policy: float) -> float:
    """CPU time of this process over a loop, apportioned to the environment by its share of wall time.

    On a shared machine wall time counts the time other jobs hold the cores;
    process CPU time does not, so the two figures bracket the truth.
    """
    return max(cpu * in_env / max(in_env + in_policy, 1e-12), 1e-12)


def bench_batch(world: WorldLike, n: int, seconds: float, diagnostics: bool) -> dict[str, Any]:
    env = BatchSessionEnv(n, world, diagnostics=diagnostics)
    _, info = env.reset(seed=0)
    scores = np.random.default_rng(0).random((n, env.n_items))
    slate_steps = calls = 0
    in_env = in_policy = 0.0
    wall, cpu = time.perf_counter(), time.process_time()
    while time.perf_counter() - wall < seconds:
        t0 = time.perf_counter()
        actions = top_k(scores, env.k, info["action_mask"])
        t1 = time.perf_counter()
        _, _, _, _, info = env.step(actions)
        t2 = time.perf_counter()
        slate_steps += n
        calls += 1
        in_policy += t1 - t0
        in_env += t2 - t1
    env_cpu = _env_cpu_seconds(time.process_time() - cpu, in_env, in_policy)
    return {"num_envs": n, "calls": calls, "slate_steps": slate_steps, "env_seconds": round(in_env, 4),
            "policy_seconds": round(in_policy, 4),
            "slate_steps_per_second": round(slate_steps / in_env, 1),
            "slate_steps_per_cpu_second": round(slate_steps / env_cpu, 1)}


def bench_replay(seconds: float) -> dict[str, Any]:
    obd = SHARED_OBD if (SHARED_OBD / "random" / "men").is_dir() else TEST_OBD
    log = import_obd(obd, policy="random", campaign="men")
    env = ReplayEnv(log)
    env.reset(seed=0)
    slate = np.arange(env.k, dtype=np.int64)
    steps = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(500):
            _, _, _, truncated, _ = env.step(slate)
            steps += 1
            if truncated:
                env.reset()
    elapsed = time.perf_counter() - start
    return {"log": str(obd.relative_to(ROOT.parent)) if obd.is_relative_to(ROOT.parent) else str(obd),
            "rows": len(log), "steps": steps, "steps_per_second": round(steps / elapsed, 1)}


def profile_single(world: WorldLike, n_steps: int = 3000, top: int = 12) -> list[dict[str, Any]]:
    env = SessionEnv(world)
    env.reset(seed=0)
    k = env.k

    def run() -> None:
        info: dict[str, Any] = {"action_mask": env.action_mask()}
        for _ in range(n_steps):
            action = np.flatnonzero(info["action_mask"])[:k]
            _, _, terminated, truncated, info = env.step(action)
            if terminated or truncated:
                _, info = env.reset()

    prof = cProfile.Profile()
    prof.runcall(run)
    stats = pstats.Stats(prof, stream=io.StringIO())
    rows = []
    for (file, line, func), (_, ncalls, tottime, cumtime, _) in stats.stats.items():  # type: ignore[attr-defined]
        rows.append({"function": f"{Path(file).name}:{line}({func})", "calls": ncalls,
                     "tottime_us_per_step": round(1e6 * tottime / n_steps, 2),
                     "cumtime_us_per_step": round(1e6 * cumtime / n_steps, 2)})
    rows.sort(key=lambda r: -r["tottime_us_per_step"])
    return rows[:top]


def _call_costs_at(world: WorldLike, n: int) -> dict[str, float]:
    rng = np.random.default_rng(0)
    state = world.new_sessions(n, rng)
    slate = top_k(np.zeros((n, world.n_items)), world.k, world.eligible(state))
    calls = {
        "new_sessions": lambda: world.new_sessions(n, rng),
        "context": lambda: world.context(state),
        "eligible": lambda: world.eligible(state),
        "cross_sell": lambda: world.cross_sell(state),
        "up_sell": lambda: world.up_sell(state),
        "expected_reward": lambda: world.expected_reward(state, slate),
        "best_slate": lambda: world.best_slate(state),
        "step": lambda: world.step(state, slate, rng),
    }
    return _median_us(calls, repeats=200 if n == 1 else 10)


def _median_us(calls: dict[str, Any], repeats: int) -> dict[str, float]:
    row = {}
    for name, fn in calls.items():
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        row[name] = round(1e6 * float(np.median(times)), 1)
    return row


def world_call_costs(world: WorldLike, sizes: tuple[int, ...] = (1, 1024)) -> dict[str, Any]:
    """Microseconds per call (median) of each world method, per batch size."""
    return {f"n={n}": _call_costs_at(world, n) for n in sizes}


def env_call_costs(world: WorldLike, sizes: tuple[int, ...] = (1, 1024)) -> dict[str, Any]:
    """Microseconds per call (median) of the calls an environment step makes, per batch size.

    ``best_slate`` runs only for the sessions whose anchor changed (a purchase)
    or that are new; here it runs over every session.
    """
    return {f"n={n}": _env_costs_at(world, n) for n in sizes}


def _env_costs_at(world: WorldLike, n: int) -> dict[str, float]:
    rng = np.random.default_rng(0)
    state = world.new_sessions(n, rng)
    seen = world.observe(state)
    slate = top_k(np.zeros((n, world.n_items)), world.k, np.asarray(seen.eligible))
    rows = np.arange(n, dtype=np.int64)
    calls = {
        "replace_sessions": lambda: world.replace_sessions(state, rows, rng),
        "observe": lambda: world.observe(state),
        "best_slate": lambda: world.best_slate(state, rows=rows, seen=seen),
        "step": lambda: world.step(state, slate, rng, in_place=True),
    }
    return _median_us(calls, repeats=200 if n == 1 else 10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0, help="time per measurement")
    parser.add_argument("--world", choices=["default", "toy"], default="default")
    parser.add_argument("--sessions", type=int, default=1024)
    parser.add_argument("--profile", action="store_true", help="add a cProfile of the single env")
    args = parser.parse_args()

    load_at_start = round(os.getloadavg()[0], 2)
    world, world_name = make_world(args.world)
    null = NullWorld(world.n_items, world.k, world.dim_context, world.max_steps)
    # untimed warm-up: the compiled kernels load from numba's disk cache (or compile, on a fresh checkout)
    bench_single(world, 0.2, diagnostics=True)
    bench_batch(world, 64, 0.2, diagnostics=True)
    single = bench_single(world, args.seconds, diagnostics=True)
    single_fast = bench_single(world, args.seconds, diagnostics=False)
    single_null = bench_single(null, args.seconds / 2, diagnostics=True)
    batch = bench_batch(world, args.sessions, args.seconds, diagnostics=True)
    batch_fast = bench_batch(world, args.sessions, args.seconds, diagnostics=False)
    batch_null = bench_batch(null, args.sessions, args.seconds / 2, diagnostics=True)
    doc: dict[str, Any] = {
        "benchmark": "envs",
        "machine": {"python": platform.python_version(), "numpy": np.__version__,
                    "processor": platform.processor() or platform.machine(),
                    "load_average_1m_at_start": load_at_start,
                    "load_average_1m_at_end": round(os.getloadavg()[0], 2)},
        "world": {"name": world_name, "n_items": world.n_items, "k": world.k,
                  "dim_context": world.dim_context, "max_steps": world.max_steps,
                  "reward_type": world.reward_type},
        "single": {
            "goal_steps_per_second": SINGLE_GOAL,
            "diagnostics": single,
            "no_diagnostics": single_fast,
            "null_world": single_null,
            "meets_goal": single["steps_per_second"] >= SINGLE_GOAL,
            "meets_goal_without_diagnostics": single_fast["steps_per_second"] >= SINGLE_GOAL,
            "world_share_of_step_time": round(
                1.0 - single_null["env_seconds"] / single_null["steps"]
                / (single["env_seconds"] / single["steps"]), 3),
        },
        "batch": {
            "goal_slate_steps_per_second": BATCH_GOAL,
            "diagnostics": batch,
            "no_diagnostics": batch_fast,
            "null_world": batch_null,
            "meets_goal": batch["slate_steps_per_second"] >= BATCH_GOAL,
            "meets_goal_without_diagnostics": batch_fast["slate_steps_per_second"] >= BATCH_GOAL,
            "batch_over_single_ratio": round(batch["slate_steps_per_second"]
                                             / single["steps_per_second"], 1),
        },
        "replay_obd_men": bench_replay(args.seconds),
        "world_call_us_median": world_call_costs(world),
        "env_call_us_median": env_call_costs(world),
    }
    if args.profile:
        doc["single"]["profile_top"] = profile_single(world)
    print(json.dumps(doc, indent=2))


if __name__ == "__main__":
    main()
