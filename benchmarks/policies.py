"""Every registered policy, one event at a time and in batches, beside the same algorithm in MABWiser and VW.

The shared problem of ``benchmarks/bandits_vs_peers.py``: 80 items, contexts of
dimension 20, logistic clicks (rates mostly 1-5%), k = 1 because the peers
choose single actions, one BLAS thread (threadpoolctl). Per policy:

* ``rounds_per_s``: our public one-event API, ``select_one(x)`` then
  ``update_one(x, slate, reward)``, every check and propensity included, played
  in ``--blocks`` blocks of ``--block-seconds`` each that alternate with the
  peers' blocks (the order flips every block), so a change in the machine's load
  falls on all contenders alike. Each contender plays the problem's rounds in
  order from the first, as far as its time allows.
* ``batch_decisions_per_s``: ``select`` on 1,000 contexts after those rounds
  (median of 7 calls after 2 warm-up calls).
* ``fit_s``, for a policy that refits a model on a schedule (a ``retrain`` method,
  neural-linear TS): one refit after those rounds.
* the same algorithm in MABWiser (``predict`` then ``partial_fit``) and, where it
  has one, Vowpal Wabbit (``--cb_explore``: its epsilon-greedy), and our speed
  as a multiple of theirs.

Prints one JSON document. Anchored policies (bought together, item similarity,
up-sell) read an anchor item from the context; they play anchors drawn by their
``example_context`` with the problem's clicks. PPO is not registered by
``import bandits`` and is not measured here.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bandits_vs_peers import DIM, N_ITEMS, make_problem

import bandits  # noqa: F401 - registers every policy
from bandits import registered_policies

EPSILON = 0.1
#: Constructor arguments on the shared problem (the rest are each policy's defaults).
PARAMS: dict[str, dict[str, Any]] = {
    "epsilon_greedy": {"epsilon": EPSILON},
    "ridge_epsilon_greedy": {"epsilon": EPSILON},
    "linucb": {"alpha": 0.05},
    "linear_ts": {"v": 0.02},
    "softmax": {"temperature": 0.01},
    # its own defaults, not the contract suite's tiny example
    "neural_linear_ts": {"hidden": [32, 32], "epochs": 10, "batch_size": 64, "retrain_every": 500,
                         "buffer_capacity": 5_000},
}
#: MABWiser's same algorithm: (learning policy name, its arguments, uses contexts).
MABWISER: dict[str, tuple[str, dict[str, Any], bool]] = {
    "uniform": ("Random", {}, False),
    "epsilon_greedy": ("EpsilonGreedy", {"epsilon": EPSILON}, False),
    "ucb1": ("UCB1", {"alpha": 1.0}, False),
    "softmax": ("Softmax", {"tau": 0.01}, False),
    "bernoulli_ts": ("ThompsonSampling", {}, False),
    "linucb": ("LinUCB", {"alpha": 0.05, "l2_lambda": 1.0}, True),
    "linear_ts": ("LinTS", {"alpha": 0.02, "l2_lambda": 1.0}, True),
    "ridge_epsilon_greedy": ("LinGreedy", {"epsilon": EPSILON, "l2_lambda": 1.0}, True),
}
#: Vowpal Wabbit's same algorithm: per-action linear costs with epsilon-greedy exploration.
VW = {"ridge_epsilon_greedy": f"--cb_explore {N_ITEMS} --epsilon {EPSILON}"}


class Ours:
    """Our one-event API from round 0 on."""

    def __init__(self, policy: Any, ctx: np.ndarray, problem: dict[str, np.ndarray]) -> None:
        self.policy, self.ctx, self.problem, self.t, self.seconds = policy, ctx, problem, 0, 0.0

    def play(self, budget: float) -> None:
        """Play rounds in order for about ``budget`` seconds."""
        policy, ctx, prob, u = self.policy, self.ctx, self.problem["prob"], self.problem["u_click"]
        start = time.perf_counter()
        t, end = self.t, min(self.ctx.shape[0], self.t + 1_000_000)
        while t < end:
            for t in range(t, min(end, t + 64)):  # noqa: B020 - check the clock every 64 rounds
                decision = policy.select_one(ctx[t])
                a = int(decision.slate[0, 0])
                policy.update_one(ctx[t], decision.slate[0], np.array([1.0 if u[t] < prob[t, a] else 0.0]))
            t += 1
            if time.perf_counter() - start > budget:
                break
        self.seconds += time.perf_counter() - start
        self.t = t


class MabWiser:
    """MABWiser's predict-then-partial_fit loop from round 0 on."""

    def __init__(self, name: str, params: dict[str, Any], contextual: bool, problem: dict[str, np.ndarray],
                 seed: int) -> None:
        from mabwiser.mab import MAB, LearningPolicy

        self.problem, self.contextual, self.t, self.seconds = problem, contextual, 1, 0.0
        self.mab = MAB(arms=list(range(N_ITEMS)), learning_policy=getattr(LearningPolicy, name)(**params),
                       seed=seed)
        x, prob, u = problem["x"], problem["prob"], problem["u_click"]
        # MABWiser needs a first fit: round 0 with the first arm.
        reward = [1.0 if u[0] < prob[0, 0] else 0.0]
        if contextual:
            self.mab.fit(decisions=[0], rewards=reward, contexts=x[:1])
        else:
            self.mab.fit(decisions=[0], rewards=reward)

    def play(self, budget: float) -> None:
        """Play rounds in order for about ``budget`` seconds."""
        x, prob, u = self.problem["x"], self.problem["prob"], self.problem["u_click"]
        mab, t = self.mab, self.t
        start = time.perf_counter()
        while t < x.shape[0] and time.perf_counter() - start < budget:
            if self.contextual:
                ctx = x[t:t + 1]
                a = int(mab.predict(ctx))
                mab.partial_fit(decisions=[a], rewards=[1.0 if u[t] < prob[t, a] else 0.0], contexts=ctx)
            else:
                a = int(mab.predict())
                mab.partial_fit(decisions=[a], rewards=[1.0 if u[t] < prob[t, a] else 0.0])
            t += 1
        self.seconds += time.perf_counter() - start
        self.t = t


