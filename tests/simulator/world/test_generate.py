from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from simulator.logs import SlateLog
from simulator.world import World, WorldError, generate_log, make_logging_policy


def test_log_fields(default_world: World) -> None:
    log = generate_log(default_world, make_logging_policy("epsilon_greedy", epsilon=0.3), 400, seed=1)
    assert isinstance(log, SlateLog)
    assert log.k == 3 and log.dim_context == default_world.dim_context
    assert log.metadata.reward_type == "revenue"
    assert log.metadata.context_names == default_world.context_names
    assert log.catalog.equals(default_world.catalog)
    assert log.purchase is not None and log.revenue is not None
    np.testing.assert_allclose(log.reward, log.revenue)
    np.testing.assert_allclose(log.revenue, log.purchase * default_world.params.price[log.slate])
    # sessions: every session id present, steps 0..L-1 in order, within the step limit
    sid, step = np.asarray(log.session_id), np.asarray(log.step)
    assert set(np.unique(sid)) == set(range(400))
    starts = np.flatnonzero(np.r_[True, sid[1:] != sid[:-1]])
    lengths = np.diff(np.r_[starts, sid.size])
    np.testing.assert_array_equal(step, np.arange(sid.size) - np.repeat(starts, lengths))
    assert lengths.max() <= default_world.max_steps
    # cart size in the context grows by the purchases of the previous steps
    f = default_world.n_features + len(default_world.params.category_names)
    cart = np.asarray(log.context)[:, f + 1] * default_world.k * default_world.max_steps
    bought = np.asarray(log.purchase).sum(axis=1)
    expected = np.concatenate([np.r_[0, np.cumsum(bought[s:s + n])[:-1]] for s, n in zip(starts, lengths, strict=True)])
    np.testing.assert_allclose(cart, expected, atol=1e-9)


@pytest.mark.parametrize(("world_name", "policy_name"), [("default_world", "epsilon_greedy"),
                                                         ("tiny_world", "softmax")])
def test_same_seed_same_log(world_name: str, policy_name: str, request: pytest.FixtureRequest) -> None:
    world = request.getfixturevalue(world_name)
    policy = make_logging_policy(policy_name)
    a = generate_log(world, policy, 150, seed=5)
    b = generate_log(world, policy, 150, seed=5)
    c = generate_log(world, policy, 150, seed=6)
    assert a.equals(b) and not a.equals(c)


@dataclass(frozen=True)
class _Decision:
    slate: np.ndarray
    pscore: np.ndarray
    pscore_item: np.ndarray


class _FirstEligible:
    """An outside policy: the first k eligible items, deterministically."""

    def __init__(self, k: int) -> None:
        self.k = k

    def select(self, context, *, eligible=None, required=None):  # type: ignore[no-untyped-def]
        slate = np.argsort(~eligible, axis=1, kind="stable")[:, : self.k]
        return _Decision(slate, np.ones(slate.shape[0]), np.ones(slate.shape))


def test_any_policy_with_select(default_world: World) -> None:
    log = generate_log(default_world, _FirstEligible(3), 50, seed=0)
    assert log.metadata.logging_policy == "_FirstEligible"
    first = log.take(np.asarray(log.step) == 0)
    assert (np.sort(first.slate, axis=1)[:, 0] <= 1).all()
    with pytest.raises(WorldError, match=r"returned slate \(.*, 2\).*Does the policy's k match"):
        generate_log(default_world, _FirstEligible(2), 5, seed=0)
    with pytest.raises(WorldError, match="`policy` must be a built-in logging policy or have select"):
        generate_log(default_world, object(), 5, seed=0)  # type: ignore[arg-type]
    with pytest.raises(WorldError, match="`n_sessions` must be a positive integer, found 0"):
        generate_log(default_world, _FirstEligible(3), 0, seed=0)


def test_bandits_policy_satisfies_the_protocol(default_world: World) -> None:
    bandits = pytest.importorskip("bandits")
    from simulator.world import DistPolicyLike

    policy = bandits.make_policy("epsilon_greedy", n_items=default_world.n_items, k=default_world.k,
                                 seed=0)
    assert isinstance(policy, DistPolicyLike)
    log = generate_log(default_world, policy, 30, seed=0)
    assert log.n_rounds >= 30
