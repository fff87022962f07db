"""``estimate_all``: every requested estimator on one log, with intervals and diagnostics."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from bandits.ope._data import FloatArray, OPEData, check_row_array, prepare
from bandits.ope.bounds import apply_bounds
from bandits.ope.estimators import ESTIMATORS, Context, Result
from bandits.ope.intervals import (
    Part,
    Terms,
    empirical_bernstein_lower,
    normal_interval,
    percentile_interval,
    replicate_values,
)
from bandits.ope.reward_model import RidgeRewardModel, cross_fit, make_reward_model
from simulator.errors import OPEError
from simulator.logs import SlateLog

INTERVALS = ("bootstrap", "normal")


@dataclass(frozen=True, slots=True)
class Estimate:
    """One estimator's estimate of a policy's value (expected reward summed over slots, per row).

    ``low``/``high`` is the two-sided interval at ``level`` by ``interval_method``;
    ``lower_bound`` is a one-sided empirical-Bernstein bound at ``level`` from the reward's
    known range (NaN where it does not apply). ``ess``, ``max_weight`` and ``mean_weight``
    describe the importance weights the estimator used (NaN for DM). ``n_clusters`` is the
    number of sessions the interval resampled (``n`` when every row is its own session);
    ``estimand`` is ``'decision'`` (expected reward of one decision, summed over its slots).
    """

    estimator: str
    value: float
    low: float
    high: float
    level: float
    stderr: float
    n: int
    ess: float
    max_weight: float
    mean_weight: float
    warnings: tuple[str, ...]
    interval_method: str
    lower_bound: float
    n_clusters: int = 0
    estimand: str = "decision"

    def to_dict(self) -> dict[str, Any]:
        """Plain data (lists for tuples)."""
        out = asdict(self)
        out["warnings"] = list(self.warnings)
        return out


def _diagnostics(weights: FloatArray | None, data: OPEData | None) -> tuple[float, float, float, list[str]]:
    if weights is None:
        return math.nan, math.nan, math.nan, []
    w = weights.ravel()
    total, sq = float(w.sum()), float((w**2).sum())
    ess = total**2 / sq if sq > 0 else 0.0
    mean = float(w.mean())
    se = float(w.std(ddof=1) / math.sqrt(w.size)) if w.size > 1 else math.inf
    warnings = []
    if abs(mean - 1) > max(0.05, 3 * se):
        warnings.append(f"mean importance weight {mean:.3f} (expected 1 within {3 * se:.3f}): the logged "
                        "propensities or the evaluation policy's action distribution are probably wrong")
    if ess < 0.01 * w.size:
        warnings.append(f"effective sample size {ess:.0f} is under 1% of the {w.size:,} weighted decisions: "
                        "the estimate rests on a handful of rows")
    return ess, float(w.max()), mean, warnings


def _support_warning(data: OPEData) -> str | None:
    """Mass the policy puts on items never logged at a slot (no estimator can see it)."""
    mass = 0.0
    for s in np.unique(data.slot):
        at = data.slot == s
        seen = np.zeros(data.n_items, dtype=bool)
        seen[data.item[at]] = True
        if not seen.all():
            rows = np.unique(np.nonzero(at)[0])
            mass += float(data.action_dist[rows][:, ~seen, s].sum(axis=1).mean()) * rows.size / data.n
    if mass > 0.01:
        return (f"the policy puts {mass:.1%} of its probability on items the log never shows at that slot: "
                "importance-weighting estimators cannot see their reward")
    return None


def known_reward_range(log: SlateLog, given: tuple[float, float] | None = None) -> tuple[float, float] | None:
    """The range one slot's reward can take, known before the data: given, or from the reward type.

    Clicks and purchases lie in [0, 1]; revenue in [0, the catalog's top price]. ``None``
    when unknown (a custom reward without a stated range, revenue without prices).
    Logged rewards outside the range raise :class:`OPEError`.
    """
    if given is not None:
        lo, hi = (float(v) for v in given)
        if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo):
            raise OPEError(f"`reward_range` must be (low, high) with low < high, found {given}.")
        rng: tuple[float, float] | None = (lo, hi)
    elif log.metadata.reward_type in ("click", "purchase"):
        rng = (0.0, 1.0)
    elif log.metadata.reward_type == "revenue" and log.catalog.price is not None:
        rng = (0.0, float(np.max(log.catalog.price)))
    else:
        rng = None
    if rng is not None:
        r = np.asarray(log.reward)
        if r.min() < rng[0] or r.max() > rng[1]:
            raise OPEError(f"the log's rewards range over [{r.min():.6g}, {r.max():.6g}], outside the "
                           f"reward's known range [{rng[0]:.6g}, {rng[1]:.6g}] (reward type "
                           f"{log.metadata.reward_type!r}); pass reward_range=(low, high) that holds them.")
    return rng


def default_estimators(log: SlateLog, *, eval_pscore: Any = None, eval_pscore_cascade: Any = None,
                       pscore_cascade: Any = None) -> list[str]:
    """Every per-position estimator, plus the slate ones whose inputs are available."""
    names = [n for n, s in ESTIMATORS.items() if not s.slate]
    if log.position is None and log.k > 1:
        if eval_pscore is not None:
            names.append("sips")
        names.append("iips")
        if eval_pscore_cascade is not None and pscore_cascade is not None:
            names += ["rips", "cascade-dr"]
    return names


def estimate_all(log: SlateLog, action_dist: Any, *, estimators: Sequence[str] | None = None,
                 reward_model: str | Any = "ridge", n_folds: int = 3, n_bootstrap: int = 200,
                 level: float = 0.95, interval: str = "bootstrap", seed: int = 0,
                 eval_pscore: Any = None, eval_pscore_cascade: Any = None, pscore_cascade: Any = None,
                 params: dict[str, dict[str, float]] | None = None,
                 reward_range: tuple[float, float] | None = None) -> list[Estimate]:
    """Estimate the value of the policy whose ``action_dist`` is given, on ``log``, by each estimator.

    Args:
        log: the logged decisions.
        action_dist: (n, n_items, n_positions) evaluation-policy probabilities per slot.
        estimators: names from :data:`ESTIMATORS` (default: :func:`default_estimators`).
        reward_model: ``'ridge'``, ``'logistic'`` or a scikit-learn-style estimator, for DM/DR.
        n_folds: cross-fitting folds for the reward model (< 2: fit and predict on all rows).
        n_bootstrap: Poisson-bootstrap replicates (``interval='bootstrap'``).
        level: confidence level of the intervals and of the lower bound.
        interval: ``'bootstrap'`` (percentile) or ``'normal'`` (influence function).
        seed: seeds the folds, the bootstrap and the replay draws.
        eval_pscore: (n,) evaluation-policy probability of each logged slate (``sips``).
        eval_pscore_cascade: (n, k) evaluation probability of each logged prefix (``rips``, ``cascade-dr``).
        pscore_cascade: (n, k) logging probability of each logged prefix (``rips``, ``cascade-dr``).
        params: per-estimator options, e.g. ``{"switch-dr": {"tau": 10}, "clipped-ips": {"clip": 20}}``.
        reward_range: ``(low, high)`` of one slot's reward, for the empirical-Bernstein bound
            (default: from the reward type; see :func:`known_reward_range`).

    Intervals resample whole sessions (``log.session_id``): a session's decisions share
    a shopper and are not independent.

    Returns:
        One :class:`Estimate` per estimator, in the order asked.
    """
    if not 0 < level < 1:
        raise OPEError(f"`level` must be in (0, 1), found {level}.")
    if interval not in INTERVALS:
        raise OPEError(f"`interval` must be one of {INTERVALS}, found {interval!r}.")
    if interval == "bootstrap" and n_bootstrap < 2:
        raise OPEError(f"`n_bootstrap` must be >= 2 for bootstrap intervals (found {n_bootstrap}); "
                       "or use interval='normal'.")
    data = prepare(log, action_dist)
    n, k = data.n, data.k
    extra: dict[str, FloatArray | None] = {
        "eval_pscore": None if eval_pscore is None else check_row_array("eval_pscore", eval_pscore, (n,)),
        "eval_pscore_cascade": None if eval_pscore_cascade is None else check_row_array(
            "eval_pscore_cascade", eval_pscore_cascade, (n, k)),
        "pscore_cascade": None if pscore_cascade is None else check_row_array(
            "pscore_cascade", pscore_cascade, (n, k)),
    }
    if extra["pscore_cascade"] is not None and (extra["pscore_cascade"] <= 0).any():
        raise OPEError("`pscore_cascade` has a probability of 0; a logged prefix must have had a chance.")
    names = list(estimators) if estimators is not None else default_estimators(
        log, eval_pscore=eval_pscore, eval_pscore_cascade=eval_pscore_cascade, pscore_cascade=pscore_cascade)
    unknown = [e for e in names if e not in ESTIMATORS]
    if unknown:
        raise OPEError(f"unknown estimator(s) {unknown}; choose from {sorted(ESTIMATORS)}.")
    for name in names:
        for need in ESTIMATORS[name].needs:
            if extra[need] is None:
                raise OPEError(f"estimator {name!r} needs `{need}`; pass it to estimate_all or leave "
                               f"{name!r} out.")
    params = params or {}
    model = make_reward_model(reward_model)
    pred = cross_fit(model, data, n_folds, seed) if any(ESTIMATORS[e].model for e in names) else None

    results: list[Result] = []
    for name in names:
        ctx = Context(data, pred, model, seed, params=params.get(name, {}), **extra)
        results.append(ESTIMATORS[name].fn(ctx))

    known = known_reward_range(log, reward_range)
    groups = np.asarray(log.session_id)
    n_clusters = int(np.unique(groups).size)
    replicates = (replicate_values([r.terms for r in results], n_bootstrap, seed, groups)
                  if interval == "bootstrap" else [None] * len(results))
    support = _support_warning(data)
    out = []
    for name, res, reps in zip(names, results, replicates, strict=True):
        value = res.terms.value()
        if reps is not None:
            low, high, se = percentile_interval(reps, level)
        else:
            low, high, se = normal_interval(res.terms, value, level, groups)
        ess, max_w, mean_w, warns = _diagnostics(res.weights, data)
        warns = [*res.notes, *warns]
        if support and res.weights is not None:
            warns.append(support)
        if ESTIMATORS[name].model and not isinstance(model, RidgeRewardModel):
            warns.append("the interval holds this custom reward model fixed and may be too narrow; "
                         "reward_model='ridge' or 'logistic' account for the model's own uncertainty")
        lower = math.nan
        if ESTIMATORS[name].mean_type and not ESTIMATORS[name].model and res.weight_bound is not None:
            if known is None:
                warns.append("no lower bound: the reward's range is unknown (pass reward_range=(low, high))")
            elif n_clusters < n:
                warns.append("no lower bound: the empirical-Bernstein bound needs independent rows, and "
                             "this log's sessions hold several decisions each")
            else:
                b = res.weight_bound * k
                lower = empirical_bernstein_lower(res.terms.row_totals(), level,
                                                  low=min(0.0, b * known[0]), high=max(0.0, b * known[1]))
        out.append(Estimate(name, value, low, high, level, se, n, ess, max_w, mean_w, tuple(warns),
                            "bootstrap" if reps is not None else "normal", lower, n_clusters))
    return apply_bounds(out, log, data)


def estimate_from_arrays(reward: Any, pscore_item: Any, pi_item: Any, *, estimator: str = "ips",
                         level: float = 0.95, reward_range: tuple[float, float] | None = None) -> Estimate:
    """IPS or SNIPS with a normal interval from per-slot arrays alone, each (n, k).

    For callers that hold the logged propensities and the evaluation policy's
    probabilities of the logged items but no full log (the serving layer's
    off-policy bar). ``reward_range`` (one slot's reward) gives IPS its empirical-Bernstein
    lower bound (NaN without it).
    """
    if estimator not in ("ips", "snips"):
        raise OPEError(f"estimate_from_arrays supports 'ips' and 'snips', not {estimator!r}.")
    r = np.asarray(reward, dtype=np.float64)
    shape = r.shape
    if r.ndim != 2 or r.shape[0] < 2:
        raise OPEError(f"`reward` must have shape (n, k) with n >= 2; found {r.shape}.")
    p = check_row_array("pscore_item", pscore_item, shape)
    pi = check_row_array("pi_item", pi_item, shape)
    if (p <= 0).any():
        raise OPEError("`pscore_item` has a probability of 0; a logged item must have had a chance.")
    w = pi / p
    terms = Terms((Part(w * r, w if estimator == "snips" else None),))
    value = terms.value()
    low, high, se = normal_interval(terms, value, level)
    ess, max_w, mean_w, warns = _diagnostics(w, None)
    lower = math.nan
    if estimator == "ips" and reward_range is not None:
        lo, hi = reward_range
        b = float((1.0 / p).max()) * shape[1]
        lower = empirical_bernstein_lower(terms.row_totals(), level, low=min(0.0, b * lo),
                                          high=max(0.0, b * hi))
    return Estimate(estimator, value, low, high, level, se, int(shape[0]), ess, max_w, mean_w, tuple(warns),
                    "normal", lower, int(shape[0]))
