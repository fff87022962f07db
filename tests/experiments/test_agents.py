"""Agents: policies built for a world, anchored by what the policy declares, played by the one rollout."""

from __future__ import annotations

import numpy as np
import pytest

from bandits import SlatePolicy, registered_policies
from experiments.agents import WorldAgent, anchor_context, build_agent
from simulator.envs import ToyWorld
from simulator.errors import PolicyError
from simulator.rollout import Agent, rollout
from simulator.world import World


@pytest.fixture(scope="module")
def world() -> World:
    return World.default(seed=0)


def test_anchored_bandit_sees_the_anchor_and_climbs_the_ladder(world: World) -> None:
    placed = build_agent("upsell", world, seed=0)
    assert placed.anchored and placed.policy.dim_context == world.dim_context + 1
    state = world.new_sessions(200, np.random.default_rng(4))
    ctx = placed.context(world, state)
    np.testing.assert_array_equal(ctx[:, -1], state.anchor)
    slate = placed.policy.select(ctx, eligible=world.eligible(state)).slate
    # The ladder's first rung, from the catalog alone: the cheapest item of the anchor's category
    # dearer than the anchor (when there is one) is on the slate.
    cat, price = world.params.item_category, world.params.price
    for row in range(200):
        a = state.anchor[row]
        rung = np.flatnonzero((cat == cat[a]) & (price > price[a]))
        if rung.size:
            assert rung[np.argmin(price[rung])] in slate[row]


def test_bandits_get_what_the_world_knows(world: World) -> None:
    placed = build_agent("linucb", world, seed=0)
    assert not placed.anchored
    assert placed.policy.get_params()["examination"] == tuple(world.position_bias.tolist())
    hybrid = build_agent("hybrid_linucb", world, seed=0).policy
    np.testing.assert_array_equal(hybrid.get_params()["item_features"], world.catalog.features)


def test_anchoring_is_what_the_policy_class_declares() -> None:
    """The three anchor policies declare it; no other registered policy does (whatever its parameters)."""
    declared = {name for name, cls in registered_policies().items() if anchor_context(cls)}
    assert declared == {"bought_together", "item_similarity", "upsell", "explore_anchored", "item_cf", "user_cf",
                        "als", "association_rules"}

    class Plain(SlatePolicy):  # a parameter called anchor_column alone does not make a policy anchored
        def __init__(self, n_items: int, k: int, dim_context: int = 0, *, anchor_column: int = 0,
                     seed: int | None = None) -> None:
            super().__init__(n_items, k, dim_context, seed=seed)

    assert not anchor_context(Plain)


def test_an_anchored_policy_without_anchors_is_a_clear_error() -> None:
    with pytest.raises(PolicyError, match=r"'bought_together' reads the session's anchor item.*ToyWorld"):
        build_agent("bought_together", ToyWorld(n_items=6, k=2), seed=0)


def test_the_anchored_agent_logs_the_context_it_saw(world: World) -> None:
    """Through the rollout, each decision carries the world's context with the anchor appended."""
    agent = build_agent("bought_together", world, seed=0, params={"epsilon": 0.5})
    assert isinstance(agent, Agent)
    seen: list[tuple[np.ndarray, np.ndarray]] = []
    rollout(world, agent, 30, np.random.default_rng(1),
            on_step=lambda step: seen.append((step.decision.context, step.state.anchor)))
    assert seen
    for ctx, anchor in seen:
        assert ctx.shape[1] == world.dim_context + 1
        np.testing.assert_array_equal(ctx[:, -1], anchor)


def test_the_sampler_draws_from_the_same_distribution(world: World) -> None:
    """A uniform policy has no sampler: the sampling agent's slates are select's, seed for seed."""
    a = build_agent("uniform", world, seed=3)
    b = WorldAgent(build_agent("uniform", world, seed=3).policy).sampler()
    state = world.new_sessions(50, np.random.default_rng(2))
    rng = np.random.default_rng(0)
    np.testing.assert_array_equal(a.decide(world, state, rng).slate, b.decide(world, state, rng).slate)
