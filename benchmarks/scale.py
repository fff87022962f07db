"""Off-policy evaluation over a partitioned log too big for memory, on Ray, against the in-memory path.

1. Generates (once, cached in ``--dir``) a partitioned log of ``--rows`` decisions
   from the default world under uniform logging (k = 3, 300 items, exact propensities).
2. Scores a uniform evaluation policy with IPS, SNIPS and DR and 200-replicate
   bootstrap intervals over every partition with Ray Data; the driver's peak
   resident memory is measured (goal: under 2 GB for 20,000,000 rows).
3. On the first ``--fit-rows`` decisions (a log that fits), times the in-memory
   ``estimate_all`` against the partitioned path on 2, 4 and 8 partitions, local
   and on Ray, each in a fresh process so its peak memory is its own.

Prints one JSON document. ``python benchmarks/scale.py [--rows 20000000] [--dir /tmp/slatewise-scale]``
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

CHILD = r"""
import json, resource, sys, time
import numpy as np
from pathlib import Path
from bandits import make_policy
from bandits.ope.partitioned import PolicyDist, estimate_partitioned, list_partitions, ray_data_map, split_log
from simulator.logs import SlateLog, load_parquet

mode, folder, n_parts, fit_rows, n_boot = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
files = list_partitions(folder)
first = load_parquet(files[0])
policy = make_policy("uniform", n_items=first.n_items, k=first.n_positions, dim_context=first.dim_context)
fn = PolicyDist(policy)
if mode in ("ray", "ray-all"):
    import ray
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
t0 = time.perf_counter()
if mode == "ray-all":
    out = estimate_partitioned(files, fn, n_bootstrap=n_boot, engine=ray_data_map)
    rows = out[0].n
else:
    log = load_parquet(files[0])
    i = 1
    while log.n_rounds < fit_rows:
        log = SlateLog.concat([log, load_parquet(files[i])])
        i += 1
    log = log.take(np.arange(fit_rows))
    t0 = time.perf_counter()
    if mode == "memory":
        from bandits.ope import estimate_all
        out = estimate_all(log, policy.action_dist(log.context), estimators=["ips", "snips", "dr"],
                           n_bootstrap=n_boot, n_folds=n_parts)
    else:
        out = estimate_partitioned(split_log(log, n_parts), fn, n_bootstrap=n_boot,
                                   engine=ray_data_map if mode == "ray" else None)
    rows = fit_rows
secs = time.perf_counter() - t0
print(json.dumps({"mode": mode, "partitions": n_parts, "rows": rows, "seconds": round(secs, 2),
                  "driver_peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3),
                  "estimates": {e.estimator: [e.value, e.low, e.high] for e in out}}))
"""


def generate(folder: Path, rows: int, partition_rows: int) -> dict[str, float]:
    """Write the partitioned world log unless ``folder`` already holds one of this size."""
    from simulator.logs import load_parquet, save_parquet
    from simulator.world import World, generate_log, make_logging_policy

    marker = folder / "rows.json"
    if marker.is_file() and json.loads(marker.read_text()) == {"rows": rows, "partition_rows": partition_rows}:
        return {"generate_seconds": 0.0, "cached": 1.0}
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.parquet"):
        old.unlink()
    world = World.default(seed=0)
    policy = make_logging_policy("uniform")
    t0 = time.perf_counter()
    written, part = 0, 0
    sessions = max(1, partition_rows // 4)
    while written < rows:
        log = generate_log(world, policy, sessions, seed=part)
        take = min(log.n_rounds, rows - written)
        log = log.take(np.arange(take))
        save_parquet(log, folder / f"part-{part:04d}.parquet")
        written += take
        part += 1
    del load_parquet
    marker.write_text(json.dumps({"rows": rows, "partition_rows": partition_rows}))
    return {"generate_seconds": round(time.perf_counter() - t0, 1), "cached": 0.0}


def child(mode: str, folder: Path, parts: int, fit_rows: int, n_boot: int) -> dict[str, object]:
    """Run one measurement in a fresh interpreter; its JSON line."""
    proc = subprocess.run([sys.executable, "-c", CHILD, mode, str(folder), str(parts), str(fit_rows), str(n_boot)],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        return {"mode": mode, "partitions": parts, "error": proc.stderr.strip().splitlines()[-1:]}
    result: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000_000)
    parser.add_argument("--partition-rows", type=int, default=1_000_000)
    parser.add_argument("--fit-rows", type=int, default=200_000)
    parser.add_argument("--bootstrap", type=int, default=200)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/slatewise-scale"))
    args = parser.parse_args()

    out: dict[str, object] = {"rows": args.rows, "partition_rows": args.partition_rows,
                              "bootstrap": args.bootstrap}
    out.update(generate(args.dir, args.rows, args.partition_rows))
    full = child("ray-all", args.dir, 0, 0, args.bootstrap)
    peak = full.get("driver_peak_rss_gb")
    out["ray_full_log"] = full
    out["goal_driver_peak_rss_gb"] = {"goal": 2.0, "measured": peak,
                                      "meets_goal": isinstance(peak, float) and peak < 2.0}
    table = [child("memory", args.dir, 3, args.fit_rows, args.bootstrap)]
    for parts in (2, 4, 8):
        for mode in ("local", "ray"):
            table.append(child(mode, args.dir, parts, args.fit_rows, args.bootstrap))
    out["log_that_fits"] = table
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
