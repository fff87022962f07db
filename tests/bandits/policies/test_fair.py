"""fair_exposure: exposure bounds met on the default world, with propensities that keep IPS unbiased."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest

from bandits import Feedback
from bandits.exposure import exposure_report
from bandits.policies.fair import FairExposure
from simulator.errors import PolicyError
from simulator.rollout import Step, rollout
from simulator.world import World
from simulator.world.generate import slot_reward
from simulator.world.truth import first_decision_value


def _pl_probability(logits: np.ndarray[Any, Any], eligible: np.ndarray[Any, Any],
                    slate: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Probability of each stage-ordered slate under Plackett-Luce, from its definition.

    Ineligible items have weight 0; logits more than 500 below a row's best eligible one are
    raised to that floor, as the sampler documents.
    """
    masked = np.where(eligible, logits, -np.inf)
    top = masked.max(axis=1, keepdims=True)
    w = np.where(eligible, np.exp(np.maximum(masked, top - 500.0) - top), 0.0)
    p = np.ones(slate.shape[0])
    rows = np.arange(slate.shape[0])
    for s in range(slate.shape[1]):
        p *= w[rows, slate[:, s]] / w.sum(axis=1)
        w[rows, slate[:, s]] = 0.0
    return p


def _run(world: World, policy: FairExposure, n_sessions: int, seed: int) -> dict[str, list[Any]]:
    seen: dict[str, list[Any]] = {"slate": [], "first": [], "eligible": [], "context": [], "reward": [],
                                  "pscore": []}

    def learn(step: Step) -> None:
        d = step.decision
        reward = slot_reward(world, step.outcome)
        assert world.required(step.state) is None  # stage 0 is plain PL in the default world
        seen["slate"].append(d.slate)
        first = step.state.step == 0
        seen["first"].append(first)
        seen["eligible"].append(world.eligible(step.state)[first])
        seen["context"].append(d.context[first])
        seen["reward"].append(reward.sum(axis=1)[first])
        seen["pscore"].append(d.pscore[first])
        policy.update(Feedback(d.context, d.slate, reward, d.pscore))

    rollout(world, policy, n_sessions, np.random.default_rng(seed), on_step=learn, chunk=40)
    return seen


