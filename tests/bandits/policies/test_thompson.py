"""Bernoulli Thompson sampling, including the Open Bandit Dataset's production prior."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from scipy import integrate, stats

from bandits import Feedback, make_policy


def _prior(obd_dir: Path) -> dict[str, list[float]]:
    prior: dict[str, list[float]] = json.loads((obd_dir / "bts_prior.json").read_text())["men"]
    return prior


def test_obd_production_policy_first_slot_matches_numerical_integration(obd_dir: Path) -> None:
    """P(item i is the top draw) = integral of f_i(t) prod_{j != i} F_j(t) dt, computed independently."""
    prior = _prior(obd_dir)
    a, b = np.array(prior["alpha"]), np.array(prior["beta"])
    policy = make_policy("bernoulli_ts", n_items=34, k=3, alpha=a, beta=b, seed=0)
    n_draws = 100_000
    dist = policy.action_dist(np.zeros((2, 5)), n_draws=n_draws)
    assert dist.shape == (2, 34, 3)
    np.testing.assert_array_equal(dist[0], dist[1])  # context-free: one estimate for every row
    # Below lo some item's CDF is < 1e-12, so the integrand there is negligible; above hi every
    # CDF is 1 to 1e-12. Simpson's rule on a fine grid in between.
    lo = float(stats.beta.ppf(1e-12, a, b).max())
    hi = float(stats.beta.ppf(1 - 1e-12, a, b).max())
    t = np.linspace(lo, hi, 20_001)
    log_cdf = stats.beta.logcdf(t[:, None], a, b)  # (grid, items)
    pdf = stats.beta.pdf(t[:, None], a, b)
    others = np.exp(log_cdf.sum(axis=1, keepdims=True) - log_cdf)  # prod over j != i of F_j(t)
    exact = integrate.simpson(pdf * others, x=t, axis=0)
    assert abs(exact.sum() - 1) < 1e-4
    tol = 4 * np.sqrt(exact * (1 - exact) / n_draws) + 1e-4
    assert (np.abs(dist[0, :, 0] - exact) <= tol).all()
    np.testing.assert_allclose(dist[0].sum(axis=0), 1.0)


def test_posterior_adds_clicks_and_examined_non_clicks() -> None:
    policy = make_policy("bernoulli_ts", n_items=3, k=2, alpha=[1.0, 2.0, 3.0], beta=4.0,
                         examination=(1.0, 0.5))
    policy.update(Feedback(np.zeros((2, 1)), np.array([[0, 1], [1, 2]]), np.array([[1.0, 0.0], [1.0, 0.0]])))
    a, b = policy.posterior()  # type: ignore[attr-defined]
    np.testing.assert_allclose(a, [2.0, 3.0, 3.0])
    # item 0: 1 pull, 1 click; item 1: 0.5 + 1 pulls, 1 click; item 2: 0.5 pulls, 0 clicks
    np.testing.assert_allclose(b, [4.0, 4.5, 4.5])


def test_pscore_of_a_near_certain_slate_is_near_one() -> None:
    policy = make_policy("bernoulli_ts", n_items=4, k=2, alpha=[5000, 3000, 1, 1], beta=[1, 1000, 5000, 5000],
                         n_draws=500, seed=1)
    d = policy.select(np.zeros((3, 1)))
    assert d.slate.tolist() == [[0, 1]] * 3
    np.testing.assert_allclose(d.pscore, 1.0)
    assert d.n_draws == 501
