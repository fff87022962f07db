"""Quadrature propensities of Thompson sampling against scipy's adaptive quadrature and 10^6-draw Monte Carlo."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate, stats

from bandits import make_policy
from bandits.policies.linear_ts import normal_quadrature

MC_DRAWS = 1_000_000


def _mc_tolerance(p: np.ndarray) -> np.ndarray:
    # 1e-3, or five standard errors of the 10^6-draw reference where that is wider
    # (at p = 0.5 one standard error is 5e-4, so 1e-3 alone would fail by chance).
    return np.maximum(1e-3, 5 * np.sqrt(p * (1 - p) / MC_DRAWS))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_normal_max_probabilities(seed: int) -> None:
    rng = np.random.default_rng(seed)
    m = 6
    mean = rng.standard_normal((1, m)) * 0.3
    sd = rng.uniform(0.02, 0.6, (1, m))  # widths differing 30-fold
    allowed = np.ones((1, m), dtype=bool)
    allowed[0, 0] = seed != 1
    p = normal_quadrature(mean, sd, allowed)
    assert p is not None
    p = p[0]
    ref = np.zeros(m)
    for i in np.flatnonzero(allowed[0]):
        others = [j for j in np.flatnonzero(allowed[0]) if j != i]

        def integrand(x: float, i: int = i, others: list[int] = others) -> float:
            return float(stats.norm.pdf(x, mean[0, i], sd[0, i])
                         * np.prod(stats.norm.cdf(x, mean[0, others], sd[0, others])))

        ref[i] = integrate.quad(integrand, -10, 10, points=list(mean[0]), limit=400, epsabs=1e-13)[0]
    np.testing.assert_allclose(p, ref, atol=2e-4)
    draws = mean + sd * np.random.default_rng(100 + seed).standard_normal((MC_DRAWS, m))
    draws[:, ~allowed[0]] = -np.inf
    freq = np.bincount(draws.argmax(axis=1), minlength=m) / MC_DRAWS
    assert (np.abs(p - freq) <= _mc_tolerance(freq)).all()


def test_bernoulli_ts_propensities_and_decisions() -> None:
    alpha, beta = [2, 5, 30, 1, 3, 8], [20, 40, 300, 9, 30, 60]
    policy = make_policy("bernoulli_ts", n_items=6, k=1, alpha=alpha, beta=beta, seed=0)
    a, b = policy.posterior()
    eligible = np.array([True, True, True, False, True, True])
    for elig in (None, eligible):
        p = policy.action_dist(np.zeros((1, 1)), eligible=elig)[0, :, 0]
        allowed = np.ones(6, dtype=bool) if elig is None else elig
        ref = np.zeros(6)
        for i in np.flatnonzero(allowed):
            others = [j for j in np.flatnonzero(allowed) if j != i]
            ref[i] = integrate.quad(lambda x, i=i, o=others: stats.beta.pdf(x, a[i], b[i])
                                    * np.prod(stats.beta.cdf(x, a[o], b[o])), 0, 1, limit=400,
                                    epsabs=1e-13)[0]
        np.testing.assert_allclose(p, ref, atol=1e-9)
        draws = np.random.default_rng(5).beta(a, b, size=(MC_DRAWS, 6))
        draws[:, ~allowed] = -1.0
        freq = np.bincount(draws.argmax(axis=1), minlength=6) / MC_DRAWS
        assert (np.abs(p - freq) <= _mc_tolerance(freq)).all()
    # the decision is a true draw: its frequencies follow the propensities it reports
    d = policy.select(np.zeros((20_000, 1)))
    assert d.n_draws is None
    np.testing.assert_allclose(d.pscore, p_all := policy.action_dist(np.zeros((1, 1)))[0, d.slate[:, 0], 0])
    freq = np.bincount(d.slate[:, 0], minlength=6) / 20_000
    np.testing.assert_allclose(freq, policy.action_dist(np.zeros((1, 1)))[0, :, 0],
                               atol=5 * np.sqrt(0.25 / 20_000))
    assert p_all.shape == (20_000,)


def test_required_rule_with_one_slot_draws_among_required_items() -> None:
    policy = make_policy("linear_ts", n_items=5, k=1, dim_context=2, v=0.5, seed=0)
    required = np.array([False, True, False, True, False])
    ctx = np.ones((3, 2))
    dist = policy.action_dist(ctx, required=required)[:, :, 0]
    assert (dist[:, ~required] == 0).all()
    np.testing.assert_allclose(dist.sum(axis=1), 1.0)
    d = policy.select(ctx, required=required)
    assert required[d.slate[:, 0]].all()
    np.testing.assert_allclose(d.pscore, dist[np.arange(3), d.slate[:, 0]])
