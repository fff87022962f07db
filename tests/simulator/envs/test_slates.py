from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.envs import InvalidSlateError, SlateSpace, check_slate, check_slates, top_k


def brute_top_k(scores: np.ndarray, k: int, eligible: np.ndarray) -> list[int]:
    """Reference: sort eligible items by (-score, index)."""
    items = [i for i in range(scores.size) if eligible[i]]
    return sorted(items, key=lambda i: (-scores[i], i))[:k]


@settings(max_examples=150, deadline=None)
@given(
    st.integers(1, 12).flatmap(lambda n: st.tuples(
        st.lists(st.sampled_from([-np.inf, -1.0, 0.0, 0.5, 1.0, 2.0, np.inf]), min_size=n, max_size=n),
        st.lists(st.booleans(), min_size=n, max_size=n),
        st.integers(1, n),
    ))
)
def test_top_k_matches_brute_force(case: tuple[list[float], list[bool], int]) -> None:
    raw, mask, k = case
    scores, eligible = np.array(raw), np.array(mask)
    if eligible.sum() < k:
        with pytest.raises(InvalidSlateError, match="fewer than k"):
            top_k(scores, k, eligible)
        return
    got = top_k(scores, k, eligible)
    assert got.tolist() == brute_top_k(scores, k, eligible)
    assert top_k(scores[None, :], k, eligible[None, :])[0].tolist() == got.tolist()


def test_top_k_batch_hand_case() -> None:
    scores = np.array([[0.1, 0.9, 0.5, 0.9], [3.0, 2.0, 1.0, 0.0]])
    assert top_k(scores, 2).tolist() == [[1, 3], [0, 1]]
    mask = np.array([[True, False, True, True], [False, True, True, True]])
    assert top_k(scores, 2, mask).tolist() == [[3, 2], [1, 2]]


@pytest.mark.parametrize(
    ("scores", "message"),
    [
        pytest.param(np.array([1.0, np.nan, 0.0]), "NaN", id="nan"),
        pytest.param(np.array([1.0]), r"n_items >= k = 2", id="too-few-items"),
        pytest.param(np.zeros((2, 2, 2)), r"found shape \(2, 2, 2\)", id="3d"),
    ],
)
def test_top_k_bad_scores(scores: Any, message: str) -> None:
    with pytest.raises(InvalidSlateError, match=message):
        top_k(scores, 2)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 20).flatmap(lambda n: st.tuples(st.just(n), st.integers(1, n), st.integers(0, 10**6))))
def test_slate_space_samples_distinct_members(case: tuple[int, int, int]) -> None:
    n, k, seed = case
    space = SlateSpace(n, k, seed=seed)
    for _ in range(5):
        slate = space.sample()
        assert space.contains(slate)
        check_slate(slate, n, k)


def test_slate_space_contains_and_mask() -> None:
    space = SlateSpace(5, 3, seed=0)
    assert space.contains(np.array([0, 1, 4]))
    assert not space.contains(np.array([0, 0, 4]))
    assert not space.contains(np.array([0, 1, 5]))
    allowed = np.array([1, 0, 1, 0, 1], dtype=np.int8)
    for _ in range(20):
        assert sorted(space.sample(mask=(allowed,) * 3).tolist()) == [0, 2, 4]
    with pytest.raises(ValueError, match="no item for slot 2"):
        space.sample(mask=(np.array([1, 1, 0, 0, 0], dtype=np.int8),) * 3)
    with pytest.raises(ValueError, match=r"`k` must lie in \[1, n_items = 2\]"):
        SlateSpace(2, 3)


@pytest.mark.parametrize(
    ("actions", "eligible", "message"),
    [
        pytest.param(np.array([[0, 1], [1, 1]]), None, r"at row 1 \(1 rows with a duplicate\)", id="dup"),
        pytest.param(np.array([[0, 1], [1, 9]]), None, r"\[0, 3\].*\[1, 9\] at row 1", id="range"),
        pytest.param(np.array([0, 1]), None, r"shape \(2, 2\)", id="1d"),
        pytest.param(np.array([[0, 1, 2], [1, 2, 3]]), None, r"shape \(2, 2\).*\(2, 3\)", id="k"),
        pytest.param(np.array([[0, 1], [2, 3]]), np.array([[True] * 4, [True, True, False, True]]),
                     r"ineligible items \[2\] at row 1", id="ineligible"),
    ],
)
def test_check_slates_bad(actions: Any, eligible: Any, message: str) -> None:
    with pytest.raises(InvalidSlateError, match=message):
        check_slates(actions, 4, 2, eligible, n=2)


def test_check_slate_ineligible() -> None:
    eligible = np.array([True, False, True])
    assert check_slate(np.array([2, 0]), 3, 2, eligible).tolist() == [2, 0]
    with pytest.raises(InvalidSlateError, match=r"ineligible items \[1\] in slate \[1, 0\]"):
        check_slate(np.array([1, 0]), 3, 2, eligible)
