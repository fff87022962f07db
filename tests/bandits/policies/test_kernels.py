"""The compiled one-event kernels agree with the ridge algebra written out in numpy."""

from __future__ import annotations

import numpy as np
import pytest

from bandits import Feedback
from bandits.policies import _kernels
from bandits.policies.linear import LinUCB
from bandits.policies.ridge import RidgeArms
from bandits.slates import topk_slates


def test_rank_one_updates_give_the_exact_ridge_solution() -> None:
    rng = np.random.default_rng(0)
    n, d, reg = 5, 4, 0.7
    arms = RidgeArms(n, d, reg)
    items = rng.integers(0, n, 40)
    x = rng.standard_normal((40, d))
    y = rng.standard_normal(40)
    for t in range(40):  # one event at a time (the hot path), then a small batch with repeats
        arms.update_one(int(items[t]), x[t], float(y[t]))
    more_items, more_x, more_y = rng.integers(0, n, 30), rng.standard_normal((30, d)), rng.standard_normal(30)
    arms.update(more_items, more_x, more_y)
    all_items, all_x, all_y = np.r_[items, more_items], np.vstack([x, more_x]), np.r_[y, more_y]
    for i in range(n):
        rows = all_items == i
        a = reg * np.eye(d) + all_x[rows].T @ all_x[rows]
        b = all_x[rows].T @ all_y[rows]
        np.testing.assert_allclose(arms.A[i], a, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(arms.A_inv[i], np.linalg.inv(a), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(arms.theta[i], np.linalg.solve(a, b), rtol=1e-9, atol=1e-12)
    iu = np.triu_indices(d)
    np.testing.assert_allclose(arms._tri, arms.A_inv[:, iu[0], iu[1]] * np.where(iu[0] == iu[1], 1.0, 2.0),
                               rtol=1e-12)


@pytest.mark.parametrize("alpha", [0.0, 0.3])
def test_ucb_scores_match_the_formula(alpha: float) -> None:
    rng = np.random.default_rng(1)
    arms = RidgeArms(7, 3, 1.0)
    arms.update(rng.integers(0, 7, 200), rng.standard_normal((200, 3)), rng.random(200))
    x = rng.standard_normal(3)
    expected = arms.theta @ x + alpha * np.sqrt(np.einsum("d,ide,e->i", x, arms.A_inv, x))
    np.testing.assert_allclose(arms.ucb_one(x, alpha), expected, rtol=1e-12)


def test_all_finite() -> None:
    assert _kernels.all_finite(np.array([0.0, -1e300, 5.0]))
    assert not _kernels.all_finite(np.array([0.0, np.nan]))
    assert not _kernels.all_finite(np.array([np.inf, 1.0]))


def test_one_event_api_plays_like_the_batch_api() -> None:
    """select_one/update_one and select/update on batches of one make the same choices."""
    rng = np.random.default_rng(2)
    one, batch = LinUCB(12, 2, 4, alpha=0.5, seed=0), LinUCB(12, 2, 4, alpha=0.5, seed=0)
    for _ in range(300):
        x = rng.standard_normal(4)
        s1 = one.select_one(x).slate
        s2 = batch.select(x[None, :]).slate
        np.testing.assert_array_equal(s1, s2)
        reward = (rng.random(2) < 0.3).astype(float)
        one.update_one(x, s1[0], reward)
        batch.update(Feedback(x[None, :], s2, reward[None, :]))
    np.testing.assert_allclose(one._ridge.theta, batch._ridge.theta, rtol=1e-12)


@pytest.mark.parametrize("k", [1, 2, 3, 6])
def test_top_k_one_is_topk_slates_on_one_row(k: int) -> None:
    """Ties (to the lower index), -inf and NaN scores, and every slot order, as in numpy."""
    rng = np.random.default_rng(3 + k)
    for trial in range(300):
        n = int(rng.integers(k, 12))
        scores = rng.integers(0, 4, n).astype(float)  # many ties
        scores[rng.random(n) < 0.2] = -np.inf
        if trial % 5 == 0:
            scores[rng.integers(0, n)] = np.nan
        order = rng.permutation(k).astype(np.int64)
        out = np.empty(k, dtype=np.int64)
        _kernels.top_k_one(scores, k, order, out)
        np.testing.assert_array_equal(out, topk_slates(scores[None, :], k, None, None, order)[0])
        assert len(set(out.tolist())) == k


def test_top_k_one_by_hand() -> None:
    out = np.empty(3, dtype=np.int64)
    # best 0.9 (item 2), then the tie 0.5 of items 1 and 3 (lower index first); slots 2, 0, 1
    _kernels.top_k_one(np.array([0.1, 0.5, 0.9, 0.5, -np.inf]), 3, np.array([2, 0, 1]), out)
    np.testing.assert_array_equal(out, [1, 3, 2])
    # -inf items are still chosen, lowest index first, once nothing better is left
    _kernels.top_k_one(np.array([-np.inf, 2.0, -np.inf]), 3, np.array([0, 1, 2]), out)
    np.testing.assert_array_equal(out, [1, 0, 2])


def test_select_one_propensities_are_ones_that_cannot_be_overwritten() -> None:
    policy = LinUCB(6, 3, 2, seed=0)
    first = policy.select_one(np.array([0.5, -1.0]))
    np.testing.assert_array_equal(first.pscore, [1.0])
    np.testing.assert_array_equal(first.pscore_item, np.ones((1, 3)))
    with pytest.raises(ValueError, match="read-only"):
        first.pscore_item[0, 0] = 0.5  # shared between decisions: refused, not silently changed
    assert policy.select_one(np.array([0.1, 0.2])).pscore_item[0, 0] == 1.0
