"""Slate estimators in expectation, computed exactly by enumerating every slate of a small catalog.

Each estimator is linear in the rewards given the slate, so its expectation under
the logging policy is ``sum_s mu(s) * estimate(s, E[r | s])``: a log holding every
slate once with its expected per-slot rewards, weighted by ``mu(s)``, gives it
without Monte Carlo error.
"""

from __future__ import annotations

from itertools import permutations

import numpy as np
import pytest

from bandits.ope import estimate_all
from bandits.ope._data import prepare
from bandits.ope.estimators import ESTIMATORS, SLATE, Context
from simulator.logs import Catalog, SlateLog

M, K = 4, 2
SLATES = np.array(list(permutations(range(M), K)))  # 12 slates
ATTR = np.array([0.6, 0.4, 0.25, 0.1])
EXAMINE = np.array([1.0, 0.6])


def pl_probs(logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Plackett-Luce probability of each slate, (12,), and of its prefixes, (12, K)."""
    w = np.exp(logits)
    first = w[SLATES[:, 0]] / w.sum()
    second = w[SLATES[:, 1]] / (w.sum() - w[SLATES[:, 0]])
    return first * second, np.column_stack([first, first * second])


def marginals(probs: np.ndarray) -> np.ndarray:
    """(M, K) probability of each item at each slot."""
    out = np.zeros((M, K))
    for j in range(K):
        np.add.at(out[:, j], SLATES[:, j], probs)
    return out


def expected_reward(model: str) -> np.ndarray:
    """(12, K) expected per-slot reward of each slate."""
    click = EXAMINE[None, :] * ATTR[SLATES]
    if model == "independent":
        return click
    # cascade: slot 2 is clicked only when slot 1 was not
    return np.column_stack([click[:, 0], (1 - click[:, 0]) * click[:, 1]])


def exact_expectation(name: str, log_probs: tuple[np.ndarray, np.ndarray], eval_probs: tuple[np.ndarray, np.ndarray],
                      reward: np.ndarray, q: float = 0.0) -> float:
    mu, mu_prefix = log_probs
    pi, pi_prefix = eval_probs
    n = len(SLATES)
    dist = np.broadcast_to(marginals(pi), (n, M, K))
    log = SlateLog.from_arrays(context=np.zeros((n, 1)), slate=SLATES, reward=reward, pscore=mu,
                               pscore_item=marginals(mu)[SLATES, np.arange(K)], catalog=Catalog.anonymous(M))
    data = prepare(log, dist)
    from bandits.ope.reward_model import Predictions

    pred = Predictions(np.full((n, K), q), np.full((n, K), q), np.ones((n, K)), None)
    ctx = Context(data, pred, None, 0, eval_pscore=pi, eval_pscore_cascade=pi_prefix, pscore_cascade=mu_prefix)
    terms = ESTIMATORS[name].fn(ctx).terms
    per_slate = terms.row_totals()
    return float(mu @ per_slate)


LOGGING = pl_probs(np.array([0.0, 0.5, -0.3, 0.2]))
EVAL = pl_probs(np.array([1.0, -0.5, 0.3, -1.0]))


@pytest.mark.parametrize("name", ["sips", "iips", "rips", "cascade-dr"])
def test_unbiased_under_independent_clicks(name: str) -> None:
    reward = expected_reward("independent")
    truth = float(EVAL[0] @ reward.sum(axis=1))
    assert exact_expectation(name, LOGGING, EVAL, reward, q=0.3) == pytest.approx(truth, rel=1e-10)


@pytest.mark.parametrize("name", ["sips", "rips", "cascade-dr"])
def test_unbiased_under_cascade_clicks(name: str) -> None:
    reward = expected_reward("cascade")
    truth = float(EVAL[0] @ reward.sum(axis=1))
    assert exact_expectation(name, LOGGING, EVAL, reward, q=0.3) == pytest.approx(truth, rel=1e-10)


def test_iips_is_biased_under_cascade_clicks() -> None:
    reward = expected_reward("cascade")
    truth = float(EVAL[0] @ reward.sum(axis=1))
    assert abs(exact_expectation("iips", LOGGING, EVAL, reward) - truth) > 1e-3


def test_pseudoinverse_is_unbiased_for_additive_rewards_under_uniform_logging() -> None:
    uniform = np.full(len(SLATES), 1 / len(SLATES))
    reward = expected_reward("independent")
    truth = float(EVAL[0] @ reward.sum(axis=1))
    dist = np.broadcast_to(marginals(EVAL[0]), (len(SLATES), M, K))
    n = len(SLATES)
    w = SLATE.pi_terms(reward, SLATES, np.ascontiguousarray(dist), np.full(n, M))[1]
    assert float(uniform @ (w * reward.sum(axis=1))) == pytest.approx(truth, rel=1e-10)
    # evaluating the logging policy itself gives weights whose mean is exactly 1
    w_uniform = SLATE.pi_terms(reward, SLATES, np.full((n, M, K), 1 / M), np.full(n, M))[1]
    assert w_uniform.mean() == pytest.approx(1.0)


def test_pi_through_estimate_all_on_a_uniform_log() -> None:
    rng = np.random.default_rng(0)
    n = 3000
    slates = SLATES[rng.integers(0, len(SLATES), n)]
    click = rng.random((n, K)) < EXAMINE[None, :] * ATTR[slates]
    log = SlateLog.from_arrays(context=np.zeros((n, 1)), slate=slates, reward=click.astype(float),
                               pscore=np.full(n, 1 / 12), pscore_item=np.full((n, K), 1 / M),
                               catalog=Catalog.anonymous(M))
    dist = np.broadcast_to(marginals(EVAL[0]), (n, M, K))
    (e,) = estimate_all(log, dist, estimators=["pi"], n_bootstrap=200)
    truth = float(EVAL[0] @ expected_reward("independent").sum(axis=1))
    assert e.low <= truth <= e.high
    assert abs(e.value - truth) < 4 * e.stderr
