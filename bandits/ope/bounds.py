"""No impossible values: estimates and intervals kept inside the reward's range, honest bounds at zero.

An estimate is the expected reward summed over a row's slots, so its range is
``k`` times the range of one slot's reward: ``[0, k]`` for clicks and purchases
(0/1 per slot), ``[0, k * max price]`` for revenue (a slot's revenue is the price
of the item bought there, or 0). :func:`reward_range` reads it from the log;
a ``custom`` reward, or revenue with no catalog prices, has no known range and
nothing is clipped.

:func:`apply_bounds` (called by :func:`~bandits.ope.estimate_all`) then

* clips an estimate, its interval and its lower bound into the range, with a
  warning naming what was out of range (negative revenue, a click rate above 1);
* replaces a zero-width interval at the bottom of the range, which a log with no
  positive reward where the evaluated policy puts weight produces, by a one-sided
  interval ``[low, upper]`` with an exact upper bound: Clopper-Pearson at zero
  successes for 0/1 rewards, ``1 - (1 - level) ** (1 / n_eff)`` per slot with
  ``n_eff`` the slot's effective sample size (Kish) of the importance weights;
  otherwise the empirical-Bernstein bound of Maurer & Pontil (2009) for terms in a
  known range, which at zero sample variance is ``7 b ln(2 / delta) / (3 (n - 1))``
  with ``b`` the largest row weight times the slot reward's upper end.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from bandits.ope._data import FloatArray, OPEData
from simulator.logs import SlateLog

if TYPE_CHECKING:
    from bandits.ope.api import Estimate

logger = logging.getLogger(__name__)

#: Reward types whose per-slot reward is 0 or 1.
BINARY_REWARDS = ("click", "purchase")


@dataclass(frozen=True, slots=True)
class RewardRange:
    """The range of one row's reward (summed over its ``k`` slots), and where it comes from.

    Attributes:
        low: smallest possible row reward.
        high: largest possible row reward.
        slot_high: largest possible reward at one slot.
        k: slots per logged row.
        binary: each slot's reward is 0 or 1 (Clopper-Pearson applies).
        source: a sentence saying why this is the range.
    """

    low: float
    high: float
    slot_high: float
    k: int
    binary: bool
    source: str


def reward_range(log: SlateLog) -> RewardRange | None:
    """The known range of ``log``'s row reward, or None when the reward type has none.

    Click and purchase rewards are 0/1 per slot; revenue lies in ``[0, max price]``
    per slot when the catalog has prices. A log whose rewards break that (e.g. a
    ``click`` reward of 3) has no known range either: nothing is clipped then.
    """
    kind = log.metadata.reward_type
    reward = np.asarray(log.reward, dtype=np.float64)
    k = int(reward.shape[1])
    if kind in BINARY_REWARDS:
        if not np.isin(reward, (0.0, 1.0)).all():
            return None
        return RewardRange(0.0, float(k), 1.0, k, True, f"{kind} is 0 or 1 at each of the {k} slot(s)")
    if kind == "revenue":
        price = log.catalog.price
        if price is None or price.size == 0 or (reward < 0).any():
            return None
        top = float(np.max(price))
        if reward.max(initial=0.0) > top * (1 + 1e-9):
            return None
        return RewardRange(0.0, k * top, top, k, False,
                           f"revenue is between 0 and the highest catalog price {top:.4g} at each of "
                           f"the {k} slot(s)")
    return None


def clopper_pearson_zero_upper(n_eff: float, level: float) -> float:
    """One-sided Clopper-Pearson upper bound on a rate after ``n_eff`` trials with no success.

    ``P(0 successes) = (1 - p) ** n = 1 - level`` gives ``p = 1 - (1 - level) ** (1 / n)``;
    1 (no information) when ``n_eff`` is 0.

    >>> round(clopper_pearson_zero_upper(100, 0.95), 6)
    0.029513
    """
    if n_eff <= 0:
        return 1.0
    return float(1.0 - (1.0 - level) ** (1.0 / n_eff))


def bernstein_zero_upper(n: int, width: float, level: float) -> float:
    """Empirical-Bernstein upper bound (Maurer & Pontil 2009) on a mean of ``n`` terms all equal to 0.

    Terms lie in ``[0, width]``; with zero sample variance the bound is
    ``7 width ln(2 / delta) / (3 (n - 1))`` (``width`` when ``n < 2``).
    """
    if n < 2:
        return width
    return min(width, 7.0 * width * math.log(2.0 / (1.0 - level)) / (3.0 * (n - 1)))


def slot_ess(weight: FloatArray) -> FloatArray:
    """Kish effective sample size of the importance weights at each slot, (k,) from ``weight`` (n, k)."""
    total, sq = weight.sum(axis=0), (weight**2).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(sq > 0, total**2 / sq, 0.0)


def no_reward_upper(data: OPEData, rng: RewardRange, level: float) -> float:
    """Upper bound on the policy's row reward from a log with no positive reward where it puts weight."""
    if rng.binary:
        ess = slot_ess(data.weight)
        return min(rng.high, float(sum(clopper_pearson_zero_upper(float(e), level) for e in ess)))
    width = float(data.weight.sum(axis=1).max(initial=0.0)) * rng.slot_high
    return min(rng.high, bernstein_zero_upper(data.n, width, level))


