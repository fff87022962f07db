"""Checked inputs of the estimators: a log and an evaluation policy's action distribution, as arrays.

Shapes (documented once): ``n`` logged decisions, ``k`` slots per logged row
(``k = 1`` for logs with one row per position), ``n_items`` items, ``n_positions``
slots on the page. ``action_dist`` has shape ``(n, n_items, n_positions)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from simulator.errors import OPEError
from simulator.logs import SlateLog

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: How far a slot's probabilities may sum from one.
SUM_TOLERANCE = 1e-6


@dataclass(frozen=True, slots=True)
class OPEData:
    """Per (row, slot) arrays every estimator reads.

    Attributes:
        context: (n, d) float64.
        item: (n, k) logged item indices.
        slot: (n, k) the page slot of each logged item (its column of ``action_dist``).
        reward: (n, k) per-slot reward.
        pscore_item: (n, k) logging probability of the logged item at its slot.
        pi_item: (n, k) evaluation probability of the logged item at its slot.
        weight: (n, k) importance weight ``pi_item / pscore_item``.
        action_dist: (n, n_items, n_positions), possibly a broadcast view.
        pscore: (n,) logging probability of the whole logged row.
    """

    context: FloatArray
    item: IntArray
    slot: IntArray
    reward: FloatArray
    pscore_item: FloatArray
    pi_item: FloatArray
    weight: FloatArray
    action_dist: FloatArray
    pscore: FloatArray
    has_position: bool

    @property
    def n(self) -> int:
        """Logged rows."""
        return int(self.item.shape[0])

    @property
    def k(self) -> int:
        """Slots per logged row."""
        return int(self.item.shape[1])

    @property
    def n_items(self) -> int:
        """Items in the catalog."""
        return int(self.action_dist.shape[1])

    @property
    def n_positions(self) -> int:
        """Slots on the page."""
        return int(self.action_dist.shape[2])


def _first(mask: npt.NDArray[np.bool_]) -> tuple[int, ...]:
    return tuple(int(v) for v in np.argwhere(mask)[0])


def check_action_dist(action_dist: Any, n: int, n_items: int, n_positions: int) -> FloatArray:
    """``action_dist`` as float64 of shape (n, n_items, n_positions), each slot summing to one."""
    dist = np.asarray(action_dist)
    expected = (n, n_items, n_positions)
    if dist.ndim == 2 and n_positions == 1 and dist.shape == (n, n_items):
        dist = dist[:, :, None]
    if dist.shape != expected:
        raise OPEError(f"`action_dist` has shape {dist.shape}; expected (n, n_items, n_positions) = "
                       f"{expected} for this log. Get it from policy.action_dist(log.context) of a "
                       f"policy built with n_items={n_items} and k={n_positions}.")
    if dist.dtype.kind not in "fiu":
        raise OPEError(f"`action_dist` has dtype {dist.dtype}; expected probabilities as floats.")
    dist = dist.astype(np.float64, copy=False)
    if not np.isfinite(dist).all():
        row, item, slot = _first(~np.isfinite(dist))
        raise OPEError(f"`action_dist` is not finite at row {row}, item {item}, slot {slot}.")
    if (dist < 0).any():
        row, item, slot = _first(dist < 0)
        raise OPEError(f"`action_dist` is negative ({dist[row, item, slot]:.3g}) at row {row}, item {item}, "
                       f"slot {slot}; probabilities must be >= 0.")
    sums = dist.sum(axis=1)
    bad = np.abs(sums - 1.0) > SUM_TOLERANCE
    if bad.any():
        row, slot = _first(bad)
        raise OPEError(f"`action_dist` at row {row}, slot {slot} sums to {sums[row, slot]:.6g} over items; "
                       "each slot's probabilities must sum to 1 (normalise the distribution, or check "
                       "that its axes are (row, item, slot)).")
    return dist


def prepare(log: SlateLog, action_dist: Any) -> OPEData:
    """Check ``action_dist`` against ``log`` and gather the per (row, slot) arrays."""
    if not isinstance(log, SlateLog):
        raise OPEError(f"`log` must be a simulator.logs.SlateLog, found {type(log).__name__}; "
                       "load one with simulator.logs.load_parquet or import_obd.")
    n, k = log.slate.shape
    dist = check_action_dist(action_dist, n, log.n_items, log.n_positions)
    if log.position is not None:
        slot = np.asarray(log.position, dtype=np.int64)[:, None]
    else:
        slot = np.broadcast_to(np.arange(k, dtype=np.int64), (n, k))
    item = np.asarray(log.slate, dtype=np.int64)
    rows = np.arange(n)[:, None]
    pi_item = dist[rows, item, slot]
    pscore_item = np.asarray(log.pscore_item, dtype=np.float64)
    # SlateLog validation already guarantees pscores in (0, 1] and finite rewards.
    return OPEData(context=np.asarray(log.context, dtype=np.float64), item=item, slot=slot,
                   reward=np.asarray(log.reward, dtype=np.float64), pscore_item=pscore_item,
                   pi_item=pi_item, weight=pi_item / pscore_item, action_dist=dist,
                   pscore=np.asarray(log.pscore, dtype=np.float64), has_position=log.position is not None)


def check_row_array(name: str, value: Any, shape: tuple[int, ...], *, probability: bool = True) -> FloatArray:
    """An extra per-row input (e.g. ``eval_pscore``) as float64 of ``shape``, probabilities in [0, 1]."""
    arr = np.asarray(value, dtype=np.float64) if value is not None else None
    if arr is None or arr.shape != shape:
        found = "nothing" if arr is None else f"shape {arr.shape}"
        raise OPEError(f"`{name}` must have shape {shape}; found {found}.")
    if not np.isfinite(arr).all():
        raise OPEError(f"`{name}` has a non-finite value at {_first(~np.isfinite(arr))}.")
    if probability and ((arr < 0) | (arr > 1)).any():
        where = _first((arr < 0) | (arr > 1))
        raise OPEError(f"`{name}` must hold probabilities in [0, 1]; found {arr[where]:.4g} at {where}.")
    return arr


_KINDS = {
    "value": "finite numbers",
    "pscore": "logging probabilities in (0, 1]",
    "probability": "probabilities in [0, 1]",
}


def check_slot_array(name: str, value: Any, shape: tuple[int, ...] | None, kind: str) -> FloatArray:
    """A per (row, slot) input as float64 of shape (n, k); (n,) is read as k = 1.

    ``shape`` (when given) is the shape it must have; ``kind`` is ``'value'`` (finite),
    ``'pscore'`` (in (0, 1]) or ``'probability'`` (in [0, 1]).
    """
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise OPEError(f"`{name}` must be an array of numbers; found {type(value).__name__}.") from None
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[0] < 1:
        raise OPEError(f"`{name}` must have shape (n, k) or (n,) with n >= 1; found shape {np.shape(value)}.")
    if shape is not None and arr.shape != shape:
        raise OPEError(f"`{name}` has shape {arr.shape} but `reward` has shape {shape}; give one value per "
                       "(row, slot) of the log.")
    finite = np.isfinite(arr)
    if not finite.all():
        row, slot = _first(~finite)
        raise OPEError(f"`{name}` is not finite ({arr[row, slot]}) at row {row}, slot {slot}; expected "
                       f"{_KINDS[kind]}.")
    if kind == "pscore":
        bad = (arr <= 0) | (arr > 1)
        if bad.any():
            row, slot = _first(bad)
            raise OPEError(f"`{name}` is {arr[row, slot]:.4g} at row {row}, slot {slot}; expected "
                           f"{_KINDS[kind]}: a logged item must have had a chance to be shown (fix the "
                           "logging propensities).")
    elif kind == "probability":
        bad = (arr < 0) | (arr > 1)
        if bad.any():
            row, slot = _first(bad)
            raise OPEError(f"`{name}` is {arr[row, slot]:.4g} at row {row}, slot {slot}; expected "
                           f"{_KINDS[kind]}.")
    return arr
