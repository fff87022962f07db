"""The report's plots. Each function takes a tidy DataFrame and returns a matplotlib Figure."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure


def _require(frame: pd.DataFrame, columns: list[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} needs columns {columns}; missing {missing}.")


def learning_curves(curves: pd.DataFrame, metrics: tuple[str, ...] = ("reward", "regret"),
                    xlabel: str = "step") -> Figure:
    """Mean of each metric over seeds per step, with a band of +-1.96 standard errors.

    Args:
        curves: columns ``policy``, ``seed``, ``step`` and one column per metric
            (cumulative average reward, cumulative regret, ...).
        metrics: metric columns to plot, one panel each.
        xlabel: what ``step`` counts (rounds, sessions seen, ...).
    """
    _require(curves, ["policy", "seed", "step", *metrics], "learning_curves")
    fig, axes = plt.subplots(1, len(metrics), figsize=(6 * len(metrics), 4), squeeze=False)
    for ax, metric in zip(axes[0], metrics, strict=True):
        for policy, group in curves.groupby("policy", sort=False):
            stats = group.groupby("step")[metric].agg(["mean", "std", "count"])
            se = stats["std"].fillna(0.0) / np.sqrt(stats["count"])
            x = stats.index.to_numpy()
            (line,) = ax.plot(x, stats["mean"], label=str(policy))
            ax.fill_between(x, stats["mean"] - 1.96 * se, stats["mean"] + 1.96 * se,
                            color=line.get_color(), alpha=0.2, linewidth=0)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(metric)
        ax.set_title(f"{metric} (mean over seeds, 95% band)")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
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
    ax.legend(fontsize=8)
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
    axes[1].legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def estimate_vs_truth(estimates: pd.DataFrame) -> Figure:
    """Off-policy estimates with intervals against the true value, one marker per estimator.

    Args:
        estimates: columns ``policy``, ``estimator``, ``estimate``, ``low``, ``high``, ``truth``.
    """
    _require(estimates, ["policy", "estimator", "estimate", "low", "high", "truth"], "estimate_vs_truth")
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    for estimator, group in estimates.groupby("estimator", sort=False):
        err = np.vstack([group["estimate"] - group["low"], group["high"] - group["estimate"]])
        ax.errorbar(group["truth"], group["estimate"], yerr=err, fmt="o", capsize=3, label=str(estimator),
                    alpha=0.8)
    lo = float(np.nanmin(estimates[["low", "truth"]].to_numpy()))
    hi = float(np.nanmax(estimates[["high", "truth"]].to_numpy()))
    ax.plot([lo, hi], [lo, hi], color="black", linewidth=1, linestyle="--", label="estimate = truth")
    ax.set_xlabel("true value")
    ax.set_ylabel("off-policy estimate (95% interval)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
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
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
