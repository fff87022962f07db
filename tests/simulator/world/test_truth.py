from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from simulator.rollout import Step, rollout
from simulator.world import (
    World,
    decision_value,
    exact_session_value,
    first_decision_value,
    make_logging_policy,
    policy_value,
)


@pytest.mark.parametrize("name", ["uniform", "epsilon_greedy", "softmax"])
def test_exact_first_decision_agrees_with_monte_carlo(tiny_world: World, name: str) -> None:
    world = tiny_world.with_config(reward_type="revenue")
    policy = make_logging_policy(name)
    exact = first_decision_value(world, policy)
    assert exact.exact and exact.n == 2 * world.n_items
    # Monte Carlo: draw fresh shoppers, log one decision each, average the realised reward
    rng = np.random.default_rng(9)
    state = world.new_sessions(80_000, rng)
    d = policy.decide(world, state, rng)
    reward = world.step(state, d.slate, rng).reward
    se = reward.std() / np.sqrt(reward.size)
    assert abs(reward.mean() - exact.value) < 4 * se


def test_per_decision_value_agrees_with_realised_rewards(default_world: World) -> None:
    policy = make_logging_policy("epsilon_greedy", epsilon=0.2)
    value = policy_value(default_world, policy, n_sessions=1500, seed=4, n_first_states=2000)
    assert not value.per_session.exact and value.per_session.ci_low < value.per_session.value
    # realised reward per decision of an independent run lies within the intervals' reach
    lengths: list[int] = []
    rewards: list[float] = []

    def count(step: Step) -> None:
        lengths.append(step.state.n)
        rewards.append(float(step.outcome.reward.sum()))

    totals = rollout(default_world, policy, 1500, np.random.default_rng(5), on_step=count)
    realised = sum(rewards) / sum(lengths)
    half = 4 * (value.per_decision.value - value.per_decision.ci_low) + 4 * totals.std() / np.sqrt(sum(lengths))
    assert abs(realised - value.per_decision.value) < half
    assert value.per_session.value == pytest.approx(
        value.per_decision.value * value.session_length.value, rel=0.05)


@dataclass(frozen=True)
class _Decision:
    slate: np.ndarray
    pscore: np.ndarray
    pscore_item: np.ndarray


class _SelectOnly:
    """An outside policy with only select(): a greedy top-k by the context's anchor price column."""

    def __init__(self, world: World) -> None:
        self.world = world

    def select(self, context, *, eligible=None, required=None):  # type: ignore[no-untyped-def]
        scores = np.where(eligible, -self.world.params.price[None, :], -np.inf)
        slate = np.argsort(-scores, axis=1, kind="stable")[:, : self.world.k]
        n = slate.shape[0]
        return _Decision(slate, np.ones(n), np.ones(slate.shape))


def test_select_only_policy_is_valued_by_monte_carlo(default_world: World) -> None:
    policy = _SelectOnly(default_world)
    state = default_world.new_sessions(50, np.random.default_rng(0))
    values, exact = decision_value(default_world, policy, state, n_draws=3)
    assert not exact
    ctx = default_world.context(state)
    d = policy.select(ctx, eligible=default_world.eligible(state))
    np.testing.assert_allclose(values, default_world.expected_reward(state, d.slate))


@pytest.mark.slow
def test_long_horizon_trade_off(default_world: World) -> None:
    """Greedy wins each step, the patient policy wins each session, by well over 10%."""
    greedy = make_logging_policy("greedy")
    patient = make_logging_policy("patient")
    g = policy_value(default_world, greedy, n_sessions=2500, seed=1, n_first_states=4000)
    p = policy_value(default_world, patient, n_sessions=2500, seed=1, n_first_states=4000)
    assert g.first_decision.ci_low > 1.5 * p.first_decision.ci_high
    assert g.per_decision.ci_low > p.per_decision.ci_high
    assert p.per_session.ci_low > 1.2 * g.per_session.ci_high
    assert p.session_length.ci_low > g.session_length.ci_high


@pytest.mark.parametrize("name", ["greedy", "patient"])
def test_exact_session_value_agrees_with_monte_carlo(tiny_world: World, name: str) -> None:
    world = tiny_world.with_config(reward_type="revenue")
    policy = make_logging_policy(name)
    exact = exact_session_value(world, policy)
    assert exact is not None and exact.exact
    totals = rollout(world, policy, 60_000, np.random.default_rng(3))
    se = totals.std() / np.sqrt(totals.size)
    assert abs(totals.mean() - exact.value) < 4 * se
    value = policy_value(world, policy, n_sessions=200, seed=0)
    assert value.per_session.exact and value.per_session.value == exact.value
    assert value.first_decision.exact
    # not enumerable: a stochastic policy, or shoppers with continuous tastes
    assert exact_session_value(world, make_logging_policy("uniform")) is None
    assert exact_session_value(World.default(seed=0), policy) is None


def test_full_cart_leaves_k_eligible_items(tiny_world: World) -> None:
    state = tiny_world.new_sessions(5, np.random.default_rng(0))
    cart = np.ones_like(state.cart)
    cart[:, :2] = False
    from dataclasses import replace

    elig = tiny_world.eligible(replace(state, cart=cart))
    assert (elig.sum(axis=1) >= tiny_world.k).all()
    assert not elig[np.arange(5), state.anchor].any()
