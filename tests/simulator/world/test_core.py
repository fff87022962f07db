from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.world import SessionState, World, WorldConfig, WorldError


def _one(state: SessionState, row: int, times: int) -> SessionState:
    return state.take(np.full(times, row))


def test_sizes_and_catalog(default_world: World) -> None:
    w = default_world
    assert (w.n_items, w.k, w.max_steps, w.reward_type) == (300, 3, 20, "revenue")
    assert np.unique(w.catalog.category).size == 12
    assert w.catalog.price is not None and (w.catalog.price > 0).all()
    assert len(w.context_names) == w.dim_context
    # within a category prices spread (cheap and premium tiers)
    cat0 = w.catalog.price[w.catalog.category == "cat00"]
    assert cat0.max() / cat0.min() > 3


def test_context_and_masks(default_world: World) -> None:
    w = default_world
    state = w.new_sessions(500, np.random.default_rng(0))
    ctx = w.context(state)
    low, high = w.context_bounds()
    assert ctx.shape == (500, w.dim_context)
    assert ((ctx >= low - 1e-12) & (ctx <= high + 1e-12)).all()
    elig = w.eligible(state)
    assert not elig[np.arange(500), state.anchor].any()
    cross, up = w.cross_sell(state), w.up_sell(state)
    cat = w.params.item_category
    price = w.params.price
    for r in range(20):
        a = state.anchor[r]
        assert set(np.flatnonzero(up[r])) == {i for i in range(w.n_items)
                                              if cat[i] == cat[a] and price[i] > price[a]}
        assert set(np.flatnonzero(cross[r])) == {i for i in range(w.n_items)
                                                 if w.params.complement[cat[a], cat[i]]}
    assert not (cross & up).any()


def test_cart_items_are_not_eligible(default_world: World) -> None:
    w = default_world
    state = w.new_sessions(3, np.random.default_rng(1))
    cart = state.cart.copy()
    cart[0, [5, 6]] = True
    elig = w.eligible(replace(state, cart=cart))
    assert not elig[0, [5, 6]].any() and elig[1, [5, 6]].all() | (state.anchor[1] in (5, 6))


def test_expected_reward_matches_monte_carlo(default_world: World) -> None:
    w = default_world
    rng = np.random.default_rng(2)
    state = _one(w.new_sessions(1, rng), 0, 200_000)
    slate = np.tile(w.best_slate(state.take([0]))[0], (state.n, 1))
    exact = w.expected_reward(state.take([0]), slate[:1])[0]
    out = w.step(state, slate, rng)
    se = out.reward.std() / np.sqrt(state.n)
    assert abs(out.reward.mean() - exact) < 4 * se
    # clicks by slot follow position bias x attraction
    attr = w.attraction(state.take([0]))[0, slate[0]]
    np.testing.assert_allclose(out.click.mean(axis=0), w.position_bias * attr, atol=4e-3)
    assert (out.purchase <= out.click).all()
    np.testing.assert_allclose(out.revenue, out.purchase * w.params.price[slate])


def _brute_best(world: World, state: SessionState, need_cross: bool) -> float:
    elig = np.flatnonzero(world.eligible(state)[0])
    cross = world.cross_sell(state)[0]
    best = -np.inf
    for s in itertools.permutations(elig, world.k):
        if need_cross and cross[elig].any() and not cross[list(s)].any():
            continue
        best = max(best, float(world.expected_reward(state, np.array([s]))[0]))
    return best


@pytest.mark.parametrize("require_cross_sell", [False, True])
def test_best_slate_is_best(tiny_world: World, require_cross_sell: bool) -> None:
    w = tiny_world.with_config(require_cross_sell=require_cross_sell, reward_type="revenue")
    state = w.new_sessions(12, np.random.default_rng(4))
    slate, value = w.best_slate(state)
    for r in range(state.n):
        one = state.take([r])
        assert value[r] == pytest.approx(_brute_best(w, one, require_cross_sell), rel=1e-12)
        if require_cross_sell:
            assert w.cross_sell(one)[0, slate[r]].any()


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_one_hot_distribution_gives_the_slate_value(seed: int) -> None:
    w = World(WorldConfig(n_categories=3, items_per_category=3, n_taste=1, n_complements=1), seed=1)
    rng = np.random.default_rng(seed)
    state = w.new_sessions(4, rng)
    keys = np.where(w.eligible(state), rng.random((4, w.n_items)), 2.0)
    slate = np.argsort(keys, axis=1)[:, : w.k]
    dist = np.zeros((4, w.n_items, w.k))
    for j in range(w.k):
        dist[np.arange(4), slate[:, j], j] = 1.0
    np.testing.assert_allclose(w.expected_reward_dist(state, dist), w.expected_reward(state, slate))


