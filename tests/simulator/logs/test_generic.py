"""Importing a shop's impression log with its own columns: slates by event, every bad row counted and named."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from simulator.errors import ConfigError, DataImportError, LogFormatError
from simulator.logs import Catalog, SlateLog
from simulator.logs.generic import ERROR_KINDS, import_logs
from simulator.logs.mapping import LogMapping
from simulator.world import World, WorldConfig, generate_log, make_logging_policy

CATALOG = Catalog(item_id=np.array(["A", "B", "C", "D", "E"]), category=np.array(["x", "x", "y", "y", "z"]),
                  price=np.array([1.0, 2.0, 3.0, 4.0, 5.0]), features=np.zeros((5, 0)))
MAP = LogMapping.parse("event=imp,user=who,timestamp=t,position=pos,item=sku,click=clk,purchase=buy,"
                       "revenue=rev,pscore=ps,pscore_item=psi,context=x1,x2", reward="revenue")


def good_frame() -> pd.DataFrame:
    """Four impressions of two slots; rows of impression 10 out of slot order; u1 saw 12 before 10."""
    return pd.DataFrame({
        "imp": [10, 10, 11, 11, 12, 12, 13, 13],
        "who": ["u1", "u1", "u2", "u2", "u1", "u1", "u3", "u3"],
        "t": ["2026-01-01T00:00:10Z"] * 2 + ["2026-01-01T00:00:07Z"] * 2 + ["2026-01-01T00:00:05Z"] * 2
        + ["2026-01-01T00:01:00Z"] * 2,
        "pos": [1, 0, 0, 1, 0, 1, 0, 1],
        "sku": ["C", "A", "B", "E", "D", "A", "E", "D"],
        "clk": [0, 1, 0, 0, 1, 1, 0, 0],
        "buy": [0, 1, 0, 0, 0, 1, 0, 0],
        "rev": [0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0],
        "ps": [0.05, 0.05, 0.1, 0.1, 0.02, 0.02, 0.04, 0.04],
        "psi": [0.25, 0.2, 0.5, 0.3, 0.1, 0.4, 0.2, 0.2],
        "x1": [1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 4.0, 4.0],
        "x2": [0.5, 0.5, -1.0, -1.0, 0.0, 0.0, 1.0, 1.0],
    })


def same_rows(a: SlateLog, b: SlateLog) -> bool:
    """Every array and the catalog equal; metadata equal but for `source` (which names the file)."""
    return a.equals(replace(b, metadata=replace(b.metadata, source=a.metadata.source)))


def write(frame: pd.DataFrame, path: Path) -> Path:
    if path.suffix == ".parquet":
        frame.to_parquet(path)
    else:
        frame.to_csv(path, index=False)
    return path


def test_item_layout_by_hand(tmp_path: Path) -> None:
    res = import_logs(write(good_frame(), tmp_path / "log.csv"), CATALOG, MAP)
    log = res.log
    assert log.slate.tolist() == [[0, 2], [1, 4], [3, 0], [4, 3]]  # A C | B E | D A | E D (slots sorted)
    assert log.event_id.tolist() == [10, 11, 12, 13]  # integer event ids are kept
    assert log.reward.tolist() == [[1.0, 0.0], [0.0, 0.0], [0.0, 1.0], [0.0, 0.0]]
    assert log.purchase is not None and log.purchase.tolist() == [[1.0, 0.0], [0.0, 0.0], [0.0, 1.0], [0.0, 0.0]]
    assert log.pscore.tolist() == [0.05, 0.1, 0.02, 0.04]
    assert log.pscore_item.tolist() == [[0.2, 0.25], [0.5, 0.3], [0.1, 0.4], [0.2, 0.2]]
    assert log.context.tolist() == [[1.0, 0.5], [2.0, -1.0], [3.0, 0.0], [4.0, 1.0]]
    assert log.session_id.tolist() == [0, 1, 0, 2]  # text user ids: 0, 1, ... in order of appearance
    assert log.step.tolist() == [1, 0, 0, 0]  # u1 saw impression 12 (00:05) before 10 (00:10)
    assert log.timestamp is not None
    assert str(log.timestamp[0]) == "2026-01-01T00:00:10.000000000"
    meta = log.metadata
    assert (meta.reward_type, meta.pscore_source, meta.context_names) == ("revenue", "logged", ("x1", "x2"))
    assert res.n_rows == 8 and res.n_rows_kept == 8 and res.n_rows_rejected == 0 and not res.errors


def test_parquet_and_csv_read_alike(tmp_path: Path) -> None:
    a = import_logs(write(good_frame(), tmp_path / "log.csv"), CATALOG, MAP).log
    b = import_logs(write(good_frame(), tmp_path / "log.parquet"), CATALOG, MAP).log
    assert same_rows(a, b)


def test_one_based_positions(tmp_path: Path) -> None:
    frame = good_frame().assign(pos=lambda f: f["pos"] + 1)
    path = write(frame, tmp_path / "log.csv")
    with pytest.raises(DataImportError, match=r"No row has position 0: the log counts slots from 1. "
                                              r"Pass --position-base 1"):
        import_logs(path, CATALOG, MAP)
    one = import_logs(path, CATALOG, MAP.with_options(position_base=1)).log
    assert same_rows(one, import_logs(write(good_frame(), tmp_path / "zero.csv"), CATALOG, MAP).log)


def test_without_positions_rows_are_in_slot_order(tmp_path: Path) -> None:
    frame = good_frame().sort_values(["imp", "pos"]).drop(columns="pos")
    mapping = LogMapping.parse("event=imp,item=sku,click=clk,pscore=ps,pscore_item=psi")
    log = import_logs(write(frame, tmp_path / "log.csv"), CATALOG, mapping).log
    assert log.slate.tolist() == [[0, 2], [1, 4], [3, 0], [4, 3]]
    assert log.session_id.tolist() == log.event_id.tolist() and log.step.tolist() == [0, 0, 0, 0]


def test_text_event_ids_become_codes_in_file_order(tmp_path: Path) -> None:
    frame = good_frame().assign(imp=lambda f: "imp-" + f["imp"].astype(str))
    log = import_logs(write(frame, tmp_path / "log.csv"), CATALOG, MAP).log
    assert log.event_id.tolist() == [0, 1, 2, 3]


# ---------------------------------------------------------------------- the slate layout
def test_slate_layout_csv_and_parquet_lists_match_the_item_layout(tmp_path: Path) -> None:
    item = import_logs(write(good_frame(), tmp_path / "log.csv"), CATALOG, MAP).log
    rows = good_frame().sort_values(["imp", "pos"]).groupby("imp", sort=False)
    lists = pd.DataFrame({
        "imp": [10, 11, 12, 13], "who": ["u1", "u2", "u1", "u3"],
        "t": ["2026-01-01T00:00:10Z", "2026-01-01T00:00:07Z", "2026-01-01T00:00:05Z", "2026-01-01T00:01:00Z"],
        "ps": [0.05, 0.1, 0.02, 0.04], "x1": [1.0, 2.0, 3.0, 4.0], "x2": [0.5, -1.0, 0.0, 1.0],
        **{col: [g[col].tolist() for _, g in rows] for col in ("sku", "clk", "buy", "rev", "psi")}})
    mapping = LogMapping.parse("event=imp,user=who,timestamp=t,item=sku,click=clk,purchase=buy,revenue=rev,"
                               "pscore=ps,pscore_item=psi,context=x1,x2", reward="revenue")
    pq.write_table(pa.Table.from_pandas(lists, preserve_index=False), tmp_path / "slates.parquet")
    res = import_logs(tmp_path / "slates.parquet", CATALOG, mapping)
    assert res.layout == "slate" and same_rows(res.log, item)
    text = lists.assign(**{col: lists[col].map(lambda v: "|".join(str(x) for x in v))
                           for col in ("sku", "clk", "buy", "rev", "psi")})
    res = import_logs(write(text, tmp_path / "slates.csv"), CATALOG, mapping.with_options(layout="slate"))
    assert res.layout == "slate" and same_rows(res.log, item)


def test_slate_layout_bad_lists(tmp_path: Path) -> None:
    frame = pd.DataFrame({"sku": ["A|B", "C|D|E", "", "B|B"], "clk": ["0|1", "0|0|0", "", "1"],
                          "ps": [0.1, 0.1, 0.1, 0.1], "psi": ["0.5|0.5", "0.5|0.5|0.5", "", "0.5|0.5"]})
    mapping = LogMapping.parse("item=sku,click=clk,pscore=ps,pscore_item=psi", layout="slate")
    res = import_logs(write(frame, tmp_path / "s.csv"), CATALOG, mapping, on_error="skip")
    kinds = {(e.kind, e.column): e.count for e in res.errors}
    assert kinds[("slate_size", "sku")] == 2  # the 3-item row and the empty row
    assert kinds[("list_length", "clk")] == 2 and kinds[("repeated_item", "sku")] == 1
    assert res.log.n_rounds == 1 and res.log.slate.tolist() == [[0, 1]]
    assert res.rejected.column("row").to_pylist() == [1, 2, 3]  # source rows, once each
    assert res.n_rows_kept + res.n_rows_rejected == res.n_rows == 4


# ---------------------------------------------------------------------- bad rows
def edit(**cells: tuple[int | list[int], Any]) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """A change of cells: column -> (row or rows, new value)."""
    def apply(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.copy()
        for col, (rows, value) in cells.items():
            frame[col] = frame[col].astype(object)
            frame.loc[rows, col] = value
        return frame
    return apply


def drop(row: int) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """Remove one row."""
    return lambda frame: frame.drop(index=row).reset_index(drop=True)


BAD_ROWS = [
    pytest.param(edit(sku=(3, "Z")), "unknown_item", 3, r"unknown_item: 1 row in 1 event; first at row 3 "
                 r"\(file line 5\), column `sku`: expected an item id of the catalog, found 'Z'", id="unknown-item"),
    pytest.param(edit(sku=(3, None)), "unknown_item", 3, r"column `sku`.*found an empty cell", id="empty-item"),
    pytest.param(edit(imp=(3, None)), ("missing_event", "slate_size"), 3,
                 r"missing_event: 1 row; first at row 3 .* slate_size: 1 row in 1 event; first at row 2", id="no-event"),
    pytest.param(edit(pos=(3, 7)), "bad_position", 3, r"bad_position: 1 row in 1 event; first at row 3 "
                 r"\(file line 5\), column `pos`: expected a whole number in 0..1, found 7", id="position-high"),
    pytest.param(edit(pos=(3, 0.5)), "bad_position", 3, r"column `pos`: expected a whole number in 0..1, "
                 r"found 0.5", id="position-fraction"),
    pytest.param(edit(pos=(3, 0)), "repeated_position", 3, r"repeated_position: 1 row in 1 event; first at row 3",
                 id="position-twice"),
    pytest.param(edit(sku=(3, "B")), "repeated_item", 3, r"repeated_item: 1 row in 1 event; first at row 3 "
                 r"\(file line 5\), column `sku`: expected each item once per slate, found 'B'", id="item-twice"),
    pytest.param(drop(3), "slate_size", 2, r"slate_size: 1 row in 1 event; first at row 2 \(file line 4\), column "
                 r"`imp`: expected k = 2 items per event, found 1 items", id="slate-size"),
    pytest.param(edit(clk=(3, "yes")), "bad_value", 3, r"bad_value: 1 row in 1 event; first at row 3 "
                 r"\(file line 5\), column `clk`: expected a click count or amount >= 0, found 'yes'", id="click-text"),
    pytest.param(edit(rev=(3, -1.0)), "bad_value", 3, r"column `rev`: expected a revenue", id="negative-revenue"),
    pytest.param(edit(rev=(3, None)), "bad_value", 3, r"column `rev`.*found an empty cell. Write 0 for no revenue",
                 id="empty-revenue"),
    pytest.param(edit(x2=(3, "abc"), x1=(2, "abc")), ("bad_value", "bad_value"), 2,
                 r"column `x1`.*found 'abc'.*column `x2`", id="context-text"),
    pytest.param(edit(psi=(3, 0.0)), "bad_pscore", 3, r"bad_pscore: 1 row in 1 event; first at row 3 \(file "
                 r"line 5\), column `psi`: expected a probability in \(0, 1\], found 0.0", id="pscore-zero"),
    pytest.param(edit(ps=([2, 3], 1.5)), "bad_pscore", 2, r"bad_pscore: 2 rows in 1 event; first at row 2 .*"
                 r"column `ps`: expected a probability in \(0, 1\], found 1.5", id="pscore-above-1"),
    pytest.param(edit(ps=(3, 0.2)), "inconsistent_event", 3, r"inconsistent_event: 1 row in 1 event; first at "
                 r"row 3 \(file line 5\), column `ps`: expected the same slate pscore on every row", id="pscore-differs"),
    pytest.param(edit(x1=(3, 9.0)), "inconsistent_event", 3, r"column `x1,x2`: expected the same context",
                 id="context-differs"),
    pytest.param(edit(who=(3, "u3")), "inconsistent_event", 3, r"column `who`: expected one shopper per event",
                 id="user-differs"),
    pytest.param(edit(t=(3, "yesterday")), "bad_timestamp", 3, r"bad_timestamp: 1 row in 1 event; first at row "
                 r"3 \(file line 5\), column `t`.*found 'yesterday'", id="timestamp"),
]


@pytest.mark.parametrize(("change", "kinds", "first_row", "message"), BAD_ROWS)
def test_bad_rows_raise_named_errors(tmp_path: Path, change: Callable[[pd.DataFrame], pd.DataFrame],
                                     kinds: str | tuple[str, ...], first_row: int, message: str) -> None:
    path = write(change(good_frame()), tmp_path / "log.csv")
    with pytest.raises(DataImportError, match="(?s)" + message) as info:
        import_logs(path, CATALOG, MAP)
    expected = [kinds] if isinstance(kinds, str) else list(kinds)
    assert all(kind in ERROR_KINDS for kind in expected)
    assert [e.kind for e in info.value.errors] == expected and info.value.errors[0].row == first_row
    assert "nothing was written" in str(info.value) and "--on-error skip" in str(info.value)


@pytest.mark.parametrize(("change", "kinds", "first_row", "message"), BAD_ROWS)
def test_skip_keeps_every_good_slate_and_rejects_whole_events(
        tmp_path: Path, change: Callable[[pd.DataFrame], pd.DataFrame], kinds: str | tuple[str, ...],
        first_row: int, message: str) -> None:
    frame = change(good_frame())
    res = import_logs(write(frame, tmp_path / "log.csv"), CATALOG, MAP, on_error="skip")
    good = import_logs(write(good_frame(), tmp_path / "good.csv"), CATALOG, MAP).log
    rejected_rows = set(res.rejected.column("row").to_pylist())
    kept = [i for i, ev in enumerate(good.event_id.tolist()) if ev in set(res.log.event_id.tolist())]
    # the good slates are exactly the original ones; nothing is dropped silently
    assert len(kept) == res.log.n_rounds and same_rows(res.log, good.take(np.array(kept)))
    assert res.n_rows_kept + res.n_rows_rejected == res.n_rows == len(frame)
    assert first_row in rejected_rows
    errors = dict(zip(res.rejected.column("row").to_pylist(), res.rejected.column("errors").to_pylist(),
                      strict=True))
    assert errors[first_row].startswith(kinds if isinstance(kinds, str) else kinds[0])
    assert set(res.rejected.column_names) >= {"row", "line", "errors", "sku"}


def test_counts_and_reasons_over_many_bad_rows(tmp_path: Path) -> None:
    frames = [good_frame().assign(imp=good_frame()["imp"] + 10 * i) for i in range(50)]
    frame = pd.concat(frames, ignore_index=True)
    frame.loc[frame.index % 7 == 3, "sku"] = "nope"
    res = import_logs(write(frame, tmp_path / "log.csv"), CATALOG, MAP, on_error="skip")
    bad = frame.index % 7 == 3
    assert res.errors[0].kind == "unknown_item" and res.errors[0].count == int(bad.sum())
    bad_events = set(frame.loc[bad, "imp"])
    assert res.errors[0].events == len(bad_events)
    assert res.log.n_rounds == frame["imp"].nunique() - len(bad_events)
    reasons = res.rejected.column("errors").to_pylist()
    assert reasons.count("unknown_item(sku)") == int(bad.sum())
    assert reasons.count("rejected_with_event") == res.n_rows_rejected - int(bad.sum())


def test_nothing_left_is_an_error_even_when_skipping(tmp_path: Path) -> None:
    frame = good_frame().assign(sku="nope")
    with pytest.raises(DataImportError, match="No slate is left to import"):
        import_logs(write(frame, tmp_path / "log.csv"), CATALOG, MAP, on_error="skip")


@pytest.mark.parametrize(("mapping", "options", "message"), [
    pytest.param("event=imp,item=sku,click=clk", {}, r"names no propensity column.*--estimate-pscore",
                 id="no-pscore"),
    pytest.param("event=imp,item=sku,click=clk,pscore=ps", {"estimate_pscore": True},
                 r"names a pscore column and estimate_pscore is on", id="both"),
    pytest.param("item=sku,click=clk,pscore=ps", {}, r"needs event=COLUMN", id="no-event"),
    pytest.param("event=imp,item=sku,position=pos,click=clk,pscore=ps", {},
                 r"k = 2 items need both.*no pscore_item", id="k2-one-pscore"),
    pytest.param("event=imp,item=sku,click=clk,pscore=ps,pscore_item=psi", {"on_error": "ignore"},
                 r"`on_error` must be 'raise' or 'skip'", id="on-error"),
])
def test_mappings_that_do_not_fit(tmp_path: Path, mapping: str, options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        import_logs(write(good_frame(), tmp_path / "log.csv"), CATALOG, LogMapping.parse(mapping), **options)


def test_missing_columns_and_files(tmp_path: Path) -> None:
    path = write(good_frame(), tmp_path / "log.csv")
    with pytest.raises(LogFormatError, match=r"no column `clicks` \(mapped to click\) \(did you mean `clk`\?\)"):
        import_logs(path, CATALOG, LogMapping.parse("event=imp,item=sku,click=clicks,pscore=ps"))
    with pytest.raises(LogFormatError, match="no file at"):
        import_logs(tmp_path / "none.csv", CATALOG, MAP)
    good_frame().head(0).to_csv(tmp_path / "empty.csv", index=False)
    with pytest.raises(LogFormatError, match="has a header but no rows"):
        import_logs(tmp_path / "empty.csv", CATALOG, MAP)


# ---------------------------------------------------------------------- a world log, exported and imported
def export_items(log: SlateLog, sku: np.ndarray[Any, Any]) -> pd.DataFrame:
    """The world's log as a shop's one-row-per-shown-item table, with exact propensities and text ids."""
    n, k = log.slate.shape
    frame = pd.DataFrame({"impression": np.repeat(log.event_id + 5000, k),
                          "shopper": np.repeat(log.session_id, k), "slot": np.tile(np.arange(1, k + 1), n),
                          "product": sku[log.slate.reshape(-1)], "sold": np.asarray(log.purchase).reshape(-1),
                          "gmv": np.asarray(log.revenue).reshape(-1), "p_slate": np.repeat(log.pscore, k),
                          "p_item": log.pscore_item.reshape(-1)})
    for j, name in enumerate(log.metadata.context_names):
        frame[f"ctx_{name}"] = np.repeat(log.context[:, j], k)
    # rows of one impression in any order; impressions in time order (steps follow file order)
    frame["shuffle"] = np.random.default_rng(3).random(len(frame))
    return frame.sort_values(["impression", "shuffle"]).drop(columns="shuffle")


def test_a_world_log_survives_export_and_import(tmp_path: Path) -> None:
    world = World(WorldConfig(n_categories=3, items_per_category=4), seed=1)
    log = generate_log(world, make_logging_policy("softmax", temperature=0.5), 40, seed=2)
    sku = np.array([f"SKU-{i:04d}" for i in range(world.n_items)])
    catalog = Catalog(item_id=sku, category=world.catalog.category, price=world.catalog.price,
                      features=world.catalog.features, feature_names=world.catalog.feature_names)
    mapping = LogMapping.parse("event=impression,user=shopper,position=slot,item=product,purchase=sold,"
                               "revenue=gmv,pscore=p_slate,pscore_item=p_item,context="
                               + ",".join(f"ctx_{c}" for c in log.metadata.context_names),
                               position_base=1, reward="revenue")
    res = import_logs(write(export_items(log, sku), tmp_path / "shop.csv"), catalog, mapping)
    got = res.log
    order = np.argsort(got.event_id)
    assert np.array_equal(got.event_id[order], log.event_id + 5000)
    for name in ("slate", "reward", "purchase", "revenue", "pscore", "pscore_item", "context", "session_id", "step"):
        assert np.array_equal(getattr(got, name)[order], getattr(log, name)), name
    assert got.catalog.item_id[got.slate[order]].tolist() == sku[log.slate].tolist()


def test_progress_reports_every_stage(tmp_path: Path) -> None:
    seen: list[tuple[str, int, int]] = []
    import_logs(write(good_frame(), tmp_path / "log.csv"), CATALOG, MAP, progress=lambda *a: seen.append(a))
    assert [s for s, done, total in seen if done == total] == ["read", "check", "build"]
