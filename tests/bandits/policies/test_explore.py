"""Exploration wrappers: hand-computed propensities, and the OPE support check."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bandits import Feedback, PolicyError, make_policy
from bandits.policies.explore import ope_support, require_ope_support
from simulator.errors import OPEError


def _trained(name: str = "popularity", **params: object):  # type: ignore[no-untyped-def]
    policy = make_policy(name, n_items=5, k=2, dim_context=1, **params)
    # item rewards: 4 -> 3, 2 -> 2, 0 -> 1
    fb = Feedback(np.zeros((3, 1)), np.array([[4, 2], [4, 2], [4, 0]]), np.array([[1.0, 1.0], [1.0, 1.0], [1.0, 1.0]]))
    policy.update(fb)
    return policy


def test_epsilon_wrapper_propensities_by_hand() -> None:
    policy = make_policy("explore", n_items=5, k=2, dim_context=1, base="popularity", epsilon=0.2, seed=0)
    policy.update(Feedback(np.zeros((3, 1)), np.array([[4, 2], [4, 2], [4, 0]]), np.ones((3, 2))))
    d = policy.select(np.zeros((4_000, 1)))
    greedy = (d.slate == [4, 2]).all(axis=1)
    # 5 * 4 = 20 ordered slates: greedy has 0.8 + 0.2 / 20
    np.testing.assert_allclose(d.pscore[greedy], 0.8 + 0.2 / 20)
    np.testing.assert_allclose(d.pscore[~greedy], 0.2 / 20)
    assert abs(greedy.mean() - 0.81) < 4 * math.sqrt(0.81 * 0.19 / 4_000)


def test_softmax_wrapper_first_slot_is_the_softmax_of_scores() -> None:
    policy = make_policy("explore", n_items=5, k=2, dim_context=1, base="popularity", method="softmax",
                         temperature=2.0, seed=0)
    policy.update(Feedback(np.zeros((3, 1)), np.array([[4, 2], [4, 2], [4, 0]]), np.ones((3, 2))))
    dist = policy.action_dist(np.zeros((1, 1)))[0]
    scores = np.array([1.0, 0.0, 2.0, 0.0, 3.0]) / 2.0
    np.testing.assert_allclose(dist[:, 0], np.exp(scores) / np.exp(scores).sum(), rtol=1e-6)
    # slot 1 given slot 0 = i: softmax over the rest
    w = np.exp(scores)
    second = np.array([sum(w[i] / w.sum() * w[j] / (w.sum() - w[i]) for i in range(5) if i != j) for j in range(5)])
    np.testing.assert_allclose(dist[:, 1], second, rtol=1e-6)


def test_deterministic_scorer_says_its_log_cannot_support_ope() -> None:
    greedy = _trained()
    ctx = np.zeros((10, 1))
    report = ope_support(greedy, ctx)
    assert not report.supported and report.deterministic_rows == 10 and report.min_prob == 0.0
    with pytest.raises(OPEError, match=r"cannot support off-policy evaluation.*explore"):
        require_ope_support(greedy, ctx)
    wrapped = make_policy("explore", n_items=5, k=2, dim_context=1, base="popularity", epsilon=0.1)
    ok = require_ope_support(wrapped, ctx)
    assert ok.supported and ok.min_prob == pytest.approx(0.1 / 5)


@pytest.mark.parametrize(("params", "message"), [
    pytest.param({"base": "linear_ts"}, "must name a scoring policy", id="not-a-scorer"),
    pytest.param({"base": "bought_together"}, "wrap it with 'explore_anchored'", id="anchored-base"),
    pytest.param({"base_params": {"epsilon": 0.2}}, "leave the base greedy", id="base-epsilon"),
    pytest.param({"base_params": {"k": 3}}, "may not set \\['k'\\]", id="base-k"),
    pytest.param({"method": "ucb"}, "`method` must be one of", id="method"),
    pytest.param({"epsilon": 0.0}, "`epsilon` must be in \\(0", id="epsilon-zero"),
])
def test_bad_wrapper_arguments(params: dict, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        make_policy("explore", n_items=5, k=2, dim_context=1, **params)


def test_anchored_wrapper_passes_the_anchor_column() -> None:
    policy = make_policy("explore_anchored", n_items=5, k=2, dim_context=2, base="bought_together",
                         anchor_column=1, epsilon=0.1)
    assert policy.inner.anchor_column == 1  # type: ignore[attr-defined]
    with pytest.raises(PolicyError, match="wrap it with 'explore'"):
        make_policy("explore_anchored", n_items=5, k=2, dim_context=2, base="popularity")
