"""Experiment statistics: per-arm means with intervals, sample-ratio mismatch, and the mSPRT.

The outcome of a decision is its total reward (sum over slots; 0 when no reward
arrived), so an arm's mean is reward per decision.

* Intervals are normal (Wald) intervals ``mean ± z * sd / sqrt(n)``.
* Sample-ratio mismatch: Pearson's chi-squared test of the decisions per arm
  against the counts the traffic splits promised, ``sum_v n_v * w_v(arm)`` over
  the traffic versions ``v`` that served them.
* The mixture sequential probability ratio test (mSPRT; Johari, Pekelis and
  Walsh, "Always valid inference", 2017) of a treatment against control with a
  normal mixing prior ``N(0, tau^2)`` on the difference of means:
  ``Lambda_n = sqrt(V / (V + tau^2)) * exp(delta^2 * tau^2 / (2 V (V + tau^2)))``
  with ``V = s_T^2 / n_T + s_C^2 / n_C``. The always-valid p-value is
  ``min(1, 1 / max_{m <= n} Lambda_m)``, so looking after every decision keeps the
  false-positive rate at most ``alpha``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import stats as sps

FloatArray = npt.NDArray[np.float64]

MIN_SEQUENTIAL_N = 10


@dataclass(frozen=True, slots=True)
class ArmSummary:
    """Decisions and reward of one arm.

    Attributes:
        n_decisions: decisions served.
        n_rewards: decisions whose reward arrived.
        mean: reward per decision (NaN with no decisions).
        low: lower end of the ``1 - alpha`` interval of the mean.
        high: upper end of the interval.
        sd: sample standard deviation of the per-decision reward.
    """

    n_decisions: int
    n_rewards: int
    mean: float
    low: float
    high: float
    sd: float


def arm_summary(reward: FloatArray, rewarded: npt.NDArray[np.bool_], alpha: float) -> ArmSummary:
    """Mean reward per decision with a normal interval.

    Args:
        reward: shape (n,), total reward of each decision.
        rewarded: shape (n,), whether its reward arrived.
        alpha: one minus the interval's coverage.
    """
    n = int(reward.shape[0])
    if n == 0:
        nan = float("nan")
        return ArmSummary(0, 0, nan, nan, nan, nan)
    mean = float(reward.mean())
    sd = float(reward.std(ddof=1)) if n > 1 else float("inf")
    half = float(sps.norm.ppf(1 - alpha / 2)) * sd / np.sqrt(n)
    return ArmSummary(n, int(rewarded.sum()), mean, mean - half, mean + half, sd)


def diff_interval(t: ArmSummary, c: ArmSummary, alpha: float) -> tuple[float, float, float]:
    """Difference of means (treatment - control) with its normal ``1 - alpha`` interval."""
    if t.n_decisions < 2 or c.n_decisions < 2:
        return float("nan"), float("-inf"), float("inf")
    diff = t.mean - c.mean
    se = float(np.sqrt(t.sd**2 / t.n_decisions + c.sd**2 / c.n_decisions))
    half = float(sps.norm.ppf(1 - alpha / 2)) * se
    return diff, diff - half, diff + half


def srm_pvalue(observed: npt.NDArray[np.int64], expected: FloatArray) -> float:
    """Chi-squared p-value of observed counts against expected counts (sample-ratio mismatch).

    Arms expected to get nothing must have got nothing; if one did, the p-value is 0.

    Args:
        observed: shape (n_arms,), decisions per arm.
        expected: shape (n_arms,), the counts the traffic splits promised (same total).
    """
    obs = np.asarray(observed, dtype=np.float64)
    exp = np.asarray(expected, dtype=np.float64)
    live = exp > 0
    if (obs[~live] > 0).any():
        return 0.0
    if live.sum() < 2 or obs.sum() == 0:
        return 1.0
    chi2 = float(np.sum((obs[live] - exp[live]) ** 2 / exp[live]))
    return float(sps.chi2.sf(chi2, df=int(live.sum()) - 1))


def msprt_pvalue(treatment: FloatArray, is_treatment: npt.NDArray[np.bool_], tau: float) -> float:
    """Always-valid mSPRT p-value of "treatment mean == control mean", in arrival order.

    Args:
        treatment: shape (n,), per-decision rewards of both arms in arrival order.
        is_treatment: shape (n,), True for the treatment's decisions, False for control's.
        tau: standard deviation of the normal mixing prior on the difference.

    Returns:
        ``min(1, 1 / max Lambda)`` over every prefix with at least
        :data:`MIN_SEQUENTIAL_N` decisions per arm (1.0 before that).
    """
    x = np.asarray(treatment, dtype=np.float64)
    t = np.asarray(is_treatment, dtype=bool)
    n_t = np.cumsum(t)
    n_c = np.cumsum(~t)
    s1_t, s2_t = np.cumsum(np.where(t, x, 0.0)), np.cumsum(np.where(t, x * x, 0.0))
    s1_c, s2_c = np.cumsum(np.where(t, 0.0, x)), np.cumsum(np.where(t, 0.0, x * x))
    ok = (n_t >= MIN_SEQUENTIAL_N) & (n_c >= MIN_SEQUENTIAL_N)
    if not ok.any():
        return 1.0
    n_t, n_c = n_t[ok].astype(np.float64), n_c[ok].astype(np.float64)
    m_t, m_c = s1_t[ok] / n_t, s1_c[ok] / n_c
    var_t = np.maximum(s2_t[ok] / n_t - m_t**2, 0.0) * n_t / (n_t - 1)
    var_c = np.maximum(s2_c[ok] / n_c - m_c**2, 0.0) * n_c / (n_c - 1)
    v = var_t / n_t + var_c / n_c
    v = np.maximum(v, 1e-12)
    tau2 = tau * tau
    delta = m_t - m_c
    log_lambda = 0.5 * np.log(v / (v + tau2)) + delta**2 * tau2 / (2.0 * v * (v + tau2))
    return float(min(1.0, np.exp(-np.max(log_lambda))))


def expected_counts(traffic_version: npt.NDArray[np.int64], weights_by_version: dict[int, FloatArray],
                    n_arms: int) -> FloatArray:
    """Decisions per arm the traffic splits promised, shape (n_arms,).

    Args:
        traffic_version: shape (n,), the split in force at each decision.
        weights_by_version: version -> shape (n_arms,) shares.
        n_arms: number of arms.
    """
    expected = np.zeros(n_arms)
    versions, counts = np.unique(traffic_version, return_counts=True)
    for version, count in zip(versions.tolist(), counts.tolist(), strict=True):
        expected += count * weights_by_version.get(int(version), np.zeros(n_arms))
    return expected
