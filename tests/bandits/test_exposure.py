from __future__ import annotations

import numpy as np
import pytest

from bandits.exposure import exposure_report, gini, item_exposure, position_weights
from simulator.errors import PolicyError


def test_dcg_weights_and_item_exposure_by_hand() -> None:
    w = position_weights(2)
    assert w.tolist() == [1.0, pytest.approx(1 / np.log2(3))]
    slate = np.array([[0, 1], [0, 2], [3, 0]])
    e = item_exposure(slate, 5, np.array([1.0, 0.5]))
    # item 0: 1 + 1 + 0.5 over 3 decisions; item 1: 0.5; item 2: 0.5; item 3: 1; item 4: never
    assert e.tolist() == pytest.approx([2.5 / 3, 0.5 / 3, 0.5 / 3, 1 / 3, 0.0])


def test_gini_known_values() -> None:
    assert gini(np.array([1.0, 1.0, 1.0, 1.0])) == pytest.approx(0.0)
    assert gini(np.array([0.0, 0.0, 0.0, 4.0])) == pytest.approx(0.75)  # (m - 1) / m
    x = np.array([1.0, 2.0, 3.0])
    pairs = np.abs(x[:, None] - x[None, :]).sum()  # the definition: mean absolute difference / (2 mean)
    assert gini(x) == pytest.approx(pairs / (2 * len(x) ** 2 * x.mean()))


def test_group_shares_merit_ratio_and_never_shown_by_hand() -> None:
    slate = np.array([[0, 1], [0, 2], [3, 0]])
    report = exposure_report(slate, 5, ["a", "a", "b", "b", "c"], examination=[1.0, 0.5],
                             merit=np.array([0.1, 0.1, 0.2, 0.2, 0.4]))
    assert report.groups == ("a", "b", "c")
    total = (2.5 + 0.5 + 0.5 + 1.0) / 3
    assert report.group_exposure.tolist() == pytest.approx([1.0, 0.5, 0.0])
    assert report.group_share.tolist() == pytest.approx([1.0 / total, 0.5 / total, 0.0])
    assert report.merit_share is not None and report.merit_share.tolist() == pytest.approx([0.2, 0.4, 0.4])
    assert report.merit_ratio is not None
    assert report.merit_ratio.tolist() == pytest.approx([(1.0 / total) / 0.2, (0.5 / total) / 0.4, 0.0])
    assert report.never_shown == pytest.approx(0.2) and report.n_decisions == 3
    doc = report.to_json()
    assert doc["groups"]["c"]["exposure_to_merit"] == 0.0  # type: ignore[index]


def test_bad_shapes_name_the_argument() -> None:
    with pytest.raises(PolicyError, match="group"):
        exposure_report(np.array([[0, 1]]), 3, ["a", "b"])
    with pytest.raises(PolicyError, match="merit"):
        exposure_report(np.array([[0, 1]]), 3, ["a", "b", "c"], merit=np.array([1.0, -1.0, 0.0]))
    with pytest.raises(PolicyError, match="examination"):
        position_weights(2, [1.0])
