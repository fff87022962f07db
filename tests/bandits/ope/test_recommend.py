"""Which estimate to trust: SLOPE on hand-made estimates, the diagnostics by hand, the world's truth."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bandits.ope import Estimate, estimate_all, prepare, recommend
from bandits.ope.recommend import Thresholds, decide, diagnose, family, slope
from tests.bandits.ope.test_estimators import _bandit_case


def _est(name: str, value: float, stderr: float, *, method: str = "normal") -> Estimate:
    return Estimate(name, value, value - 1.96 * stderr, value + 1.96 * stderr, 0.95, stderr, 10_000,
                    5_000.0, 3.0, 1.0, (), method, math.nan)


def test_family_order_is_least_biased_first_then_by_decreasing_stderr() -> None:
    ests = [_est("dm", 20, 0.5), _est("dr", 11, 2), _est("snips", 10.5, 2.5), _est("ips", 10, 3),
            _est("replay", 10, 1)]
    assert [e.estimator for e in family(ests)] == ["ips", "dr", "snips", "dm"]  # replay is not in it


def test_slope_stops_where_an_interval_misses_the_less_biased_ones() -> None:
    # width 1: ips [7, 13], dr [9, 13] -> [9, 13]; snips [8, 13] -> [9, 13]; dm [19.5, 20.5] misses: snips.
    ests = [_est("dm", 20, 0.5), _est("dr", 11, 2), _est("snips", 10.5, 2.5), _est("ips", 10, 3)]
    chosen = slope(ests, width=1.0)
    assert chosen is not None and chosen.estimator == "snips"
    # A direct method that agrees with them ([10.5, 11.5] meets [9, 13]) is chosen: the lowest variance.
    ests[0] = _est("dm", 11, 0.5)
    chosen = slope(ests, width=1.0)
    assert chosen is not None and chosen.estimator == "dm"


def test_diagnostics_by_hand() -> None:
    log, dist = _bandit_case()  # weights 1.2, 2.4, 0.25, 1.0
    d = diagnose(prepare(log, dist))
    assert d.ess == pytest.approx(4.85**2 / (1.2**2 + 2.4**2 + 0.25**2 + 1.0**2))
    assert d.tail_share == pytest.approx(2.4 / 4.85)  # the largest 1% of 4 weights is the largest one
    assert d.max_weight == pytest.approx(2.4) and d.unsupported_mass == 0.0


def test_a_handful_of_rows_cannot_support_an_estimate() -> None:
    log, dist = _bandit_case()
    ests = estimate_all(log, dist, estimators=["ips", "snips"], n_bootstrap=20)
    rec = recommend(log, dist, ests, policy="p")
    assert not rec.supported and rec.estimator is None and rec.selected in ("ips", "snips")
    assert rec.verdict == "this log cannot support an estimate of this policy"
    assert any("effective sample size 3 of 4" in r for r in rec.reasons)
    doc = rec.to_dict()
    assert doc["verdict"] == rec.verdict and doc["policy"] == "p" and isinstance(doc["reasons"], list)


def test_mass_off_the_log_and_one_sided_bounds_block_the_estimate() -> None:
    diag = diagnose(prepare(*_bandit_case()))
    wide_open = Thresholds(min_ess=0, max_tail_share=1.0, max_relative_halfwidth=math.inf)
    ok = decide(diag, [_est("ips", 0.5, 0.1)], thresholds=wide_open)
    assert ok.supported and ok.estimator == "ips"
    bound = decide(diag, [_est("ips", 0.0, 0.0, method="clopper-pearson (one-sided)")], thresholds=wide_open)
    assert not bound.supported and any("only an upper bound" in r for r in bound.reasons)
    off = type(diag)(diag.n_weights, diag.ess, diag.ess_fraction, 0.2, diag.max_weight, diag.tail_share,
                     diag.spread)
    blocked = decide(off, [_est("ips", 0.5, 0.1)], thresholds=wide_open)
    assert not blocked.supported and any("20.0% of its probability" in r for r in blocked.reasons)


def test_unsupported_mass_counts_items_never_logged_at_the_slot() -> None:
    log, dist = _bandit_case()
    # 3 items, the log only ever shows items 0 and 1; the policy puts 0.3 on item 2 on every row.
    three = np.concatenate([dist * 0.7, np.full((4, 1, 1), 0.3)], axis=1)
    wide = type(log).from_arrays(context=log.context, slate=log.slate, reward=log.reward, pscore=log.pscore,
                                 pscore_item=log.pscore_item,
                                 catalog=type(log.catalog).anonymous(3))
    assert diagnose(prepare(wide, three)).unsupported_mass == pytest.approx(0.3)


def test_on_the_world_the_recommended_estimate_is_near_the_truth() -> None:
    from simulator.rollout import rollout
    from simulator.world import LogRecorder, World, make_logging_policy

    world = World.default(0)
    logger = make_logging_policy("epsilon_greedy", epsilon=0.2)
    target = make_logging_policy("greedy")
    dists, truths = [], []

    class Rec(LogRecorder):
        def __call__(self, step):  # type: ignore[no-untyped-def]
            dist = target.action_dist(world, step.state)
            dists.append(dist)
            truths.append(world.expected_reward_dist(step.state, dist))
            super().__call__(step)

    rec = Rec(world)
    rollout(world, logger, 300, np.random.default_rng(3), on_step=rec)
    log = rec.to_log(logger.describe(), by_session=False)
    dist, truth = np.concatenate(dists), float(np.concatenate(truths).mean())
    ests = estimate_all(log, dist, estimators=["ips", "snips", "dr", "dm"], n_bootstrap=0, interval="normal")
    r = recommend(log, dist, ests, policy="greedy")
    # The greedy slate is what the logger shows 80% of the time: weights near 1.25, a large ESS.
    assert r.supported, r.reasons
    assert r.diagnostics.ess > 0.5 * r.diagnostics.n_weights
    assert abs(r.value - truth) < 0.2 * truth
