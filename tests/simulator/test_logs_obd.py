"""The Open Bandit Dataset importer, describe() on it, and the time-ordered split."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest

from simulator.logs import LogFormatError, describe, import_obd, train_test_split


def count_by_position(path: Path) -> tuple[list[int], list[int]]:
    """Clicks and impressions per position 1..3, counted with the csv module only."""
    clicks, shown = [0, 0, 0], [0, 0, 0]
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            j = int(row["position"]) - 1
            shown[j] += 1
            clicks[j] += int(row["click"])
    return clicks, shown


@pytest.mark.parametrize("policy", ["random", "bts"])
def test_click_rate_by_position_matches_an_independent_count(obd_dir: Path, policy: str) -> None:
    log = import_obd(obd_dir, policy=policy, campaign="men")
    clicks, shown = count_by_position(obd_dir / policy / "men" / "men.csv")
    summary = describe(log)
    assert summary.n_rounds == sum(shown) == 10_000
    for j in range(3):
        r = summary.reward_rate_by_position[j]
        assert r.n == shown[j]
        assert r.rate == clicks[j] / shown[j]
        assert r.low < r.rate < r.high
    assert summary.reward_rate.rate == sum(clicks) / sum(shown)


def test_import_shapes_and_values(obd_dir: Path) -> None:
    log = import_obd(obd_dir, policy="random", campaign="men")
    assert (log.k, log.n_positions, log.n_items) == (1, 3, 34)
    np.testing.assert_allclose(log.pscore, 1 / 34)
    # one-hot: exactly one active value per user feature
    assert np.all(log.context.sum(axis=1) == 4)
    assert log.context.dtype == np.float32
    assert "CC BY 4.0" in log.metadata.source
    assert describe(log).ess_uniform == pytest.approx(10_000)
    with_aff = import_obd(obd_dir, policy="random", campaign="men", include_affinity=True)
    assert with_aff.dim_context == log.dim_context + 34
    chunked = import_obd(obd_dir, policy="random", campaign="men", chunk_rows=777)
    assert chunked.equals(log)


def copy_campaign(obd_dir: Path, tmp_path: Path) -> Path:
    shutil.copytree(obd_dir / "random" / "men", tmp_path / "random" / "men")
    return tmp_path / "random" / "men" / "men.csv"


def corrupt(path: Path, row: int, column: str, value: str) -> None:
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    rows[row + 1][rows[0].index(column)] = value
    with path.open("w", newline="") as handle:
        csv.writer(handle).writerows(rows)


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        pytest.param("click", "yes", r"data row 41 \(file line 43\), column `click`: expected a click 0 or 1, "
                     r"found 'yes'", id="click-text"),
        pytest.param("position", "4", r"column `position`: expected a position 1, 2 or 3, found 4", id="pos"),
        pytest.param("item_id", "99", r"column `item_id`: expected an item id in 0..33", id="item"),
        pytest.param("propensity_score", "0", r"column `propensity_score`: expected a probability", id="p0"),
        pytest.param("timestamp", "yesterday", r"column `timestamp`: expected an ISO 8601 time", id="time"),
    ],
)
def test_malformed_value_names_file_row_column(obd_dir: Path, tmp_path: Path, column: str, value: str,
                                               message: str) -> None:
    path = copy_campaign(obd_dir, tmp_path)
    corrupt(path, 41, column, value)
    with pytest.raises(LogFormatError, match=message) as info:
        import_obd(tmp_path, policy="random", campaign="men", chunk_rows=30)
    assert str(path) in str(info.value)


def test_not_the_layout(tmp_path: Path, obd_dir: Path) -> None:
    with pytest.raises(LogFormatError, match="not in the Open Bandit Dataset layout"):
        import_obd(tmp_path, policy="random", campaign="men")
    with pytest.raises(LogFormatError, match="is not a folder"):
        import_obd(tmp_path / "nope", policy="random", campaign="men")
    with pytest.raises(LogFormatError, match="`policy` must be one of"):
        import_obd(obd_dir, policy="greedy", campaign="men")


def test_missing_column(obd_dir: Path, tmp_path: Path) -> None:
    path = copy_campaign(obd_dir, tmp_path)
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    drop = rows[0].index("propensity_score")
    with path.open("w", newline="") as handle:
        csv.writer(handle).writerows([r[:drop] + r[drop + 1:] for r in rows])
    with pytest.raises(LogFormatError, match=r"missing columns \['propensity_score'\]"):
        import_obd(tmp_path, policy="random", campaign="men")


def test_time_ordered_split(obd_dir: Path) -> None:
    log = import_obd(obd_dir, policy="random", campaign="men")
    train, test = train_test_split(log, test_fraction=0.25)
    assert len(train) + len(test) == len(log)
    assert len(test) == 2500
    assert train.timestamp is not None and test.timestamp is not None
    assert train.timestamp.max() <= test.timestamp.min()
    assert np.all(np.diff(train.timestamp.astype(np.int64)) >= 0)
    with pytest.raises(ValueError, match="test_fraction"):
        train_test_split(log, test_fraction=1.0)


def test_split_keeps_sessions_whole() -> None:
    from simulator.logs import Catalog, SlateLog

    session = np.repeat(np.arange(5), 4)
    log = SlateLog.from_arrays(context=np.zeros((20, 1)), slate=np.zeros((20, 1), int),
                               reward=np.zeros((20, 1)), pscore=np.ones(20), catalog=Catalog.anonymous(1),
                               session_id=session, step=np.tile(np.arange(4), 5))
    train, test = train_test_split(log, test_fraction=0.3)
    assert not set(train.session_id) & set(test.session_id)
    assert len(test) % 4 == 0


def test_one_vocabulary_across_policies(obd_dir: Path) -> None:
    # the random and bts files of a campaign hold different user-feature values; both logs must
    # still have the same context columns, in the same order, each row's one-hot at its own value
    import pandas as pd

    from simulator.logs import obd_vocabulary

    random_log = import_obd(obd_dir, policy="random", campaign="men")
    bts_log = import_obd(obd_dir, policy="bts", campaign="men")
    assert random_log.metadata.context_names == bts_log.metadata.context_names
    assert random_log.dim_context == bts_log.dim_context
    vocab = obd_vocabulary(obd_dir, "men")
    expected = sum(len(v) for v in vocab.values())
    assert random_log.dim_context == expected
    raw = pd.read_csv(obd_dir / "bts" / "men" / "men.csv", index_col=0, dtype=str)
    names = list(bts_log.metadata.context_names)
    for row in (0, 7, len(raw) - 1):
        for col in ("user_feature_0", "user_feature_3"):
            assert bts_log.context[row, names.index(f"{col}={raw[col].iloc[row]}")] == 1.0


def test_a_value_outside_a_given_vocabulary_is_refused(obd_dir: Path) -> None:
    from simulator.logs import LogFormatError, obd_vocabulary

    vocab = dict(obd_vocabulary(obd_dir, "men", policies=("random",)))
    vocab["user_feature_0"] = vocab["user_feature_0"][1:]
    with pytest.raises(LogFormatError, match="outside the given vocabulary"):
        import_obd(obd_dir, policy="random", campaign="men", vocabulary=vocab)
