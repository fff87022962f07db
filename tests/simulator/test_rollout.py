"""The one rollout loop: sessions run to their end, every step seen once, the same draws as a hand loop."""

from __future__ import annotations

import numpy as np
import pytest

from simulator.envs import ToyWorld
from simulator.errors import WorldError
from simulator.rollout import Step, as_agent, rollout
from simulator.world import World, WorldConfig, make_logging_policy


def hand_loop(world: World, n: int, seed: int) -> np.ndarray:
    """The loop written out: draw sessions, step every live one until it ends."""
    rng = np.random.default_rng(seed)
    policy = make_logging_policy("uniform")
    state = world.new_sessions(n, rng)
    index = np.arange(n)
    total = np.zeros(n)
    while state.n:
        d = policy.decide(world, state, rng)
        out = world.step(state, d.slate, rng)
        total[index] += out.reward
        keep = out.state.alive
        state, index = out.state.take(keep), index[keep]
    return total


def test_rollout_draws_what_the_hand_written_loop_draws() -> None:
    world = World(WorldConfig(n_categories=4, items_per_category=10, max_steps=6), seed=1)
    totals = rollout(world, make_logging_policy("uniform"), 300, np.random.default_rng(9))
    np.testing.assert_array_equal(totals, hand_loop(world, 300, 9))


@pytest.mark.parametrize("make_world", [
    lambda: World(WorldConfig(n_categories=4, items_per_category=10, max_steps=5), seed=2),
    lambda: ToyWorld(max_steps=4),
], ids=["world", "toy"])
def test_every_session_is_stepped_until_it_ends_and_totals_add_up(make_world) -> None:  # type: ignore[no-untyped-def]
    world = make_world()
    n = 200
    seen = np.zeros(n, dtype=np.int64)
    summed = np.zeros(n)
    ended_at = np.full(n, -1)
    step_no = [0]

    def watch(step: Step) -> None:
        assert not np.isin(step.session, np.flatnonzero(ended_at >= 0)).any(), "an ended session came back"
        np.add.at(seen, step.session, 1)
        np.add.at(summed, step.session, step.outcome.reward)
        ended_at[step.session[step.ended]] = step_no[0]
        step_no[0] += 1

    uniform = make_logging_policy("uniform") if isinstance(world, World) else _ToyUniform()
    totals = rollout(world, uniform, n, np.random.default_rng(0), on_step=watch)
    np.testing.assert_allclose(totals, summed)
    assert (ended_at >= 0).all(), "every session ended"
    assert seen.min() >= 1 and seen.max() <= world.max_steps


class _ToyUniform:
    """A uniform agent of the toy world (decide with the rollout's generator)."""

    def decide(self, world, state, rng):  # type: ignore[no-untyped-def]
        from simulator.rollout import Decision

        scores = rng.random((state.n, world.n_items))
        slate = np.argsort(-np.where(world.eligible(state), scores, -1.0), axis=1)[:, :world.k]
        return Decision(slate.astype(np.int64))


def test_chunks_cover_every_session_once() -> None:
    world = World(WorldConfig(n_categories=4, items_per_category=10, max_steps=3), seed=3)
    first: list[np.ndarray] = []
    rollout(world, make_logging_policy("uniform"), 250, np.random.default_rng(1), chunk=100,
            on_step=lambda s: first.append(s.session[s.state.step == 0]))
    np.testing.assert_array_equal(np.sort(np.concatenate(first)), np.arange(250))


@pytest.mark.parametrize(("kwargs", "message"), [
    pytest.param({"n_sessions": 0}, "`n_sessions` must be a positive integer, found 0", id="zero-sessions"),
    pytest.param({"n_sessions": True}, "`n_sessions` must be a positive integer", id="bool-sessions"),
    pytest.param({"chunk": 0}, "`chunk` must be a positive integer, found 0", id="zero-chunk"),
])
def test_bad_arguments_name_the_field(kwargs: dict[str, object], message: str) -> None:
    world = World(WorldConfig(n_categories=4, items_per_category=10), seed=0)
    args = {"n_sessions": 5} | kwargs
    with pytest.raises(WorldError, match=message):
        rollout(world, make_logging_policy("uniform"), args.pop("n_sessions"),  # type: ignore[arg-type]
                np.random.default_rng(0), **args)  # type: ignore[arg-type]


def test_an_object_that_cannot_decide_is_refused() -> None:
    with pytest.raises(WorldError, match="must be a built-in logging policy or have select"):
        as_agent(object())  # type: ignore[arg-type]
