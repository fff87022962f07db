"""Fairness of exposure per arm of an experiment, from the store's running sums.

The running totals (:class:`serving.store.ExperimentTotals`) count, per arm, how
many times each item was shown at each slot (``shown``) and the reward each item's
slot earned (``item_reward``), folded in as decisions and rewards arrive, so this
costs the number of distinct (item, slot) pairs shown, not the number of decisions.
Slots are weighted by the DCG discount ``1 / log2(j + 2)`` (the service does not know
its page's examination probabilities); groups are the catalog's categories.

Merit is estimated from the experiment's own rewards, pooled over its arms: an
item's reward per unit of exposure (reward earned over position-weighted times
shown), which under a position-based click model estimates its relevance up to one
constant; items never shown have no estimate and count as merit 0.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from bandits.exposure import position_weights, report_from_items
from serving.store import ExperimentTotals

FloatArray = npt.NDArray[np.float64]


def arm_exposure(totals: ExperimentTotals, arms: list[str], category: npt.NDArray[Any],
                 k: int) -> dict[str, Any]:
    """The ``exposure`` member of ``GET /v1/experiments/<name>``: per arm, groups, Ginis, merit ratios.

    Args:
        totals: the experiment's running totals.
        arms: the arms to report, in config order.
        category: shape (n_items,), each catalog item's category.
        k: slate length (the slot weights' length).
    """
    n_items = int(category.shape[0])
    weights = position_weights(k)
    exposure: dict[str, FloatArray] = {}
    reward = np.zeros(n_items)
    for arm in arms:
        e = np.zeros(n_items)
        for (item, slot), count in totals.shown.get(arm, {}).items():
            if 0 <= item < n_items and 0 <= slot < k:
                e[item] += count * weights[slot]
        exposure[arm] = e
        for item, value in totals.item_reward.get(arm, {}).items():
            if 0 <= item < n_items:
                reward[item] += value
    pooled = np.sum(list(exposure.values()), axis=0) if exposure else np.zeros(n_items)
    merit = np.where(pooled > 0, np.maximum(reward, 0.0) / np.where(pooled > 0, pooled, 1.0), 0.0)
    out: dict[str, Any] = {}
    for arm in arms:
        n = totals.decisions(arm)
        if n == 0:
            out[arm] = None
            continue
        report = report_from_items(exposure[arm] / n, category, weights, n,
                                   merit=merit if merit.sum() > 0 else None)
        out[arm] = report.to_json()
    return {"arms": out, "group_by": "category", "slot_weights": "dcg: 1 / log2(slot + 2)",
            "window": "every decision since the experiment started (running sums, not a scan of the rows)",
            "merit": "reward per unit of exposure of each item, pooled over the experiment's arms "
                     "(items never shown: 0)"}
