"""Off-policy evaluation speed: IPS, SNIPS and DR on 1,000,000 rows x 80 actions, and the bootstrap.

Goals (issue 10): each point estimate under 0.1 s (the reward model's fit timed
separately); a 1,000-resample bootstrap interval on 1,000,000 rows under 5 s.
With the Open Bandit Dataset sample present (``../shared/data/obd``), also times
one campaign's whole benchmark (goal: under 10 s). Prints one JSON document.

    python benchmarks/ope.py [--rows 1000000] [--items 80]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from bandits.ope import prepare
from bandits.ope.estimators import ESTIMATORS, Context
from bandits.ope.intervals import replicate_values
from bandits.ope.reward_model import RidgeRewardModel, cross_fit
from simulator.logs import Catalog, SlateLog

OBD = Path(__file__).resolve().parents[2] / "shared" / "data" / "obd"


def synthetic(n: int, n_items: int, seed: int = 0) -> tuple[SlateLog, np.ndarray]:
    """A uniform-random log with clicks, and a softmax evaluation policy's (n, n_items, 1) distribution."""
    rng = np.random.default_rng(seed)
    d = 5
    x = rng.normal(size=(n, d)).astype(np.float32)
    item = rng.integers(0, n_items, n)
    ctr = 0.02 + 0.03 * rng.random(n_items)
    click = (rng.random(n) < ctr[item]).astype(np.float64)
    logits = (x @ rng.normal(0, 0.5, (d, n_items)).astype(np.float32))
    logits -= logits.max(axis=1, keepdims=True)
    dist = np.exp(logits)
    dist /= dist.sum(axis=1, keepdims=True)
    p = np.full(n, 1.0 / n_items)
    log = SlateLog.from_arrays(context=x, slate=item[:, None], reward=click[:, None], pscore=p,
                               pscore_item=p[:, None], catalog=Catalog.anonymous(n_items))
    return log, dist.astype(np.float64)[:, :, None]


def best_of(fn: object, repeat: int = 3) -> float:
    """Fastest of ``repeat`` wall-clock runs of ``fn()``, seconds."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--items", type=int, default=80)
    parser.add_argument("--bootstrap", type=int, default=1000)
    args = parser.parse_args()

    log, dist = synthetic(args.rows, args.items)
    out: dict[str, object] = {"rows": args.rows, "items": args.items}
    t0 = time.perf_counter()
    data = prepare(log, dist)
    out["prepare_seconds"] = round(time.perf_counter() - t0, 3)
    model = RidgeRewardModel()
    t0 = time.perf_counter()
    pred = cross_fit(model, data, 2, 0)
    out["reward_model_fit_seconds"] = round(time.perf_counter() - t0, 3)

    goals: dict[str, dict[str, object]] = {}
    for name in ("ips", "snips", "dr"):
        ctx = Context(data, pred, None, 0)  # model None: the point estimate alone, no influence terms
        secs = best_of(lambda ctx=ctx, name=name: ESTIMATORS[name].fn(ctx).terms.value())
        goals[f"{name}_point_seconds"] = {"seconds": round(secs, 4), "goal": 0.1, "meets_goal": secs < 0.1}

    ips_terms = ESTIMATORS["ips"].fn(Context(data, None, None, 0)).terms
    t0 = time.perf_counter()
    reps = replicate_values([ips_terms], args.bootstrap, 0)[0]
    secs = time.perf_counter() - t0
    goals["ips_bootstrap_1000_seconds"] = {"seconds": round(secs, 3), "goal": 5.0, "meets_goal": secs < 5.0,
                                           "interval": [float(np.quantile(reps, 0.025)),
                                                        float(np.quantile(reps, 0.975))]}
    trio = [ESTIMATORS[n].fn(Context(data, pred, None, 0)).terms for n in ("ips", "snips", "dr")]
    t0 = time.perf_counter()
    replicate_values(trio, args.bootstrap, 0)
    secs = time.perf_counter() - t0
    goals["ips_snips_dr_joint_bootstrap_1000_seconds"] = {"seconds": round(secs, 3), "goal": 5.0,
                                                          "meets_goal": secs < 5.0}
    out["goals"] = goals

    if (OBD / "bts_prior.json").is_file():
        from experiments.obd_benchmark import run_campaign

        obd = {}
        for campaign in ("men", "all"):
            result = run_campaign(OBD, campaign, n_bootstrap=1000)
            obd[campaign] = {"benchmark_seconds": round(result.seconds["benchmark"], 3), "goal": 10.0,
                             "meets_goal": result.seconds["benchmark"] < 10.0}
        out["obd_campaign_benchmark"] = obd
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
