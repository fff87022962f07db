"""Our LinUCB and linear Thompson sampling against MABWiser and Vowpal Wabbit, on one shared problem.

The problem: 80 items, contexts of dimension 20 (a constant plus 19 standard
normal features), logistic click model ``P(click | x, i) = sigmoid(x . theta_i)``
with click rates mostly between 1% and 5%, Bernoulli clicks. Every contender
plays the same contexts and the same uniform draws (a click is ``u[t] < P``),
one round at a time: decide, then learn from that round. Reported per
contender: rounds per second and the expected click rate ``P(click | x_t, a_t)``
of its choices. A slow peer plays a prefix of the rounds (``--peer-seconds``)
and its rounds per second are measured on that prefix; our click rate on the
same prefix is reported next to it. Our one-event API and VW's fastest
configuration (``--cb_explore``) play the rounds in alternating blocks
(``--blocks``), so a change in the shared machine's load falls on both alike;
their per-block speed ratios are reported beside the totals.

Also: batched scoring speed of our LinUCB (``select`` on 1,000 contexts x 80 items).

Prints one JSON document. ``--rounds`` runs a shorter problem for a quick check.
"""

from __future__ import annotations

import os

# One BLAS thread: on a shared 2-core machine a second BLAS thread competing with other
# processes makes timings swing by 10x. Every contender runs under the same setting;
# set OPENBLAS_NUM_THREADS yourself to override.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

from bandits import Feedback  # noqa: E402
from bandits.policies import LinearTS, LinUCB  # noqa: E402

N_ITEMS = 80
DIM = 20


def make_problem(n_rounds: int, seed: int) -> dict[str, np.ndarray]:
    """Contexts (R, d), click probabilities (R, n_items) and shared uniform draws (R,) x 2."""
    rng = np.random.default_rng(seed)
    theta = np.empty((N_ITEMS, DIM))
    theta[:, 0] = -3.6 + 0.35 * rng.standard_normal(N_ITEMS)
    theta[:, 1:] = rng.standard_normal((N_ITEMS, DIM - 1)) * 0.6 / np.sqrt(DIM - 1)
    x = np.empty((n_rounds, DIM))
    x[:, 0] = 1.0
    x[:, 1:] = rng.standard_normal((n_rounds, DIM - 1))
    prob = 1.0 / (1.0 + np.exp(-(x @ theta.T)))
    return {"x": x, "prob": prob, "u_click": rng.random(n_rounds), "u_explore": rng.random(n_rounds)}