class VowpalWabbit:
    """Vowpal Wabbit's predict/learn loop from round 0 on (text examples built before timing)."""

    def __init__(self, args: str, problem: dict[str, np.ndarray], n_rounds: int) -> None:
        import vowpalwabbit

        self.problem, self.t, self.seconds = problem, 0, 0.0
        self.lines = ["|s " + " ".join(f"f{j}:{v:.6g}" for j, v in enumerate(row)) for row in problem["x"][:n_rounds]]
        self.vw = vowpalwabbit.Workspace(args + " --quiet")

    def play(self, budget: float) -> None:
        """Play rounds in order for about ``budget`` seconds."""
        prob, u, ue = self.problem["prob"], self.problem["u_click"], self.problem["u_explore"]
        vw, lines, t = self.vw, self.lines, self.t
        start = time.perf_counter()
        while t < len(lines) and time.perf_counter() - start < budget:
            pmf = vw.predict(lines[t])
            cum = np.cumsum(pmf)
            a = int(min(np.searchsorted(cum, ue[t] * cum[-1], side="right"), len(pmf) - 1))
            vw.learn(f"{a + 1}:{-1.0 if u[t] < prob[t, a] else 0.0}:{pmf[a]} {lines[t]}")
            t += 1
        self.seconds += time.perf_counter() - start
        self.t = t


def batch_speed(policy: Any, ctx: np.ndarray) -> float:
    """Decisions per second of ``select`` on ``ctx``: median of 7 calls after 2 warm-up calls."""
    for _ in range(2):
        policy.select(ctx)
    times = []
    for _ in range(7):
        start = time.perf_counter()
        policy.select(ctx)
        times.append(time.perf_counter() - start)
    return ctx.shape[0] / float(np.median(times))


def measure(name: str, problem: dict[str, np.ndarray], args: argparse.Namespace) -> dict[str, Any]:
    cls = registered_policies()[name]
    rng = np.random.default_rng(args.seed)
    policy = cls.example(N_ITEMS, 1, DIM, seed=args.seed)
    if name in PARAMS:
        policy = cls(**{**policy.get_params(), **PARAMS[name]})
    anchored = "anchor_column" in policy.get_params() or name == "upsell"
    ctx = cls.example_context(rng, problem["x"].shape[0], DIM, N_ITEMS) if anchored else problem["x"]
    # warm-up (compiles kernels on a first run); a clone then plays the timed rounds from scratch
    warm = policy.clone()
    Ours(warm, ctx, problem).play(0.2)
    players: dict[str, Any] = {"ours": Ours(policy, ctx, problem)}
    if name in MABWISER:
        players["mabwiser"] = MabWiser(*MABWISER[name], problem, args.seed)
    if name in VW:
        players["vw"] = VowpalWabbit(VW[name], problem, problem["x"].shape[0])
    order = list(players)
    for block in range(args.blocks):
        for key in order if block % 2 == 0 else order[::-1]:
            players[key].play(args.block_seconds)
    ours = players["ours"]
    out: dict[str, Any] = {"policy": name, "params": {k: v for k, v in PARAMS.get(name, {}).items()},
                           "rounds_run": ours.t, "rounds_per_s": round(ours.t / ours.seconds, 1),
                           "batch_decisions_per_s": round(batch_speed(policy, ctx[:args.batch]), 1)}
    if hasattr(policy, "retrain"):  # a policy that refits a model on a schedule: time one refit
        start = time.perf_counter()
        policy.retrain()
        out["fit_s"] = round(time.perf_counter() - start, 3)
    for key, label in (("mabwiser", "mabwiser"), ("vw", "vw")):
        if key in players:
            peer = players[key]
            rate = peer.t / peer.seconds
            out[f"{label}_algorithm"] = (MABWISER[name][0] if key == "mabwiser" else VW[name])
            out[f"{label}_rounds_run"] = peer.t
            out[f"{label}_rounds_per_s"] = round(rate, 1)
            out[f"speedup_vs_{label}"] = round(ours.t / ours.seconds / rate, 1)
    out["goals_met"] = {
        "one_event_20000_rounds_per_s": out["rounds_per_s"] >= 20_000,
        "batch_100000_decisions_per_s": out["batch_decisions_per_s"] >= 100_000,
        **({"10x_mabwiser": out["speedup_vs_mabwiser"] >= 10} if "mabwiser" in players else {}),
    }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=200_000, help="rounds of the shared problem (an upper bound)")
    parser.add_argument("--blocks", type=int, default=4, help="alternating blocks per contender")
    parser.add_argument("--block-seconds", type=float, default=1.5, help="time of one contender's block")
    parser.add_argument("--batch", type=int, default=1_000, help="contexts per batched select")
    parser.add_argument("--policies", nargs="*", default=None, help="registered names (default: every one)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    problem = make_problem(args.rounds, args.seed)
    names = args.policies or sorted(registered_policies())
    with threadpool_limits(limits=1):
        results = [measure(name, problem, args) for name in names]
    doc = {
        "benchmark": "policies",
        "problem": {"items": N_ITEMS, "dim_context": DIM, "k": 1, "blas_threads": 1,
                    "blocks": args.blocks, "block_seconds": args.block_seconds, "batch": args.batch},
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "results": results,
    }
    json.dump(doc, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