def test_sessions_end_and_stay_ended(default_world: World) -> None:
    w = default_world
    rng = np.random.default_rng(5)
    state = w.new_sessions(2000, rng)
    steps = 0
    while state.alive.any():
        slate, _ = w.best_slate(state)
        out = w.step(state, slate, rng)
        dead = ~state.alive
        assert (out.reward[dead] == 0).all() and (out.state.step[dead] == state.step[dead]).all()
        assert not (out.checkout & out.abandon).any()
        np.testing.assert_array_equal(out.done, state.alive & ~out.state.alive)
        state = out.state
        steps += 1
    assert steps <= w.max_steps
    assert (state.step <= w.max_steps).all()


def test_purchase_moves_anchor_and_fills_cart(default_world: World) -> None:
    w = default_world
    rng = np.random.default_rng(6)
    state = w.new_sessions(5000, rng)
    slate, _ = w.best_slate(state)
    out = w.step(state, slate, rng)
    bought = out.purchase.any(axis=1)
    assert bought.any()
    first = slate[np.arange(state.n), np.argmax(out.purchase, axis=1)]
    np.testing.assert_array_equal(out.state.anchor[bought], first[bought])
    np.testing.assert_array_equal(out.state.anchor[~bought], state.anchor[~bought])
    assert (out.state.cart.sum(axis=1) == out.purchase.sum(axis=1)).all()
    np.testing.assert_allclose(out.state.cart_value, out.revenue.sum(axis=1))


def test_same_seed_same_world_and_outcomes() -> None:
    a, b, c = World.default(seed=7), World.default(seed=7), World.default(seed=8)
    assert a.catalog.equals(b.catalog) and not a.catalog.equals(c.catalog)
    outs = []
    for w in (a, b):
        rng = np.random.default_rng(11)
        state = w.new_sessions(100, rng)
        outs.append(w.step(state, w.best_slate(state)[0], rng))
    for name in ("click", "purchase", "revenue", "reward", "checkout", "abandon"):
        np.testing.assert_array_equal(getattr(outs[0], name), getattr(outs[1], name))


@pytest.mark.parametrize(
    ("slate", "match"),
    [
        pytest.param(np.zeros((2, 2), dtype=np.int64), r"`slate` must have shape \(2, 3\)", id="shape"),
        pytest.param(np.array([[0, 1, 2], [0, 1, 300]]), r"items outside \[0, 299\]", id="range"),
        pytest.param(np.array([[0, 1, 2], [4, 4, 5]]), r"row 1 repeats an item: \[4, 4, 5\]", id="repeat"),
        pytest.param(np.array([[0.0, 1, 2], [3, 4, 5]]), r"integer item indices, found dtype float64",
                     id="float"),
    ],
)
def test_bad_slates(default_world: World, slate: np.ndarray, match: str) -> None:
    state = default_world.new_sessions(2, np.random.default_rng(0))
    with pytest.raises(WorldError, match=match):
        default_world.step(state, slate, np.random.default_rng(0))


def test_bad_state_and_rng(default_world: World, tiny_world: World) -> None:
    with pytest.raises(WorldError, match=r"`rng` must be a numpy\.random\.Generator, found int"):
        default_world.new_sessions(2, 3)  # type: ignore[arg-type]
    with pytest.raises(WorldError, match="`n` must be an integer >= 0, found -1"):
        default_world.new_sessions(-1, np.random.default_rng(0))
    other = tiny_world.new_sessions(2, np.random.default_rng(0))
    with pytest.raises(WorldError, match="belongs to another world"):
        default_world.eligible(other)


def test_candidates_only(default_world: World) -> None:
    w = default_world.with_config(candidates_only=True)
    state = w.new_sessions(300, np.random.default_rng(8))
    elig = w.eligible(state)
    cand = (w.cross_sell(state) | w.up_sell(state))
    short = (cand & default_world.eligible(state)).sum(axis=1) < w.k
    assert not (elig[~short] & ~cand[~short]).any()
    assert (elig.sum(axis=1) >= w.k).all()
    slate, _ = w.best_slate(state)
    assert np.take_along_axis(elig, slate, axis=1).all()
