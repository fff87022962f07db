"""Weighted ALS: the fit satisfies the closed-form normal equations; fold-in is the exact solve."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from bandits import Feedback, PolicyError
from bandits.policies.mf import ImplicitALS, fit_als, fold_in


def _normal_equation_solution(fixed: np.ndarray, counts: np.ndarray, reg: float, alpha: float) -> np.ndarray:
    """Rows of the other side solved in closed form: (F'C_uF + reg I)^-1 F'C_u p_u, dense."""
    f = fixed.shape[1]
    out = np.empty((counts.shape[0], f))
    for u in range(counts.shape[0]):
        c = 1.0 + alpha * counts[u]
        p = (counts[u] > 0).astype(float)
        a = fixed.T @ (c[:, None] * fixed) + reg * np.eye(f)
        out[u] = np.linalg.solve(a, fixed.T @ (c * p))
    return out


def test_als_item_factors_solve_the_weighted_normal_equations() -> None:
    rng = np.random.default_rng(0)
    counts = rng.poisson(0.4, size=(40, 12)).astype(float)
    x, y = fit_als(sp.csr_matrix(counts), factors=3, regularization=0.5, alpha=4.0, iterations=8, seed=1,
                   exact=True)
    # ALS ends on an item step: the item factors are the exact solution given the shopper factors.
    np.testing.assert_allclose(y, _normal_equation_solution(x, counts.T, 0.5, 4.0), rtol=2e-3, atol=2e-4)


def test_fold_in_is_the_closed_form_solve() -> None:
    rng = np.random.default_rng(1)
    y = rng.standard_normal((6, 3))
    counts = np.array([[2.0, 0, 1, 0, 0, 0], [0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 3.0]])
    got = fold_in(y, sp.csr_matrix(counts), 0.3, 2.0)
    expected = _normal_equation_solution(y, counts, 0.3, 2.0)
    np.testing.assert_allclose(got, expected, rtol=1e-10)
    assert (got[1] == 0).all()


def test_als_recommends_within_the_anchor_block() -> None:
    # two groups of items bought together: {0..3} and {4..7}; baskets never mix them
    rng = np.random.default_rng(2)
    n = 400
    group = rng.integers(0, 2, size=n)
    slate = np.stack([rng.choice(4, size=2, replace=False) + 4 * g for g in group])
    anchor = np.array([rng.choice(np.setdiff1d(np.arange(4) + 4 * g, s)) for g, s in zip(group, slate, strict=True)])
    fb = Feedback(anchor[:, None].astype(float), slate, np.ones((n, 2)))
    policy = ImplicitALS(8, 2, 1, factors=2, regularization=0.1, iterations=10, refresh_every=n, seed=0)
    policy.update(fb)
    slates = policy.select(np.array([[1.0], [6.0]])).slate
    assert set(slates[0]) <= {0, 2, 3}
    assert set(slates[1]) <= {4, 5, 7}


def test_refit_only_on_cadence_and_seeded() -> None:
    fb = Feedback(np.array([[0.0], [1.0], [2.0]]), np.array([[1, 2], [0, 3], [3, 1]]), np.ones((3, 2)))
    policy = ImplicitALS(5, 2, 1, factors=2, refresh_every=2, seed=3)
    policy.update(fb)
    first = policy.item_factors()
    assert np.abs(first).sum() > 0  # fitted at the 2nd event
    again = ImplicitALS(5, 2, 1, factors=2, refresh_every=2, seed=3)
    again.update(Feedback(fb.context[:2], fb.slate[:2], fb.reward[:2]))
    np.testing.assert_array_equal(again.item_factors(), first)  # the 3rd event waits for the next refit


@pytest.mark.parametrize(("params", "message"), [
    pytest.param({"factors": 0}, "`factors` must be an integer >= 1", id="factors"),
    pytest.param({"regularization": 0.0}, "`regularization` must be in \\(0", id="regularization"),
    pytest.param({"alpha": -1.0}, "`alpha` must be in \\[0", id="alpha"),
])
def test_bad_arguments(params: dict, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        ImplicitALS(5, 2, 1, **params)
