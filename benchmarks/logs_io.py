"""Log I/O speed: OBD import of one sample file, Parquet write/read of a 1,000,000-row log.

Run: python benchmarks/logs_io.py [--rows N] [--repeats R]   (prints one JSON document)
Goals on a 2-core machine: each step under 3 seconds.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from simulator.logs import Catalog, LogMetadata, SlateLog, import_obd, load_parquet, save_parquet

ROOT = Path(__file__).resolve().parents[1]
SHARED_OBD = ROOT.parent / "shared" / "data" / "obd"
TEST_OBD = ROOT / "tests" / "data" / "obd"


def synthetic_log(n: int, k: int = 3, d: int = 20, n_items: int = 80, seed: int = 0) -> SlateLog:
    rng = np.random.default_rng(seed)
    # k distinct items per row without a Python loop: ranks of random keys
    slate = np.argsort(rng.random((n, n_items)), axis=1)[:, :k]
    return SlateLog.from_arrays(
        context=rng.normal(size=(n, d)),
        slate=slate,
        reward=(rng.random((n, k)) < 0.03).astype(np.float64),
        pscore=np.full(n, 1.0 / (80 * 79 * 78)),
        pscore_item=np.full((n, k), 1.0 / 80),
        catalog=Catalog(item_id=np.arange(n_items), category=np.array([f"c{i % 8}" for i in range(n_items)]),
                        price=rng.lognormal(3.0, 0.5, n_items), features=rng.normal(size=(n_items, 4))),
        metadata=LogMetadata(logging_policy="uniform"),
        session_id=np.arange(n) // 4,
        step=np.arange(n) % 4,
        timestamp=np.datetime64("2026-01-01", "ns") + (np.arange(n) * 1_000_000).astype("timedelta64[ns]"),
    )


def best_of(fn: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    obd = SHARED_OBD if (SHARED_OBD / "random" / "all").is_dir() else TEST_OBD
    campaign = "all" if obd == SHARED_OBD else "men"
    import_s = best_of(lambda: import_obd(obd, policy="random", campaign=campaign), args.repeats)
    log = synthetic_log(args.rows)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "log.parquet"
        write_s = best_of(lambda: save_parquet(log, path), args.repeats)
        size = path.stat().st_size
        read_s = best_of(lambda: load_parquet(path), args.repeats)
        assert load_parquet(path).equals(log)
    goal = 3.0
    print(json.dumps({
        "benchmark": "logs_io",
        "obd_import": {"file": str(obd / "random" / campaign / f"{campaign}.csv"), "rows": 10_000,
                       "seconds": round(import_s, 4), "goal_seconds": goal, "met": import_s < goal},
        "parquet_write": {"rows": args.rows, "k": 3, "d": 20, "seconds": round(write_s, 4),
                          "megabytes": round(size / 2**20, 1), "goal_seconds": goal, "met": write_s < goal},
        "parquet_read": {"rows": args.rows, "k": 3, "d": 20, "seconds": round(read_s, 4),
                         "goal_seconds": goal, "met": read_s < goal, "includes_validation": True},
        "repeats": args.repeats, "statistic": "best of repeats",
    }, indent=2))


if __name__ == "__main__":
    main()
