"""Which estimate to trust: one estimator per (policy, log), or "this log cannot support an estimate".

:func:`recommend` reads only the log, the policy's action distribution and the
estimates (no ground truth):

* **Selection** — SLOPE (Su, Srinath & Krishnamurthy, 2020), Lepski's rule over an
  ordered family: the estimators are ordered from the least biased (IPS, DR and the
  other unbiased ones) through the self-normalised (SNIPS, SNDR) and the shrunk
  (clipped IPS, switch-DR, DRos) to the direct method; inside each class by
  decreasing standard error. Walking the family in that order, each estimator's
  interval ``value +- width * stderr`` is intersected with those before it; the
  chosen one is the last whose interval still meets all earlier ones: the lowest
  variance estimator that the less biased ones cannot show to be biased.
* **Support** — the log cannot support an estimate when any of these holds:
  the importance weights' effective sample size (Kish, over every weighted
  decision) is under ``min_ess``; the policy puts more than ``max_unsupported`` of
  its probability on items the log never shows at that slot; the largest 1% of
  the weights carry more than ``max_tail_share`` of their total; the chosen
  estimate's interval is wider than ``max_relative_halfwidth`` times its value on
  either side; the log has no reward where the policy puts weight (only an upper
  bound is known); or no estimator of the family is left.

The result is a frozen :class:`Recommendation` with the diagnostics and every
reason in words.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from bandits.ope._data import OPEData, prepare
from bandits.ope.api import Estimate
from simulator.logs import SlateLog

#: Bias class of each estimator of the family (0: unbiased ... 3: the model alone).
BIAS_CLASS: dict[str, int] = {
    "ips": 0, "iips": 0, "sips": 0, "rips": 0, "dr": 0, "cascade-dr": 0,
    "snips": 1, "sndr": 1,
    "clipped-ips": 2, "switch-dr": 2, "dros": 2,
    "dm": 3,
}


@dataclass(frozen=True, slots=True)
class Thresholds:
    """The support rules' limits (see the module doc)."""

    min_ess: float = 100.0
    max_unsupported: float = 0.05
    max_tail_share: float = 0.5
    max_relative_halfwidth: float = 0.5
    width: float = 2.0


@dataclass(frozen=True, slots=True)
class Diagnostics:
    """What the log says about the policy, without any ground truth.

    Attributes:
        n_weights: weighted decisions (rows x slots).
        ess: Kish effective sample size of the importance weights.
        ess_fraction: ``ess / n_weights``.
        unsupported_mass: share of the policy's probability on items never logged at that slot.
        max_weight: the largest importance weight.
        tail_share: share of the total weight carried by the largest 1% of the weights.
        spread: (largest - smallest) estimate of the family over the chosen estimate's
            standard error (how much the estimators disagree), NaN with one estimator.
    """

    n_weights: int
    ess: float
    ess_fraction: float
    unsupported_mass: float
    max_weight: float
    tail_share: float
    spread: float


@dataclass(frozen=True, slots=True)
class Recommendation:
    """Which estimate of one policy on one log to trust, and why.

    Attributes:
        policy: the policy's name (as the caller calls it).
        estimator: the recommended estimator, or None when the log cannot support an estimate.
        selected: the estimator the selection rule chose (also when not supported).
        value: the selected estimate; ``low``/``high`` its interval.
        supported: the log supports an estimate of this policy.
        reasons: every reason for the verdict, in words.
        family: the ordered family the selection walked.
        diagnostics: the numbers the verdict rests on.
    """

    policy: str
    estimator: str | None
    selected: str | None
    value: float
    low: float
    high: float
    supported: bool
    reasons: tuple[str, ...]
    family: tuple[str, ...]
    diagnostics: Diagnostics

    @property
    def verdict(self) -> str:
        """One line: ``use dr`` or ``cannot support an estimate``."""
        if self.estimator is not None:
            return f"use {self.estimator}"
        return "this log cannot support an estimate of this policy"

    def to_dict(self) -> dict[str, Any]:
        """Plain data (lists for tuples), with the verdict."""
        out = asdict(self)
        out["reasons"] = list(self.reasons)
        out["family"] = list(self.family)
        out["verdict"] = self.verdict
        return out


def diagnose(data: OPEData) -> Diagnostics:
    """ESS, support and weight-tail diagnostics of the policy's weights on the log (spread NaN)."""
    w = data.weight.ravel()
    total, sq = float(w.sum()), float((w**2).sum())
    ess = total**2 / sq if sq > 0 else 0.0
    top = max(1, math.ceil(0.01 * w.size))
    tail = float(np.sort(w)[-top:].sum() / total) if total > 0 else 1.0
    unsupported = 0.0
    for s in np.unique(data.slot):
        at = data.slot == s
        seen = np.zeros(data.n_items, dtype=bool)
        seen[data.item[at]] = True
        if not seen.all():
            rows = np.unique(np.nonzero(at)[0])
            unsupported += float(data.action_dist[rows][:, ~seen, s].sum(axis=1).sum()) / data.n
    if not data.has_position:  # every row holds every slot: the mean over slots
        unsupported /= data.k
    return Diagnostics(n_weights=int(w.size), ess=ess, ess_fraction=ess / w.size if w.size else 0.0,
                       unsupported_mass=unsupported, max_weight=float(w.max(initial=0.0)), tail_share=tail,
                       spread=math.nan)


