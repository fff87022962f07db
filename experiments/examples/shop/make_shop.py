"""Make the example shop: a catalog and an impression log as a shop's warehouse would export them.

The shop is the default ground-truth world (``simulator.world.World.default``,
300 items in 12 departments, slates of 3, revenue) logged under a softmax
logging policy; it is exported the way a shop that has never heard of
slatewise would: its own column names, its own item ids (``SKU-48213``),
1-based slots, one row per shown item and **no propensity column**. A few
rows are broken on purpose, as real exports are (see :data:`BROKEN`).

Run ``python -m experiments.examples.shop.make_shop`` to write ``items.csv`` and
``impressions.csv.gz`` (a gzipped CSV: pyarrow and pandas read it as it is)
beside this script (the same bytes every time for the same ``--seed``), and
``python -m experiments.examples.shop.make_shop --check LOG.parquet`` to
compare an imported log's propensities with the world's exact ones (the shop
is simulated, so the truth is known). docs/own-shop.md walks through it.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from simulator.logs import SlateLog, load_parquet
from simulator.rollout import Step, rollout
from simulator.world import LogRecorder, World, make_logging_policy
from simulator.world.generate import policy_name

HERE = Path(__file__).resolve().parent
SEED = 2026
WORLD_SEED = 0
SESSIONS = 2000
LOGGER_TEMPERATURE = 0.5
"""The shop's logger: the world's softmax (Plackett-Luce) policy at this temperature."""
DEPARTMENTS = ("kitchen", "garden", "bath", "lighting", "storage", "textiles", "office", "outdoor",
               "toys", "pets", "tools", "decor")
FIRST_EVENT = 700_001
START = np.datetime64("2026-03-02T00:00:00", "s")
BROKEN = {
    "unknown_item": "two impressions show SKU-00000, a discontinued item missing from items.csv",
    "repeated_item": "one impression shows the same SKU twice (a logging glitch)",
    "bad_position": "one impression has a slot 4 on a page of 3 slots",
}
"""The broken impressions added to the export (each a copy of a real one, with a new id)."""


@dataclass(frozen=True, slots=True)
class Shop:
    """The exported tables and the world log they came from.

    Attributes:
        items: the catalog as the shop exports it (one row per item).
        impressions: the impression log, one row per shown item.
        log: the world's log (exact propensities), in the order of the export.
        click: shape (n, k), the world's clicks on each slot of ``log``.
        sku: shape (n_items,), the SKU of each world item index.
        event: shape (n,), the impression id of each row of ``log``.
    """

    items: pd.DataFrame
    impressions: pd.DataFrame
    log: SlateLog
    click: np.ndarray[Any, Any]
    sku: np.ndarray[Any, Any]
    event: np.ndarray[Any, Any]


def context_columns(world: World) -> list[str]:
    """The shop's names for the world's context columns, in order."""
    names = []
    for name in world.context_names:
        if name.startswith("segment_"):
            names.append(f"visitor_type_{'abcd'[int(name.split('_')[1])]}")
        elif name.startswith("taste_"):
            names.append(f"visitor_taste_{name.split('_')[1]}")
        elif name.startswith("anchor_cat"):
            names.append(f"page_dept_{DEPARTMENTS[int(name[len('anchor_cat'):])]}")
        else:
            names.append({"anchor_log_price": "page_price_z", "cart_size": "basket_fill",
                          "cart_log_value": "basket_value_log", "step_fraction": "visit_progress"}[name])
    return names


def world_log(world: World, seed: int, sessions: int) -> tuple[SlateLog, np.ndarray[Any, Any]]:
    """The world's log under the shop's logger, and its clicks (n, k) in the same row order.

    The log is what :func:`simulator.world.generate_log` writes (revenue reward,
    exact propensities); the clicks are the same steps' ``outcome.click``.
    """
    policy = make_logging_policy("softmax", temperature=LOGGER_TEMPERATURE)
    recorder = LogRecorder(world)
    clicks: list[np.ndarray[Any, Any]] = []

    def on_step(step: Step) -> None:
        recorder(step)
        clicks.append(step.outcome.click)

    rollout(world, policy, sessions, np.random.default_rng(seed), on_step=on_step)
    order = np.lexsort((np.concatenate(recorder.parts["step"]), np.concatenate(recorder.parts["session"])))
    return recorder.to_log(policy_name(policy)), np.concatenate(clicks)[order]


def make_shop(seed: int = SEED, sessions: int = SESSIONS) -> Shop:
    """Generate the shop's log in the default world and export it with the shop's names."""
    world = World.default(seed=WORLD_SEED)
    log, click = world_log(world, seed, sessions)
    rng = np.random.default_rng(seed + 1)
    catalog = world.catalog
    assert catalog.price is not None  # the world's items always have prices
    sku = np.array([f"SKU-{v:05d}" for v in rng.choice(np.arange(10_000, 100_000), catalog.n_items,
                                                      replace=False)])
    dept = np.array([DEPARTMENTS[int(c[3:])] for c in catalog.category])
    feats = dict(zip(catalog.feature_names, catalog.features.T, strict=True))
    items = pd.DataFrame({"sku": sku, "department": dept, "unit_price": np.round(catalog.price, 2),
                          "rating": np.round(feats["quality"], 3),
                          "style_x": np.round(feats["latent_0"], 3),
                          "style_y": np.round(feats["latent_1"], 3)})
    items = items.sort_values("sku", kind="stable").reset_index(drop=True)

    n, k = log.slate.shape
    event = FIRST_EVENT + np.arange(n)
    session_start = START + rng.integers(0, 7 * 24 * 3600, size=int(log.session_id.max()) + 1) \
        .astype("timedelta64[s]")
    # 45 s per step plus up to 29 s of jitter: times increase within a session
    offset = (log.step * 45 + rng.integers(0, 30, size=n)).astype("timedelta64[s]")
    shown_at = np.char.add(np.datetime_as_string(session_start[log.session_id] + offset, unit="s"), "Z")
    frame = pd.DataFrame({
        "impression": np.repeat(event, k),
        "visitor": np.repeat(np.char.add("V-", np.char.zfill((log.session_id + 1).astype(str), 5)), k),
        "shown_at": np.repeat(shown_at, k),
        "slot": np.tile(np.arange(1, k + 1), n),
        "sku": sku[log.slate.reshape(-1)],
        "clicked": click.reshape(-1).astype(np.int64),
        "bought": np.asarray(log.purchase).reshape(-1).astype(np.int64),
        "amount": np.round(np.asarray(log.revenue).reshape(-1), 2),
    })
    ctx = np.round(log.context, 4)
    for j, name in enumerate(context_columns(world)):
        values = np.repeat(ctx[:, j], k)
        frame[name] = values.astype(np.int64) if np.isin(values, (0.0, 1.0)).all() else values
    frame = _with_broken_rows(frame, rng, k)
    return Shop(items=items, impressions=frame, log=log, click=click, sku=sku, event=event)


def _with_broken_rows(frame: pd.DataFrame, rng: np.random.Generator, k: int) -> pd.DataFrame:
    """Copies of three real impressions, broken as :data:`BROKEN` says, at random places in the file."""
    events = frame["impression"].unique()
    picks = rng.choice(events[10:-10], size=3, replace=False)
    next_id = int(frame["impression"].max()) + 1
    broken = []
    for i, (kind, ev) in enumerate(zip(BROKEN, picks, strict=True)):
        copy = frame[frame["impression"] == ev].copy()
        copy["impression"] = next_id + i
        if kind == "unknown_item":
            copy.iloc[[0, 1], copy.columns.get_loc("sku")] = "SKU-00000"
        elif kind == "repeated_item":
            copy.iloc[1, copy.columns.get_loc("sku")] = copy.iloc[0]["sku"]
        else:
            copy.iloc[k - 1, copy.columns.get_loc("slot")] = k + 1
        broken.append((ev, copy))
    parts = []
    for ev, group in frame.groupby("impression", sort=False):
        parts.append(group)
        parts += [copy for origin, copy in broken if origin == ev]
    return pd.concat(parts, ignore_index=True)


def write_shop(shop: Shop, folder: Path = HERE) -> dict[str, Any]:
    """Write ``items.csv`` and ``impressions.csv.gz`` into ``folder`` (gzip without a time stamp).

    Returns:
        Rows and bytes of each file.
    """
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, frame in (("items.csv", shop.items), ("impressions.csv.gz", shop.impressions)):
        path = folder / name
        frame.to_csv(path, index=False, lineterminator="\n",
                     compression={"method": "gzip", "mtime": 0} if name.endswith(".gz") else None)
        out[name] = {"rows": len(frame), "bytes": path.stat().st_size}
    return out


def check(log_file: Path, seed: int = SEED, sessions: int = SESSIONS,
          shop: Shop | None = None) -> dict[str, Any]:
    """Compare an imported log's propensities with the world's exact ones, matched by impression id.

    Args:
        log_file: a log imported from the example shop's files.
        seed: the shop's seed.
        sessions: the shop's sessions.
        shop: the shop already made with ``seed`` and ``sessions`` (made again when None).
    """
    shop = make_shop(seed, sessions) if shop is None else shop
    imported = load_parquet(log_file)
    where = np.searchsorted(shop.event, imported.event_id)
    inside = np.minimum(where, shop.event.size - 1)
    if (where >= shop.event.size).any() or not np.array_equal(shop.event[inside], imported.event_id):
        raise SystemExit(f"{log_file}: its event ids are not the example shop's impressions.")
    truth = shop.log.take(where)
    m = imported.n_items

    def spread(estimate: np.ndarray[Any, Any], exact: np.ndarray[Any, Any]) -> dict[str, float]:
        ratio = np.log(estimate / exact)
        return {"median_abs": round(float(np.median(np.abs(ratio))), 4),
                "mean": round(float(ratio.mean()), 4),
                "q90_abs": round(float(np.quantile(np.abs(ratio), 0.9)), 4)}

    return {
        "file": str(log_file), "pscore_source": imported.metadata.pscore_source,
        "decisions": imported.n_rounds,
        "pscore_item_log_ratio": spread(imported.pscore_item, truth.pscore_item),
        "pscore_log_ratio": spread(imported.pscore, truth.pscore),
        "uniform_guess": {
            "pscore_item_log_ratio": spread(np.full_like(truth.pscore_item, 1.0 / m), truth.pscore_item),
            "pscore_log_ratio": spread(np.full_like(truth.pscore, 1.0 / np.prod(m - np.arange(imported.k))),
                                       truth.pscore)},
        "slate_matches_truth": bool(np.array_equal(
            shop.sku[truth.slate], imported.catalog.item_id[imported.slate])),
    }


def main() -> None:
    """Write the example shop, or check an imported log against the world's truth."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--sessions", type=int, default=SESSIONS)
    parser.add_argument("--out", type=Path, default=HERE)
    parser.add_argument("--check", type=Path, default=None, metavar="LOG.parquet",
                        help="compare this imported log's propensities with the world's exact ones")
    args = parser.parse_args()
    if args.check is not None:
        print(json.dumps(check(args.check, args.seed, args.sessions), indent=2))
        return
    sizes = write_shop(make_shop(args.seed, args.sessions), args.out)
    print(json.dumps({"folder": str(args.out), "files": sizes, "seed": args.seed,
                      "sessions": args.sessions, "logger": f"softmax(temperature={LOGGER_TEMPERATURE})",
                      "broken": BROKEN}, indent=2))


if __name__ == "__main__":
    main()
