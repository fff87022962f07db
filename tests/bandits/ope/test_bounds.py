"""No impossible values: clipping to the reward's range and one-sided bounds when no reward was seen."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bandits.ope import estimate_all
from bandits.ope.bounds import bernstein_zero_upper, clopper_pearson_zero_upper, reward_range
from simulator.logs import Catalog, LogMetadata, SlateLog
from tests.bandits.ope.test_estimators import Constant, _bandit_case


def _two_item_log(reward: np.ndarray, *, reward_type: str = "click",
                  price: np.ndarray | None = None) -> SlateLog:
    """Uniform logging over 2 items at one slot (pscore 0.5), items alternating 0, 1, 0, 1, ..."""
    n = reward.size
    catalog = Catalog.anonymous(2) if price is None else Catalog(
        item_id=np.arange(2), category=np.full(2, "c"), price=price, features=np.zeros((2, 0)))
    return SlateLog.from_arrays(context=np.zeros((n, 1)), slate=(np.arange(n) % 2)[:, None],
                                reward=reward[:, None], pscore=np.full(n, 0.5),
                                catalog=catalog, metadata=LogMetadata(reward_type=reward_type))


def test_clopper_pearson_and_bernstein_by_hand() -> None:
    # (1 - p)^100 = 0.05  ->  p = 1 - 0.05^(1/100) = 0.029513...
    assert clopper_pearson_zero_upper(100, 0.95) == pytest.approx(0.0295130, abs=1e-6)
    assert clopper_pearson_zero_upper(0, 0.95) == 1.0
    assert bernstein_zero_upper(100, 40.0, 0.95) == pytest.approx(7 * 40 * math.log(40) / (3 * 99))


def test_reward_range_from_the_reward_type() -> None:
    click = reward_range(_two_item_log(np.zeros(4)))
    assert click is not None and (click.low, click.high, click.binary) == (0.0, 1.0, True)
    revenue = reward_range(_two_item_log(np.array([0.0, 20.0, 10.0, 0.0]), reward_type="revenue",
                                         price=np.array([10.0, 20.0])))
    assert revenue is not None and (revenue.low, revenue.high, revenue.binary) == (0.0, 20.0, False)
    # No known range: a custom reward, revenue without prices, a "click" of 3.
    assert reward_range(_two_item_log(np.zeros(4), reward_type="custom")) is None
    assert reward_range(_two_item_log(np.zeros(4), reward_type="revenue")) is None
    assert reward_range(_two_item_log(np.array([0.0, 3.0, 0.0, 1.0]))) is None


@pytest.mark.parametrize(("model", "edge"), [(Constant(-1.0), 0.0), (Constant(5.0), 1.0)],
                         ids=["negative", "above-1"])
def test_dm_outside_the_click_range_is_clipped_with_a_warning(model: Constant, edge: float) -> None:
    log, dist = _bandit_case()
    dm, ips = estimate_all(log, dist, estimators=["dm", "ips"], reward_model=model, n_folds=0, n_bootstrap=20)
    assert dm.value == edge and dm.low == edge and dm.high == edge
    assert any("outside the reward's range [0, 1]" in w for w in dm.warnings)
    # IPS on this log is 0.55 (hand-computed in test_estimators): inside the range, untouched.
    assert ips.value == pytest.approx(0.55)
    assert not any("outside the reward's range" in w for w in ips.warnings)
    assert 0.0 <= ips.low <= ips.high <= 1.0


def test_no_click_gives_a_one_sided_clopper_pearson_interval() -> None:
    log = _two_item_log(np.zeros(100))
    uniform = np.full((100, 2, 1), 0.5)  # weights all 1: n_eff = 100
    (ips,) = estimate_all(log, uniform, estimators=["ips"], n_bootstrap=20)
    assert ips.value == 0.0 and ips.low == 0.0
    assert ips.high == pytest.approx(1 - 0.05 ** (1 / 100))
    assert ips.interval_method == "clopper-pearson (one-sided)"
    assert any("at most 0.0295" in w for w in ips.warnings)


def test_no_click_with_uneven_weights_uses_the_effective_sample_size() -> None:
    log = _two_item_log(np.zeros(100))
    only_first = np.zeros((100, 2, 1))
    only_first[:, 0, 0] = 1.0  # weight 2 on the 50 rows that logged item 0, 0 elsewhere: n_eff = 50
    (ips,) = estimate_all(log, only_first, estimators=["ips"], n_bootstrap=0, interval="normal")
    assert ips.high == pytest.approx(1 - 0.05 ** (1 / 50))


def test_no_revenue_gives_a_one_sided_bernstein_bound() -> None:
    log = _two_item_log(np.zeros(100), reward_type="revenue", price=np.array([10.0, 20.0]))
    only_first = np.zeros((100, 2, 1))
    only_first[:, 0, 0] = 1.0
    (ips,) = estimate_all(log, only_first, estimators=["ips"], n_bootstrap=20)
    # terms w r in [0, max w * max price] = [0, 2 * 20]
    assert ips.high == pytest.approx(7 * 40 * math.log(2 / 0.05) / (3 * 99))
    assert ips.low == 0.0 and ips.interval_method == "empirical-bernstein (one-sided)"


def test_a_reward_outside_the_policy_keeps_the_usual_interval() -> None:
    # Rewards only where the policy puts no weight: still "no positive reward for the target".
    reward = np.where(np.arange(100) % 2 == 1, 1.0, 0.0)
    log = _two_item_log(reward)
    only_first = np.zeros((100, 2, 1))
    only_first[:, 0, 0] = 1.0
    (ips,) = estimate_all(log, only_first, estimators=["ips"], n_bootstrap=20)
    assert ips.interval_method.startswith("clopper-pearson")
    # With the other item the policy sees clicks: an ordinary two-sided interval around 1.
    only_second = only_first[:, ::-1, :].copy()
    (ips2,) = estimate_all(log, only_second, estimators=["ips"], n_bootstrap=20)
    assert ips2.interval_method == "bootstrap" and ips2.value == pytest.approx(1.0)
    assert ips2.high <= 1.0
