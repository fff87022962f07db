"""Neural-linear Thompson sampling: the Bayesian last layer in closed form, the retraining cadence, learning."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from bandits import Feedback, PolicyError, make_policy
from bandits.policies.neural import NeuralLinearTS


def ridge_posterior(z: np.ndarray, y: np.ndarray, prior_var: float,
                    noise_var: float) -> tuple[np.ndarray, np.ndarray]:
    """Bayesian linear regression by hand: theta ~ N(0, prior_var I), y = z theta + N(0, noise_var)."""
    precision = np.eye(z.shape[1]) / prior_var + z.T @ z / noise_var
    cov = np.linalg.inv(precision)
    return cov @ z.T @ y / noise_var, cov


def linear_feedback(rng: np.random.Generator, n: int, n_items: int, k: int, d: int) -> Feedback:
    ctx = rng.standard_normal((n, d))
    slate = np.argsort(rng.random((n, n_items)), axis=1)[:, :k]
    theta = rng.standard_normal((n_items, d))
    reward = np.einsum("nd,nkd->nk", ctx, theta[slate]) + 0.1 * rng.standard_normal((n, k))
    return Feedback(ctx, slate, reward)


def test_last_layer_is_the_closed_form_posterior_on_the_frozen_representation() -> None:
    """With retraining held back, the posterior is Bayesian linear regression on z computed with numpy."""
    rng = np.random.default_rng(0)
    n_items, k, d, prior_var, noise_var = 5, 2, 3, 2.0, 0.3
    policy = NeuralLinearTS(n_items, k, d, hidden=(6, 4), retrain_every=10**9, prior_var=prior_var,
                            noise_var=noise_var, seed=1)
    fb = linear_feedback(rng, 150, n_items, k, d)
    policy.update(Feedback(fb.context[:100], fb.slate[:100], fb.reward[:100]))
    for i in range(100, 150):  # one event at a time learns the same statistics
        policy.update_one(fb.context[i], fb.slate[i], fb.reward[i])
    z = policy.representation(fb.context)
    assert z.shape == (150, 5)
    np.testing.assert_array_equal(z[:, -1], 1.0)
    mean, cov = policy.posterior()
    for item in range(n_items):
        rows, slots = np.nonzero(fb.slate == item)
        want_mean, want_cov = ridge_posterior(z[rows], fb.reward[rows, slots], prior_var, noise_var)
        np.testing.assert_allclose(mean[item], want_mean, rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(cov[item], want_cov, rtol=1e-8, atol=1e-10)
    # the sampled score of an item for a context: N(z . mean, z^T cov z)
    x = rng.standard_normal((4, d))
    zx = policy.representation(x)
    mu, sd = policy._moments(x)
    np.testing.assert_allclose(mu, zx @ mean.T, rtol=1e-10)
    np.testing.assert_allclose(sd ** 2, np.einsum("np,ipq,nq->ni", zx, cov, zx), rtol=1e-8)


def test_retraining_refits_the_posterior_on_the_buffer_with_the_new_representation() -> None:
    """Every retrain_every events the network changes and the posterior is rebuilt from the last observations."""
    rng = np.random.default_rng(2)
    n_items, d, capacity = 3, 2, 60
    policy = NeuralLinearTS(n_items, 1, d, hidden=(5,), epochs=5, retrain_every=50,
                            buffer_capacity=capacity, seed=3)
    fb = linear_feedback(rng, 130, n_items, 1, d)
    before = policy.representation(fb.context)
    policy.update(Feedback(fb.context[:100], fb.slate[:100], fb.reward[:100]))  # retrains at 50 and 100
    after = policy.representation(fb.context)
    assert not np.allclose(before, after)
    assert policy.n_stored == capacity
    mean, cov = policy.posterior()
    last = slice(100 - capacity, 100)
    items, y = fb.slate[last, 0], fb.reward[last, 0]
    for item in range(n_items):
        rows = np.flatnonzero(items == item)
        want_mean, want_cov = ridge_posterior(after[last][rows], y[rows], 1.0, 0.25)
        np.testing.assert_allclose(mean[item], want_mean, rtol=1e-7, atol=1e-9)
        np.testing.assert_allclose(cov[item], want_cov, rtol=1e-7, atol=1e-9)
    # until the next boundary the new events are added exactly on the same representation
    policy.update(Feedback(fb.context[100:130], fb.slate[100:130], fb.reward[100:130]))
    np.testing.assert_array_equal(policy.representation(fb.context), after)
    mean, _ = policy.posterior()
    keep = np.r_[40:130]
    for item in range(n_items):
        rows = keep[fb.slate[keep, 0] == item]
        want_mean, _ = ridge_posterior(after[rows], fb.reward[rows, 0], 1.0, 0.25)
        np.testing.assert_allclose(mean[item], want_mean, rtol=1e-7, atol=1e-9)


def test_torch_global_state_is_left_alone() -> None:
    """The policy's own generator seeds the network: torch's global RNG and thread count are untouched."""
    threads = torch.get_num_threads()
    global_rng = torch.get_rng_state()
    a = NeuralLinearTS(4, 2, 3, hidden=(4,), epochs=1, retrain_every=20, seed=7)
    b = NeuralLinearTS(4, 2, 3, hidden=(4,), epochs=1, retrain_every=20, seed=7)
    other = NeuralLinearTS(4, 2, 3, hidden=(4,), epochs=1, retrain_every=20, seed=8)
    fb = linear_feedback(np.random.default_rng(0), 40, 4, 2, 3)
    a.update(fb)
    b.update(fb)
    x = np.random.default_rng(1).standard_normal((5, 3))
    np.testing.assert_array_equal(a.representation(x), b.representation(x))
    assert not np.allclose(a.representation(x), other.representation(x))
    assert torch.get_num_threads() == threads
    assert torch.equal(torch.get_rng_state(), global_rng)


BAD = [
    ("hidden", (), "`hidden` must be a non-empty sequence of layer widths"),
    ("hidden", (8, 0), "`hidden` must be a non-empty sequence"),
    ("hidden", 8, "`hidden` must be a non-empty sequence"),
    ("learning_rate", 0.0, "`learning_rate` must be in \\(0, inf\\)"),
    ("epochs", 0, "`epochs` must be an integer >= 1"),
    ("batch_size", 1.5, "`batch_size` must be an integer >= 1"),
    ("retrain_every", 0, "`retrain_every` must be an integer >= 1"),
    ("buffer_capacity", -1, "`buffer_capacity` must be an integer >= 1"),
    ("prior_var", -1.0, "`prior_var` must be in \\(0, inf\\)"),
    ("noise_var", float("nan"), "`noise_var` must be in \\(0, inf\\)"),
    ("dim_context", 0, "NeuralLinearTS needs `dim_context` >= 1"),
]


@pytest.mark.parametrize(("key", "value", "message"), BAD, ids=[f"{b[0]}-{b[1]!r}" for b in BAD])
def test_bad_params_are_named(key: str, value: Any, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        make_policy("neural_linear_ts", **{"n_items": 4, "k": 2, "dim_context": 3, key: value})


def xor_probabilities(x: np.ndarray) -> np.ndarray:
    """Click rates (n, 3): item 0 where x1 x2 > 0, item 1 where x1 x2 < 0, item 2 a flat 0.55."""
    s = np.sign(x[:, 0] * x[:, 1])
    return np.stack([0.5 + 0.4 * s, 0.5 - 0.4 * s, np.full(x.shape[0], 0.55)], axis=1)


def play_xor(policy: Any, n_rounds: int, batch: int, seed: int) -> np.ndarray:
    """Expected click rate of each decision over seeded rounds (contexts [x1, x2, 1], x uniform on [-1, 1]^2)."""
    rng = np.random.default_rng(seed)
    got = []
    for _ in range(n_rounds // batch):
        x = np.column_stack([rng.uniform(-1, 1, (batch, 2)), np.ones(batch)])
        p = xor_probabilities(x)
        slate = policy.select(x).slate
        p_shown = p[np.arange(batch), slate[:, 0]]
        reward = (rng.random(batch) < p_shown).astype(float)[:, None]
        policy.update(Feedback(x, slate, reward))
        got.append(p_shown)
    return np.concatenate(got)


#: Rounds of the XOR problem and the measured margin over linear TS on the second half (see below).
XOR_ROUNDS = 3_000
XOR_MARGIN = 0.15


def test_learns_a_reward_no_linear_model_can_fit() -> None:
    """On an XOR of the context neural-linear TS beats linear TS on the same seeded rounds.

    The best policy earns 0.9 per round; no linear function of (x1, x2, 1) separates the
    quadrants, so linear TS gets only what a linear split of the plane catches. Measured
    over the second half of 3,000 rounds (seeds 0 / 1 / 2 for both policies and the
    rounds): neural-linear TS 0.883 / 0.880 / 0.878, linear TS 0.672 / 0.660 / 0.675, a
    margin of 0.20-0.21; the test asks for 0.15. About 1.5 s.
    """
    neural = make_policy("neural_linear_ts", n_items=3, k=1, dim_context=3, hidden=(32, 32), epochs=10,
                         learning_rate=1e-2, retrain_every=250, buffer_capacity=3_000, seed=0)
    linear = make_policy("linear_ts", n_items=3, k=1, dim_context=3, v=0.5, seed=0)
    half = slice(XOR_ROUNDS // 2, None)
    neural_rate = float(play_xor(neural, XOR_ROUNDS, 50, seed=0)[half].mean())
    linear_rate = float(play_xor(linear, XOR_ROUNDS, 50, seed=0)[half].mean())
    assert neural_rate > linear_rate + XOR_MARGIN, (neural_rate, linear_rate)
