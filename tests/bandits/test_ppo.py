"""The PPO slate policy: exact Plackett-Luce propensities, the policy contract, both save formats."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch as th
from hypothesis import given, settings
from hypothesis import strategies as st

from bandits import PolicyError, SlatePolicy
from bandits.ppo import PlackettLuce, PPOSlatePolicy
from bandits.slates import plackett_luce_slates
from tests.bandits import test_contract as contract

# ---------------------------------------------------------------- the shared contract, run on "ppo"
test_slates_are_valid = contract.test_slates_are_valid
test_inputs_are_not_mutated = contract.test_inputs_are_not_mutated
test_action_dist_is_a_distribution_per_slot = contract.test_action_dist_is_a_distribution_per_slot
test_marginals_match_select_frequencies = contract.test_marginals_match_select_frequencies
test_pscores_agree_with_action_dist_and_frequency = contract.test_pscores_agree_with_action_dist_and_frequency
test_save_load_round_trip_gives_identical_future = contract.test_save_load_round_trip_gives_identical_future
test_same_seed_gives_same_slates = contract.test_same_seed_gives_same_slates
test_clone_and_reset_forget_learning = contract.test_clone_and_reset_forget_learning
test_bad_calls_raise_clear_errors = contract.test_bad_calls_raise_clear_errors


@pytest.fixture
def name() -> str:
    return "ppo"


@pytest.fixture(autouse=True)
def one_torch_thread() -> Iterator[None]:
    """Small networks only lose from more threads on this shared machine."""
    before = th.get_num_threads()
    th.set_num_threads(1)
    yield
    th.set_num_threads(before)


def peaked_policy(seed: int = 0, temperature: float = 1.0) -> PPOSlatePolicy:
    """A policy whose network strongly prefers high item indices (weights set by hand)."""
    policy = PPOSlatePolicy(contract.N_ITEMS, contract.K, contract.DIM, net_arch=(8,),
                            temperature=temperature, seed=seed)
    state = policy.network_state()
    state["action_net.weight"] = th.zeros_like(state["action_net.weight"])
    state["action_net.bias"] = th.arange(contract.N_ITEMS, dtype=th.float64)
    policy.load_network_state(state)
    return policy


# ---------------------------------------------------------------- the torch distribution
def test_plackett_luce_hand_computed() -> None:
    # weights 1, 2, 3: P([2, 1]) = 3/6 * 2/3 = 1/3; P([0, 2]) = 1/6 * 3/5 = 1/10.
    logits = th.log(th.tensor([[1.0, 2.0, 3.0]]))
    dist = PlackettLuce(logits, th.ones(1, 3, dtype=th.bool), k=2)
    got = dist.log_prob(th.tensor([[2, 1]])).exp().item(), dist.log_prob(th.tensor([[0, 2]])).exp().item()
    np.testing.assert_allclose(got, [1 / 3, 1 / 10], rtol=1e-6)
    assert dist.mode().tolist() == [[2, 1]]


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), n_items=st.integers(2, 5), k=st.integers(1, 3))
def test_slate_probabilities_sum_to_one_over_all_slates(seed: int, n_items: int, k: int) -> None:
    k = min(k, n_items)
    rng = np.random.default_rng(seed)
    logits = th.as_tensor(rng.normal(0, 2, (1, n_items)), dtype=th.float32)
    eligible = th.as_tensor(rng.random((1, n_items)) < 0.8)
    eligible[0, :k] = True
    slates = th.tensor(list(itertools.permutations(range(n_items), k)))
    dist = PlackettLuce(logits.expand(len(slates), -1), eligible.expand(len(slates), -1), k)
    p = dist.log_prob(slates).exp().double().numpy()
    ok = eligible[0].numpy()[slates.numpy()].all(axis=1)
    assert np.abs(p[~ok]).max(initial=0.0) == 0.0
    np.testing.assert_allclose(p.sum(), 1.0, rtol=1e-5)


def test_torch_log_prob_equals_numpy_pscore() -> None:
    """The distribution PPO trains is the one select() samples: same slate probabilities."""
    policy = peaked_policy(seed=3)
    ctx = contract.contexts(PPOSlatePolicy, 200, seed=1)
    eligible, _ = contract.masks(200)
    d = policy.select(ctx, eligible=eligible)
    obs = th.as_tensor(policy.observation(ctx, eligible), dtype=th.float64)
    with th.no_grad():
        p = policy.network.get_distribution(obs).log_prob(th.as_tensor(d.slate)).exp().double().numpy()
    np.testing.assert_allclose(p, d.pscore, rtol=1e-4)


def test_network_samples_follow_plackett_luce() -> None:
    # Frequencies of torch's Gumbel-top-k draws match the exact numpy slate probability.
    th.manual_seed(0)
    logits = th.tensor([[0.0, 1.0, 2.0, 0.5]]).expand(20_000, -1)
    dist = PlackettLuce(logits, th.ones(20_000, 4, dtype=th.bool), k=2)
    draws = dist.sample().numpy()
    _, pscore, _, _ = plackett_luce_slates(np.random.default_rng(0), logits[:1].double().numpy(), 2)
    top = (draws == [2, 1]).all(axis=1).mean()
    exact = np.exp(2) / np.exp([0, 1, 2, 0.5]).sum() * np.exp(1) / np.exp([0, 1, 0.5]).sum()
    assert abs(top - exact) < 4 * np.sqrt(exact * (1 - exact) / 20_000)
    assert pscore.shape == (1,)


# ---------------------------------------------------------------- temperature and state
def test_lower_temperature_is_greedier() -> None:
    ctx = contract.contexts(PPOSlatePolicy, 5, seed=2)
    hot = peaked_policy(temperature=2.0).action_dist(ctx)
    cold = peaked_policy(temperature=0.25).action_dist(ctx)
    best = contract.N_ITEMS - 1
    assert (cold[:, best, 0] > hot[:, best, 0]).all()
    assert (cold[:, best, 0] > 0.9).all()


def test_update_leaves_the_network_unchanged() -> None:
    policy = peaked_policy()
    before = policy._get_state()
    policy.update(contract.training_feedback(PPOSlatePolicy, seed=1))
    after = policy._get_state()
    assert all(np.array_equal(before[key], after[key]) for key in before)


def test_sb3_zip_round_trip_gives_same_slates(tmp_path: Path) -> None:
    policy = peaked_policy(seed=4)
    zip_path = policy.save_sb3(tmp_path / "model")
    assert zip_path.name == "model.zip" and zip_path.with_suffix(".json").is_file()
    loaded = PPOSlatePolicy.load_sb3(zip_path)
    ctx = contract.contexts(PPOSlatePolicy, 50, seed=5)
    eligible, required = contract.masks(50)
    a = policy.select(ctx, eligible=eligible, required=required)
    b = loaded.select(ctx, eligible=eligible, required=required)
    np.testing.assert_array_equal(a.slate, b.slate)
    np.testing.assert_array_equal(a.pscore, b.pscore)
    colder = PPOSlatePolicy.load_sb3(zip_path, temperature=0.5)
    assert colder.temperature == 0.5
    np.testing.assert_allclose(colder.scores(ctx), 2 * policy.scores(ctx), rtol=1e-6)


def test_npz_is_loaded_by_the_common_loader(tmp_path: Path) -> None:
    policy = peaked_policy(seed=6)
    loaded = SlatePolicy.load(policy.save(tmp_path / "p.npz"))
    assert isinstance(loaded, PPOSlatePolicy)
    ctx = contract.contexts(PPOSlatePolicy, 20, seed=5)
    np.testing.assert_array_equal(policy.select(ctx).slate, loaded.select(ctx).slate)


def _other_zip(tmp_path: Path) -> Path:
    return PPOSlatePolicy(5, 2, 3, seed=0).save_sb3(tmp_path / "other.zip")


BAD = [
    pytest.param(lambda p: PPOSlatePolicy(7, 3, 4, net_arch=()), "`net_arch` must be a non-empty", id="arch"),
    pytest.param(lambda p: PPOSlatePolicy(7, 3, 4, temperature=0.0), "`temperature` must be a positive number", id="temp"),
    pytest.param(lambda p: PPOSlatePolicy(7, 3, 4, n_draws=0), "`n_draws` must be a positive", id="draws"),
    pytest.param(lambda p: PPOSlatePolicy(7, 3, 4, activation="gelu"), "`activation` must be one of", id="act"),
    pytest.param(lambda p: PPOSlatePolicy.load_sb3(p / "missing.zip"), "no SB3 model file", id="no-zip"),
    pytest.param(lambda p: PPOSlatePolicy.load_sb3(_other_zip(p), metadata=p / "none.json"),
                 "no slatewise metadata", id="no-meta"),
    pytest.param(lambda p: PPOSlatePolicy(7, 3, 4).load_network_state(
        PPOSlatePolicy(5, 2, 3).network_state()), "context_mean has shape \\(3,\\), expected \\(4,\\)", id="wrong-shape"),
    pytest.param(lambda p: PPOSlatePolicy(7, 3, 4).load_network_state({}), "missing", id="empty-state"),
]


@pytest.mark.parametrize(("call", "message"), BAD)
def test_bad_input_raises_clear_errors(call, message: str, tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match=message):
        call(tmp_path)


def test_foreign_zip_is_rejected(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.zip"
    bogus.write_bytes(b"not a zip")
    _other_zip(tmp_path).with_suffix(".json").rename(tmp_path / "bogus.json")
    with pytest.raises(PolicyError, match="not a stable-baselines3 model file"):
        PPOSlatePolicy.load_sb3(bogus)


def test_fast_sampler_has_the_select_distribution() -> None:
    """sample_slates skips the marginals but draws the same slates with the same exact pscore."""
    policy = peaked_policy(seed=3)
    n = 4_000
    ctx = np.repeat(contract.contexts(PPOSlatePolicy, 1, seed=1), n, axis=0)
    eligible = np.repeat(contract.masks(1)[0], n, axis=0)
    slate, pscore = policy.sample_slates(ctx, eligible=eligible)
    assert np.take_along_axis(eligible, slate, axis=1).all()
    obs = th.as_tensor(policy.observation(ctx[:50], eligible[:50]), dtype=th.float64)
    with th.no_grad():
        exact = policy.network.get_distribution(obs).log_prob(th.as_tensor(slate[:50])).exp().numpy()
    np.testing.assert_allclose(pscore[:50], exact, rtol=1e-9)
    # The most frequent slate appears about as often as its probability says.
    codes, first, counts = np.unique(slate, axis=0, return_index=True, return_counts=True)
    top = int(np.argmax(counts))
    p = float(pscore[first[top]])
    assert abs(counts[top] / n - p) < 4 * np.sqrt(p * (1 - p) / n)
    assert p > 0.05 and len(codes) > 1


def test_item_features_are_state_and_shape_the_scores(tmp_path: Path) -> None:
    policy = PPOSlatePolicy(4, 2, 3, net_arch=(8,), n_item_features=2, seed=0)
    state = policy.network_state()
    state["item_features"] = th.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.0, 0.0]], dtype=th.float64)
    state["action_net.weight"] = th.zeros_like(state["action_net.weight"])
    state["action_net.bias"] = th.zeros_like(state["action_net.bias"])
    policy.load_network_state(state)
    # With the per-item head zeroed, a score is linear in the item's features:
    # item 3 (features 0) scores 0, item 2 (= item 0 + item 1) scores their sum.
    scores = policy.scores(np.random.default_rng(0).standard_normal((5, 3)))
    np.testing.assert_allclose(scores[:, 3], 0.0, atol=1e-12)
    np.testing.assert_allclose(scores[:, 2], scores[:, 0] + scores[:, 1], rtol=1e-9, atol=1e-15)
    assert np.abs(scores[:, 0]).max() > 0
    loaded = SlatePolicy.load(policy.save(tmp_path / "f.npz"))
    assert isinstance(loaded, PPOSlatePolicy) and loaded.n_item_features == 2
    th.testing.assert_close(loaded.network_state()["item_features"], state["item_features"])
    via_zip = PPOSlatePolicy.load_sb3(policy.save_sb3(tmp_path / "f.zip"))
    th.testing.assert_close(via_zip.network_state()["item_features"], state["item_features"])


def test_item_features_of_the_wrong_shape_are_rejected() -> None:
    from gymnasium import spaces

    from bandits.ppo import PLSlateActorCritic, observation_space

    with pytest.raises(PolicyError, match=r"`item_features` must have shape \(n_items=4, f\), found \(3, 2\)"):
        PLSlateActorCritic(observation_space(3, 4), spaces.MultiDiscrete([4, 4]), lambda _: 0.0,
                           item_features=np.zeros((3, 2)).tolist())


# ------------------------------------------------------------------ anchor relation
RELATION = {"group_context": [0, 1], "group_items": [0, 1], "value_context": 2, "value_item": 2}


def test_relation_features_hand_computed() -> None:
    from bandits.ppo import relation_features

    # One session whose anchor is in group 1 with value 0.5; three items.
    context = th.tensor([[0.0, 1.0, 0.5]], dtype=th.float64)
    items = th.tensor([[1.0, 0.0, 2.0],    # other group, dearer by 1.5
                       [0.0, 1.0, 1.0],    # same group, dearer by 0.5
                       [0.0, 1.0, -0.5]],  # same group, cheaper by 1.0
                      dtype=th.float64)
    rel = relation_features(context, items, RELATION)
    expected = th.tensor([[[0.0, 1.5, 0.0, 0.0, 0.0, 0.0],
                           [1.0, 0.5, 0.0, 0.5, 0.0, 1.0],
                           [1.0, 0.0, 1.0, 0.0, 1.0, 0.0]]], dtype=th.float64)
    th.testing.assert_close(rel, expected)


def test_anchor_relation_scores_and_round_trip(tmp_path: Path) -> None:
    policy = PPOSlatePolicy(3, 2, 3, net_arch=(8,), n_item_features=3, anchor_relation=RELATION, seed=0)
    state = policy.network_state()
    state["item_features"] = th.tensor([[1.0, 0.0, 2.0], [0.0, 1.0, 1.0], [0.0, 1.0, -0.5]], dtype=th.float64)
    for key in ("action_net.weight", "action_net.bias", "item_head.weight"):
        state[key] = th.zeros_like(state[key])
    policy.load_network_state(state)
    # Anchors in group 1 priced like item 0 (value 2.0): item 0 (group 0) then has all six
    # relation features zero, and with only the relation head left it must score exactly 0.
    context = np.column_stack([np.zeros(6), np.ones(6), np.full(6, 2.0)])
    context[:, 2] += np.r_[0.0, 0.0, 0.0, 1.0, -1.0, 0.5]
    scores = policy.scores(context)
    np.testing.assert_allclose(scores[:3, 0], 0.0, atol=1e-12)
    assert np.abs(scores[3:, 0]).min() > 0  # the anchor's value moved: item 0 is up or down
    assert np.abs(scores[:, 1:]).min() > 0
    loaded = SlatePolicy.load(policy.save(tmp_path / "rel.npz"))
    assert isinstance(loaded, PPOSlatePolicy) and loaded.anchor_relation == RELATION
    np.testing.assert_allclose(loaded.scores(context), scores, rtol=1e-12)
    via_zip = PPOSlatePolicy.load_sb3(policy.save_sb3(tmp_path / "rel.zip"))
    np.testing.assert_allclose(via_zip.scores(context), scores, rtol=1e-12)


@pytest.mark.parametrize(("relation", "message"), [
    ({"group_context": [0]}, r"`anchor_relation` must be a dict with keys"),
    ({**RELATION, "group_items": [0]}, r"must pair up one to one, found 2 and 1"),
    ({**RELATION, "value_context": 3}, r"context columns must lie in \[0, 2\]"),
    ({**RELATION, "value_item": 5}, r"item-feature columns must lie in \[0, 2\]"),
    ({**RELATION, "value_item": "price"}, r"must hold integer column indices"),
])
def test_bad_anchor_relation_is_rejected(relation: dict, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        PPOSlatePolicy(3, 2, 3, net_arch=(8,), n_item_features=3, anchor_relation=relation)