@pytest.mark.slow
def test_bounds_hold_on_10000_decisions_and_ips_stays_unbiased() -> None:
    world = World.default(seed=0)
    category = world.catalog.category
    kwargs = {"base": "linucb", "category": category, "examination": world.position_bias,
              "temperature": 1.0, "window": 500, "step": 20.0}
    free = FairExposure(world.n_items, world.k, world.dim_context, seed=3, **kwargs)
    free_run = _run(world, free, 1000, seed=11)
    free_slates = np.concatenate(free_run["slate"])
    free_report = exposure_report(free_slates, world.n_items, category, examination=world.position_bias)
    # raise the group the unconstrained policy shows least to three times its share, and cap
    # the one it shows most at 60% of its share
    weakest = free_report.groups[int(np.argmin(free_report.group_share))]
    strongest = free_report.groups[int(np.argmax(free_report.group_share))]
    target_share = min(0.1, 3 * float(free_report.group_share.min()))
    cap = 0.6 * float(free_report.group_share.max())
    policy = FairExposure(world.n_items, world.k, world.dim_context, seed=3,
                          min_share={weakest: target_share}, max_share={strongest: cap}, **kwargs)
    run = _run(world, policy, 2500, seed=11)
    slates = np.concatenate(run["slate"])
    assert slates.shape[0] >= 10_000
    late = exposure_report(slates[slates.shape[0] // 2:], world.n_items, category,
                           examination=world.position_bias)
    share = float(late.group_share[late.groups.index(weakest)])
    top = float(late.group_share[late.groups.index(strongest)])
    assert share >= target_share - 0.02, (weakest, share, target_share)
    assert top <= cap + 0.02, (strongest, top, cap)
    assert share > 2 * float(free_report.group_share.min())  # the limit changed what was shown

    # IPS against the truth: the policy keeps adapting (boosts and base) while it logs 300 more
    # sessions; a copy frozen where they start is the target. Exact logged propensities of the
    # adapting policy make IPS of the frozen copy unbiased. At temperature 1 the logger stays
    # near the target (mean weight 0.92, ESS 169 of 300); at 0.5 its logits move twice as far
    # per update, the rare large weights are not drawn in 300 sessions (mean weight 0.58) and
    # the estimate, unbiased still, sits ten standard errors low.
    target = copy.deepcopy(policy)
    more = _run(world, policy, 300, seed=12)
    ctx = np.concatenate(more["context"])
    elig = np.concatenate(more["eligible"])
    logged = np.concatenate([s[f] for s, f in zip(more["slate"], more["first"], strict=True)])
    reward = np.concatenate(more["reward"])
    pscore = np.concatenate(more["pscore"])
    stages = logged[:, np.argsort(target._order)]  # slots back to Plackett-Luce stage order
    weight = _pl_probability(target._logits(ctx), elig, stages) / pscore
    # the first 40 sessions (one rollout chunk) were decided before any update: by the target itself
    assert weight[:40] == pytest.approx(np.ones(40), rel=1e-9)
    terms = reward * weight
    ips, se = float(terms.mean()), float(terms.std(ddof=1) / np.sqrt(terms.shape[0]))
    truth = first_decision_value(world, copy.deepcopy(target), n_states=5000, seed=5)
    assert abs(ips - truth.value) < 3.5 * np.hypot(se, truth.stderr), (ips, se, truth)


def test_bad_bounds_name_the_parameter() -> None:
    category = ["a", "b"] * 5
    with pytest.raises(PolicyError, match=r"min_share.*'z'"):
        FairExposure(10, 2, 0, base="popularity", category=category, min_share={"z": 0.2})
    with pytest.raises(PolicyError, match="cannot all hold"):
        FairExposure(10, 2, 0, base="popularity", category=category, min_share={"a": 0.7, "b": 0.6})
    with pytest.raises(PolicyError, match="score policy"):
        FairExposure(10, 2, 0, base="linear_ts", category=category)
    with pytest.raises(PolicyError, match="category"):
        FairExposure(10, 2, 0, base="popularity", category=None)


def test_boosts_move_exposure_toward_a_minimum_by_hand() -> None:
    # popularity over two groups; every slate shows only group "a": "b" is below its minimum
    policy = FairExposure(4, 1, 0, base="popularity", category=["a", "a", "b", "b"], min_share={"b": 0.5},
                          window=10, step=1.0, seed=0)
    policy.update(Feedback(np.zeros((5, 0)), np.zeros((5, 1), dtype=np.int64), np.ones((5, 1)), np.ones(5)))
    # each of 5 decisions: share of b = 0, relative deficit (0.5 - 0) / 0.5 = 1; boost = 5 * (1 / 10) * 1
    assert policy.boosts == {"a": 0.0, "b": pytest.approx(0.5)}
    one = FairExposure(4, 1, 0, base="popularity", category=["a", "a", "b", "b"], min_share={"b": 0.5},
                       max_share={"a": 0.6}, window=10, step=1.0, seed=0)
    batch = copy.deepcopy(one)
    slates = np.array([[0], [2], [2], [3], [1], [0], [0]])
    for row in slates:  # one event at a time and one batch give the same multipliers
        one.update(Feedback(np.zeros((1, 0)), row[None, :], np.ones((1, 1)), np.ones(1)))
    batch.update(Feedback(np.zeros((7, 0)), slates, np.ones((7, 1)), np.ones(7)))
    assert one.boosts == pytest.approx(batch.boosts) and any(v != 0 for v in one.boosts.values())
    assert policy.exposure_share == {"a": pytest.approx(1.0), "b": pytest.approx(0.0)}


def test_every_group_bound_and_named_overrides() -> None:
    category = ["a", "b", "c"] * 3
    policy = FairExposure(9, 2, 0, base="popularity", category=category, min_share={"*": 0.1, "c": 0.3},
                          max_share={"*": 0.5})
    assert policy._low.tolist() == [0.1, 0.1, 0.3] and policy._high.tolist() == [0.5, 0.5, 0.5]
    with pytest.raises(PolicyError, match=r"max_share.*at least 1"):
        FairExposure(9, 2, 0, base="popularity", category=category, max_share={"*": 0.3})
    with pytest.raises(PolicyError, match=r"min_share\['\*'\]"):
        FairExposure(9, 2, 0, base="popularity", category=category, min_share={"*": 1.5})
