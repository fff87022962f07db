"""Estimator selection against the world's exact truth: is the recommended estimate the one to trust?

On ``--logs`` synthetic logs of the default world (split evenly over four logging
policies: uniform, softmax, epsilon-greedy, a hot softmax), every target policy
is estimated by every per-position estimator and :func:`bandits.ope.recommend`
picks one or says the log cannot support an estimate. The truth of a target on a
log is exact: the mean over the logged decisions of
``world.expected_reward_dist(state, action_dist)`` (the quantity the estimators
estimate).

Goals (issue 19):

* on the pairs the recommendation supports, the recommended estimator's mean
  absolute error within 1.2x of the best estimator's in hindsight (the single
  estimator with the smallest mean absolute error over those pairs); the ratio to
  the per-pair oracle (the best estimator of each pair) is reported beside it;
* "cannot support" said for every pair whose best estimator in hindsight is off
  by more than 50% (the fraction of those pairs flagged).

Prints one JSON document. ``python benchmarks/estimator_selection.py [--logs 200]
[--sessions 500] [--n-bootstrap 0] [--world-seed 0]``.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np

from bandits.ope import estimate_all, recommend
from simulator.rollout import Step, rollout
from simulator.world import LogRecorder, World, WorldPolicy, make_logging_policy

LOGGERS: dict[str, tuple[str, dict[str, Any]]] = {
    "uniform": ("uniform", {}),
    "softmax": ("softmax", {}),
    "epsilon_greedy_0.2": ("epsilon_greedy", {"epsilon": 0.2}),
    "softmax_t0.3": ("softmax", {"temperature": 0.3}),
}
TARGETS: dict[str, tuple[str, dict[str, Any]]] = {
    "greedy": ("greedy", {}),
    "patient": ("patient", {}),
    "softmax_t0.05": ("softmax", {"temperature": 0.05}),
    "softmax": ("softmax", {}),
    "epsilon_greedy_0.3_attraction": ("epsilon_greedy", {"epsilon": 0.3, "score": "attraction"}),
}


class _TruthRecorder(LogRecorder):
    """Logs the decisions and keeps each target's action distribution and exact expected reward."""

    def __init__(self, world: World, targets: dict[str, WorldPolicy]) -> None:
        super().__init__(world)
        self.targets = targets
        self.dists: dict[str, list[np.ndarray]] = {k: [] for k in targets}
        self.truths: dict[str, list[np.ndarray]] = {k: [] for k in targets}

    def __call__(self, step: Step) -> None:
        for name, policy in self.targets.items():
            dist = policy.action_dist(self.world, step.state)
            self.dists[name].append(dist)
            self.truths[name].append(self.world.expected_reward_dist(step.state, dist))
        super().__call__(step)


def run_log(world: World, logger_name: str, seed: int, sessions: int, n_bootstrap: int) -> list[dict[str, Any]]:
    """Every target on one log: its truth, every estimate and the recommendation."""
    kind, params = LOGGERS[logger_name]
    logging_policy = make_logging_policy(kind, **params)
    targets = {name: make_logging_policy(k, **p) for name, (k, p) in TARGETS.items()}
    rec = _TruthRecorder(world, targets)
    rollout(world, logging_policy, sessions, np.random.default_rng([seed, 17]), on_step=rec)
    log = rec.to_log(logging_policy.describe(), by_session=False)
    rows = []
    for name in targets:
        dist = np.concatenate(rec.dists[name])
        truth = float(np.concatenate(rec.truths[name]).mean())
        estimates = estimate_all(log, dist, n_bootstrap=n_bootstrap, seed=seed,
                                 interval="bootstrap" if n_bootstrap > 1 else "normal")
        r = recommend(log, dist, estimates, policy=name)
        errors = {e.estimator: abs(e.value - truth) for e in estimates if e.estimator in r.family}
        rows.append({"logger": logger_name, "seed": seed, "target": name, "n": log.n_rounds, "truth": truth,
                     "errors": errors, "recommended": r.estimator, "selected": r.selected,
                     "supported": r.supported, "ess": r.diagnostics.ess})
    return rows


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The selection figures (see the module doc) from the per-pair rows."""
    names = sorted(set.intersection(*(set(r["errors"]) for r in rows)))
    best = np.array([min(r["errors"].values()) / r["truth"] for r in rows])
    hard = best > 0.5
    supported = np.array([r["supported"] for r in rows])
    out: dict[str, Any] = {
        "pairs": len(rows),
        "supported_pairs": int(supported.sum()),
        "hard_pairs": int(hard.sum()),
        "hard_pairs_flagged_cannot_support": float((~supported[hard]).mean()) if hard.any() else None,
        "goal_flagged": 1.0,
    }
    if supported.any():
        sup = [r for r, s in zip(rows, supported, strict=True) if s]
        rec = np.array([r["errors"][r["recommended"]] for r in sup])
        oracle = np.array([min(r["errors"].values()) for r in sup])
        per_estimator = {n: float(np.mean([r["errors"][n] for r in sup])) for n in names}
        best_name = min(per_estimator, key=per_estimator.__getitem__)
        ratio = float(rec.mean() / per_estimator[best_name])
        out |= {
            "recommended_mean_abs_error": float(rec.mean()),
            "recommended_mean_relative_error": float(np.mean(rec / np.array([r["truth"] for r in sup]))),
            "best_estimator_in_hindsight": best_name,
            "best_estimator_mean_abs_error": per_estimator[best_name],
            "ratio_to_best_estimator": ratio,
            "goal_ratio": 1.2,
            "meets_ratio_goal": ratio <= 1.2,
            "ratio_to_per_pair_oracle": float(rec.mean() / oracle.mean()),
            "mean_abs_error_by_estimator_on_supported": per_estimator,
            "recommended_counts": {n: int(sum(r["recommended"] == n for r in sup)) for n in names
                                   if any(r["recommended"] == n for r in sup)},
        }
    out["meets_flag_goal"] = out["hard_pairs_flagged_cannot_support"] in (None, 1.0)
    return out


def main() -> None:
    """Run the benchmark and print its JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logs", type=int, default=200, help="logs in all, split over the 4 loggers")
    parser.add_argument("--sessions", type=int, default=500, help="sessions per log")
    parser.add_argument("--n-bootstrap", type=int, default=0, help="bootstrap resamples (0: normal intervals)")
    parser.add_argument("--world-seed", type=int, default=0)
    args = parser.parse_args()
    world = World.default(args.world_seed)
    start = time.perf_counter()
    rows: list[dict[str, Any]] = []
    names = list(LOGGERS)
    for i in range(args.logs):
        rows += run_log(world, names[i % len(names)], i, args.sessions, args.n_bootstrap)
    out = {"benchmark": "estimator_selection", "world": f"default (seed {args.world_seed})", "logs": args.logs,
           "sessions_per_log": args.sessions, "n_bootstrap": args.n_bootstrap, "loggers": names,
           "targets": list(TARGETS), "decisions_per_log_mean": float(np.mean([r["n"] for r in rows])),
           "seconds": round(time.perf_counter() - start, 1)}
    out |= summarise(rows)
    by_logger = {}
    for name in names:
        part = [r for r in rows if r["logger"] == name]
        by_logger[name] = {"pairs": len(part), "supported": int(sum(r["supported"] for r in part))}
    out["by_logger"] = by_logger
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