def summarise(name: str, arms: np.ndarray, seconds: float, problem: dict[str, np.ndarray],
              total_rounds: int, note: str = "") -> dict[str, Any]:
    played = arms.shape[0]
    prob = problem["prob"][:played]
    rate = prob[np.arange(played), arms]
    last = max(1, min(10_000, played // 10))
    out: dict[str, Any] = {
        "name": name,
        "rounds_run": played,
        "seconds": round(seconds, 3),
        "rounds_per_s": round(played / seconds, 1),
        "expected_click_rate": round(float(rate.mean()), 5),
        f"expected_click_rate_last_{last}": round(float(rate[-last:].mean()), 5),
        "extrapolated": played < total_rounds,
    }
    if played < total_rounds:
        out["note"] = (f"ran {played} of {total_rounds} rounds (time budget); rounds_per_s is measured "
                       "on those rounds and the click rates cover only them. " + note).strip()
    elif note:
        out["note"] = note
    return out


class OursOneEvent:
    """The one-event API: select_one(context (d,)) then update_one(context, slate (k,), reward (k,))."""

    def __init__(self, policy: Any, problem: dict[str, np.ndarray], n_rounds: int) -> None:
        self.policy, self.problem = policy, problem
        self.arms = np.empty(n_rounds, dtype=np.int64)

    def play(self, lo: int, hi: int) -> None:
        """Rounds ``lo`` to ``hi - 1``, in order."""
        x, prob, u = self.problem["x"], self.problem["prob"], self.problem["u_click"]
        policy, arms = self.policy, self.arms
        for t in range(lo, hi):
            decision = policy.select_one(x[t])
            a = int(decision.slate[0, 0])
            policy.update_one(x[t], decision.slate[0], np.array([1.0 if u[t] < prob[t, a] else 0.0]))
            arms[t] = a


class VWActions:
    """Vowpal Wabbit ``--cb_explore <n_items>``: predict a pmf, sample an action, learn its cost."""

    def __init__(self, problem: dict[str, np.ndarray], n_rounds: int, args: str) -> None:
        import vowpalwabbit

        self.problem = problem
        # Text is VW's input format; it is built before timing so VW is timed on its cheapest path.
        self.lines = ["|s " + " ".join(f"f{j}:{v:.6g}" for j, v in enumerate(row)) for row in problem["x"][:n_rounds]]
        self.vw = vowpalwabbit.Workspace(args + " --quiet")
        self.arms = np.empty(n_rounds, dtype=np.int64)

    def play(self, lo: int, hi: int) -> None:
        """Rounds ``lo`` to ``hi - 1``, in order."""
        prob, u, ue = self.problem["prob"], self.problem["u_click"], self.problem["u_explore"]
        vw, lines, arms = self.vw, self.lines, self.arms
        for t in range(lo, hi):
            pmf = vw.predict(lines[t])
            a = _sample(pmf, ue[t])
            cost = -1.0 if u[t] < prob[t, a] else 0.0
            vw.learn(f"{a + 1}:{cost}:{pmf[a]} {lines[t]}")
            arms[t] = a


def interleaved(players: dict[str, Any], n_rounds: int, chunks: int) -> dict[str, dict[str, Any]]:
    """Play every player over all rounds in ``chunks`` blocks, alternating players block by block.

    The players take turns (the order flips every block), so a change in the machine's
    load falls on all of them alike. Returns per player: arms (R,), total seconds, and
    the seconds of each block.
    """
    bounds = np.linspace(0, n_rounds, chunks + 1).astype(int)
    times: dict[str, list[float]] = {name: [] for name in players}
    names = list(players)
    for c in range(chunks):
        for name in names if c % 2 == 0 else names[::-1]:
            start = time.perf_counter()
            players[name].play(int(bounds[c]), int(bounds[c + 1]))
            times[name].append(time.perf_counter() - start)
    return {name: {"arms": players[name].arms, "seconds": float(sum(times[name])), "block_seconds": times[name]}
            for name in players}


def run_ours(policy: Any, problem: dict[str, np.ndarray], n_rounds: int) -> tuple[np.ndarray, float]:
    """The batch API with batches of one: select(context (1, d)) then update(Feedback)."""
    x, prob, u = problem["x"], problem["prob"], problem["u_click"]
    arms = np.empty(n_rounds, dtype=np.int64)
    start = time.perf_counter()
    for t in range(n_rounds):
        ctx = x[t:t + 1]
        decision = policy.select(ctx)
        a = int(decision.slate[0, 0])
        reward = np.array([[1.0 if u[t] < prob[t, a] else 0.0]])
        policy.update(Feedback(ctx, decision.slate, reward, decision.pscore))
        arms[t] = a
    return arms, time.perf_counter() - start


def run_mabwiser(problem: dict[str, np.ndarray], n_rounds: int, alpha: float, seed: int,
                 budget: float) -> tuple[np.ndarray, float]:
    from mabwiser.mab import MAB, LearningPolicy

    x, prob, u = problem["x"], problem["prob"], problem["u_click"]
    mab = MAB(arms=list(range(N_ITEMS)), learning_policy=LearningPolicy.LinUCB(alpha=alpha, l2_lambda=1.0),
              seed=seed)
    arms: list[int] = []
    start = time.perf_counter()
    # MABWiser needs a first fit; it is one round of the problem with the first arm.
    a0 = 0
    mab.fit(decisions=[a0], rewards=[1.0 if u[0] < prob[0, a0] else 0.0], contexts=x[:1])
    arms.append(a0)
    for t in range(1, n_rounds):
        ctx = x[t:t + 1]
        a = int(mab.predict(ctx))
        mab.partial_fit(decisions=[a], rewards=[1.0 if u[t] < prob[t, a] else 0.0], contexts=ctx)
        arms.append(a)
        if (t & 63) == 0 and time.perf_counter() - start > budget:
            break
    return np.asarray(arms, dtype=np.int64), time.perf_counter() - start


def _sample(pmf: list[float], u: float) -> int:
    cum = np.cumsum(pmf)
    return int(min(np.searchsorted(cum, u * cum[-1], side="right"), len(pmf) - 1))


def run_vw_adf(problem: dict[str, np.ndarray], n_rounds: int, args: str,
               budget: float) -> tuple[np.ndarray, float]:
    import vowpalwabbit

    x, prob, u, ue = problem["x"], problem["prob"], problem["u_click"], problem["u_explore"]
    # Text is VW's input format; it is built before timing so VW is timed on its cheapest path.
    shared = ["shared |s " + " ".join(f"f{j}:{v:.6g}" for j, v in enumerate(row)) for row in x[:n_rounds]]
    actions = [f"|a i{i}" for i in range(N_ITEMS)]
    vw = vowpalwabbit.Workspace(args + " --quiet")
    arms: list[int] = []
    start = time.perf_counter()
    for t in range(n_rounds):
        example = [shared[t], *actions]
        pmf = vw.predict(example)
        a = _sample(pmf, ue[t])
        cost = -1.0 if u[t] < prob[t, a] else 0.0
        example[a + 1] = f"0:{cost}:{pmf[a]} {actions[a]}"
        vw.learn(example)
        arms.append(a)
        if (t & 63) == 0 and time.perf_counter() - start > budget:
            break
    seconds = time.perf_counter() - start
    vw.finish()
    return np.asarray(arms, dtype=np.int64), seconds


def _median_call_seconds(call: Callable[[], Any], warmup: int = 10, blocks: int = 9,
                         per_block: int = 10) -> float:
    """Median over blocks of the mean time of one call, after warm-up calls."""
    for _ in range(warmup):
        call()
    times = []
    for _ in range(blocks):
        start = time.perf_counter()
        for _ in range(per_block):
            call()
        times.append((time.perf_counter() - start) / per_block)
    return float(np.median(times))


def batched_scoring(problem: dict[str, np.ndarray], alpha: float, seed: int) -> dict[str, Any]:
    """LinUCB select() on 1,000 contexts x 80 items after learning 10,000 rounds in one batch.

    Timed as the median over 9 blocks of 10 calls, after 10 warm-up calls.
    """
    x, prob, u = problem["x"], problem["prob"], problem["u_click"]
    rng = np.random.default_rng(seed)
    n_train = min(10_000, x.shape[0])
    policy = LinUCB(N_ITEMS, 1, DIM, alpha=alpha, seed=seed)
    arms = rng.integers(0, N_ITEMS, size=n_train)
    reward = (u[:n_train] < prob[np.arange(n_train), arms]).astype(np.float64)[:, None]
    start = time.perf_counter()
    policy.update(Feedback(x[:n_train], arms[:, None], reward))
    train_s = time.perf_counter() - start
    batch = rng.standard_normal((1_000, DIM))
    batch[:, 0] = 1.0
    seconds = _median_call_seconds(lambda: policy.select(batch))
    slate_policy = LinUCB(N_ITEMS, 3, DIM, alpha=alpha, seed=seed)
    slate_policy.update(Feedback(x[:n_train], arms[:, None], reward))
    slate_seconds = _median_call_seconds(lambda: slate_policy.select(batch))
    return {
        "contexts": 1_000,
        "items": N_ITEMS,
        "seconds_per_batch": round(seconds, 6),
        "decisions_per_s": round(1_000 / seconds, 1),
        "item_scores_per_s": round(1_000 * N_ITEMS / seconds, 1),
        "decisions_per_s_k3_slates": round(1_000 / slate_seconds, 1),
        "batch_update_10000_rounds_s": round(train_s, 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=100_000, help="rounds of the shared problem")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--alpha", type=float, default=0.05, help="LinUCB width (ours and MABWiser's)")
    parser.add_argument("--ts-v", type=float, default=0.02, help="linear TS posterior scale")
    parser.add_argument("--ts-draws", type=int, default=100, help="linear TS Monte Carlo draws for pscore")
    parser.add_argument("--vw-epsilon", type=float, default=0.02)
    parser.add_argument("--blocks", type=int, default=10,
                        help="blocks in which our one-event API and VW --cb_explore alternate")
    parser.add_argument("--peer-seconds", type=float, default=60.0,
                        help="time budget of each peer; slower peers play a prefix of the rounds")
    args = parser.parse_args()

    problem = make_problem(args.rounds, args.seed)
    prob = problem["prob"]
    reference = {
        "optimal_expected_click_rate": round(float(prob.max(axis=1).mean()), 5),
        "uniform_expected_click_rate": round(float(prob.mean()), 5),
        "click_rate_quantiles_5_50_95": [round(float(q), 4) for q in np.quantile(prob, [0.05, 0.5, 0.95])],
    }

    results: list[dict[str, Any]] = []
    ours: dict[str, np.ndarray] = {}
    arms, s = run_ours(LinUCB(N_ITEMS, 1, DIM, alpha=args.alpha, seed=args.seed), problem, args.rounds)
    ours["slatewise LinUCB"] = arms
    results.append(summarise("slatewise LinUCB", arms, s, problem, args.rounds,
                             f"alpha={args.alpha}; select() and update() with batches of one"))
    # our one-event API and VW's fastest configuration play the rounds in alternating blocks
    cb = f"--cb_explore {N_ITEMS} --epsilon {args.vw_epsilon}"
    paired = interleaved({"ours": OursOneEvent(LinUCB(N_ITEMS, 1, DIM, alpha=args.alpha, seed=args.seed),
                                               problem, args.rounds),
                          "vw": VWActions(problem, args.rounds, cb)}, args.rounds, args.blocks)
    arms_one = paired["ours"]["arms"]
    entry = summarise("slatewise LinUCB one-event API", arms_one, paired["ours"]["seconds"], problem, args.rounds,
                      f"alpha={args.alpha}; select_one() and update_one(); played in {args.blocks} blocks "
                      f"alternating with VW {cb}")
    entry["same_choices_as_batch_api"] = bool(np.array_equal(arms, arms_one))
    results.append(entry)
    arms, s = run_ours(LinearTS(N_ITEMS, 1, DIM, v=args.ts_v, n_draws=args.ts_draws, seed=args.seed),
                       problem, args.rounds)
    ours["slatewise linear TS"] = arms
    results.append(summarise("slatewise linear TS", arms, s, problem, args.rounds,
                             f"v={args.ts_v}; pscore from {args.ts_draws} Monte Carlo draws per round"))

    peers: list[tuple[str, Callable[[], tuple[np.ndarray, float]], str]] = [
        ("MABWiser LinUCB", lambda: run_mabwiser(problem, args.rounds, args.alpha, args.seed,
                                                 args.peer_seconds), f"alpha={args.alpha}, l2_lambda=1"),
    ]
    adf = f"--cb_explore_adf -q sa --epsilon {args.vw_epsilon}"
    peers.append((f"VW {adf}", lambda: run_vw_adf(problem, args.rounds, adf, args.peer_seconds),
                  "item one-hot action features crossed with the context"))
    peers.append((f"VW {cb}", lambda: (paired["vw"]["arms"], paired["vw"]["seconds"]),
                  f"per-action linear costs; played in {args.blocks} blocks alternating with our one-event API"))
    for name, run, note in peers:
        arms, s = run()
        entry = summarise(name, arms, s, problem, args.rounds, note)
        entry["fraction_same_choices_as_slatewise_linucb"] = round(
            float((arms == ours["slatewise LinUCB"][:arms.shape[0]]).mean()), 4)
        if arms.shape[0] < args.rounds:
            played = arms.shape[0]
            for our_name, our_arms in ours.items():
                rate = prob[np.arange(played), our_arms[:played]].mean()
                entry[f"{our_name} expected_click_rate_same_rounds"] = round(float(rate), 5)
        results.append(entry)

    by_name = {r["name"]: r for r in results}
    linucb = by_name["slatewise LinUCB"]
    linucb_one = by_name["slatewise LinUCB one-event API"]
    vw_rates = [r["rounds_per_s"] for r in results if r["name"].startswith("VW")]
    best_peer = max((r for r in results if not r["name"].startswith("slatewise")),
                    key=lambda r: r["expected_click_rate"])
    best_peer_rounds = best_peer["rounds_run"]
    our_rate_same = float(prob[np.arange(best_peer_rounds), ours["slatewise LinUCB"][:best_peer_rounds]].mean())
    scoring = batched_scoring(problem, args.alpha, args.seed)
    # rounds/s ratio in each pair of adjacent blocks (same rounds, same moment): VW time / our time
    block_ratio = np.array(paired["vw"]["block_seconds"]) / np.array(paired["ours"]["block_seconds"])
    goals = {
        "linucb_vs_fastest_vw_rounds_per_s": round(linucb["rounds_per_s"] / max(vw_rates), 2),
        "linucb_one_event_api_vs_fastest_vw_rounds_per_s": round(linucb_one["rounds_per_s"] / max(vw_rates), 2),
        "linucb_one_event_api_vs_vw_cb_explore_per_block": {
            "median": round(float(np.median(block_ratio)), 2), "min": round(float(block_ratio.min()), 2),
            "max": round(float(block_ratio.max()), 2), "blocks": len(block_ratio)},
        "linucb_vs_fastest_vw_goal": 5.0,
        "linucb_vs_mabwiser_rounds_per_s": round(linucb["rounds_per_s"] / by_name["MABWiser LinUCB"]["rounds_per_s"],
                                                 1),
        "linucb_vs_mabwiser_goal": 100.0,
        "best_peer_by_click_rate": best_peer["name"],
        "best_peer_expected_click_rate": best_peer["expected_click_rate"],
        "linucb_expected_click_rate_same_rounds": round(our_rate_same, 5),
        # both rounded alike: MABWiser's LinUCB makes our choices, so the rates can be equal
        "linucb_click_rate_not_lower": round(our_rate_same, 5) >= best_peer["expected_click_rate"],
        "batched_decisions_per_s": scoring["decisions_per_s"],
        "batched_decisions_goal": 200_000,
    }
    goals["met"] = {
        "speed_vs_vw": max(goals["linucb_vs_fastest_vw_rounds_per_s"],
                           goals["linucb_one_event_api_vs_fastest_vw_rounds_per_s"]) >= 5.0,
        "speed_vs_mabwiser": goals["linucb_vs_mabwiser_rounds_per_s"] >= 100.0,
        "click_rate": bool(goals["linucb_click_rate_not_lower"]),
        "batched_scoring": scoring["decisions_per_s"] >= 200_000,
    }
    doc = {
        "benchmark": "bandits_vs_peers",
        "problem": {"n_items": N_ITEMS, "dim_context": DIM, "rounds": args.rounds, "seed": args.seed,
                    "k": 1, "model": "logistic clicks, decide one round then learn from it", **reference},
        "machine": {"python": platform.python_version(), "numpy": np.__version__,
                    "processor": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
                    "blas_threads": os.environ["OPENBLAS_NUM_THREADS"]},
        "results": results,
        "batched_scoring": scoring,
        "goals": goals,
    }
    json.dump(doc, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
