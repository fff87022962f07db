from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from simulator.world import (
    SessionState,
    World,
    WorldError,
    WorldPolicy,
    make_logging_policy,
)
from simulator.world.policies import pl_marginals

N_DRAWS = 30_000
POLICIES = [
    pytest.param("uniform", {}, id="uniform"),
    pytest.param("epsilon_greedy", {"epsilon": 0.3}, id="epsilon-greedy"),
    pytest.param("softmax", {"temperature": 0.5}, id="softmax"),
    pytest.param("softmax", {"temperature": 0.05, "score": "attraction", "scale": False},
                 id="softmax-attraction"),
]


def _replicated(world: World, seed: int) -> SessionState:
    return world.new_sessions(1, np.random.default_rng(seed)).take(np.zeros(N_DRAWS, dtype=np.int64))


def _chi2_pvalue(slates: np.ndarray, pscore: np.ndarray) -> tuple[float, float]:
    keys, inverse, counts = np.unique(slates, axis=0, return_inverse=True, return_counts=True)
    inverse = inverse.ravel()
    # one propensity per distinct slate
    ps = np.zeros(keys.shape[0])
    ps[inverse] = pscore
    for j in range(keys.shape[0]):
        np.testing.assert_allclose(pscore[inverse == j], ps[j], rtol=1e-12)
    total = float(ps.sum())
    expected = ps * slates.shape[0]
    # pool the slates with small expected counts (and the unseen mass) into one bin
    small = expected < 5
    obs = np.append(counts[~small], counts[small].sum())
    exp = np.append(expected[~small], expected[small].sum() + (1 - total) * slates.shape[0])
    keep = exp > 0
    obs, exp = obs[keep], exp[keep]
    return float(stats.chisquare(obs, exp * obs.sum() / exp.sum()).pvalue), total


@pytest.mark.parametrize(("name", "params"), POLICIES)
@pytest.mark.parametrize("seed", [0, 1])
def test_pscore_is_the_slate_frequency(tiny_world: World, name: str, params: dict[str, Any],
                                       seed: int) -> None:
    world = tiny_world.with_config(reward_type="revenue")
    policy = make_logging_policy(name, **params)
    state = _replicated(world, seed)
    d = policy.decide(world, state, np.random.default_rng(100 + seed))
    pvalue, total = _chi2_pvalue(d.slate, d.pscore)
    assert pvalue > 1e-3
    assert total <= 1 + 1e-9
    # per-slot marginals: pscore_item and action_dist agree with the frequencies
    dist = policy.action_dist(world, state.take([0]))[0]
    np.testing.assert_allclose(dist.sum(axis=0), 1.0, rtol=1e-10)
    for j in range(world.k):
        np.testing.assert_allclose(d.pscore_item[:, j], dist[d.slate[:, j], j], rtol=1e-10)
        freq = np.bincount(d.slate[:, j], minlength=world.n_items) / N_DRAWS
        np.testing.assert_allclose(freq, dist[:, j], atol=5 * np.sqrt(0.25 / N_DRAWS))
    assert world.eligible(state.take([0]))[0, d.slate].all()


def test_uniform_with_required_cross_sell(tiny_world: World) -> None:
    world = tiny_world.with_config(require_cross_sell=True)
    policy = make_logging_policy("uniform")
    state = _replicated(world, 2)
    req = world.required(state.take([0]))
    assert req is not None and req.any()
    d = policy.decide(world, state, np.random.default_rng(3))
    assert np.take_along_axis(np.broadcast_to(req, (N_DRAWS, world.n_items)), d.slate, axis=1).any(axis=1).all()
    # exact count of valid slates: all ordered slates minus those without a required item
    elig = np.flatnonzero(world.eligible(state.take([0]))[0])
    valid = [s for s in itertools.permutations(elig, world.k) if req[0, list(s)].any()]
    np.testing.assert_allclose(d.pscore, 1.0 / len(valid))
    pvalue, total = _chi2_pvalue(d.slate, d.pscore)
    assert pvalue > 1e-3 and total == pytest.approx(1.0)
    eg = make_logging_policy("epsilon_greedy", epsilon=0.5).decide(world, state, np.random.default_rng(4))
    assert _chi2_pvalue(eg.slate, eg.pscore)[0] > 1e-3


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), m=st.integers(3, 6))
def test_plackett_luce_marginals_match_enumeration(seed: int, m: int) -> None:
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.full(m, 0.7), size=1)
    brute = np.zeros((m, 3))
    for s in itertools.permutations(range(m), 3):
        prob, used = 1.0, 0.0
        for i in s:
            prob *= p[0, i] / (1.0 - used)
            used += p[0, i]
        for j, i in enumerate(s):
            brute[i, j] += prob
    # Tolerance from float rounding: the third-slot marginal of item i is a leave-one-out
    # difference of sums of the m^2 non-negative terms p_i (p_a / r_a) p_b / (r_a - p_b), so its
    # rounding error is a few ulps of their total S_i (large when some p_a is near 1), not of
    # the (possibly tiny) result. The leave-one-out totals are shared by all items (the last slot
    # closes as one minus the others), so 2 m^2 ulps of max(max_i S_i, 1) bounds every entry.
    r = p[0] / (1.0 - p[0])
    g = p[0][None, :] / np.maximum((1.0 - p[0])[:, None] - p[0][None, :], 1e-300)
    np.fill_diagonal(g, 0.0)
    magnitude = max(float((p[0] * (r[:, None] * g).sum()).max()), 1.0)
    tol = 2 * m**2 * np.finfo(np.float64).eps * magnitude
    assert (np.abs(pl_marginals(p, 3)[0] - brute) <= tol).all()


@pytest.mark.parametrize(
    ("name", "params", "match"),
    [
        pytest.param("thompson", {}, r"unknown logging policy 'thompson'; choose one of", id="name"),
        pytest.param("epsilon_greedy", {"epsilon": 2.0}, r"`epsilon` must lie in \[0, 1\], found 2.0",
                     id="epsilon"),
        pytest.param("softmax", {"temperature": 0.0}, r"`temperature` must be > 0, found 0.0", id="temp"),
        pytest.param("softmax", {"score": "margin"}, r"`score` must be one of .*found 'margin'", id="score"),
        pytest.param("uniform", {"epsilon": 0.1}, r"logging policy 'uniform': bad parameters", id="param"),
    ],
)
def test_bad_policies(name: str, params: dict[str, Any], match: str) -> None:
    with pytest.raises(WorldError, match=match):
        make_logging_policy(name, **params)


def test_softmax_refuses_what_it_cannot_make_exact(tiny_world: World) -> None:
    world = tiny_world.with_config(require_cross_sell=True)
    state = world.new_sessions(2, np.random.default_rng(0))
    with pytest.raises(WorldError, match="does not support require_cross_sell"):
        make_logging_policy("softmax").decide(world, state, np.random.default_rng(0))


def test_builtins_are_world_policies() -> None:
    assert all(isinstance(make_logging_policy(n), WorldPolicy)
               for n in ("uniform", "epsilon_greedy", "greedy", "patient", "softmax"))
