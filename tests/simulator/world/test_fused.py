"""The compiled session dynamics agree with the numpy World they were written from."""

from __future__ import annotations

from dataclasses import fields, replace

import numpy as np
import pytest

from simulator.world import SessionState, World, WorldConfig

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
def test_new_sessions_draw_what_the_world_draws(world: World, n: int) -> None:
    fused = world.fused()
    assert_same_state(world.new_sessions(n, np.random.default_rng(5)), fused.new_sessions(n, np.random.default_rng(5)))


def test_reset_rows_replaces_only_those_rows_with_fresh_draws(world: World) -> None:
    fused = world.fused()
    state = fused.new_sessions(6, np.random.default_rng(0))
    before = state.take(np.arange(6))
    fused.step(state, random_slates(world.eligible(state), world.k, np.random.default_rng(1)),
               np.random.default_rng(2))
    after_step = state.take(np.arange(6))
    rows = np.array([1, 4])
    fused.reset_rows(state, rows, np.random.default_rng(7))
    fresh = world.new_sessions(2, np.random.default_rng(7))
    assert_same_state(state.take(rows), fresh)
    keep = np.array([0, 2, 3, 5])
    assert_same_state(state.take(keep), after_step.take(keep))
    assert not np.array_equal(before.step, after_step.step) or not after_step.alive.all()


@pytest.mark.parametrize("n", [1, 300])
def test_rollout_matches_the_world_step_for_step(world: World, n: int) -> None:
    """Same generator, same slates: identical outcomes and states; the truth agrees to rounding."""
    fused = world.fused()
    ref = world.new_sessions(n, np.random.default_rng(5))
    mine = fused.new_sessions(n, np.random.default_rng(5))
    rng_ref, rng_mine, policy = np.random.default_rng(9), np.random.default_rng(9), np.random.default_rng(1)
    values = np.empty((n, world.n_items))
    best_slate, best_reward = np.empty((n, world.k), dtype=np.int64), np.empty(n)
    for _ in range(25):
        seen = fused.observe(mine)
        fused.item_values(mine, values)
        fused.best_slates(seen, values, best_slate, best_reward)
        np.testing.assert_allclose(seen.context, world.context(ref), rtol=0, atol=1e-12)
        assert np.array_equal(seen.eligible, world.eligible(ref))
        required = world.required(ref)
        assert (required is None) == (seen.required is None)
        assert required is None or np.array_equal(required, seen.required)
        np.testing.assert_allclose(values, world.item_value(ref), rtol=1e-12)
        ref_slate, ref_value = world.best_slate(ref)
        assert np.array_equal(best_slate, ref_slate)
        np.testing.assert_allclose(best_reward, ref_value, rtol=1e-12)
        slate = random_slates(seen.eligible, world.k, policy)
        rows = np.arange(n)[:, None]
        expected = world.expected_reward(ref, slate)
        cross, up = world.cross_sell(ref)[rows, slate], world.up_sell(ref)[rows, slate]
        out = world.step(ref, slate, rng_ref)
        step = fused.step(mine, slate, rng_mine)
        for name in ("click", "purchase", "revenue", "reward", "checkout", "abandon", "truncated", "done"):
            assert np.array_equal(getattr(out, name), getattr(step, name)), name
        assert np.array_equal(step.cross_sell, cross) and np.array_equal(step.up_sell, up)
        np.testing.assert_allclose(step.expected_reward, expected, rtol=1e-12)
        assert np.array_equal(step.anchor_changed, out.purchase.any(axis=1))
        assert_same_state(mine, out.state)
        ref = out.state


def test_own_category_complement_is_a_cross_sell_not_an_up_sell() -> None:
    base = World(WorldConfig(n_categories=4, items_per_category=5), seed=1)
    complement = base.params.complement.copy()
    np.fill_diagonal(complement, True)
    world = World(base.config, params=replace(base.params, complement=complement))
    state = world.new_sessions(50, np.random.default_rng(0))
    values = world.fused().item_values(state, np.empty((50, world.n_items)))
    np.testing.assert_allclose(values, world.item_value(state), rtol=1e-12)


def test_bounds_clip_the_context() -> None:
    world = World.default(seed=0)
    state = world.new_sessions(20, np.random.default_rng(0))
    low, high = np.full(world.dim_context, -0.5), np.full(world.dim_context, 0.5)
    seen = world.fused().observe(state, bounds=(low, high))
    np.testing.assert_allclose(seen.context, np.clip(world.context(state), low, high))
