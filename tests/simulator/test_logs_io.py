"""Parquet round trips are exact; writes are atomic; foreign files are refused clearly."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulator.logs import (
    Catalog,
    LogFormatError,
    LogMetadata,
    LogValidationError,
    SlateLog,
    load_parquet,
    save_parquet,
)
from simulator.logs.io import META_KEY, log_to_table

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, width=64)
prob = st.floats(min_value=1e-9, max_value=1.0, allow_nan=False, exclude_min=False)


@st.composite
def logs(draw: Any) -> SlateLog:
    n_items = draw(st.integers(1, 8))
    k = draw(st.integers(1, n_items))
    n = draw(st.integers(0, 12))
    d = draw(st.integers(1, 4))
    seed = draw(st.integers(0, 2**31))
    rng = np.random.default_rng(seed)
    slate = np.stack([rng.permutation(n_items)[:k] for _ in range(n)]) if n else np.zeros((0, k), int)
    context = np.array(draw(st.lists(finite, min_size=n * d, max_size=n * d)), dtype=np.float64)
    if draw(st.booleans()):
        context = context.astype(np.float32)
    with_price = draw(st.booleans())
    optional = draw(st.booleans())
    timestamp = (np.datetime64("2024-01-01T00:00:00", "ns")
                 + rng.integers(0, 10**15, size=n).astype("timedelta64[ns]")) if optional else None
    cat = Catalog(
        item_id=rng.permutation(1000)[:n_items],
        category=np.array([draw(st.text(max_size=5)) for _ in range(n_items)]),
        price=rng.lognormal(size=n_items) if with_price else None,
        features=rng.normal(size=(n_items, draw(st.integers(0, 3)))),
    )
    return SlateLog.from_arrays(
        context=context.reshape(n, d),
        slate=slate,
        reward=rng.integers(0, 2, size=(n, k)).astype(float),
        pscore=np.array(draw(st.lists(prob, min_size=n, max_size=n))),
        pscore_item=rng.uniform(0.01, 1.0, size=(n, k)),
        catalog=cat,
        metadata=LogMetadata(logging_policy=draw(st.sampled_from(["uniform", "lin ucb", "é"])),
                             reward_type=draw(st.sampled_from(["click", "revenue"])),
                             source=draw(st.text(max_size=20))),
        position=rng.integers(0, k, size=n) if optional else None,
        purchase=rng.integers(0, 2, size=(n, k)).astype(float) if optional else None,
        revenue=rng.uniform(0, 50, size=(n, k)) if optional else None,
        event_id=rng.permutation(10 * n + 1)[:n],
        session_id=rng.integers(0, 3, size=n),
        step=rng.integers(0, 5, size=n),
        timestamp=timestamp,
        policy=rng.choice(["a", "b", "ü"], size=n),
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(log=logs())
def test_parquet_round_trip_is_exact(log: SlateLog, tmp_path: Path) -> None:
    path = save_parquet(log, tmp_path / "log.parquet")
    back = load_parquet(path)
    assert back.equals(log)
    assert back.context.dtype == log.context.dtype
    assert back.catalog.equals(log.catalog)
    assert back.metadata == log.metadata


def small_log() -> SlateLog:
    return SlateLog.from_arrays(context=np.zeros((2, 1)), slate=np.array([[0], [1]]),
                                reward=np.zeros((2, 1)), pscore=np.array([0.5, 0.5]),
                                catalog=Catalog.anonymous(2))


def test_failed_write_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "log.parquet"
    save_parquet(small_log(), target)
    before = target.read_bytes()

    def broken(*args: Any, **kwargs: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(pq, "write_table", broken)
    with pytest.raises(OSError, match="disk full"):
        save_parquet(small_log(), target)
    assert target.read_bytes() == before  # the old file is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["log.parquet"]  # no temporary left


def test_unknown_schema_version_is_refused(tmp_path: Path) -> None:
    table = log_to_table(small_log())
    meta = json.loads(table.schema.metadata[META_KEY])
    meta["schema_version"] = 7
    pq.write_table(table.replace_schema_metadata({META_KEY: json.dumps(meta).encode()}),
                   tmp_path / "future.parquet")
    with pytest.raises(LogValidationError, match=r"schema_version`: expected one of \[1, 2\], found 7"):
        load_parquet(tmp_path / "future.parquet")


def test_foreign_parquet_is_refused(tmp_path: Path) -> None:
    pq.write_table(pa.table({"a": [1, 2]}), tmp_path / "other.parquet")
    with pytest.raises(LogFormatError, match="not a slatewise log"):
        load_parquet(tmp_path / "other.parquet")
    (tmp_path / "junk.parquet").write_text("not parquet")
    with pytest.raises(LogFormatError, match="not a readable Parquet file"):
        load_parquet(tmp_path / "junk.parquet")
    with pytest.raises(FileNotFoundError, match="no log file"):
        load_parquet(tmp_path / "missing.parquet")
