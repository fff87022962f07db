"""Learning on tiny worlds with a known best slate: each learning policy gets >= 90% of the optimum.

Values are exact expected clicks per slate of the policy's distribution after
learning (``bandits.testing.value``), relative to the best slate's, with fixed seeds.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from bandits import Feedback, make_policy
from bandits.slates import uniform_slates
from bandits.testing import (
    BernoulliWorld,
    SlateWorld,
    anchor_world,
    bernoulli_world,
    run_online,
    segment_world,
    value,
)

BW = bernoulli_world(n_items=8, k=2, seed=0)
SW = segment_world(n_items=8, k=2, n_segments=3, seed=0)
EXAM = tuple(BW.examination)
FEATURES = np.random.default_rng(0).standard_normal((8, 2))

# name, world, parameters, rounds, batch size (rounds per update)
ONLINE = [
    ("epsilon_greedy", BW, {"epsilon": 0.05}, 1_000, 10),
    ("ucb1", BW, {}, 2_000, 10),
    ("bernoulli_ts", BW, {"n_draws": 200}, 1_000, 10),
    ("softmax", BW, {"temperature": 0.02}, 1_000, 10),
    ("linucb", SW, {"alpha": 1.0}, 1_000, 1),
    ("ridge_epsilon_greedy", SW, {"epsilon": 0.05}, 2_000, 10),
    ("linear_ts", SW, {"v": 0.2, "n_draws": 100}, 1_000, 10),
    ("logistic_ts", SW, {"v": 1.0, "n_draws": 100}, 2_000, 20),
    ("hybrid_linucb", SW, {"alpha": 0.5, "item_features": FEATURES}, 1_000, 10),
]


@pytest.mark.parametrize(("name", "world", "params", "rounds", "batch"), ONLINE,
                         ids=[case[0] for case in ONLINE])
def test_online_learning_reaches_ninety_percent(name: str, world: SlateWorld, params: dict[str, Any],
                                                rounds: int, batch: int) -> None:
    policy = make_policy(name, n_items=world.n_items, k=world.k, dim_context=world.dim_context,
                         examination=EXAM, seed=3, **params)
    before, best = value(policy, world, 300, seed=5, n_draws=300)
    run = run_online(policy, world, rounds, batch_size=batch, seed=4)
    after, best = value(policy, world, 300, seed=5, n_draws=300)
    assert after / best >= 0.9, f"{name}: {after / best:.3f} of the optimum after {rounds} rounds"
    assert after > before  # it learned something
    assert run.ratio(last=rounds // 5) >= 0.85  # and it played well at the end of the run too


def _uniform_log(world: SlateWorld, n: int, seed: int) -> Feedback:
    rng = np.random.default_rng(seed)
    ctx = world.contexts(rng, n)
    slate, pscore, _ = uniform_slates(rng, n, world.n_items, world.k)
    return world.feedback(rng, ctx, slate, pscore)


@pytest.mark.parametrize(("name", "params"), [
    ("bought_together", {}),
    ("item_similarity", {}),
], ids=["bought_together", "item_similarity"])
def test_cross_sell_rules_learn_complements_from_a_uniform_log(name: str, params: dict[str, Any]) -> None:
    world = anchor_world(n_items=12, k=2, seed=1)
    policy = make_policy(name, n_items=12, k=2, dim_context=1, examination=tuple(world.examination),
                         seed=0, **params)
    before, best = value(policy, world, 500, seed=2)
    policy.update(_uniform_log(world, 4_000, seed=3))
    after, best = value(policy, world, 500, seed=2)
    assert before / best < 0.5
    assert after / best >= 0.9


def test_content_similarity_needs_no_learning() -> None:
    """Items whose features point the same way as the anchor's are its complements."""
    world = anchor_world(n_items=12, k=2, seed=1)
    features = world.attract + np.eye(12)  # an item is most similar to the items it goes with
    policy = make_policy("item_similarity", n_items=12, k=2, dim_context=1, item_features=features,
                         content_weight=1.0, examination=tuple(world.examination))
    v, best = value(policy, world, 500, seed=2)
    assert v / best >= 0.9


def test_popularity_learns_the_best_items_from_a_uniform_log() -> None:
    policy = make_policy("popularity", n_items=8, k=2, examination=EXAM)
    before, best = value(policy, BW, 200, seed=1)
    policy.update(_uniform_log(BW, 3_000, seed=2))
    after, best = value(policy, BW, 200, seed=1)
    assert before / best < 0.8
    assert after / best >= 0.9


def test_hybrid_linucb_scores_new_items_from_their_features() -> None:
    """Items never shown get an informed score from the shared feature weights."""
    f = np.linspace(0.0, 1.0, 12)[:, None]
    world = BernoulliWorld(examination=np.array([1.0]), theta=0.05 + 0.5 * f[:, 0], dim=1)
    hybrid = make_policy("hybrid_linucb", n_items=12, k=1, dim_context=1, item_features=f, alpha=0.0)
    disjoint = make_policy("linucb", n_items=12, k=1, dim_context=1, alpha=0.0)
    rng = np.random.default_rng(0)
    old = np.zeros(12, dtype=bool)
    old[:9] = True  # items 9-11, the best ones, are new: never shown while learning
    for _ in range(60):
        ctx = np.ones((20, 1))
        slate, pscore, _ = uniform_slates(rng, 20, 12, 1, np.repeat(old[None], 20, 0))
        fb = world.feedback(rng, ctx, slate, pscore)
        hybrid.update(fb)
        disjoint.update(fb)
    new = hybrid._scores(np.ones((1, 1)))[0]
    # new items score by their features: increasing in the feature, above the average old item
    assert (np.diff(new[9:]) > 0).all()
    assert new[9:].min() > new[:9].mean()
    # the disjoint model knows nothing of them: its prior score 0 for each
    np.testing.assert_array_equal(disjoint._scores(np.ones((1, 1)))[0, 9:], 0.0)
