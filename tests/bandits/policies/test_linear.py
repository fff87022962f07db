"""Linear policies against closed forms: ridge solutions, LinUCB bounds, hybrid LinUCB, logistic MAP."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import optimize

from bandits import Feedback, HybridLinUCB, LinearTS, LinUCB, LogisticTS
from bandits.policies.ridge import RidgeArms


def _data(seed: int, n: int, d: int, m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)), rng.integers(0, m, size=n), rng.random(n)


def test_ridge_arms_match_the_closed_form_after_mixed_updates() -> None:
    x, items, y = _data(0, 200, 4, 5)
    ridge = RidgeArms(5, 4, reg=0.7)
    ridge.update(items[:1], x[:1], y[:1])              # rank-one path
    ridge.update(items[1:4], x[1:4], y[1:4])           # distinct items: Sherman-Morrison batch
    ridge.update(items[4:], x[4:], y[4:])              # grouped batch with repeats
    for i in range(5):
        xi, yi = x[items == i], y[items == i]
        a = xi.T @ xi + 0.7 * np.eye(4)
        np.testing.assert_allclose(ridge.A[i], a, rtol=1e-12)
        np.testing.assert_allclose(ridge.A_inv[i], np.linalg.inv(a), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(ridge.theta[i], np.linalg.solve(a, xi.T @ yi), rtol=1e-9, atol=1e-12)
    q = np.random.default_rng(1).standard_normal((7, 4))
    expected = np.stack([np.einsum("nd,de,ne->n", q, np.linalg.inv(ridge.A[i]), q) for i in range(5)], 1)
    np.testing.assert_allclose(ridge.variance(q), expected, rtol=1e-9)
    np.testing.assert_allclose(ridge.variance(q[:1]), expected[:1], rtol=1e-9)


def test_linucb_scores_are_mean_plus_alpha_times_width() -> None:
    x, items, y = _data(2, 100, 3, 4)
    policy = LinUCB(4, 2, 3, alpha=0.8, reg=2.0)
    policy.update(Feedback(x, items[:, None], y[:, None]))
    q = np.array([[0.5, -1.0, 2.0]])
    for i in range(4):
        xi, yi = x[items == i], y[items == i]
        a = xi.T @ xi + 2.0 * np.eye(3)
        ucb = q[0] @ np.linalg.solve(a, xi.T @ yi) + 0.8 * np.sqrt(q[0] @ np.linalg.solve(a, q[0]))
        assert policy._scores(q)[0, i] == pytest.approx(ucb, rel=1e-9)
    order = np.argsort(-policy._scores(q)[0], kind="stable")[:2]
    assert policy.select(q).slate[0].tolist() == order.tolist()


def test_examination_scales_features_so_theta_is_the_examined_rate() -> None:
    """Clicks at a slot examined half the time teach the same rate as clicks at a full slot."""
    policy = LinUCB(3, 2, 1, alpha=0.0, reg=1e-9, examination=(1.0, 0.5))
    ctx = np.ones((4000, 1))
    rng = np.random.default_rng(0)
    slate = np.tile([0, 1], (4000, 1))
    clicks = (rng.random((4000, 2)) < np.array([0.3, 0.5 * 0.3])).astype(float)
    policy.update(Feedback(ctx, slate, clicks))
    theta = policy._ridge.theta[:2, 0]
    np.testing.assert_allclose(theta, 0.3, atol=0.03)


def _hybrid_reference(policy: HybridLinUCB, x: np.ndarray, items: np.ndarray, r: np.ndarray,
                      q: np.ndarray) -> np.ndarray:
    """Li et al. (2010) algorithm 2, event by event, with explicit z vectors."""
    f, alpha, reg = policy.item_features, policy.alpha, policy.reg
    d, p = x.shape[1], f.shape[1]
    a0, b0 = reg * np.eye(d * p), np.zeros(d * p)
    a = {i: reg * np.eye(d) for i in range(f.shape[0])}
    bm = {i: np.zeros((d, d * p)) for i in range(f.shape[0])}
    b = {i: np.zeros(d) for i in range(f.shape[0])}
    for xt, it, rt in zip(x, items, r, strict=True):
        z = np.outer(xt, f[it]).ravel()
        ai = np.linalg.inv(a[it])
        a0 += bm[it].T @ ai @ bm[it]
        b0 += bm[it].T @ ai @ b[it]
        a[it] += np.outer(xt, xt)
        bm[it] += np.outer(xt, z)
        b[it] += rt * xt
        ai = np.linalg.inv(a[it])
        a0 += np.outer(z, z) - bm[it].T @ ai @ bm[it]
        b0 += rt * z - bm[it].T @ ai @ b[it]
    a0i = np.linalg.inv(a0)
    beta = a0i @ b0
    scores = np.empty((q.shape[0], f.shape[0]))
    for n, xq in enumerate(q):
        for i in range(f.shape[0]):
            z = np.outer(xq, f[i]).ravel()
            ai = np.linalg.inv(a[i])
            theta = ai @ (b[i] - bm[i] @ beta)
            s = (z @ a0i @ z - 2 * z @ a0i @ bm[i].T @ ai @ xq + xq @ ai @ xq
                 + xq @ ai @ bm[i] @ a0i @ bm[i].T @ ai @ xq)
            scores[n, i] = z @ beta + xq @ theta + alpha * np.sqrt(s)
    return scores


def test_hybrid_linucb_matches_the_published_algorithm() -> None:
    rng = np.random.default_rng(3)
    f = rng.standard_normal((5, 2))
    policy = HybridLinUCB(5, 2, 3, item_features=f, alpha=0.7, reg=1.5)
    x, items, r = rng.standard_normal((40, 3)), rng.integers(0, 5, 40), rng.random(40)
    policy.update(Feedback(x[:1], items[:1, None], r[:1, None]))
    policy.update(Feedback(x[1:], items[1:, None], r[1:, None]))
    q = rng.standard_normal((6, 3))
    np.testing.assert_allclose(policy._scores(q), _hybrid_reference(policy, x, items, r, q), rtol=1e-8)


def test_logistic_ts_batch_update_is_the_map_and_laplace_precision() -> None:
    rng = np.random.default_rng(4)
    d = 3
    x = rng.standard_normal((300, d))
    w_true = np.array([0.5, -1.0, 0.8])
    y = (rng.random(300) < 1 / (1 + np.exp(-x @ w_true))).astype(float)
    policy = LogisticTS(2, 1, d, reg=2.0, newton_steps=25)
    policy.update(Feedback(x, np.zeros((300, 1), dtype=int), y[:, None]))

    def loss(w: np.ndarray) -> float:
        z = x @ w
        return float(np.sum(np.logaddexp(0, z) - y * z) + 0.5 * 2.0 * w @ w)

    w_map = optimize.minimize(loss, np.zeros(d), method="BFGS", options={"gtol": 1e-10}).x
    np.testing.assert_allclose(policy._mean[0], w_map, atol=1e-5)
    p = 1 / (1 + np.exp(-x @ w_map))
    hess = 2.0 * np.eye(d) + (x * (p * (1 - p))[:, None]).T @ x
    np.testing.assert_allclose(policy._precision[0], hess, rtol=1e-4)
    np.testing.assert_allclose(policy._mean[1], 0.0)  # untouched item keeps its prior


def test_linear_ts_draws_have_the_ridge_posterior_moments() -> None:
    x, items, y = _data(5, 300, 2, 3)
    policy = LinearTS(3, 1, 2, v=0.5, seed=0)
    policy.update(Feedback(x, items[:, None], y[:, None]))
    q = np.array([[1.0, -0.5]])
    draws = policy._sampler(q)(slice(0, 1), 40_000)[0]
    ridge = policy._ridge
    np.testing.assert_allclose(draws.mean(axis=0), ridge.mean(q)[0], atol=0.01)
    np.testing.assert_allclose(draws.std(axis=0), 0.5 * np.sqrt(ridge.variance(q)[0]), rtol=0.02)
