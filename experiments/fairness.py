"""How the policies of a run share exposure, and what fairer sharing costs: the reports' exposure parts.

Every simulation report measures, on each policy's held-out sessions, the
position-weighted exposure of every item and every group of items (the world's
categories), its Gini coefficient, the share of items never shown and each
group's exposure relative to its merit (:mod:`bandits.exposure`; Singh and
Joachims 2018). The Gini's 95% interval is a bootstrap over held-out sessions.
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
    """How one policy shared exposure on its held-out sessions.

    Attributes:
        label: the policy's label.
        report: exposure per item and group, Gini, never-shown share, exposure-to-merit.
        gini_low: lower end of the Gini's 95% bootstrap interval (over held-out sessions).
        gini_high: upper end of the interval.
    """

    label: str
    report: ExposureReport
    gini_low: float
    gini_high: float

    def to_json(self) -> dict[str, Any]:
        """The report's JSON summary with the Gini's interval."""
        return self.report.to_json() | {"gini_interval": [self.gini_low, self.gini_high],
                                        "gini_interval_method": f"bootstrap over held-out sessions "
                                                                f"({N_BOOTSTRAP} resamples)"}


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


def session_exposure(label: str, exposure: FloatArray, decisions: FloatArray, merit: FloatArray,
                     group: Sequence[object] | npt.NDArray[np.generic], weights: FloatArray,
                     seed: int = 0) -> PolicyExposure:
    """The exposure summary of one policy from its held-out sessions.

    Args:
        label: the policy's label.
        exposure: shape (sessions, n_items), each session's summed exposure of each item.
        decisions: shape (sessions,), decisions of each session.
        merit: shape (n_items,), each item's merit summed over the decisions.
        group: shape (n_items,), each item's group.
        weights: shape (k,), the slot weights.
        seed: seed of the bootstrap.
    """
    n = float(decisions.sum())
    report = report_from_items(exposure.sum(axis=0) / max(n, 1.0), group, weights, int(n),
                               merit=merit / max(n, 1.0))
    rng = np.random.default_rng([seed, 17])
    counts = rng.multinomial(exposure.shape[0], np.full(exposure.shape[0], 1.0 / exposure.shape[0]),
                             size=N_BOOTSTRAP).astype(np.float64)
    boot = row_gini(counts @ exposure)
    low, high = (float(q) for q in np.quantile(boot, [0.025, 0.975]))
    return PolicyExposure(label, report, low, high)


def exposure_of_results(results: Sequence[Any], group: Sequence[object] | npt.NDArray[np.generic],
                        weights: FloatArray) -> dict[str, PolicyExposure]:
    """Per policy label, the exposure of its held-out sessions over all seeds.

    Args:
        results: :class:`experiments.simulate.TaskResult` of every run (with exposures).
        group: shape (n_items,), each item's group.
        weights: shape (k,), the slot weights the exposures were summed with.
    """
    out = {}
    for label in dict.fromkeys(r.label for r in results):
        mine = [r for r in results if r.label == label and r.eval_exposure is not None]
        if not mine:
            continue
        out[label] = session_exposure(label, np.concatenate([r.eval_exposure for r in mine]),
                                      np.concatenate([r.eval_decisions for r in mine]),
                                      np.sum([r.eval_merit for r in mine], axis=0), group, weights,
                                      seed=int(mine[0].seed))
    return out


def _ratio_range(report: ExposureReport) -> tuple[float, float]:
    if report.merit_ratio is None or not np.any(np.isfinite(report.merit_ratio)):
        return float("nan"), float("nan")
    finite = report.merit_ratio[np.isfinite(report.merit_ratio)]
    return float(finite.min()), float(finite.max())


def overview_table(reports: dict[str, ExposureReport], gini_interval: dict[str, tuple[float, float]]
                   | None = None) -> pd.DataFrame:
    """One row per policy: Gini (with its interval when known), never-shown share, merit ratios."""
    rows = []
    for label, rep in reports.items():
        low, high = _ratio_range(rep)
        gini = (format_interval(rep.gini, *gini_interval[label]) if gini_interval and label in gini_interval
                else f"{rep.gini:.3f}")
        rows.append({"policy": label, "exposure Gini over items": gini,
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


def exposure_section(report: Report, exposures: dict[str, PolicyExposure], values: pd.DataFrame,
                     reward: str) -> dict[str, Any]:
    """Add the simulation's exposure section (tables and the trade-off plot); return its summary.

    Args:
        report: the report under construction.
        exposures: per policy label, its held-out exposure.
        values: :func:`experiments.simulate.value_table` (reward per session with intervals).
        reward: the reward's name (for the axis).
    """
    from experiments import plots

    sec = report.section("Fairness of exposure")
    first = next(iter(exposures.values())).report
    weights = ", ".join(f"{w:.2f}" for w in first.weights)
    sec.text.append(
        "How each policy shared exposure on its held-out sessions. An item shown at a slot gets the "
        f"slot's examination probability ({weights}) as exposure; a group is a category of the catalog. "
        "The Gini coefficient is over all items (0: every item equally exposed; near 1: a few items "
        "get it all), with a 95% bootstrap interval over held-out sessions. Exposure / merit is a "
        "group's share of exposure over its share of merit (the expected reward of its eligible items "
        "on an examined slot, Singh and Joachims 2018): 1 is exposure in proportion to merit, below 1 "
        "a group is shown less than it deserves.")
    reports = {label: e.report for label, e in exposures.items()}
    sec.tables.append(("Exposure per policy", overview_table(
        reports, {label: (e.gini_low, e.gini_high) for label, e in exposures.items()})))
    sec.tables.append(("Exposure share and exposure / merit per group", group_table(reports)))
    frame = tradeoff_frame(exposures, values)
    sec.figures.append(("fairness_tradeoff", f"{reward} per session against the exposure Gini over items, "
                        "each with its 95% interval (left is fairer, up earns more)",
                        plots.tradeoff(frame, xlabel="exposure Gini over items",
                                       ylabel=f"{reward} per session")))
    return {"slot_weights": [float(w) for w in first.weights], "group_by": "category",
            "policies": {label: e.to_json() for label, e in exposures.items()},
            "tradeoff": frame.to_dict("records")}


def tradeoff_frame(exposures: dict[str, PolicyExposure], values: pd.DataFrame) -> pd.DataFrame:
    """Per policy: reward per session and exposure Gini, each with its 95% interval."""
    by_label = {str(r["policy"]): r for r in values.to_dict("records")}
    rows = [{"policy": label, "gini": e.report.gini, "gini_low": e.gini_low, "gini_high": e.gini_high,
             "value": float(by_label[label]["value"]), "low": float(by_label[label]["low"]),
             "high": float(by_label[label]["high"])} for label, e in exposures.items() if label in by_label]
    return pd.DataFrame(rows)
