"""The log type: construction, defaults, validation errors, subsets."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from simulator.logs import Catalog, LogMetadata, LogValidationError, SlateLog


def catalog(n_items: int = 5) -> Catalog:
    return Catalog(
        item_id=np.arange(100, 100 + n_items),
        category=np.array(["a", "b"] * n_items)[:n_items],
        price=np.linspace(1.0, 9.0, n_items),
        features=np.eye(n_items)[:, :2],
    )


def good(n: int = 4, k: int = 2, d: int = 3) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    slate = np.stack([rng.permutation(5)[:k] for _ in range(n)])
    return {
        "context": rng.normal(size=(n, d)),
        "slate": slate,
        "reward": rng.integers(0, 2, size=(n, k)).astype(float),
        "pscore": np.full(n, 0.05),
        "pscore_item": np.full((n, k), 0.2),
        "catalog": catalog(),
    }


def with_(**changes: Any) -> dict[str, Any]:
    args = good()
    args.update(changes)
    return args


def test_from_arrays_fills_ids_and_freezes_arrays() -> None:
    args = good()
    log = SlateLog.from_arrays(**args)
    assert log.n_rounds == 4 and log.k == 2 and log.dim_context == 3 and log.n_items == 5
    np.testing.assert_array_equal(log.event_id, np.arange(4))
    np.testing.assert_array_equal(log.session_id, log.event_id)
    np.testing.assert_array_equal(log.step, np.zeros(4))
    assert set(log.policy) == {"unknown"}
    with pytest.raises(ValueError, match="read-only"):
        log.reward[0, 0] = 5.0
    # the caller's array is not made read-only
    args["reward"][0, 0] = 1.0


def test_k1_log_defaults_pscore_item_to_pscore() -> None:
    log = SlateLog.from_arrays(context=np.zeros((3, 1)), slate=np.array([[0], [1], [2]]),
                               reward=np.zeros((3, 1)), pscore=np.array([0.2, 0.3, 0.4]),
                               catalog=catalog())
    np.testing.assert_array_equal(log.pscore_item[:, 0], log.pscore)


BAD_INPUT = [
    pytest.param(with_(reward=np.zeros((3, 2))), r"`reward`: expected 4 rows \(as many as `slate`\), found 3 rows",
                 id="mismatched-length"),
    pytest.param(with_(pscore=np.array([0.05, 0.0, 0.05, 0.05])),
                 r"`pscore` at row 1: expected a probability in \(0, 1\], found 0\.0", id="pscore-zero"),
    pytest.param(with_(pscore=np.array([0.05, 0.05, 1.5, 0.05])),
                 r"`pscore` at row 2: expected a probability in \(0, 1\], found 1\.5", id="pscore-above-one"),
    pytest.param(with_(pscore_item=np.array([[0.2, 0.2], [0.2, 0.2], [0.2, -0.1], [0.2, 0.2]])),
                 r"`pscore_item` at row 2: expected a probability in \(0, 1\], found -0\.1",
                 id="pscore-item-negative"),
    pytest.param(with_(context=np.array([[0.0, 1, 2], [0, np.nan, 1], [0, 0, 0], [1, 1, 1]])),
                 r"`context` at row 1: expected finite numbers, found nan", id="context-nan"),
    pytest.param(with_(reward=np.array([[0.0, 1], [0, 0], [0, 0], [np.inf, 0]])),
                 r"`reward` at row 3: expected finite numbers, found inf", id="reward-inf"),
    pytest.param(with_(slate=np.array([[0, 1], [2, 3], [4, 7], [0, 2]])),
                 r"`slate` at row 2: expected item indices in \[0, 4\] \(the catalog\), found item 7",
                 id="item-outside-catalog"),
    pytest.param(with_(slate=np.array([[0, 1], [2, 2], [4, 3], [1, 1]])),
                 r"`slate` at row 1 \(and 1 more rows\): expected k distinct items per slate, "
                 r"found slate \[2, 2\]", id="duplicate-in-slate"),
    pytest.param(with_(slate=np.tile(np.arange(6), (4, 1)), reward=np.zeros((4, 6)),
                       pscore_item=np.full((4, 6), 0.5)),
                 r"`slate`: expected k <= n_items = 5, found k = 6", id="k-larger-than-catalog"),
    pytest.param(with_(metadata=LogMetadata(schema_version=99)),
                 r"`metadata.schema_version`: expected one of \[1, 2\], found 99", id="unknown-schema"),
    pytest.param(with_(position=np.array([0, 1, 1, 3])),
                 r"`position` at row 3: expected a slot in \[0, 1\], found 3", id="position-out-of-range"),
    pytest.param(with_(event_id=np.array([1, 2, 2, 3])),
                 r"`event_id`: expected unique event ids, found event id 2 more than once",
                 id="duplicate-event-id"),
    pytest.param(with_(slate=np.array([[0.5, 1], [2, 3], [4, 0], [1, 2]])),
                 r"`slate`: expected an integer array, found dtype float64", id="slate-float"),
    pytest.param(with_(context=np.zeros(4)), r"`context`: expected shape \(n, k\), found shape \(4,\)",
                 id="context-1d"),
    pytest.param(with_(metadata=LogMetadata(reward_type="likes")),
                 r"`metadata.reward_type`: expected one of", id="reward-type"),
]


@pytest.mark.parametrize(("kwargs", "message"), BAD_INPUT)
def test_bad_input_is_named(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(LogValidationError, match=message):
        SlateLog.from_arrays(**kwargs)


def test_every_problem_is_reported_at_once() -> None:
    args = with_(pscore=np.array([0.05, 0.0, 0.05, 0.05]),
                 context=np.array([[0.0, 1, 2], [0, np.nan, 1], [0, 0, 0], [1, 1, 1]]))
    with pytest.raises(LogValidationError) as info:
        SlateLog.from_arrays(**args)
    assert {p.field for p in info.value.problems} == {"pscore", "context"}


CATALOG_BAD = [
    pytest.param({"item_id": np.array([1, 2, 2])}, r"unique item ids, found item id 2", id="dup-id"),
    pytest.param({"price": np.array([1.0, -2.0, 3.0])}, r"`catalog.price` at row 1: expected a price >= 0",
                 id="negative-price"),
    pytest.param({"price": np.array([1.0, np.nan, 3.0])}, r"`catalog.price` at row 1: expected finite",
                 id="nan-price"),
    pytest.param({"category": np.array(["a", "b"])}, r"`catalog.category`: expected 3 rows", id="short"),
]


@pytest.mark.parametrize(("change", "message"), CATALOG_BAD)
def test_bad_catalog(change: dict[str, Any], message: str) -> None:
    args: dict[str, Any] = {"item_id": np.arange(3), "category": np.array(["a", "b", "c"]),
                            "price": np.ones(3), "features": np.zeros((3, 1))}
    args.update(change)
    with pytest.raises(LogValidationError, match=message):
        Catalog(**args)


def test_take_and_concat_are_inverse() -> None:
    log = SlateLog.from_arrays(**good(n=10))
    first, second = log.take(np.arange(6)), log.take(np.arange(6, 10))
    assert SlateLog.concat([first, second]).equals(log)
    mask = np.zeros(10, dtype=bool)
    mask[[1, 3]] = True
    np.testing.assert_array_equal(log.take(mask).event_id, [1, 3])
    with pytest.raises(IndexError, match="outside"):
        log.take(np.array([10]))


def test_concat_refuses_mixed_catalogs() -> None:
    log = SlateLog.from_arrays(**good())
    other = SlateLog.from_arrays(**with_(catalog=Catalog.anonymous(5)))
    with pytest.raises(ValueError, match="different catalog"):
        SlateLog.concat([log, other])