def _has_target_reward(data: OPEData) -> bool:
    return bool(((data.weight > 0) & (data.reward != 0)).any())


def bound_estimate(est: Estimate, rng: RewardRange, *,
                   no_reward_upper_bound: float | None = None) -> Estimate:
    """``est`` with value, interval and lower bound inside ``rng``, warnings added for what moved.

    ``no_reward_upper_bound`` (when the log has no positive reward where the policy puts
    weight) turns a zero-width interval at ``rng.low`` into the one-sided ``[rng.low, bound]``.
    """
    warns = list(est.warnings)
    value, low, high, lower = est.value, est.low, est.high, est.lower_bound
    method = est.interval_method
    span = max(rng.high - rng.low, 1e-300)
    out = []
    if math.isfinite(value) and not rng.low <= value <= rng.high:
        out.append(f"estimate {value:.4g}")
        value = min(max(value, rng.low), rng.high)
    for name, v in (("interval low", low), ("interval high", high)):
        if math.isfinite(v) and not rng.low - 1e-6 * span <= v <= rng.high + 1e-6 * span:
            out.append(f"{name} {v:.4g}")
    if out:
        clip_note = (f"{', '.join(out)} outside the reward's range [{rng.low:.4g}, {rng.high:.4g}] "
                     f"({rng.source}): clipped to it; the estimator is unreliable on this log")
        warns.append(clip_note)
        logger.debug("%s: %s", est.estimator, clip_note)
    low = min(max(low, rng.low), rng.high) if math.isfinite(low) else low
    high = min(max(high, rng.low), rng.high) if math.isfinite(high) else high
    if math.isfinite(lower):
        lower = min(max(lower, rng.low), rng.high)
    at_floor = abs(high - low) <= 1e-12 * span and abs(value - rng.low) <= 1e-12 * span
    if no_reward_upper_bound is not None and at_floor:
        high = max(no_reward_upper_bound, rng.low)
        low = lower = rng.low
        method = "clopper-pearson (one-sided)" if rng.binary else "empirical-bernstein (one-sided)"
        warns.append(f"no positive reward where the policy puts weight: the value is not known to be "
                     f"{rng.low:.4g}, only to be at most {high:.4g} at {est.level:.0%} ({method})")
    return replace(est, value=value, low=low, high=high, lower_bound=lower, warnings=tuple(warns),
                   interval_method=method)


def apply_bounds(estimates: Sequence[Estimate], log: SlateLog, data: OPEData) -> list[Estimate]:
    """Every estimate of one policy on ``log`` kept inside the reward's range (see the module doc)."""
    rng = reward_range(log)
    if rng is None:
        return list(estimates)
    if not estimates:
        return []
    upper = None if _has_target_reward(data) else no_reward_upper(data, rng, estimates[0].level)
    return [bound_estimate(e, rng, no_reward_upper_bound=upper) for e in estimates]
