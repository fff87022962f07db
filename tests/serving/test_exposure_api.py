"""The experiment report's exposure member: running sums agree with the raw slates; fair arms build."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flask import Flask

from bandits.exposure import exposure_report, position_weights
from serving.catalog import resolve_shape
from serving.config import ArmConfig
from serving.exposure import arm_exposure
from serving.models import build_policy
from serving.store import EventStore, ExperimentTotals, NewDecision, NewReward, SplitCounts, Totals
from simulator.errors import ConfigError
from tests.serving.conftest import make_config


def _store(app: Flask, arm: str, slate: list[int], click: list[float] | None) -> None:
    svc = app.extensions["slatewise"]
    split = svc.traffic.refresh("ab")
    store: EventStore = svc.store
    event = store.add_decision(NewDecision(
        ts=svc.clock(), user_id=f"u-{arm}-{slate}", experiment="ab", arm=arm, policy="x", policy_version=0,
        traffic_version=split.version, context=np.zeros(4), slate=np.array(slate), pscore=1.0,
        pscore_item=np.ones(3), anchor=None))
    if click is not None:
        store.add_reward(NewReward(event_id=event, ts=svc.clock(), reward=np.array(click), purchase=None,
                                   revenue=None, digest=str(click)))


def test_exposure_member_matches_the_slates_by_hand(app: Flask) -> None:
    shown = {"control": [[0, 1, 2], [0, 3, 2], [4, 0, 1]], "treatment": [[5, 6, 7], [5, 6, 7]]}
    clicks = {"control": [[1.0, 0, 0], None, [0, 1.0, 0]], "treatment": [[0, 0, 1.0], None]}
    client = app.test_client()
    for arm, slates in shown.items():
        for i, (slate, click) in enumerate(zip(slates, clicks[arm], strict=True)):
            _store(app, arm, slate, click)
            if i == 0:
                client.get("/v1/experiments/ab")  # the totals advance in two steps
    body = client.get("/v1/experiments/ab").get_json()["exposure"]
    for arm, slates in shown.items():
        want = exposure_report(np.array(slates), 20, ["unknown"] * 20)
        got = body["arms"][arm]
        assert got["n_decisions"] == len(slates)
        assert got["gini"] == pytest.approx(want.gini)
        assert got["never_shown_share"] == pytest.approx(want.never_shown)
        assert got["groups"]["unknown"]["exposure"] == pytest.approx(float(want.group_exposure[0]))
    assert "running sums" in body["window"]


def test_merit_is_reward_per_exposure_pooled_over_arms() -> None:
    w = position_weights(2)
    # a: item 0 at slot 0 twice (reward 1 in all), item 1 at slot 1 twice; b: item 1 first, item 0 second
    exp = ExperimentTotals(splits={1: {"a": SplitCounts(2, 2), "b": SplitCounts(1, 1)}},
                           shown={"a": {(0, 0): 2, (1, 1): 2}, "b": {(1, 0): 1, (0, 1): 1}},
                           item_reward={"a": {0: 1.0}, "b": {1: 1.0}})
    doc = arm_exposure(exp, ["a", "b"], np.array(["x", "y"]), 2)
    merit = np.array([1.0 / (2 * w[0] + w[1]), 1.0 / (2 * w[1] + w[0])])
    share_x = 2 * w[0] / (2 * w[0] + 2 * w[1])
    group_x = doc["arms"]["a"]["groups"]["x"]
    assert group_x["share"] == pytest.approx(share_x)
    assert group_x["exposure_to_merit"] == pytest.approx(share_x / (merit[0] / merit.sum()))
    round_trip = Totals.from_json(Totals(experiments={"e": exp}).to_json()).experiment("e")
    assert round_trip.shown == exp.shown and round_trip.item_reward == exp.item_reward


def _fair_arm(**params: Any) -> ArmConfig:
    return ArmConfig("fair", "fair_exposure", 0.5, {"base": "linucb", **params})


def test_a_fair_arm_gets_the_catalog_groups_and_bad_bounds_name_the_key(tmp_path: Path) -> None:
    shape = resolve_shape(make_config(tmp_path))
    policy = build_policy(_fair_arm(min_share={"unknown": 0.5}), shape, "ab")
    assert policy.groups == ("unknown",)  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match=r"arms\['fair'\].*min_share.*'seller-9'"):
        build_policy(_fair_arm(min_share={"seller-9": 0.2}), shape, "ab")
    with pytest.raises(ConfigError, match=r"arms\['fair'\].*max_share"):
        build_policy(_fair_arm(max_share={"*": 0.5}), shape, "ab")
