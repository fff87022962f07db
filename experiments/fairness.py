"""How the policies of a run share exposure, and what fairer sharing costs: the reports' exposure parts.

Every simulation report measures, on each policy's held-out sessions, the
position-weighted exposure of every item and every group of items (the world's
categories), its Gini coefficient, the share of items never shown and each
group's exposure relative to its merit (:mod:`bandits.exposure`; Singh and
Joachims 2018). The Ginis' 95% intervals are bootstraps over the units measured (held-out sessions,
or rounds of the online run).
The section ends with the trade-off plot: reward per session against the
exposure Gini of every policy, both with 95% intervals. A config that sweeps the
strength of a ``fair_exposure`` constraint (``experiments/configs/fairness.toml``)
turns that plot into the cost curve of fairness.

Offline comparisons measure the same quantities in expectation: the expected
exposure of an item is its probability at each slot (the policy's action
distribution) times the slot weight, averaged over the logged decisions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from bandits.exposure import ExposureReport, report_from_items
from experiments.report import Report, format_interval

FloatArray = npt.NDArray[np.float64]

#: bootstrap resamples of the held-out sessions for the Gini's interval
N_BOOTSTRAP = 200


@dataclass(frozen=True, slots=True)
class PolicyExposure:
    """How one policy shared exposure over a set of units (held-out sessions, or rounds of the run).

    Attributes:
        label: the policy's label.
        report: exposure per item and group, Ginis, never-shown share, exposure-to-merit.
        gini_low: lower end of the item Gini's 95% bootstrap interval (over the units).
        gini_high: upper end of that interval.
        group_gini_low: lower end of the group Gini's 95% bootstrap interval.
        group_gini_high: upper end of that interval.
        unit: what the bootstrap resamples ("held-out session", "round of the online run").
    """

    label: str
    report: ExposureReport
    gini_low: float
    gini_high: float
    group_gini_low: float
    group_gini_high: float
    unit: str

    def to_json(self) -> dict[str, Any]:
        """The report's JSON summary with the Ginis' intervals."""
        return self.report.to_json() | {
            "gini_interval": [self.gini_low, self.gini_high],
            "group_gini_interval": [self.group_gini_low, self.group_gini_high],
            "interval_method": f"basic bootstrap over {self.unit}s ({N_BOOTSTRAP} resamples)"}


def row_gini(values: FloatArray) -> FloatArray:
    """The Gini coefficient of each row of non-negative ``values`` (r, m), shape (r,)."""
    x = np.sort(np.asarray(values, dtype=np.float64), axis=1)
    m = x.shape[1]
    total = x.sum(axis=1)
    ranks = np.arange(1, m + 1, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        g = 2.0 * (x @ ranks) / (m * total) - (m + 1.0) / m
    out: FloatArray = np.where(total > 0, g, 0.0)
    return out


def unit_exposure(label: str, exposure: FloatArray, decisions: FloatArray, merit: FloatArray,
                  group: Sequence[object] | npt.NDArray[np.generic], weights: FloatArray, *,
                  unit: str = "held-out session", seed: int = 0) -> PolicyExposure:
    """The exposure summary of one policy from per-unit exposure sums.

    Args:
        label: the policy's label.
        exposure: shape (units, n_items), each unit's summed exposure of each item.
        decisions: shape (units,), decisions of each unit.
        merit: shape (n_items,), each item's merit summed over the decisions.
        group: shape (n_items,), each item's group.
        weights: shape (k,), the slot weights.
        unit: what a row is (for the interval's description).
        seed: seed of the bootstrap.
    """
    n = float(decisions.sum())
    report = report_from_items(exposure.sum(axis=0) / max(n, 1.0), group, weights, int(n),
                               merit=merit / max(n, 1.0))
    rng = np.random.default_rng([seed, 17])
    units = exposure.shape[0]
    counts = rng.multinomial(units, np.full(units, 1.0 / units), size=N_BOOTSTRAP).astype(np.float64)
    boot = counts @ exposure
    _, index = np.unique(np.asarray([str(g) for g in group]), return_inverse=True)
    member = np.zeros((exposure.shape[1], len(report.groups)))
    member[np.arange(exposure.shape[1]), index] = 1.0
    per_item = (boot @ member) / member.sum(axis=0)
    lo, hi = _basic_interval(report.gini, row_gini(boot))
    glo, ghi = _basic_interval(report.group_gini, row_gini(per_item))
    return PolicyExposure(label, report, lo, hi, glo, ghi, unit)


def _basic_interval(estimate: float, boot: FloatArray) -> tuple[float, float]:
    """The basic (reflected) bootstrap 95% interval, clipped to [0, 1].

    A Gini of resampled units is biased upward (repeated units concentrate exposure); the basic
    interval ``[2 g - q_97.5, 2 g - q_2.5]`` reflects that bias instead of adding it.
    """
    q_low, q_high = (float(q) for q in np.quantile(boot, [0.025, 0.975]))
    return max(0.0, 2 * estimate - q_high), min(1.0, 2 * estimate - q_low)


def exposure_of_results(results: Sequence[Any], group: Sequence[object] | npt.NDArray[np.generic],
                        weights: FloatArray, *, held_out: bool) -> dict[str, PolicyExposure]:
    """Per policy label, its exposure over all seeds: on the held-out sessions, or during the run.

    Args:
        results: :class:`experiments.simulate.TaskResult` of every run (with exposures).
        group: shape (n_items,), each item's group.
        weights: shape (k,), the slot weights the exposures were summed with.
        held_out: the frozen policy's held-out sessions (True) or the rounds of the online run,
            where a policy that adapts (``fair_exposure``'s boosts) keeps adapting (False).
    """
    out = {}
    for label in dict.fromkeys(r.label for r in results):
        if held_out:
            mine = [r for r in results if r.label == label and r.eval_exposure is not None]
            parts = [(r.eval_exposure, r.eval_decisions, r.eval_merit) for r in mine]
        else:
            mine = [r for r in results if r.label == label and r.run_exposure is not None]
            parts = [(r.run_exposure, r.rounds["decisions"].to_numpy(dtype=np.float64), r.run_merit)
                     for r in mine]
        if not mine:
            continue
        out[label] = unit_exposure(label, np.concatenate([p[0] for p in parts]),
                                   np.concatenate([p[1] for p in parts]),
                                   np.sum([p[2] for p in parts], axis=0),
                                   group, weights, unit="held-out session" if held_out else
                                   "round of the online run", seed=int(mine[0].seed))
    return out


def run_values(results: Sequence[Any], level: float = 0.95) -> pd.DataFrame:
    """Reward per session of each policy over its online run (all rounds, all seeds), with an interval.

    The mean is total reward over total sessions; its interval treats the rounds as batches
    (the ratio's standard error by the delta method over rounds), the unit the Gini's bootstrap
    resamples too.
    """
    from scipy import stats

    z = float(stats.norm.ppf(0.5 + level / 2))
    rows = []
    for label in dict.fromkeys(r.label for r in results):
        frame = pd.concat([r.rounds for r in results if r.label == label], ignore_index=True)
        reward, sessions = frame["reward"].to_numpy(float), frame["sessions"].to_numpy(float)
        mean = float(reward.sum() / sessions.sum())
        resid = (reward - mean * sessions) / sessions.mean()
        se = float(resid.std(ddof=1) / np.sqrt(resid.size)) if resid.size > 1 else float("nan")
        rows.append({"policy": label, "value": mean, "low": mean - z * se, "high": mean + z * se,
                     "rounds": int(resid.size)})
    return pd.DataFrame(rows)


def _ratio_range(report: ExposureReport) -> tuple[float, float]:
    if report.merit_ratio is None or not np.any(np.isfinite(report.merit_ratio)):
        return float("nan"), float("nan")
    finite = report.merit_ratio[np.isfinite(report.merit_ratio)]
    return float(finite.min()), float(finite.max())


def overview_table(reports: dict[str, PolicyExposure] | dict[str, ExposureReport]) -> pd.DataFrame:
    """One row per policy: Ginis (with intervals when measured over units), never shown, merit ratios."""
    rows = []
    for label, entry in reports.items():
        rep = entry.report if isinstance(entry, PolicyExposure) else entry
        low, high = _ratio_range(rep)
        if isinstance(entry, PolicyExposure):
            item = format_interval(rep.gini, entry.gini_low, entry.gini_high)
            grp = format_interval(rep.group_gini, entry.group_gini_low, entry.group_gini_high)
        else:
            item, grp = f"{rep.gini:.3f}", f"{rep.group_gini:.3f}"
        rows.append({"policy": label, "Gini over items": item, "Gini over categories": grp,
                     "items never shown": f"{rep.never_shown:.1%}",
                     "largest group share": f"{rep.group_share.max():.1%}",
                     "smallest group share": f"{rep.group_share.min():.1%}",
                     "exposure / merit, lowest group": low, "exposure / merit, highest group": high})
    return pd.DataFrame(rows)


def group_table(reports: dict[str, ExposureReport]) -> pd.DataFrame:
    """One row per group: its merit share, then each policy's exposure share and exposure / merit."""
    first = next(iter(reports.values()))
    table = pd.DataFrame({"group": list(first.groups)})
    if first.merit_share is not None:
        table["merit share"] = [f"{m:.1%}" for m in first.merit_share]
    for label, rep in reports.items():
        table[f"{label}: share"] = [f"{s:.1%}" for s in rep.group_share]
        if rep.merit_ratio is not None:
            table[f"{label}: exposure / merit"] = rep.merit_ratio
    return table


def exposure_section(report: Report, during_run: dict[str, PolicyExposure],
                     held_out: dict[str, PolicyExposure], values: pd.DataFrame,
                     reward: str) -> dict[str, Any]:
    """Add the simulation's exposure section (tables and the trade-off plot); return its summary.

    Args:
        report: the report under construction.
        during_run: per policy label, its exposure over the rounds of the online run.
        held_out: per policy label, its exposure on the held-out sessions (frozen).
        values: :func:`run_values` (reward per session of the online run, with intervals).
        reward: the reward's name (for the axis).
    """
    from experiments import plots

    sec = report.section("Fairness of exposure")
    first = next(iter(during_run.values())).report
    weights = ", ".join(f"{w:.2f}" for w in first.weights)
    sec.text.append(
        "How each policy shared exposure. An item shown at a slot gets the slot's examination "
        f"probability ({weights}) as exposure; a group is a category of the catalog. The item Gini is "
        "over all items (0: every item equally exposed; near 1: a few items get it all); the group Gini "
        "is over the categories' exposure per item. Exposure / merit is a group's share of exposure "
        "over its share of merit (the expected reward of its eligible items on an examined slot; Singh "
        "and Joachims 2018): 1 is exposure in proportion to merit, below 1 a group is shown less than "
        "it deserves. The Ginis' 95% intervals are basic bootstraps over the units measured.")
    sec.text.append(
        "The first tables are measured over the online run, while every policy learns: that is what a "
        "served policy shows, and where fair_exposure's bounds hold (they are amortised: its boosts "
        "keep adjusting to the exposure it has given). The last table is the frozen policy on the "
        "held-out sessions, where the boosts no longer move and the bounds need not hold.")
    run_reports = {label: e.report for label, e in during_run.items()}
    sec.tables.append(("Exposure per policy during the online run", overview_table(during_run)))
    sec.tables.append(("Exposure share and exposure / merit per group during the online run",
                       group_table(run_reports)))
    sec.tables.append(("Exposure per policy on the held-out sessions (frozen)", overview_table(held_out)))
    frame = tradeoff_frame(during_run, values)
    sec.figures.append(("fairness_tradeoff", f"{reward} per session against the exposure Gini over "
                        "categories, during the online run, each with its 95% interval (left is fairer, "
                        "up earns more)",
                        plots.tradeoff(frame, xlabel="exposure Gini over categories (per item)",
                                       ylabel=f"{reward} per session (online run)",
                                       title="95% intervals over rounds of the online run: reward by the "
                                             "delta method, Gini by basic bootstrap")))
    return {"slot_weights": [float(w) for w in first.weights], "group_by": "category",
            "during_run": {label: e.to_json() for label, e in during_run.items()},
            "held_out": {label: e.to_json() for label, e in held_out.items()},
            "policies": {label: e.to_json() for label, e in during_run.items()},
            "tradeoff": frame.to_dict("records")}


def tradeoff_frame(exposures: dict[str, PolicyExposure], values: pd.DataFrame) -> pd.DataFrame:
    """Per policy: reward per session and the group and item exposure Ginis, each with its 95% interval."""
    by_label = {str(r["policy"]): r for r in values.to_dict("records")}
    rows = [{"policy": label, "gini": e.report.group_gini, "gini_low": e.group_gini_low,
             "gini_high": e.group_gini_high, "item_gini": e.report.gini, "item_gini_low": e.gini_low,
             "item_gini_high": e.gini_high, "value": float(by_label[label]["value"]),
             "low": float(by_label[label]["low"]), "high": float(by_label[label]["high"])}
            for label, e in exposures.items() if label in by_label]
    return pd.DataFrame(rows)
