"""How a policy's slates share exposure among items and groups of items (fairness of exposure).

An item shown at slot ``j`` gets the slot's weight ``w_j``: the examination
probability of the slot when it is known (a world's position bias), otherwise
the logarithmic discount ``1 / log2(j + 2)`` of DCG. Exposure is the average,
over decisions, of the weights an item collected. Following Singh and Joachims
(2018, "Fairness of Exposure in Rankings"), a group's exposure is compared with
its *merit* (its expected relevance): a fair policy gives groups exposure in
proportion to merit, so every group's exposure-to-merit ratio is 1.

All functions are pure functions of arrays; :func:`exposure_report` returns a
frozen :class:`ExposureReport`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from simulator.errors import PolicyError

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def position_weights(k: int, examination: Sequence[float] | FloatArray | None = None) -> FloatArray:
    """Weight of each slot, shape (k,): ``examination`` when given, else ``1 / log2(j + 2)``."""
    if examination is None:
        return 1.0 / np.log2(np.arange(k, dtype=np.float64) + 2.0)
    w = np.asarray(examination, dtype=np.float64)
    if w.shape != (k,) or not np.all(np.isfinite(w)) or np.any(w < 0):
        raise PolicyError(f"`examination` must be {k} non-negative numbers (one per slot), "
                          f"found {w.tolist()}.")
    return w


def item_exposure(slate: IntArray, n_items: int, weights: FloatArray) -> FloatArray:
    """Mean position-weighted exposure of every item per decision, shape (n_items,).

    Args:
        slate: shape (n, k), item indices shown (negative entries are empty slots).
        n_items: catalog size.
        weights: shape (k,), weight of each slot.
    """
    s = np.asarray(slate, dtype=np.int64)
    if s.ndim != 2 or s.shape[1] != weights.shape[0]:
        raise PolicyError(f"`slate` must have shape (n, {weights.shape[0]}), found {s.shape}.")
    if s.shape[0] == 0:
        return np.zeros(n_items)
    shown = s >= 0
    if np.any(s[shown] >= n_items):
        raise PolicyError(f"`slate` holds item indices >= n_items = {n_items}.")
    w = np.broadcast_to(weights, s.shape)[shown]
    counts = np.asarray(np.bincount(s[shown], weights=w, minlength=n_items), dtype=np.float64)
    out: FloatArray = counts / s.shape[0]
    return out


def gini(values: FloatArray) -> float:
    """Gini coefficient of non-negative values (0: all equal; (m - 1) / m: one holds everything)."""
    x = np.sort(np.asarray(values, dtype=np.float64))
    m = x.shape[0]
    total = float(x.sum())
    if m == 0 or total <= 0:
        return 0.0
    ranks = np.arange(1, m + 1, dtype=np.float64)
    return float(2.0 * np.dot(ranks, x) / (m * total) - (m + 1.0) / m)


@dataclass(frozen=True, slots=True)
class ExposureReport:
    """How exposure is shared.

    Attributes:
        weights: shape (k,), the slot weights used.
        item_exposure: shape (n_items,), mean exposure per decision of each item.
        groups: group names, in the order of the per-group arrays.
        group_exposure: shape (n_groups,), mean exposure per decision of each group.
        group_share: shape (n_groups,), each group's share of all exposure.
        gini: Gini coefficient of the item exposures (over the whole catalog).
        never_shown: share of catalog items with no exposure at all.
        merit_share: shape (n_groups,), each group's share of merit, or None without merit.
        merit_ratio: shape (n_groups,), exposure share / merit share (1 is fair), or None;
            NaN for a group with no merit.
        n_decisions: decisions measured.
    """

    weights: FloatArray
    item_exposure: FloatArray
    groups: tuple[str, ...]
    group_exposure: FloatArray
    group_share: FloatArray
    gini: float
    never_shown: float
    merit_share: FloatArray | None
    merit_ratio: FloatArray | None
    n_decisions: int

    def to_json(self) -> dict[str, object]:
        """A JSON-ready summary (per group; the item vector is summarised by its Gini)."""
        out: dict[str, object] = {
            "n_decisions": self.n_decisions, "position_weights": [float(w) for w in self.weights],
            "gini": self.gini, "never_shown_share": self.never_shown,
            "groups": {g: {"exposure": float(e), "share": float(s)} for g, e, s in
                       zip(self.groups, self.group_exposure, self.group_share, strict=True)}}
        if self.merit_ratio is not None and self.merit_share is not None:
            for i, g in enumerate(self.groups):
                group = out["groups"][g]  # type: ignore[index]
                group["merit_share"] = float(self.merit_share[i])
                ratio = float(self.merit_ratio[i])
                group["exposure_to_merit"] = None if not np.isfinite(ratio) else ratio
        return out


def exposure_report(slate: IntArray, n_items: int, group: Sequence[object] | npt.NDArray[np.generic], *,
                    examination: Sequence[float] | FloatArray | None = None,
                    merit: FloatArray | None = None) -> ExposureReport:
    """Measure how the slates ``slate`` (n, k) share exposure among items and groups.

    Args:
        slate: shape (n, k), item indices shown.
        n_items: catalog size.
        group: shape (n_items,), each item's group (a category, a seller).
        examination: slot examination probabilities (None: the DCG discount).
        merit: shape (n_items,), each item's expected relevance (for example its click or
            purchase probability, or mean reward); None leaves the merit ratios out.

    Raises:
        PolicyError: shapes that do not match, naming the argument.
    """
    s = np.asarray(slate, dtype=np.int64)
    k = s.shape[1] if s.ndim == 2 else 0
    w = position_weights(k, examination)
    exp_item = item_exposure(s, n_items, w)
    labels = np.asarray([str(g) for g in group])
    if labels.shape != (n_items,):
        raise PolicyError(f"`group` must name the group of each of the {n_items} items, found "
                          f"{labels.shape[0]} entries.")
    names, index = np.unique(labels, return_inverse=True)
    g_exp = np.asarray(np.bincount(index, weights=exp_item, minlength=names.shape[0]), dtype=np.float64)
    total = float(g_exp.sum())
    share: FloatArray = g_exp / total if total > 0 else np.zeros(g_exp.shape[0])
    merit_share: FloatArray | None = None
    ratio: FloatArray | None = None
    if merit is not None:
        m = np.asarray(merit, dtype=np.float64)
        if m.shape != (n_items,) or not np.all(np.isfinite(m)) or np.any(m < 0):
            raise PolicyError(f"`merit` must be {n_items} non-negative numbers (one per item).")
        g_merit = np.asarray(np.bincount(index, weights=m, minlength=names.shape[0]), dtype=np.float64)
        merit_total = float(g_merit.sum())
        merit_share = g_merit / merit_total if merit_total > 0 else np.zeros(g_merit.shape[0])
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(merit_share > 0, share / np.where(merit_share > 0, merit_share, 1.0), np.nan)
    return ExposureReport(weights=w, item_exposure=exp_item, groups=tuple(str(n) for n in names),
                          group_exposure=g_exp, group_share=share, gini=gini(exp_item),
                          never_shown=float(np.mean(exp_item == 0)), merit_share=merit_share,
                          merit_ratio=ratio, n_decisions=int(s.shape[0]))
