"""The report's plots. Each function takes a tidy DataFrame and returns a matplotlib Figure."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D


def _require(frame: pd.DataFrame, columns: list[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} needs columns {columns}; missing {missing}.")


#: Most bands drawn in one panel; more series become small multiples.
MAX_BANDS = 4


def _legend_outside(fig: Figure, ax: Axes) -> None:
    """The legend to the right of the panels, never over the data."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside right upper", fontsize=8, frameon=False)


def learning_curves(curves: pd.DataFrame, metrics: tuple[str, ...] = ("reward", "regret"),
                    xlabel: str = "step") -> Figure:
    """Mean of each metric over seeds per step, with a band of +-1.96 standard errors.

    Up to :data:`MAX_BANDS` policies share a panel; with more, each policy gets its own
    panel (small multiples: one row per metric, one column per policy, shared axes), the
    other policies drawn as thin grey lines for reference.

    Args:
        curves: columns ``policy``, ``seed``, ``step`` and one column per metric
            (cumulative average reward, cumulative regret, ...).
        metrics: metric columns to plot, one row of panels each.
        xlabel: what ``step`` counts (rounds, sessions seen, ...).
    """
    _require(curves, ["policy", "seed", "step", *metrics], "learning_curves")
    policies = list(dict.fromkeys(curves["policy"].astype(str)))
    stats = {(p, m): g.groupby("step")[m].agg(["mean", "std", "count"])
             for p, g in curves.groupby(curves["policy"].astype(str), sort=False) for m in metrics}
    colors = {p: f"C{i % 10}" for i, p in enumerate(policies)}

    def band(ax: Axes, policy: str, metric: str) -> None:
        st = stats[(policy, metric)]
        se = st["std"].fillna(0.0) / np.sqrt(st["count"])
        x = st.index.to_numpy()
        ax.plot(x, st["mean"], color=colors[policy], label=policy)
        ax.fill_between(x, st["mean"] - 1.96 * se, st["mean"] + 1.96 * se, color=colors[policy], alpha=0.2,
                        linewidth=0)

    if len(policies) <= MAX_BANDS:
        fig, axes = plt.subplots(1, len(metrics), figsize=(5.5 * len(metrics) + 2, 3.8), squeeze=False,
                                 layout="constrained")
        for ax, metric in zip(axes[0], metrics, strict=True):
            for policy in policies:
                band(ax, policy, metric)
            ax.set_xlabel(xlabel)
            ax.set_ylabel(metric)
            ax.grid(alpha=0.3)
        _legend_outside(fig, axes[0][0])
        fig.suptitle("mean over seeds, 95% band", fontsize=10)
        return fig
    size = (2.3 * len(policies) + 1, 2.4 * len(metrics))
    fig, axes = plt.subplots(len(metrics), len(policies), figsize=size, squeeze=False, sharex=True,
                             sharey="row", layout="constrained")
    for row, metric in enumerate(metrics):
        for col, policy in enumerate(policies):
            ax = axes[row][col]
            for other in policies:
                if other != policy:
                    st = stats[(other, metric)]
                    ax.plot(st.index.to_numpy(), st["mean"], color="#bbb", linewidth=0.8)
            band(ax, policy, metric)
            ax.grid(alpha=0.3)
            if row == 0:
                ax.set_title(policy, fontsize=9, color=colors[policy])
            if col == 0:
                ax.set_ylabel(metric, fontsize=9)
            if row == len(metrics) - 1:
                ax.set_xlabel(xlabel, fontsize=8)
            ax.tick_params(labelsize=7)
    fig.suptitle("mean over seeds with 95% band; grey: the other policies", fontsize=10)
    return fig


def value_intervals(values: pd.DataFrame, xlabel: str = "value") -> Figure:
    """Each policy's value with its interval, and the truth where known.

    Args:
        values: columns ``policy``, ``value``, ``low``, ``high`` and optionally ``truth``.
        xlabel: axis label (e.g. "revenue per session").
    """
    _require(values, ["policy", "value", "low", "high"], "value_intervals")
    frame = values.reset_index(drop=True)
    fig, ax = plt.subplots(figsize=(7, 0.5 * len(frame) + 1.5))
    y = np.arange(len(frame))
    err = np.vstack([frame["value"] - frame["low"], frame["high"] - frame["value"]])
    ax.errorbar(frame["value"], y, xerr=err, fmt="o", capsize=4, label="estimate, 95% interval")
    if "truth" in frame.columns and frame["truth"].notna().any():
        ax.scatter(frame["truth"], y, marker="x", color="black", zorder=3, label="truth")
    ax.set_yticks(y, frame["policy"].astype(str))
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=8, loc="lower left", bbox_to_anchor=(0, 1.0), ncols=2, frameon=False)
    fig.tight_layout()
    return fig


