"""The cost of an experiment report (``rollout.evaluate``) does not grow with the history.

Run: python benchmarks/rollout_totals.py [--sizes 1e4,1e5,1e6,1e7] [--new 1000] [--repeats 5]
(prints one JSON document)

For each size N a fresh SQLite store gets N decisions of an A/B experiment
(100,000 users, half of the decisions rewarded, all outside their reward window),
written by SQLite itself. The running totals are brought up to date once
(``catch_up_s``, the one-time cost of a store that never had totals, per row),
then each repeat adds ``--new`` decisions (half of them rewarded, inside the
window) the way the service does and times ``rollout.evaluate``: it folds what
is new into the totals and reports. The goal: the median evaluate time at 10^7
decisions within 3x of the one at 10^4 (flat; the full scan it replaces took
about 12 s at 10^6).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
N_USERS = 100_000
NOW = 1_800_000_000.0


def fill(path: Path, n: int) -> None:
    """N decisions and N/2 rewards written inside SQLite (no Python per row)."""
    from serving.store.schema import f64_blob, i64_blob

    ctx, slate, item = f64_blob(np.zeros(2)), i64_blob(np.arange(2)), f64_blob(np.ones(2))
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute(
            "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < ?) "
            "INSERT INTO decisions (ts, user_id, experiment, arm, policy, policy_version, traffic_version, k, "
            "context, slate, pscore, pscore_item) SELECT ? + i * 1e-3, 'u' || (i % ?), 'ab', "
            "CASE WHEN (i % ?) % 2 = 0 THEN 'control' ELSE 'treatment' END, 'x', 0, 1, 2, ?, ?, 1.0, ? FROM c",
            (n, NOW - 10 * 86_400.0 - n * 1e-3, N_USERS, N_USERS, ctx, slate, item))
        conn.execute(
            "INSERT INTO rewards (event_id, ts, reward, reward_total, kind, digest) "
            "SELECT event_id, ts, ?, (event_id % 3 = 0), 'reward', 'd' FROM decisions WHERE event_id % 2 = 0",
            (f64_blob(np.array([1.0, 0.0])),))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1e4,1e5,1e6,1e7", help="history sizes (decisions)")
    parser.add_argument("--new", type=int, default=1000, help="decisions added before each timed evaluate")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from serving import rollout
    from serving.config import ABExperimentConfig, ArmConfig
    from serving.store import NewDecision, NewReward, SQLiteStore

    exp = ABExperimentConfig(name="ab", salt="ab-v1", control="control",
                             arms=(ArmConfig("control", "uniform", 0.5), ArmConfig("treatment", "uniform", 0.5)))
    rows = []
    for size in [int(float(s)) for s in args.sizes.split(",")]:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "s.db"
            store = SQLiteStore(path)
            t0 = time.perf_counter()
            fill(path, size)
            fill_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            rollout.evaluate(store, exp, (exp,), NOW - 86_400.0)
            catch_up = time.perf_counter() - t0
            times = []
            rng = np.random.default_rng(0)
            for r in range(args.repeats):
                for i in range(args.new):
                    user = f"new-{r}-{i}"
                    event = store.add_decision(NewDecision(
                        ts=NOW, user_id=user, experiment="ab", arm="control" if i % 2 else "treatment",
                        policy="x", policy_version=0, traffic_version=1, context=np.zeros(2),
                        slate=np.arange(2), pscore=1.0, pscore_item=np.ones(2)))
                    if i % 2 == 0:
                        store.add_reward(NewReward(event_id=event, ts=NOW, reward=np.array([rng.random(), 0.0]),
                                                   purchase=None, revenue=None, digest="d"))
                t0 = time.perf_counter()
                report = rollout.evaluate(store, exp, (exp,), NOW - 86_400.0)
                times.append(time.perf_counter() - t0)
            store.close()
            rows.append({"decisions": size, "fill_s": round(fill_s, 2), "catch_up_s": round(catch_up, 3),
                         "catch_up_us_per_decision": round(catch_up / size * 1e6, 2),
                         "evaluate_ms_median": round(float(np.median(times)) * 1e3, 2),
                         "evaluate_ms": [round(t * 1e3, 2) for t in times],
                         "decisions_in_report": sum(a.summary.n_decisions for a in report.arms)})
    flat = rows[-1]["evaluate_ms_median"] / rows[0]["evaluate_ms_median"]
    print(json.dumps({
        "benchmark": "rollout_totals",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_average_1m_at_end": os.getloadavg()[0]},
        "setup": {"new_decisions_per_evaluate": args.new, "repeats": args.repeats, "users": N_USERS},
        "sizes": rows,
        "largest_over_smallest": round(flat, 2),
        "goals": {"evaluate_flat_within_3x": flat <= 3.0},
    }, indent=2))


if __name__ == "__main__":
    main()
