"""Coverage, bias, width and ranking accuracy of OPE on the world, per estimator, estimand and log size.

For each world (``default``; ``small``: 4 x 5 items, 8 steps; ``misspecified``: the
default world with strong anchor-relative attraction, which the additive reward
models cannot represent) and each log size, ``--logs`` logs are drawn under an
exploring logger (the greedy slate with probability 0.45, the patient slate 0.45,
a uniform slate 0.1; exact propensities). Two deterministic targets are scored,
``greedy`` and ``patient`` (simulator.world.policies):

* estimand ``session``: pdis, wpdis, dr, wdr (bandits.ope.session) against the
  target's value per session (``policy_value``, 20,000 sessions, Monte Carlo);
* estimand ``decision``: ips, dr, dm, clipped-ips (bandits.ope.estimate_all) against
  the exact expected reward of the target's slate at the logged states.

Ranking accuracy: share of logs whose estimates order greedy and patient as their
true *session* values do. Run: ``python benchmarks/ope_coverage.py [--logs 200]``.
Prints one JSON document.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from typing import Any

import numpy as np

from bandits.ope import estimate_all, estimate_sessions
from simulator.logs import LogMetadata, SlateLog
from simulator.world import World, WorldConfig, make_logging_policy, policy_value
from simulator.world.policies import SCORES, uniform_propensities, uniform_sample

TARGETS = {"greedy": "value", "patient": "patient"}
MIX = (0.45, 0.45, 0.1)  # greedy, patient, uniform
SESSION = ["pdis", "wpdis", "dr", "wdr"]
DECISION = ["ips", "dr", "dm", "clipped-ips"]


def make_world(name: str) -> World:
    if name == "default":
        return World.default(seed=0)
    if name == "small":
        return World(WorldConfig(n_categories=4, items_per_category=5, max_steps=8), seed=0)
    if name == "misspecified":
        return World.default(seed=0).with_config(cross_bonus=2.0, up_bonus=2.5, other_bonus=-2.0)
    raise SystemExit(f"unknown world {name!r}")


def explore_log(world: World, n_sessions: int, seed: int) -> tuple[SlateLog, dict[str, np.ndarray],
                                                                    dict[str, np.ndarray]]:
    """A log under the mixture logger, each target's slate at every logged state, and its exact reward."""
    rng = np.random.default_rng(seed)
    state = world.new_sessions(n_sessions, rng)
    rows: dict[str, list[Any]] = {k: [] for k in ("context", "slate", "reward", "pscore", "pscore_item",
                                                   "session", "step")}
    tslate: dict[str, list[Any]] = {t: [] for t in TARGETS}
    tvalue: dict[str, list[Any]] = {t: [] for t in TARGETS}
    sid = np.arange(n_sessions)
    while state.alive.any():
        live = np.flatnonzero(state.alive)
        s = state.take(live)
        elig, req = world.eligible(s), world.required(s)
        slates = {t: world.best_slate_for(s, SCORES[sc](world, s))[0] for t, sc in TARGETS.items()}
        u = uniform_sample(rng, elig, req, world.k)
        pick = rng.choice(3, live.size, p=MIX)
        slate = np.where((pick == 0)[:, None], slates["greedy"], np.where((pick == 1)[:, None],
                                                                            slates["patient"], u))
        u_ps, u_item = uniform_propensities(slate, elig, req)
        same_g = (slate == slates["greedy"]).all(axis=1)
        same_p = (slate == slates["patient"]).all(axis=1)
        pscore = MIX[0] * same_g + MIX[1] * same_p + MIX[2] * u_ps
        item = MIX[0] * (slate == slates["greedy"]) + MIX[1] * (slate == slates["patient"]) + MIX[2] * u_item
        rows["context"].append(world.context(s))
        rows["slate"].append(slate)
        rows["pscore"].append(pscore)
        rows["pscore_item"].append(item)
        rows["session"].append(sid[live])
        rows["step"].append(s.step)
        for t in TARGETS:
            tslate[t].append(slates[t])
            tvalue[t].append(world.expected_reward(s, slates[t]))
        full = np.zeros((state.n, world.k), dtype=np.int64)
        full[live] = slate
        out = world.step(state, full, rng)
        rr = out.click if world.reward_type == "click" else out.purchase if world.reward_type == "purchase" \
            else out.revenue
        rows["reward"].append(rr[live])
        state = out.state
    cat = {k: np.concatenate(v) for k, v in rows.items()}
    log = SlateLog.from_arrays(context=cat["context"], slate=cat["slate"], reward=cat["reward"],
                               pscore=cat["pscore"], pscore_item=cat["pscore_item"], catalog=world.catalog,
                               metadata=LogMetadata(logging_policy="mixture", reward_type=world.reward_type),
                               session_id=cat["session"], step=cat["step"])
    return log, {t: np.concatenate(v) for t, v in tslate.items()}, {t: np.concatenate(v)
                                                                    for t, v in tvalue.items()}


