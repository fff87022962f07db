"""Experiment statistics: per-arm means with intervals, sample-ratio mismatch, and the mSPRT.

The outcome of a decision is its total reward (sum over slots), counted once it
is final: its reward arrived, or its reward window closed without one (reward 0).
A decision still inside its window is pending: it is a decision served, but not
an outcome, so it is counted as neither a reward nor a zero. An arm's mean is
reward per final decision.

* Intervals are normal (Wald) intervals ``mean ± z * sd / sqrt(n)``.
* Sample-ratio mismatch: Pearson's chi-squared test of the *users* per arm (the
  assignment unit: each user counted once, in the arm of their first decision)
  against the counts the traffic splits promised, ``sum_v u_v * w_v(arm)`` over
  the traffic versions ``v`` under which ``u_v`` users were first seen.
* The mixture sequential probability ratio test (mSPRT; Johari, Pekelis and
  Walsh, "Always valid inference", 2017) of a treatment against control with a
  normal mixing prior ``N(0, tau^2)`` on the difference of means:
  ``Lambda_n = sqrt(V / (V + tau^2)) * exp(delta^2 * tau^2 / (2 V (V + tau^2)))``
  with ``V = s_T^2 / n_T + s_C^2 / n_C``. The always-valid p-value is
  ``min(1, 1 / max_{m <= n} Lambda_m)``, so looking after every decision keeps the
  false-positive rate at most ``alpha``. The running maximum is kept in the
  running totals (:func:`fold_totals`), so it costs the new outcomes only.

Everything is computed from mergeable sums (:class:`serving.store.ArmTotals`), so
a report costs the same at 10^4 or 10^7 decisions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import stats as sps

from serving.store.totals import ArmTotals, ExperimentTotals, OutcomeBatch, SplitCounts, Totals

FloatArray = npt.NDArray[np.float64]

MIN_SEQUENTIAL_N = 10


@dataclass(frozen=True, slots=True)
class ArmSummary:
    """Decisions and reward of one arm.

    Attributes:
        n_decisions: decisions served (final or pending).
        n_final: decisions whose outcome is final (the mean's sample).
        n_rewards: decisions whose reward arrived.
        mean: reward per final decision (NaN with none).
        low: lower end of the ``1 - alpha`` interval of the mean.
        high: upper end of the interval.
        sd: sample standard deviation of the per-decision reward.
    """

    n_decisions: int
    n_final: int
    n_rewards: int
    mean: float
    low: float
    high: float
    sd: float


def summarize(totals: ArmTotals, n_decisions: int, alpha: float) -> ArmSummary:
    """Mean reward per final decision with a normal ``1 - alpha`` interval, from running sums.

    Args:
        totals: sums of the arm's final outcomes.
        n_decisions: decisions the arm served (final or pending).
        alpha: one minus the interval's coverage.
    """
    n = totals.n_final
    if n == 0:
        nan = float("nan")
        return ArmSummary(n_decisions, 0, 0, nan, nan, nan, nan)
    mean = totals.reward_sum / n
    sd = float(np.sqrt(max(totals.reward_sq - n * mean * mean, 0.0) / (n - 1))) if n > 1 else float("inf")
    half = float(sps.norm.ppf(1 - alpha / 2)) * sd / np.sqrt(n)
    return ArmSummary(n_decisions, n, totals.n_rewarded, mean, mean - half, mean + half, sd)


def arm_totals(reward: FloatArray, rewarded: npt.NDArray[np.bool_]) -> ArmTotals:
    """The running sums of final outcomes ``reward`` (n,), ``rewarded`` (n,)."""
    r = np.asarray(reward, dtype=np.float64)
    return ArmTotals(int(r.shape[0]), int(np.sum(rewarded)), float(r.sum()), float((r * r).sum()))


def arm_summary(reward: FloatArray, rewarded: npt.NDArray[np.bool_], alpha: float) -> ArmSummary:
    """Mean reward per decision with a normal interval, every decision final.

    Args:
        reward: shape (n,), total reward of each decision.
        rewarded: shape (n,), whether its reward arrived.
        alpha: one minus the interval's coverage.
    """
    return summarize(arm_totals(reward, rewarded), int(reward.shape[0]), alpha)


def diff_interval(t: ArmSummary, c: ArmSummary, alpha: float) -> tuple[float, float, float]:
    """Difference of means (treatment - control) with its normal ``1 - alpha`` interval."""
    if t.n_final < 2 or c.n_final < 2:
        return float("nan"), float("-inf"), float("inf")
    diff = t.mean - c.mean
    se = float(np.sqrt(t.sd**2 / t.n_final + c.sd**2 / c.n_final))
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


def log_lambda(n_t: FloatArray, s1_t: FloatArray, s2_t: FloatArray, n_c: FloatArray, s1_c: FloatArray,
               s2_c: FloatArray, tau: float) -> FloatArray:
    """Log mSPRT likelihood ratio of prefixes given their counts, sums and sums of squares, shape (m,).

    Prefixes with fewer than :data:`MIN_SEQUENTIAL_N` outcomes per arm get ``-inf``.
    """
    ok = (n_t >= MIN_SEQUENTIAL_N) & (n_c >= MIN_SEQUENTIAL_N)
    out = np.full(n_t.shape, -np.inf)
    if not ok.any():
        return out
    nt, nc = n_t[ok].astype(np.float64), n_c[ok].astype(np.float64)
    m_t, m_c = s1_t[ok] / nt, s1_c[ok] / nc
    var_t = np.maximum(s2_t[ok] / nt - m_t**2, 0.0) * nt / (nt - 1)
    var_c = np.maximum(s2_c[ok] / nc - m_c**2, 0.0) * nc / (nc - 1)
    v = np.maximum(var_t / nt + var_c / nc, 1e-12)
    tau2 = tau * tau
    delta = m_t - m_c
    out[ok] = 0.5 * np.log(v / (v + tau2)) + delta**2 * tau2 / (2.0 * v * (v + tau2))
    return out


def _prefix_max(x: FloatArray, t: npt.NDArray[np.bool_], tau: float, start_t: ArmTotals,
                start_c: ArmTotals) -> float:
    """Max log Lambda over the prefixes of ``x`` (treatment where ``t``), after ``start_*`` outcomes."""
    n_t = (start_t.n_final + np.cumsum(t)).astype(np.float64)
    n_c = (start_c.n_final + np.cumsum(~t)).astype(np.float64)
    s1_t = start_t.reward_sum + np.cumsum(np.where(t, x, 0.0))
    s2_t = start_t.reward_sq + np.cumsum(np.where(t, x * x, 0.0))
    s1_c = start_c.reward_sum + np.cumsum(np.where(t, 0.0, x))
    s2_c = start_c.reward_sq + np.cumsum(np.where(t, 0.0, x * x))
    values = log_lambda(n_t, s1_t, s2_t, n_c, s1_c, s2_c, tau)
    return float(values.max()) if values.size else float("-inf")


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
    best = _prefix_max(x, np.asarray(is_treatment, dtype=bool), tau, ArmTotals(), ArmTotals())
    return pvalue_of(best)


def pvalue_of(max_log_lambda: float) -> float:
    """The always-valid p-value ``min(1, 1 / max Lambda)`` of a running maximum of log Lambda."""
    return float(min(1.0, np.exp(-max_log_lambda)))


@dataclass(frozen=True, slots=True)
class FoldRule:
    """How an experiment's outcomes are folded: its control arm and the mSPRT prior.

    Attributes:
        control: name of the control arm.
        tau: standard deviation of the mSPRT mixing prior.
    """

    control: str
    tau: float


def fold_totals(totals: Totals, batch: OutcomeBatch, rules: Mapping[str, FoldRule]) -> Totals:
    """Add a batch of new decisions and final outcomes to the running totals.

    Counts and sums are added; each treatment's running maximum of log Lambda is
    extended over the prefixes the batch adds (outcomes in the order they became
    final), starting from the sums before the batch, so the result is what one pass
    over the whole history in that order would give.

    Args:
        totals: the totals before the batch.
        batch: what happened since their cursors.
        rules: experiment name -> its control and prior (experiments not listed get sums only).
    """
    names = set(totals.experiments) | {c[0] for c in batch.counts} | set(batch.experiment.tolist()) | \
        {c[0] for c in batch.shown}
    out = {}
    for name in sorted(names):
        old = totals.experiment(name)
        splits = {v: dict(arms) for v, arms in old.splits.items()}
        for exp, version, arm, decisions, users in batch.counts:
            if exp == name:
                row = splits.setdefault(version, {})
                row[arm] = row.get(arm, SplitCounts()).merge(SplitCounts(decisions, users))
        mine = batch.experiment == name
        arms_of = batch.arm[mine]
        reward, rewarded = batch.reward[mine], batch.rewarded[mine]
        arms = dict(old.arms)
        for arm in sorted(set(arms_of.tolist())):
            sel = arms_of == arm
            arms[arm] = old.arm(arm).merge(arm_totals(reward[sel], rewarded[sel]))
        lam = dict(old.max_log_lambda)
        rule = rules.get(name)
        if rule is not None:
            for arm in sorted(set(arms_of.tolist()) - {rule.control}):
                pair = (arms_of == arm) | (arms_of == rule.control)
                if not pair.any():
                    continue
                best = _prefix_max(reward[pair], arms_of[pair] == arm, rule.tau, old.arm(arm),
                                   old.arm(rule.control))
                lam[arm] = max(lam.get(arm, float("-inf")), best)
            lam = {a: v for a, v in lam.items() if np.isfinite(v)}
        shown = {a: dict(cells) for a, cells in old.shown.items()}
        for exp, arm, item, slot, count in batch.shown:
            if exp == name:
                cell = shown.setdefault(arm, {})
                cell[(item, slot)] = cell.get((item, slot), 0) + count
        item_reward = {a: dict(items) for a, items in old.item_reward.items()}
        for exp, arm, item, value in batch.item_reward:
            if exp == name:
                row_r = item_reward.setdefault(arm, {})
                row_r[item] = row_r.get(item, 0.0) + value
        out[name] = ExperimentTotals(arms=arms, splits=splits, max_log_lambda=lam, shown=shown,
                                     item_reward=item_reward)
    return Totals(totals.decision_cursor, totals.reward_cursor, totals.expired_cursor, out)


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


def users_per_arm(totals: ExperimentTotals, weights_by_version: Mapping[int, Mapping[str, float]],
                  arms: list[str]) -> tuple[npt.NDArray[np.int64], FloatArray]:
    """Users per arm (each in the arm of their first decision) and what the splits promised.

    Args:
        totals: the experiment's running totals.
        weights_by_version: traffic version -> arm -> share.
        arms: the arms, in the order of the result.

    Returns:
        observed, shape (n_arms,); expected, shape (n_arms,): ``sum_v u_v * w_v(arm)``.
    """
    observed = np.zeros(len(arms), dtype=np.int64)
    expected = np.zeros(len(arms))
    for version, by_arm in totals.splits.items():
        users = np.array([by_arm.get(a, SplitCounts()).users for a in arms], dtype=np.int64)
        observed += users
        shares = weights_by_version.get(version, {})
        expected += users.sum() * np.array([shares.get(a, 0.0) for a in arms])
    return observed, expected
