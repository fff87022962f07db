"""Importing a shop's own files: 1,000,000 generic CSV rows (one per shown item) into a log.

Run: python benchmarks/shop_import.py [--rows N] [--repeats R]   (prints one JSON document)
Goal on a 2-core machine: `import_logs` of 1,000,000 rows under 10 seconds.

The file is a shop's impression export with its own column names: text
visitor ids, ISO times, 1-based slots, text SKUs from a 1,000-item catalog, three
outcomes, logged propensities and 8 numeric context columns (written once, not
timed). `import_logs` is timed end to end: pyarrow's multi-threaded CSV reader,
every check of every row, the grouping into slates and the validated SlateLog.
Beside it, in the same run: pyarrow reading the same columns alone (the floor),
the same import with 1% of the rows broken and `on_error="skip"`, and writing the
log to Parquet. Fitting propensities (`--estimate-pscore`) is a model fit, not
part of these figures.
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
import pyarrow as pa
import pyarrow.csv as pacsv

from simulator.logs import Catalog, LogMapping, import_logs, save_parquet
from simulator.logs.tables import read_columns

K = 4
N_ITEMS = 1000
D = 8
GOAL_SECONDS = 10.0


def shop_csv(path: Path, rows: int, seed: int = 0, broken: float = 0.0) -> tuple[Catalog, LogMapping]:
    """Write ``rows`` rows (``rows / K`` impressions) of a shop's export; return its catalog and mapping."""
    rng = np.random.default_rng(seed)
    n = rows // K
    sku = np.array([f"SKU-{i:05d}" for i in rng.choice(90_000, N_ITEMS, replace=False) + 10_000])
    # distinct items per impression: a random first item, then steps that sum to less than the catalog
    steps = np.cumsum(rng.integers(1, N_ITEMS // K, size=(n, K)), axis=1) - 1
    items = (rng.integers(0, N_ITEMS, size=(n, 1)) + steps) % N_ITEMS
    start = np.datetime64("2026-03-01T00:00:00", "s") + rng.integers(0, 30 * 86_400, n).astype("timedelta64[s]")
    context = np.round(rng.normal(size=(n, D)), 4)
    bought = (rng.random((n, K)) < 0.02).astype(np.int64)
    columns: dict[str, Any] = {
        "impression": np.repeat(np.arange(n) + 1_000_000, K),
        "visitor": np.repeat(np.char.add("V-", (rng.integers(0, n // 5 + 1, n)).astype(str)), K),
        "shown_at": np.repeat(np.char.add(np.datetime_as_string(start, unit="s"), "Z"), K),
        "slot": np.tile(np.arange(1, K + 1), n),
        "sku": sku[items.reshape(-1)],
        "clicked": (bought | (rng.random((n, K)) < 0.1)).reshape(-1),
        "bought": bought.reshape(-1),
        "amount": np.round(bought * rng.lognormal(3.0, 0.7, (n, K)), 2).reshape(-1),
        "p_slate": np.repeat(np.full(n, 1.0 / (N_ITEMS * 999 * 998 * 997)), K),
        "p_item": np.full(n * K, 1.0 / N_ITEMS),
    }
    for j in range(D):
        columns[f"ctx_{j}"] = np.repeat(context[:, j], K)
    if broken:
        bad = rng.random(n * K) < broken
        columns["sku"] = np.where(bad, "SKU-00000", columns["sku"])  # not in the catalog
    pacsv.write_csv(pa.table(columns), path)
    catalog = Catalog(item_id=sku, category=np.array([f"c{i % 20}" for i in range(N_ITEMS)]),
                      price=np.round(rng.lognormal(3.0, 0.7, N_ITEMS), 2), features=np.zeros((N_ITEMS, 0)))
    mapping = LogMapping.parse(
        "event=impression,user=visitor,timestamp=shown_at,position=slot,item=sku,click=clicked,purchase=bought,"
        "revenue=amount,pscore=p_slate,pscore_item=p_item,context=" + ",".join(f"ctx_{j}" for j in range(D)),
        position_base=1, reward="revenue")
    return catalog, mapping


def best_of(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        good, bad = Path(tmp) / "impressions.csv", Path(tmp) / "broken.csv"
        catalog, mapping = shop_csv(good, args.rows)
        shop_csv(bad, args.rows, broken=0.01)
        size = good.stat().st_size
        read_s, _ = best_of(lambda: read_columns(good, list(mapping.columns().values()), text=[mapping.item]),
                            args.repeats)
        import_s, res = best_of(lambda: import_logs(good, catalog, mapping), args.repeats)
        skip_s, skipped = best_of(lambda: import_logs(bad, catalog, mapping, on_error="skip"), args.repeats)
        write_s, _ = best_of(lambda: save_parquet(res.log, Path(tmp) / "log.parquet"), args.repeats)
    print(json.dumps({
        "benchmark": "shop_import",
        "file": {"rows": args.rows, "impressions": args.rows // K, "k": K, "context_columns": D,
                 "catalog_items": N_ITEMS, "megabytes": round(size / 2**20, 1),
                 "reader": "pyarrow.csv.read_csv (multi-threaded), no Python loop over rows"},
        "import": {"seconds": round(import_s, 3), "goal_seconds": GOAL_SECONDS, "met": import_s < GOAL_SECONDS,
                   "rows_kept": res.n_rows_kept, "slates": res.log.n_rounds,
                   "includes": "read, every row and slate check, grouping into slates, SlateLog validation",
                   "propensities": "logged (fitting them with --estimate-pscore is not part of this figure)"},
        "pyarrow_read_alone": {"seconds": round(read_s, 3), "import_over_read": round(import_s / read_s, 2)},
        "import_with_1pct_bad_rows_skipped": {"seconds": round(skip_s, 3), "rows_rejected": skipped.n_rows_rejected,
                                              "slates": skipped.log.n_rounds},
        "parquet_write": {"seconds": round(write_s, 3)},
        "repeats": args.repeats, "statistic": "best of repeats",
    }, indent=2))


if __name__ == "__main__":
    main()
