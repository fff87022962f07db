"""The recommenders at shop scale: refresh (fit) time and per-decision time, 10^4 items.

Run: python benchmarks/recommenders.py [--interactions 100000 1000000] [--items 10000] [--decisions 200]
(prints one JSON document)
Goals on a 2-core machine: an ALS or CF refresh over 10^6 interactions under 30 s; one decision
(one context, no masks) under 1 ms.

Interactions are synthetic baskets — an anchor plus two rewarded items, the
items drawn from a Zipf-like popularity with each basket's items in a shared
block of 50 neighbours, so co-occurrence is sparse but structured — fed through
``update`` with refreshes held back; then one refresh is timed (``fit_s``), and
``decision_ms`` is the mean time of ``select`` on one context over
``--decisions`` calls (anchors drawn like the data's). The row count is
interactions / 3 baskets (the world has no shopper ids; rows are baskets).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from typing import Any

import numpy as np

from bandits import Feedback, make_policy

GOAL_FIT_S = 30.0
GOAL_DECISION_MS = 1.0
POLICIES: dict[str, dict[str, Any]] = {
    "item_cf": {"shrinkage": 5.0, "n_neighbours": 50},
    "user_cf": {"shrinkage": 5.0, "n_neighbours": 50},
    "als": {"factors": 32, "iterations": 10},
    "association_rules": {"min_support": 1e-5},
}


def baskets(n_interactions: int, n_items: int, seed: int = 0) -> Feedback:
    rng = np.random.default_rng(seed)
    n = n_interactions // 3
    weight = 1.0 / np.arange(1, n_items + 1) ** 0.8
    anchor = rng.choice(n_items, size=n, p=weight / weight.sum())
    block = (anchor // 50) * 50
    a = rng.integers(0, 50, size=(n, 2))
    a[:, 1] = (a[:, 0] + 1 + rng.integers(0, 48, size=n)) % 50
    slate = np.minimum(block[:, None] + a, n_items - 1)
    same = (slate == anchor[:, None]).any(axis=1) | (slate[:, 0] == slate[:, 1])
    slate[same, 1] = (slate[same, 0] + 1) % n_items
    slate[same, 0] = (slate[same, 1] + 1) % n_items
    return Feedback(anchor[:, None].astype(np.float64), slate.astype(np.int64), np.ones((n, 2)))


def run(name: str, fb: Feedback, n_items: int, decisions: int) -> dict[str, Any]:
    policy = make_policy(name, n_items=n_items, k=2, dim_context=1, refresh_every=10**12, **POLICIES[name])
    t = time.perf_counter()
    policy.update(fb)
    absorb = time.perf_counter() - t
    t = time.perf_counter()
    policy._refresh()  # type: ignore[attr-defined]
    fit = time.perf_counter() - t
    ctx = fb.context[:decisions]
    policy.select(ctx[:1])
    t = time.perf_counter()
    for i in range(decisions):
        policy.select(ctx[i:i + 1])
    per = (time.perf_counter() - t) / decisions * 1e3
    return {"policy": name, "absorb_s": round(absorb, 3), "fit_s": round(fit, 3),
            "decision_ms": round(per, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--interactions", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--decisions", type=int, default=200)
    parser.add_argument("--policies", nargs="+", default=list(POLICIES))
    args = parser.parse_args()
    results = []
    for n in args.interactions:
        fb = baskets(n, args.items)
        for name in args.policies:
            row = run(name, fb, args.items, args.decisions)
            row["interactions"] = n
            results.append(row)
    big = [r for r in results if r["interactions"] >= 1_000_000]
    print(json.dumps({
        "benchmark": "recommenders", "items": args.items, "machine": platform.machine(),
        "results": results,
        "goals": {"fit_s_at_1e6": GOAL_FIT_S, "decision_ms": GOAL_DECISION_MS},
        "fit_goal_met": {r["policy"]: r["fit_s"] < GOAL_FIT_S for r in big},
        "decision_goal_met": {r["policy"]: r["decision_ms"] < GOAL_DECISION_MS for r in results},
    }, indent=2))


if __name__ == "__main__":
    main()