def _stderr(e: Estimate) -> float:
    if math.isfinite(e.stderr) and e.stderr > 0:
        return e.stderr
    z = 1.959963984540054 if abs(e.level - 0.95) < 1e-9 else _z(e.level)
    return max((e.high - e.low) / (2 * z), 0.0)


def _z(level: float) -> float:
    from scipy import stats

    return float(stats.norm.ppf(0.5 + level / 2))


def family(estimates: Sequence[Estimate]) -> list[Estimate]:
    """The estimates SLOPE may choose from, least biased first, then by decreasing standard error."""
    fam = [e for e in estimates if e.estimator in BIAS_CLASS and math.isfinite(e.value)]
    return sorted(fam, key=lambda e: (BIAS_CLASS[e.estimator], -_stderr(e)))


def slope(estimates: Sequence[Estimate], width: float = 2.0) -> Estimate | None:
    """Lepski-style selection (SLOPE): the last of the ordered family whose interval meets all before it."""
    fam = family(estimates)
    if not fam:
        return None
    lo, hi = -math.inf, math.inf
    chosen = fam[0]
    for e in fam:
        half = width * _stderr(e)
        lo, hi = max(lo, e.value - half), min(hi, e.value + half)
        if lo > hi:
            break
        chosen = e
    return chosen


def decide(diag: Diagnostics, estimates: Sequence[Estimate], *, policy: str = "policy",
           thresholds: Thresholds | None = None) -> Recommendation:
    """The recommendation from the diagnostics (:func:`diagnose`) and the estimates."""
    t = thresholds or Thresholds()
    fam = family(estimates)
    chosen = slope(estimates, t.width)
    reasons: list[str] = []
    blockers: list[str] = []
    if chosen is None:
        blockers.append("no estimator of the selection family (ips, dr, snips, sndr, clipped-ips, switch-dr, "
                        "dros, dm and the slate ones) was computed")
    else:
        later = [e.estimator for e in fam[fam.index(chosen) + 1:]]
        reasons.append(f"SLOPE chose {chosen.estimator}: the lowest-variance estimator whose interval "
                       f"(value +- {t.width:g} stderr) meets those of every less biased one"
                       + (f"; {', '.join(later)} disagree with them" if later else ""))
        values = [e.value for e in fam]
        se = _stderr(chosen)
        spread = (max(values) - min(values)) / se if len(values) > 1 and se > 0 else math.nan
        diag = Diagnostics(diag.n_weights, diag.ess, diag.ess_fraction, diag.unsupported_mass,
                           diag.max_weight, diag.tail_share, spread)
    if diag.ess < t.min_ess:
        blockers.append(f"effective sample size {diag.ess:.0f} of {diag.n_weights:,} weighted decisions is "
                        f"under {t.min_ess:g}: the estimate rests on a handful of rows")
    if diag.unsupported_mass > t.max_unsupported:
        blockers.append(f"the policy puts {diag.unsupported_mass:.1%} of its probability on items the log "
                        "never shows at that slot")
    if diag.tail_share > t.max_tail_share:
        blockers.append(f"the largest 1% of the importance weights carry {diag.tail_share:.0%} of their "
                        "total")
    if chosen is not None:
        if "one-sided" in chosen.interval_method:
            blockers.append(f"the log has no reward where the policy puts weight: only an upper bound "
                            f"({chosen.high:.4g}) is known")
        else:
            half = (chosen.high - chosen.low) / 2
            if half > t.max_relative_halfwidth * abs(chosen.value):
                blockers.append(f"{chosen.estimator}'s interval [{chosen.low:.4g}, {chosen.high:.4g}] is "
                                f"wider than +-{t.max_relative_halfwidth:.0%} of its value "
                                f"{chosen.value:.4g}")
    supported = not blockers
    if supported:
        reasons.append(f"effective sample size {diag.ess:.0f}, {diag.unsupported_mass:.1%} of the policy "
                       f"off the log's support, top 1% of weights {diag.tail_share:.0%} of their total")
    return Recommendation(
        policy=policy, estimator=chosen.estimator if supported and chosen is not None else None,
        selected=chosen.estimator if chosen is not None else None,
        value=chosen.value if chosen is not None else math.nan,
        low=chosen.low if chosen is not None else math.nan,
        high=chosen.high if chosen is not None else math.nan,
        supported=supported, reasons=tuple(blockers + reasons), family=tuple(e.estimator for e in fam),
        diagnostics=diag)


def recommend(log: SlateLog, action_dist: Any, estimates: Sequence[Estimate], *, policy: str = "policy",
              thresholds: Thresholds | None = None) -> Recommendation:
    """Which of ``estimates`` (from :func:`~bandits.ope.estimate_all` on ``log``) to trust, or none.

    Args:
        log: the log the estimates were computed on.
        action_dist: (n, n_items, n_positions) the evaluated policy's probabilities, as given to
            ``estimate_all``.
        estimates: the estimates of that policy on that log.
        policy: the policy's name, carried into the result.
        thresholds: the support rules' limits (default :class:`Thresholds`).
    """
    return decide(diagnose(prepare(log, action_dist)), estimates, policy=policy, thresholds=thresholds)