def one_hot(slate: np.ndarray, n_items: int) -> np.ndarray:
    n, k = slate.shape
    dist = np.zeros((n, n_items, k))
    dist[np.arange(n)[:, None], slate, np.arange(k)[None, :]] = 1.0
    return dist


def summarise(values: list[float], lows: list[float], highs: list[float], truths: list[float]) -> dict[str, Any]:
    v, lo, hi, tr = (np.asarray(a, dtype=float) for a in (values, lows, highs, truths))
    ok = np.isfinite(v)
    if not ok.any():
        return {"supported": 0.0, "coverage": None, "bias": None, "relative_bias": None, "width": None}
    v, lo, hi, tr = v[ok], lo[ok], hi[ok], tr[ok]
    return {"supported": float(ok.mean()), "coverage": float(((lo <= tr) & (tr <= hi)).mean()),
            "bias": float((v - tr).mean()), "relative_bias": float((v - tr).mean() / np.abs(tr).mean()),
            "width": float((hi - lo).mean())}


def run_cell(world: World, n_sessions: int, n_logs: int, truth_session: dict[str, float],
             n_bootstrap: int) -> dict[str, Any]:
    true_order = truth_session["patient"] > truth_session["greedy"]
    acc: dict[tuple[str, str, str], dict[str, list[float]]] = {}
    ranked: dict[tuple[str, str], list[bool]] = {}
    for s in range(n_logs):
        log, tslate, tvalue = explore_log(world, n_sessions, seed=1000 + s)
        est: dict[tuple[str, str], dict[str, float]] = {}
        for t in TARGETS:
            dist = one_hot(tslate[t], world.n_items)
            eval_ps = (np.asarray(log.slate) == tslate[t]).all(axis=1).astype(float)
            for e in estimate_sessions(log, dist, eval_pscore=eval_ps, estimators=SESSION,
                                       n_bootstrap=n_bootstrap, seed=s):
                cell = acc.setdefault(("session", e.estimator, t), {"v": [], "lo": [], "hi": [], "tr": []})
                for key, val in zip(["v", "lo", "hi", "tr"], (e.value, e.low, e.high, truth_session[t]),
                                    strict=True):
                    cell[key].append(val)
                est.setdefault(("session", e.estimator), {})[t] = e.value
            truth_dec = float(tvalue[t].mean())
            for e in estimate_all(log, dist, estimators=DECISION, n_bootstrap=n_bootstrap, seed=s):
                cell = acc.setdefault(("decision", e.estimator, t), {"v": [], "lo": [], "hi": [], "tr": []})
                for key, val in zip(["v", "lo", "hi", "tr"], (e.value, e.low, e.high, truth_dec), strict=True):
                    cell[key].append(val)
                est.setdefault(("decision", e.estimator), {})[t] = e.value
        for key, vals in est.items():
            if all(math.isfinite(vals[t]) for t in TARGETS):
                ranked.setdefault(key, []).append((vals["patient"] > vals["greedy"]) == true_order)
            else:
                ranked.setdefault(key, [])
    rows = []
    for (estimand, name, target), c in sorted(acc.items()):
        r = ranked.get((estimand, name), [])
        rows.append({"estimand": estimand, "estimator": name, "target": target,
                     **summarise(c["v"], c["lo"], c["hi"], c["tr"]),
                     "ranking_accuracy": float(np.mean(r)) if r else None,
                     "ranked_logs": len(r)})
    return {"rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--logs", type=int, default=200, help="logs per cell")
    parser.add_argument("--sizes", default="2000", help="comma-separated sessions per log")
    parser.add_argument("--worlds", default="default,small,misspecified")
    parser.add_argument("--n-bootstrap", type=int, default=200)
    parser.add_argument("--truth-sessions", type=int, default=20_000)
    args = parser.parse_args()
    out: dict[str, Any] = {"logs_per_cell": args.logs, "n_bootstrap": args.n_bootstrap, "logger": {
        "greedy": MIX[0], "patient": MIX[1], "uniform": MIX[2]}, "worlds": []}
    for wname in args.worlds.split(","):
        world = make_world(wname)
        truth = {}
        pv: dict[str, Any] = {}
        for t in TARGETS:
            value = policy_value(world, make_logging_policy(t), n_sessions=args.truth_sessions, seed=1)
            truth[t] = value.per_session.value
            pv[t] = {"per_session": value.per_session.value, "per_session_stderr": value.per_session.stderr,
                     "per_decision": value.per_decision.value}
        for size in (int(x) for x in args.sizes.split(",")):
            start = time.perf_counter()
            cell = run_cell(world, size, args.logs, truth, args.n_bootstrap)
            out["worlds"].append({"world": wname, "n_sessions": size, "truth": pv,
                                  "seconds": round(time.perf_counter() - start, 1), **cell})
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
