"""Off-policy learning: the offline_pl policy, its SNIPS fit, and warm starts from a log."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from bandits import SlatePolicy, make_policy
from bandits.offline import OfflinePLPolicy, warm_start
from bandits.offline.train import fit_offline_pl
from simulator.errors import PolicyError
from simulator.world import World, WorldConfig, generate_log, make_logging_policy
from simulator.world.truth import first_decision_value


@pytest.fixture(scope="module")
def world() -> World:
    """20 items, k = 2, one decision per session, a finite shopper population (exact truth)."""
    return World(WorldConfig(n_categories=4, items_per_category=5, k=2, max_steps=1, n_taste=0), 0)


@pytest.fixture(scope="module")
def uniform_log(world: World):  # type: ignore[no-untyped-def]
    return generate_log(world, make_logging_policy("uniform"), 4_000, seed=1)


def test_untrained_is_uniform_and_round_trips(tmp_path) -> None:  # type: ignore[no-untyped-def]
    policy = OfflinePLPolicy(n_items=6, k=2, dim_context=3, seed=0)
    dist = policy.action_dist(np.ones((4, 3)))
    assert np.allclose(dist, 1 / 6)
    rng = np.random.default_rng(0)
    policy.set_weights(rng.normal(size=(3, 6)), rng.normal(size=6), np.zeros(3), np.ones(3))
    path = policy.save(tmp_path / "p.npz")
    loaded = SlatePolicy.load(path)
    ctx = rng.normal(size=(5, 3))
    assert isinstance(loaded, OfflinePLPolicy)
    assert np.allclose(loaded.action_dist(ctx), policy.action_dist(ctx))


def test_sample_slates_matches_first_slot_marginal() -> None:
    policy = OfflinePLPolicy(n_items=5, k=2, dim_context=2, seed=3)
    policy.set_weights(np.array([[1.0, 0, -1, 0.5, 0], [0, 0, 0, 0, 0]]), np.zeros(5), np.zeros(2), np.ones(2))
    ctx = np.tile([1.0, 0.0], (20_000, 1))
    slate, pscore = policy.sample_slates(ctx)
    freq = np.bincount(slate[:, 0], minlength=5) / slate.shape[0]
    dist = policy.action_dist(ctx[:1])[0, :, 0]
    assert np.abs(freq - dist).max() < 0.015
    exact = policy.select(ctx[:50])
    assert np.all((pscore > 0) & (pscore <= 1)) and exact.pscore.shape == (50,)


def test_saved_policies_load_in_a_fresh_process(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """`SlatePolicy.load` imports the module of a lazily registered policy (offline_pl, ppo)."""
    OfflinePLPolicy(n_items=4, k=2, dim_context=1).save(tmp_path / "a.npz")
    code = ("import sys, bandits; from bandits import SlatePolicy; "
            f"p = SlatePolicy.load({str(tmp_path / 'a.npz')!r}); print(type(p).__name__, 'bandits.ppo' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["OfflinePLPolicy", "False"]


def test_fit_beats_the_uniform_logger_in_truth(world: World, uniform_log) -> None:  # type: ignore[no-untyped-def]
    fit = fit_offline_pl(uniform_log, seed=0)
    learned = first_decision_value(world, fit.policy).value
    logger = first_decision_value(world, make_logging_policy("uniform")).value
    best = first_decision_value(world, make_logging_policy("greedy")).value
    assert learned >= 1.5 * logger
    assert learned >= 0.6 * best
    assert fit.best_epoch >= 1 and fit.objective == "ips"


def test_fit_needs_rows(uniform_log) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(PolicyError, match="at least 10"):
        fit_offline_pl(uniform_log.take(np.arange(5)))


@pytest.mark.parametrize("rule", ["resample", "replay"])
def test_warm_start_learns_from_the_log(world: World, uniform_log, rule: str) -> None:  # type: ignore[no-untyped-def]
    policy = make_policy("linucb", n_items=world.n_items, k=world.k, dim_context=world.dim_context,
                         alpha=0.1)
    before = first_decision_value(world, policy).value
    info = warm_start(policy, uniform_log, rule=rule, seed=0)
    after = first_decision_value(world, policy).value
    uniform = first_decision_value(world, make_logging_policy("uniform")).value
    assert after > 1.2 * before and after > 1.5 * uniform
    assert info.rows == uniform_log.n_rounds and info.updates > 0
    if rule == "replay":  # a uniform logger: every match is kept, about k / n_items of the impressions
        assert info.updates < 0.5 * uniform_log.n_rounds * world.k


def test_resampling_undoes_a_skewed_logger(world: World) -> None:
    """Per-item means after importance resampling match a uniform log's, not the logger's favourites."""
    skewed = generate_log(world, make_logging_policy("softmax", temperature=0.5), 20_000, seed=2)
    policy = make_policy("epsilon_greedy", n_items=world.n_items, k=world.k, epsilon=0.0)
    warm_start(policy, skewed, rule="resample", seed=0)
    state = policy._get_state()
    counts = state[sorted(state)[0]]
    shown = np.bincount(np.asarray(skewed.slate).ravel(), minlength=world.n_items)
    # the resampled impressions are spread far more evenly than the logged ones
    assert counts.std() / counts.mean() < 0.5 * shown.std() / shown.mean()


def test_warm_start_refuses_bad_input(uniform_log) -> None:  # type: ignore[no-untyped-def]
    policy = make_policy("epsilon_greedy", n_items=7, k=2)
    with pytest.raises(PolicyError, match="knows 7 items"):
        warm_start(policy, uniform_log)
    with pytest.raises(PolicyError, match="`rule`"):
        warm_start(policy, uniform_log, rule="magic")


def test_ips_objective_on_rewarded_rows_equals_the_full_mean() -> None:
    """Rows without reward add nothing to IPS: the fit computes it on the rewarded rows only."""
    import torch as th

    from bandits.offline.train import _objective

    rng = np.random.default_rng(5)
    n, m, d, k = 400, 12, 3, 2
    z = th.as_tensor(rng.normal(size=(n, d)), dtype=th.float64)
    slate = th.as_tensor(np.argsort(rng.random((n, m)), axis=1)[:, :k])
    reward = th.as_tensor(rng.lognormal(size=(n, k)) * (rng.random((n, k)) < 0.1))
    inv_p = th.as_tensor(rng.uniform(1, 30, size=(n, k)))
    weight, bias = th.as_tensor(rng.normal(size=(d, m))), th.as_tensor(rng.normal(size=m))
    logp = np.log(np.exp(z.numpy() @ weight.numpy() + bias.numpy()).T / np.exp(
        z.numpy() @ weight.numpy() + bias.numpy()).sum(axis=1)).T
    by_hand = float((np.exp(np.take_along_axis(logp, slate.numpy(), 1)) * np.minimum(inv_p.numpy(), 20.0)
                     * reward.numpy()).mean(axis=0).sum())
    keep = th.as_tensor((reward.numpy() != 0).any(axis=1))
    assert 0 < int(keep.sum()) < n
    part = _objective(weight, bias, z[keep], slate[keep], reward[keep], inv_p[keep], "ips", 20.0, n)
    assert float(part) == pytest.approx(by_hand, rel=1e-12)
