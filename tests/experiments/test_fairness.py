"""The reports' exposure measures: per-session sums agree with the slates, expectations with samples."""

from __future__ import annotations

import numpy as np
import pytest

from bandits.exposure import expected_exposure, exposure_report, gini, report_from_items
from experiments.fairness import row_gini, unit_exposure
from simulator.errors import PolicyError


def test_session_sums_give_the_report_of_the_slates() -> None:
    # three sessions: [[0, 1], [2, 0]], [[3, 1]], [[0, 2]]; slot weights 1 and 0.5
    slates = np.array([[0, 1], [2, 0], [3, 1], [0, 2]])
    session = np.array([0, 0, 1, 2])
    weights = np.array([1.0, 0.5])
    per_session = np.zeros((3, 5))
    np.add.at(per_session, (np.repeat(session, 2), slates.ravel()), np.tile(weights, 4))
    merit = np.array([0.4, 0.4, 0.1, 0.1, 0.0]) * 4  # summed over the 4 decisions
    groups = ["a", "a", "b", "b", "c"]
    got = unit_exposure("p", per_session, np.array([2.0, 1.0, 1.0]), merit, groups, weights)
    want = exposure_report(slates, 5, groups, examination=weights, merit=merit / 4)
    np.testing.assert_allclose(got.report.item_exposure, want.item_exposure)
    np.testing.assert_allclose(got.report.group_share, want.group_share)
    assert got.report.merit_ratio is not None and want.merit_ratio is not None
    np.testing.assert_allclose(got.report.merit_ratio, want.merit_ratio)
    assert got.report.gini == pytest.approx(want.gini) and got.report.never_shown == pytest.approx(0.2)
    assert got.gini_low <= got.gini_high
    assert got.to_json()["gini_interval"] == [got.gini_low, got.gini_high]


def test_row_gini_is_gini_of_each_row() -> None:
    rows = np.random.default_rng(0).exponential(size=(6, 9))
    rows[2] = 0.0
    np.testing.assert_allclose(row_gini(rows), [gini(r) for r in rows])


def test_expected_exposure_matches_sampled_slates() -> None:
    rng = np.random.default_rng(1)
    n_items, k = 6, 2
    weights = np.array([1.0, 0.4])
    # one fixed distribution over two slates: [0, 1] with probability 0.7, [2, 3] with 0.3
    dist = np.zeros((1, n_items, k))
    dist[0, 0, 0], dist[0, 1, 1], dist[0, 2, 0], dist[0, 3, 1] = 0.7, 0.7, 0.3, 0.3
    expected = expected_exposure(np.repeat(dist, 4, axis=0), weights)
    np.testing.assert_allclose(expected, [0.7, 0.28, 0.3, 0.12, 0.0, 0.0])
    pick = rng.random(20_000) < 0.7
    slates = np.where(pick[:, None], [[0, 1]], [[2, 3]])
    sampled = exposure_report(slates, n_items, ["x"] * n_items, examination=weights).item_exposure
    np.testing.assert_allclose(sampled, expected, atol=0.01)
    report = report_from_items(expected, ["x", "x", "y", "y", "z", "z"], weights, 4)
    assert report.never_shown == pytest.approx(1 / 3) and report.groups == ("x", "y", "z")
    with pytest.raises(PolicyError, match="action_dist"):
        expected_exposure(np.zeros((2, 6, 3)), weights)
    with pytest.raises(PolicyError, match="exposure"):
        report_from_items(np.array([-1.0, 1.0]), ["a", "b"], weights, 1)
