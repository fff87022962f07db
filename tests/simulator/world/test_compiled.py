"""The compiled world agrees with the numpy reference model (tests/simulator/world/reference.py)."""

from __future__ import annotations

from dataclasses import fields, replace

import numpy as np
import pytest

from simulator.world import SessionState, World, WorldConfig
from tests.simulator.world.reference import ReferenceWorld

CONFIGS = {
    "default": WorldConfig(),
    "click-candidates-required": WorldConfig(reward_type="click", candidates_only=True, require_cross_sell=True),
    # 6 items, k = 2, 30 steps: carts fill up, so the "cart too full" fallback is exercised
    "purchase-tiny-full-cart": WorldConfig(reward_type="purchase", n_categories=3, items_per_category=2, k=2,
                                           max_steps=30, require_cross_sell=True, n_taste=0),
}


@pytest.fixture(scope="module", params=sorted(CONFIGS))
def world(request: pytest.FixtureRequest) -> World:
    return World(CONFIGS[request.param], seed=3)


def assert_same_state(a: SessionState, b: SessionState) -> None:
    for f in fields(SessionState):
        assert np.array_equal(getattr(a, f.name), getattr(b, f.name)), f.name


def random_slates(eligible: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    scores = np.where(eligible, rng.random(eligible.shape), -1.0)
    out: np.ndarray = np.argsort(-scores, axis=1)[:, :k].astype(np.int64)
    return out


@pytest.mark.parametrize("n", [1, 9, 400])
def test_new_sessions_draw_what_the_reference_draws(world: World, n: int) -> None:
    ref = ReferenceWorld.of(world)
    assert_same_state(ref.new_sessions(n, np.random.default_rng(5)), world.new_sessions(n, np.random.default_rng(5)))


def test_replace_sessions_replaces_only_those_rows_with_fresh_draws(world: World) -> None:
    ref = ReferenceWorld.of(world)
    state = world.new_sessions(6, np.random.default_rng(0))
    before = state.copy()
    world.step(state, random_slates(world.eligible(state), world.k, np.random.default_rng(1)),
               np.random.default_rng(2), in_place=True)
    after_step = state.copy()
    rows = np.array([1, 4])
    assert world.replace_sessions(state, rows, np.random.default_rng(7)) is state
    fresh = ref.new_sessions(2, np.random.default_rng(7))
    assert_same_state(state.take(rows), fresh)
    keep = np.array([0, 2, 3, 5])
    assert_same_state(state.take(keep), after_step.take(keep))
    assert not np.array_equal(before.step, after_step.step) or not after_step.alive.all()


@pytest.mark.parametrize("n", [1, 300])
def test_rollout_matches_the_reference_step_for_step(world: World, n: int) -> None:
    """Same generator, same slates: identical outcomes and states; the truth agrees to rounding."""
    model = ReferenceWorld.of(world)
    ref = model.new_sessions(n, np.random.default_rng(5))
    mine = world.new_sessions(n, np.random.default_rng(5))
    rng_ref, rng_mine, policy = np.random.default_rng(9), np.random.default_rng(9), np.random.default_rng(1)
    for t in range(25):
        seen = world.observe(mine)
        np.testing.assert_allclose(seen.context, model.context(ref), rtol=0, atol=1e-12)
        assert np.array_equal(seen.eligible, model.eligible(ref))
        assert np.array_equal(world.cross_sell(mine), model.cross_sell(ref))
        assert np.array_equal(world.up_sell(mine), model.up_sell(ref))
        required = model.required(ref)
        assert (required is None) == (seen.required is None)
        assert required is None or np.array_equal(required, seen.required)
        np.testing.assert_allclose(world.item_value(mine), model.item_value(ref), rtol=1e-12)
        np.testing.assert_allclose(world.attraction(mine), model.attraction(ref), rtol=1e-12)
        np.testing.assert_allclose(world.purchase_prob(mine), model.purchase_prob(ref), rtol=1e-12)
        best_slate, best_reward = world.best_slate(mine, seen=seen)
        ref_slate, ref_value = model.best_slate(ref)
        assert np.array_equal(best_slate, ref_slate)
        np.testing.assert_allclose(best_reward, ref_value, rtol=1e-12)
        some = np.arange(0, n, 3)
        part_slate, part_value = world.best_slate(mine, rows=some)
        assert np.array_equal(part_slate, ref_slate[some])
        np.testing.assert_allclose(part_value, ref_value[some], rtol=1e-12)
        slate = random_slates(seen.eligible, world.k, policy)
        for mine_p, ref_p in zip(world.slate_probs(mine, slate), model.slate_probs(ref, slate), strict=True):
            np.testing.assert_allclose(mine_p, ref_p, rtol=1e-12)
        np.testing.assert_allclose(world.expected_reward(mine, slate), model.expected_reward(ref, slate),
                                   rtol=1e-12)
        out = model.step(ref, slate, rng_ref)
        in_place = t % 2 == 0  # both ways of stepping
        step = world.step(mine, slate, rng_mine, in_place=in_place)
        assert (step.state is mine) == in_place
        for name in ("click", "purchase", "revenue", "reward", "checkout", "abandon", "truncated", "done",
                     "cross_sell", "up_sell", "anchor_changed"):
            assert np.array_equal(getattr(out, name), getattr(step, name)), name
        np.testing.assert_allclose(step.expected_reward, out.expected_reward, rtol=1e-12)
        assert_same_state(step.state, out.state)
        mine, ref = step.state, out.state


def test_a_pure_step_leaves_the_state_alone(world: World) -> None:
    state = world.new_sessions(50, np.random.default_rng(0))
    before = state.copy()
    out = world.step(state, world.best_slate(state)[0], np.random.default_rng(1))
    assert out.state is not state
    assert_same_state(state, before)


def test_own_category_complement_is_a_cross_sell_not_an_up_sell() -> None:
    base = World(WorldConfig(n_categories=4, items_per_category=5), seed=1)
    complement = base.params.complement.copy()
    np.fill_diagonal(complement, True)
    world = World(base.config, params=replace(base.params, complement=complement))
    state = world.new_sessions(50, np.random.default_rng(0))
    np.testing.assert_allclose(world.item_value(state), ReferenceWorld.of(world).item_value(state), rtol=1e-12)


def test_another_price_sensitivity_than_the_profile_s_is_honoured(default_world: World) -> None:
    state = default_world.new_sessions(20, np.random.default_rng(0))
    changed = replace(state, price_sens=state.price_sens * 1.7)
    ref = ReferenceWorld.of(default_world)
    np.testing.assert_allclose(default_world.item_value(changed), ref.item_value(changed), rtol=1e-12)
    assert not np.allclose(default_world.item_value(changed), default_world.item_value(state))


def test_bounds_clip_the_context() -> None:
    world = World.default(seed=0)
    state = world.new_sessions(20, np.random.default_rng(0))
    low, high = np.full(world.dim_context, -0.5), np.full(world.dim_context, 0.5)
    seen = world.observe(state, bounds=(low, high))
    np.testing.assert_allclose(seen.context, np.clip(world.context(state), low, high))


def test_scores_pick_the_slate_and_the_world_values_it(default_world: World) -> None:
    state = default_world.new_sessions(40, np.random.default_rng(2))
    scores = np.random.default_rng(3).random((40, default_world.n_items))
    ref = ReferenceWorld.of(default_world)
    slate, value = default_world.best_slate_for(state, scores)
    ref_slate, ref_value = ref.best_slate_for(state, scores)
    assert np.array_equal(slate, ref_slate)
    np.testing.assert_allclose(value, ref_value, rtol=1e-12)
