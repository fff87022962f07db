from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from serving.stats import arm_summary, diff_interval, expected_counts, msprt_pvalue, srm_pvalue


def test_arm_summary_by_hand() -> None:
    r = np.array([0.0, 1.0, 1.0, 0.0, 1.0])
    s = arm_summary(r, np.array([True, True, True, False, True]), alpha=0.05)
    sd = np.sqrt(((r - 0.6) ** 2).sum() / 4)
    assert (s.n_decisions, s.n_rewards, s.mean) == (5, 4, 0.6)
    assert s.low == pytest.approx(0.6 - 1.959963984540054 * sd / np.sqrt(5))
    assert s.high == pytest.approx(0.6 + 1.959963984540054 * sd / np.sqrt(5))


def test_diff_interval_by_hand() -> None:
    t = arm_summary(np.array([1.0, 1.0, 0.0, 1.0]), np.ones(4, dtype=bool), 0.05)
    c = arm_summary(np.array([0.0, 1.0, 0.0, 0.0]), np.ones(4, dtype=bool), 0.05)
    diff, low, high = diff_interval(t, c, 0.05)
    se = np.sqrt(t.sd**2 / 4 + c.sd**2 / 4)
    assert diff == pytest.approx(0.5) and low == pytest.approx(0.5 - 1.959963984540054 * se)
    assert high == pytest.approx(0.5 + 1.959963984540054 * se)


def test_srm_matches_scipy_chisquare() -> None:
    observed = np.array([520, 480, 1000])
    expected = np.array([500.0, 500.0, 1000.0])
    assert srm_pvalue(observed, expected) == pytest.approx(sps.chisquare(observed, expected).pvalue)
    assert srm_pvalue(np.array([10, 1]), np.array([11.0, 0.0])) == 0.0
    assert srm_pvalue(np.array([10, 0]), np.array([10.0, 0.0])) == 1.0


def test_expected_counts_follow_each_split() -> None:
    versions = np.array([1, 1, 1, 1, 2, 2])
    exp = expected_counts(versions, {1: np.array([1.0, 0.0]), 2: np.array([0.5, 0.5])}, 2)
    assert exp.tolist() == [5.0, 1.0]


def test_msprt_by_hand_for_one_prefix() -> None:
    # 10 decisions per arm, arrival alternating; only the full prefix has 10 per arm.
    rng = np.random.default_rng(3)
    t_vals, c_vals = rng.random(10), rng.random(10)
    x = np.empty(20)
    x[0::2], x[1::2] = t_vals, c_vals
    is_t = np.zeros(20, dtype=bool)
    is_t[0::2] = True
    v = t_vals.var(ddof=1) / 10 + c_vals.var(ddof=1) / 10
    tau2 = 0.04
    delta = t_vals.mean() - c_vals.mean()
    lam = np.sqrt(v / (v + tau2)) * np.exp(delta**2 * tau2 / (2 * v * (v + tau2)))
    assert msprt_pvalue(x, is_t, tau=0.2) == pytest.approx(min(1.0, 1 / lam))


def test_msprt_is_always_valid_under_the_null() -> None:
    # Peeking after every decision: the false positive rate stays below alpha.
    rng = np.random.default_rng(0)
    runs, n, alpha = 300, 1500, 0.05
    rejections = 0
    for _ in range(runs):
        x = (rng.random(n) < 0.2).astype(np.float64)
        is_t = rng.random(n) < 0.5
        rejections += msprt_pvalue(x, is_t, tau=0.1) < alpha
    assert rejections / runs <= alpha + 2 * np.sqrt(alpha * (1 - alpha) / runs)


def test_msprt_finds_a_real_difference() -> None:
    rng = np.random.default_rng(1)
    is_t = rng.random(3000) < 0.5
    x = (rng.random(3000) < np.where(is_t, 0.3, 0.2)).astype(np.float64)
    assert msprt_pvalue(x, is_t, tau=0.1) < 0.01
    assert msprt_pvalue(x[:5], is_t[:5], tau=0.1) == 1.0
