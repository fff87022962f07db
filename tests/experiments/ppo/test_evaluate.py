"""Session values against closed forms of the known-answer ToyWorld, and the t-interval."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from bandits import make_policy
from experiments.ppo.evaluate import OnlineBandit, session_values, t_interval
from simulator.envs import ToyWorld


def test_uniform_one_step_sessions_match_the_closed_form() -> None:
    world = ToyWorld(n_items=6, k=2, n_types=3, max_steps=1)
    policy = make_policy("uniform", n_items=6, k=2, dim_context=world.dim_context, seed=0)
    values = session_values(policy, world, 20_000, seed=5, reward="click")
    # A uniform slate puts every item at every slot with probability 1/6; shopper types are uniform.
    expected = world.position_bias.sum() * world.attraction.mean()
    se = values.reward.std() / np.sqrt(values.reward.size)
    assert abs(values.reward.mean() - expected) < 4 * se
    assert (values.steps == 1).all()


def test_sessions_end_and_revenue_is_counted_once_per_session() -> None:
    world = ToyWorld(n_items=6, k=2, n_types=3, max_steps=4, reward_type="revenue")
    policy = make_policy("uniform", n_items=6, k=2, dim_context=world.dim_context, seed=0)
    values = session_values(policy, world, 2_000, seed=1, reward="revenue")
    assert values.steps.min() >= 1 and values.steps.max() <= 4
    np.testing.assert_array_equal(values.reward, values.revenue)
    # Revenue comes in whole prices (10, 15, ...), so every session total is a multiple of 5.
    np.testing.assert_allclose(values.revenue % 5, 0.0)


def test_online_bandit_advances_whole_batches_and_learns() -> None:
    world = ToyWorld(n_items=6, k=2, n_types=3, max_steps=4)
    bandit = OnlineBandit("linucb", world, num_envs=64, reward="click", seed=0)
    bandit.advance(1_000)
    assert bandit.steps == 1_024
    frozen = bandit.frozen()
    learned = session_values(frozen, world, 2_000, seed=9, reward="click").reward.mean()
    uniform = make_policy("uniform", n_items=6, k=2, dim_context=world.dim_context, seed=0)
    assert learned > 1.2 * session_values(uniform, world, 2_000, seed=9, reward="click").reward.mean()


def test_t_interval_hand_computed() -> None:
    iv = t_interval(np.array([1.0, 2.0, 3.0]))
    half = stats.t.ppf(0.975, 2) * 1.0 / np.sqrt(3)
    assert iv.mean == 2.0 and iv.n == 3
    assert iv.low == pytest.approx(2.0 - half) and iv.high == pytest.approx(2.0 + half)
    assert t_interval(np.array([4.0])).to_json() == {"mean": 4.0, "low": 4.0, "high": 4.0, "n": 1}
