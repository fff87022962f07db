"""Checking slate actions and turning item scores into slates.

A slate is ``k`` distinct item indices in ``0 .. n_items - 1``, in position
order. These helpers are shared by every environment and wrapper so that one
kind of bad action always gets the same message.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
from gymnasium import spaces

from simulator.envs._kernels import first_bad_slate
from simulator.errors import InvalidSlateError

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
FloatArray = npt.NDArray[np.float64]
_ARGMAX_K = 8  # up to this slate length, top_k uses k passes of argmax
_NO_MASK = np.ones((1, 1), dtype=np.bool_)


def _as_int_array(action: Any, name: str, shape: tuple[int, ...]) -> IntArray:
    arr = np.asarray(action)
    if arr.shape != shape:
        raise InvalidSlateError(
            f"`{name}` must have shape {shape} (k item indices per slate), found shape {arr.shape}. "
            "Pass an integer array of item indices, e.g. from action_space.sample().")
    if arr.dtype.kind not in "iu":
        if arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
            return arr.astype(np.int64)
        raise InvalidSlateError(
            f"`{name}` must hold integer item indices, found dtype {arr.dtype}. "
            "For item scores wrap the environment in TopKSlate.")
    return arr.astype(np.int64, copy=False)


def check_slate(action: Any, n_items: int, k: int, eligible: BoolArray | None = None,
                name: str = "action") -> IntArray:
    """Validate one slate action.

    Args:
        action: shape (k,), item indices in position order.
        n_items: catalog size.
        k: slate length.
        eligible: shape (n_items,), which items may be shown now; ``None`` allows all.
        name: how the action is called in error messages.

    Returns:
        shape (k,) int64, the slate.

    Raises:
        InvalidSlateError: wrong shape or dtype, an index outside the catalog, an
            item shown twice, or an ineligible item.
    """
    if type(action) is np.ndarray and action.shape == (k,) and action.dtype.kind in "iu":
        slate: IntArray = action.astype(np.int64, copy=False)  # the common case, kept fast
    else:
        slate = _as_int_array(action, name, (k,))
    items = slate.tolist()
    if len(set(items)) == k and min(items) >= 0 and max(items) < n_items and (
            eligible is None or all(eligible[i] for i in items)):
        return slate  # valid: the fast path
    low, high = min(items), max(items)
    if low < 0 or high >= n_items:
        bad = low if low < 0 else high
        raise InvalidSlateError(
            f"`{name}` item indices must lie in [0, {n_items - 1}] (the catalog), found {bad} "
            f"in slate {items}.")
    if len(set(items)) != k:
        raise InvalidSlateError(
            f"`{name}` must show k = {k} distinct items, found slate {items} with a duplicate. "
            "Wrap the environment in SlateMask(repair=True) to replace duplicates.")
    bad_items = [] if eligible is None else [i for i in items if not eligible[i]]
    raise InvalidSlateError(
        f"`{name}` shows ineligible items {bad_items} in slate {items}; only items with "
        "info['action_mask'] True may be shown (e.g. not already in the cart). "
        "Wrap the environment in SlateMask to mask or repair them.")


def check_slates(actions: Any, n_items: int, k: int, eligible: BoolArray | None = None,
                 name: str = "actions", n: int | None = None) -> IntArray:
    """Validate a batch of slate actions, vectorised.

    Args:
        actions: shape (n, k), item indices.
        n_items: catalog size.
        k: slate length.
        eligible: shape (n, n_items) or None.
        name: how the actions are called in error messages.
        n: the number of rows expected, or None for any.

    Returns:
        shape (n, k) int64, the slates.

    Raises:
        InvalidSlateError: naming the first bad row and how many rows are bad.
    """
    arr = np.asarray(actions)
    if arr.ndim != 2 or arr.shape[1] != k or (n is not None and arr.shape[0] != n):
        n_rows = "n" if n is None else str(n)
        raise InvalidSlateError(
            f"`{name}` must have shape ({n_rows}, {k}) (one slate of k item indices per session), "
            f"found shape {arr.shape}.")
    slates = _as_int_array(arr, name, arr.shape)
    mask = _NO_MASK
    if eligible is not None and eligible.dtype == np.bool_ and eligible.shape == (slates.shape[0], n_items):
        mask = eligible
    checked = eligible is None or mask is eligible
    if checked and first_bad_slate(slates, n_items, mask, mask is eligible) < 0:
        return slates  # every row valid, in one compiled pass; the numpy checks below say what is wrong
    outside = (slates < 0) | (slates >= n_items)
    if outside.any():
        rows = np.flatnonzero(outside.any(axis=1))
        row = int(rows[0])
        raise InvalidSlateError(
            f"`{name}` item indices must lie in [0, {n_items - 1}] (the catalog), found slate "
            f"{slates[row].tolist()} at row {row} ({rows.size} bad rows).")
    if k > 1:
        ordered = np.sort(slates, axis=1)
        dup = (ordered[:, 1:] == ordered[:, :-1]).any(axis=1)
        if dup.any():
            rows = np.flatnonzero(dup)
            row = int(rows[0])
            raise InvalidSlateError(
                f"`{name}` must show k = {k} distinct items per row, found slate "
                f"{slates[row].tolist()} at row {row} ({rows.size} rows with a duplicate). "
                "Wrap the environment in SlateMask(repair=True) to replace duplicates.")
    if eligible is not None:
        ok = np.take_along_axis(eligible, slates, axis=1)
        if not ok.all():
            rows = np.flatnonzero(~ok.all(axis=1))
            row = int(rows[0])
            bad = slates[row][~ok[row]].tolist()
            raise InvalidSlateError(
                f"`{name}` shows ineligible items {bad} at row {row} ({rows.size} bad rows); only "
                "items with info['action_mask'] True may be shown.")
    return slates


def top_k(scores: Any, k: int, eligible: BoolArray | None = None) -> IntArray:
    """The ``k`` highest-scoring eligible items, best first.

    Ties are broken towards the lower item index, so the result is a
    deterministic function of the scores.

    Args:
        scores: shape (n, n_items) or (n_items,), any real scores.
        k: slate length.
        eligible: same shape as ``scores`` (or (n_items,)), items that may be chosen.

    Returns:
        shape (n, k) int64 slates, or (k,) when ``scores`` is one-dimensional.

    Raises:
        InvalidSlateError: scores of the wrong shape, NaN scores, or fewer than
            ``k`` eligible items in a row.
    """
    s = np.asarray(scores, dtype=np.float64)
    single = s.ndim == 1
    s2 = s[None, :] if single else s
    if s2.ndim != 2 or s2.shape[1] < k:
        raise InvalidSlateError(
            f"`scores` must have shape (n_items,) or (n, n_items) with n_items >= k = {k}, "
            f"found shape {s.shape}.")
    key = s2
    if not np.isfinite(s2).all():
        if np.isnan(s2).any():
            raise InvalidSlateError("`scores` contains NaN; pass finite scores (or -inf to exclude "
                                    "an item).")
        # Lexicographic key: higher score first, then lower index; -inf marks "not eligible".
        key = np.maximum(s2, -np.finfo(np.float64).max)
    n_items = s2.shape[1]
    if eligible is not None:
        mask = np.broadcast_to(np.asarray(eligible, dtype=bool), s2.shape)
        counts = np.count_nonzero(mask, axis=1)
        if (counts < k).any():
            row = int(np.flatnonzero(counts < k)[0])
            raise InvalidSlateError(
                f"only {int(counts[row])} eligible items at row {row}, fewer than k = {k}.")
        key = np.where(mask, key, -np.inf)
    if k <= _ARGMAX_K:
        # k passes of argmax: argmax returns the first (lowest-index) maximum, so ties
        # resolve as promised, and for small k this beats argpartition.
        work = key if key is not s2 else key.copy()  # never write into the caller's scores
        rows = np.arange(work.shape[0])
        slates = np.empty((work.shape[0], k), dtype=np.int64)
        for j in range(k):
            best = np.argmax(work, axis=1)
            slates[:, j] = best
            work[rows, best] = -np.inf
    else:
        if k < n_items:
            part = np.argpartition(-key, k - 1, axis=1)[:, :k]
            # argpartition may pick any of several tied items at the boundary; re-pick by index.
            kth = np.take_along_axis(key, part, axis=1).min(axis=1, keepdims=True)
            above = key > kth
            n_above = above.sum(axis=1, keepdims=True)
            tied = (key == kth) & (np.cumsum(key == kth, axis=1) <= (k - n_above))
            part = np.nonzero(above | tied)[1].reshape(-1, k)
        else:
            part = np.broadcast_to(np.arange(n_items), s2.shape).copy()
        vals = np.take_along_axis(key, part, axis=1)
        order = np.lexsort((part, -vals), axis=1)
        slates = np.take_along_axis(part, order, axis=1).astype(np.int64)
    return slates[0] if single else slates


class SlateSpace(spaces.MultiDiscrete):
    """``MultiDiscrete([n_items] * k)`` whose members are slates of ``k`` distinct items.

    It is a :class:`gymnasium.spaces.MultiDiscrete` (learners such as PPO see
    the usual per-slot categorical space), but :meth:`sample` draws distinct
    items and :meth:`contains` rejects a slate with a duplicate.

    Args:
        n_items: catalog size.
        k: slate length, at most ``n_items``.
        seed: seed of the space's own generator.
        eligible: optional function giving the items eligible *now* (shape
            (n_items,) bool); an environment passes its ``action_mask`` so that
            ``sample()`` always draws a slate the environment accepts.
            ``contains`` stays state-free.
        required: optional function giving the items of which a slate must hold
            one now (or None when there is no such rule); ``sample()`` then
            puts one of them on a random slot.
    """

    def __init__(self, n_items: int, k: int, seed: int | np.random.Generator | None = None,
                 eligible: Callable[[], BoolArray] | None = None,
                 required: Callable[[], BoolArray | None] | None = None) -> None:
        if k < 1 or k > n_items:
            raise ValueError(f"`k` must lie in [1, n_items = {n_items}], found {k}.")
        super().__init__(np.full(k, n_items, dtype=np.int64), dtype=np.int64, seed=seed)
        self.n_items = n_items
        self.k = k
        self._eligible = eligible
        self._required = required

    def sample(self, mask: tuple[Any, ...] | None = None,
               probability: tuple[Any, ...] | None = None) -> IntArray:
        """A uniformly random slate of distinct (and, with ``eligible``, eligible) items.

        Args:
            mask: optional per-slot masks, a tuple of ``k`` arrays of shape
                (n_items,) with 1 for allowed items (Gymnasium's MultiDiscrete
                convention); items already placed are excluded from later slots.
                Without it, the ``eligible`` function (if any) gives the mask.
            probability: not supported (slates are drawn uniformly).

        Returns:
            shape (k,) int64.
        """
        if probability is not None:
            raise ValueError("SlateSpace.sample does not take `probability`; pass `mask` or nothing.")
        if mask is None and self._eligible is not None:
            ok = np.asarray(self._eligible(), dtype=bool)
            allowed = np.flatnonzero(ok)
            if allowed.size < self.k:
                raise ValueError(f"only {allowed.size} eligible items, fewer than k = {self.k}.")
            slate = allowed[self.np_random.choice(allowed.size, size=self.k, replace=False)]
            need = None if self._required is None else self._required()
            if need is not None:
                need_ok = np.asarray(need, dtype=bool) & ok
                if need_ok.any() and not need_ok[slate].any():
                    options = np.flatnonzero(need_ok)
                    slate[self.np_random.integers(self.k)] = options[self.np_random.integers(options.size)]
            return slate.astype(np.int64)
        if mask is None:
            return self.np_random.choice(self.n_items, size=self.k, replace=False).astype(np.int64)
        if len(mask) != self.k:
            raise ValueError(f"`mask` must hold k = {self.k} per-slot masks, found {len(mask)}.")
        free = np.ones(self.n_items, dtype=bool)
        out = np.empty(self.k, dtype=np.int64)
        for j, slot_mask in enumerate(mask):
            allowed = np.flatnonzero(free & (np.asarray(slot_mask) != 0))
            if allowed.size == 0:
                raise ValueError(f"`mask` leaves no item for slot {j} once earlier slots are filled.")
            out[j] = allowed[self.np_random.integers(allowed.size)]
            free[out[j]] = False
        return out

    def contains(self, x: Any) -> bool:
        """True for an integer array of ``k`` distinct in-range item indices."""
        if not super().contains(x):
            return False
        return len(set(np.asarray(x).tolist())) == self.k

    def __repr__(self) -> str:
        return f"SlateSpace(n_items={self.n_items}, k={self.k})"


def check_required(slates: IntArray, required: BoolArray | None, name: str = "action") -> None:
    """Check a world rule "every slate holds one of these items" (e.g. a cross-sell).

    Args:
        slates: shape (n, k) validated slates.
        required: shape (n, n_items) bool, or None when the world has no such rule.
            Rows with no required item at all are not constrained.
        name: how the action is called in error messages.

    Raises:
        InvalidSlateError: naming the first row whose slate holds none of its required items.
    """
    if required is None:
        return
    hit = np.take_along_axis(required, slates, axis=1).any(axis=1)
    bad = ~hit & required.any(axis=1)
    if bad.any():
        rows = np.flatnonzero(bad)
        row = int(rows[0])
        some = np.flatnonzero(required[row])[:5].tolist()
        where = "" if slates.shape[0] == 1 else f" at row {row} ({rows.size} bad rows)"
        raise InvalidSlateError(
            f"`{name}` slate {slates[row].tolist()}{where} holds no required item: the world's "
            f"rules (require_cross_sell) ask for one eligible cross-sell per slate, e.g. items "
            f"{some}; see info['required_mask'].")