def shares(share: pd.DataFrame) -> Figure:
    """Cross-sell and up-sell share of clicks and of revenue per policy (stacked bars).

    Args:
        share: columns ``policy``, ``cross_sell_clicks``, ``up_sell_clicks``,
            ``cross_sell_revenue``, ``up_sell_revenue`` (fractions in [0, 1]).
    """
    cols = ["cross_sell_clicks", "up_sell_clicks", "cross_sell_revenue", "up_sell_revenue"]
    _require(share, ["policy", *cols], "shares")
    fig, axes = plt.subplots(1, 2, figsize=(11, 0.45 * len(share) + 2), sharey=True)
    y = np.arange(len(share))
    for ax, what in zip(axes, ("clicks", "revenue"), strict=True):
        cross = share[f"cross_sell_{what}"].to_numpy()
        up = share[f"up_sell_{what}"].to_numpy()
        ax.barh(y, cross, label="cross-sell")
        ax.barh(y, up, left=cross, label="up-sell")
        ax.barh(y, 1 - cross - up, left=cross + up, color="#ddd", label="other")
        ax.set_xlim(0, 1)
        ax.set_title(f"share of {what}")
        ax.set_yticks(y, share["policy"].astype(str))
    axes[0].invert_yaxis()
    axes[1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
    fig.tight_layout()
    return fig


def estimate_vs_truth(estimates: pd.DataFrame) -> Figure:
    """Off-policy estimates with intervals against the true value, one panel per estimator.

    Both axes span the truths (with a margin), not the estimates: an estimate or an
    interval end beyond the axes is drawn at the edge (a triangle pointing the way it
    leaves, an interval line running to the edge), so one wild estimate does not
    squeeze the others into a corner.

    Args:
        estimates: columns ``policy``, ``estimator``, ``estimate``, ``low``, ``high``, ``truth``.
    """
    _require(estimates, ["policy", "estimator", "estimate", "low", "high", "truth"], "estimate_vs_truth")
    truths = estimates["truth"].to_numpy(dtype=float)
    t_lo, t_hi = float(np.nanmin(truths)), float(np.nanmax(truths))
    pad = max(0.25 * (t_hi - t_lo), 0.1 * max(abs(t_hi), 1e-9))
    lo, hi = t_lo - pad, t_hi + pad
    estimators = list(dict.fromkeys(estimates["estimator"].astype(str)))
    fig, axes = plt.subplots(1, len(estimators), figsize=(3.6 * len(estimators) + 1.5, 3.9), squeeze=False,
                             sharey=True, layout="constrained")
    policies = list(dict.fromkeys(estimates["policy"].astype(str)))
    colors = {p: f"C{i % 10}" for i, p in enumerate(policies)}
    outside = 0
    for ax, estimator in zip(axes[0], estimators, strict=True):
        group = estimates[estimates["estimator"].astype(str) == estimator]
        ax.plot([lo, hi], [lo, hi], color="black", linewidth=1, linestyle="--", label="estimate = truth")
        for r in group.to_dict("records"):
            x, y = float(r["truth"]), float(r["estimate"])
            color = colors[str(r["policy"])]
            ax.vlines(x, max(float(r["low"]), lo), min(float(r["high"]), hi), color=color, linewidth=1.5)
            if y > hi or y < lo:
                outside += 1
                ax.scatter([x], [hi if y > hi else lo], marker="^" if y > hi else "v", s=60, color=color,
                           edgecolors="black", linewidths=0.6, zorder=3, clip_on=False)
            else:
                ax.scatter([x], [y], marker="o", s=30, color=color, zorder=3, label=str(r["policy"]))
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.set_title(estimator, fontsize=10)
        ax.set_xlabel("true value")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("estimate (95% interval)")
    handles = [Line2D([], [], color=colors[p], marker="o", linestyle="", label=p) for p in policies]
    handles += [Line2D([], [], color="black", linestyle="--", label="estimate = truth"),
                Line2D([], [], color="grey", marker="^", markeredgecolor="black", linestyle="",
                           label="estimate beyond the axes")]
    fig.legend(handles=handles, loc="outside right upper", fontsize=8, frameon=False)
    if outside:
        fig.suptitle(f"{outside} estimate(s) beyond the truths' range, drawn at the edge", fontsize=9)
    return fig


def rate_by_position(rates: pd.DataFrame, ylabel: str = "click rate") -> Figure:
    """Reward rate by slot with 95% intervals, one line per series.

    Args:
        rates: columns ``series``, ``position``, ``rate``, ``low``, ``high``.
        ylabel: axis label.
    """
    _require(rates, ["series", "position", "rate", "low", "high"], "rate_by_position")
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for series, group in rates.groupby("series", sort=False):
        err = np.vstack([group["rate"] - group["low"], group["high"] - group["rate"]])
        ax.errorbar(group["position"], group["rate"], yerr=err, fmt="o-", capsize=4, label=str(series))
    ax.set_xlabel("position (0 = first slot)")
    ax.set_ylabel(ylabel)
    ax.set_xticks(sorted(rates["position"].unique()))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
    fig.tight_layout()
    return fig


def tradeoff(frame: pd.DataFrame, xlabel: str = "exposure Gini", ylabel: str = "value",
             title: str = "95% intervals") -> Figure:
    """One point per policy at (Gini, value) with both 95% intervals as error bars, labelled.

    Args:
        frame: columns ``policy``, ``gini``, ``gini_low``, ``gini_high``, ``value``, ``low``, ``high``.
        xlabel: what the Gini is over.
        ylabel: the value's name and unit.
        title: the figure's title (how the intervals were made).
    """
    _require(frame, ["policy", "gini", "gini_low", "gini_high", "value", "low", "high"], "tradeoff")
    fig, ax = plt.subplots(figsize=(7.5, 4.6), layout="constrained")
    for i, r in enumerate(frame.to_dict("records")):
        xerr = [[max(r["gini"] - r["gini_low"], 0.0)], [max(r["gini_high"] - r["gini"], 0.0)]]
        yerr = [[max(r["value"] - r["low"], 0.0)], [max(r["high"] - r["value"], 0.0)]]
        ax.errorbar([r["gini"]], [r["value"]], xerr=xerr, yerr=yerr, fmt="o", capsize=4, color=f"C{i % 10}",
                    label=str(r["policy"]))
        ax.annotate(str(r["policy"]), (r["gini"], r["value"]), textcoords="offset points", xytext=(6, 6),
                    fontsize=8)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    _legend_outside(fig, ax)
    ax.set_title(title, fontsize=9)  # over the panel: a figure title would run into the legend
    return fig
