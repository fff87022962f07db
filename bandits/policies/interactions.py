"""The shopper x item interaction store behind the recommenders, and their refresh cadence.

**Rows.** An interaction is a shown item that earned a reward (a click, a
purchase, revenue), plus the session's anchor item when that row has any. A
row of the matrix is a shopper when the policy is given a ``shopper_column``
(the context column holding the shopper's index in ``[0, n_shoppers)``, or -1
for an anonymous shopper); otherwise — and for anonymous shoppers — every
decision with an interaction is its own row (a basket, as session-based
recommenders use). Weights count interactions (implicit feedback: 1 per
rewarded item or anchor), so revenue rewards do not swamp clicks.

**Cadence.** Feedback enters the store as it arrives (amortised O(basket) per
event). What is costly to keep exact under every event — neighbour tables,
factor matrices, mined rules — is rebuilt from the whole store every
``refresh_every`` events. A batch is split at those boundaries, so learning a
batch at once or one event at a time gives the same models.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from bandits.policies.anchored import anchored_context, read_anchors
from bandits.policies.base import ScorePolicy, check_int, expect_state
from bandits.policy import Feedback, FloatArray, IntArray
from simulator.errors import PolicyError


class InteractionStore:
    """Growing (row, item, weight) triplets, with amortised appends.

    Args:
        n_items: catalog size.
        min_rows: rows the matrix has before any interaction (the known shoppers).
    """

    def __init__(self, n_items: int, min_rows: int = 0) -> None:
        self.n_items = n_items
        self.min_rows = min_rows
        self._row = np.zeros(0, dtype=np.int64)
        self._item = np.zeros(0, dtype=np.int64)
        self._weight = np.zeros(0, dtype=np.float64)
        self._size = 0
        self.n_rows = min_rows

    @property
    def size(self) -> int:
        """Number of stored interactions."""
        return self._size

    def append(self, row: IntArray, item: IntArray, weight: FloatArray) -> None:
        """Add interactions (each array shape (m,))."""
        m = row.shape[0]
        need = self._size + m
        if need > self._row.shape[0]:
            cap = max(need, 2 * self._row.shape[0], 1024)
            for name in ("_row", "_item", "_weight"):
                old = getattr(self, name)
                new = np.zeros(cap, dtype=old.dtype)
                new[: self._size] = old[: self._size]
                setattr(self, name, new)
        self._row[self._size:need] = row
        self._item[self._size:need] = item
        self._weight[self._size:need] = weight
        self._size = need
        if m:
            self.n_rows = max(self.n_rows, int(row.max()) + 1)

    def matrix(self) -> sp.csr_matrix:
        """The interaction matrix (n_rows, n_items), duplicates summed."""
        return self.matrix_prefix(self._size)

    def matrix_prefix(self, size: int) -> sp.csr_matrix:
        """The matrix of the first ``size`` interactions stored (a past snapshot)."""
        rows = self._row[:size]
        n_rows = max(self.min_rows, int(rows.max()) + 1 if size else 0)
        mat = sp.csr_matrix((self._weight[:size], (rows, self._item[:size])), shape=(n_rows, self.n_items))
        mat.sum_duplicates()
        return mat

    def popularity(self) -> FloatArray:
        """Interactions per item, shape (n_items,)."""
        s = self._size
        pop = np.bincount(self._item[:s], weights=self._weight[:s], minlength=self.n_items)
        return pop.astype(np.float64)

    def state(self) -> dict[str, np.ndarray[Any, Any]]:
        """Arrays to save."""
        s = self._size
        return {"rows": self._row[:s].copy(), "items": self._item[:s].copy(),
                "weights": self._weight[:s].copy(), "n_rows": np.array([self.n_rows])}

    def set_state(self, state: dict[str, np.ndarray[Any, Any]]) -> None:
        """Restore arrays saved by :meth:`state`."""
        self._row = np.array(state["rows"], dtype=np.int64)
        self._item = np.array(state["items"], dtype=np.int64)
        self._weight = np.array(state["weights"], dtype=np.float64)
        self._size = int(self._row.shape[0])
        self.n_rows = max(self.min_rows, int(state["n_rows"][0]))
        if not (self._item.shape == self._weight.shape == (self._size,)):
            raise PolicyError("saved interactions `rows`, `items` and `weights` must have one shape.")


class InteractionPolicy(ScorePolicy):
    """A top-k scorer over the interaction store, with the anchor and shopper conventions.

    The anchor is read from ``anchor_column`` (as :mod:`bandits.policies.anchored`
    does); the shopper, when ``shopper_column`` is given, from that column.
    Subclasses implement :meth:`_refresh` (rebuild the model from the store) and
    :meth:`_score_rows` (scores for rows given their anchors and shoppers).

    Args:
        n_items: catalog size.
        k: slate length.
        dim_context: context dimension (0: any width holding the anchor column).
        anchor_column: context column holding the anchor item index (-1: none).
        shopper_column: context column holding the shopper index (-1: anonymous), or None.
        n_shoppers: number of known shoppers (rows of the matrix) when ``shopper_column`` is set.
        refresh_every: events between model rebuilds (>= 1).
        epsilon: exploration probability in [0, 1].
        examination: shape (k,), examination probability of each slot, or None.
        seed: seed of the policy's random generator.
    """

    #: The policy reads the anchor item from context column ``anchor_column``.
    anchor_context = True

    def __init__(self, n_items: int, k: int, dim_context: int = 0, *, anchor_column: int = 0,
                 shopper_column: int | None = None, n_shoppers: int = 0, refresh_every: int = 1000,
                 epsilon: float = 0.0, examination: Sequence[float] | None = None,
                 seed: int | None = None) -> None:
        super().__init__(n_items, k, dim_context, epsilon=epsilon, examination=examination, seed=seed)
        self.anchor_column = check_int("anchor_column", anchor_column, low=0)
        self.shopper_column = None if shopper_column is None else check_int(
            "shopper_column", shopper_column, low=0)
        self.n_shoppers = check_int("n_shoppers", n_shoppers, low=0)
        self.refresh_every = check_int("refresh_every", refresh_every, low=1)
        for name, col in (("anchor_column", self.anchor_column), ("shopper_column", self.shopper_column)):
            if col is not None and self.dim_context and col >= self.dim_context:
                raise PolicyError(f"`{name}` must be a context column in [0, {self.dim_context - 1}], "
                                  f"found {col}.")
        if self.shopper_column is not None and self.n_shoppers < 1:
            raise PolicyError("`shopper_column` needs `n_shoppers` >= 1 (the number of known shoppers).")
        if self.shopper_column is not None and self.shopper_column == self.anchor_column:
            raise PolicyError("`shopper_column` and `anchor_column` must be different context columns.")
        # Anonymous baskets get rows after the known shoppers.
        self._store = InteractionStore(self.n_items, self.n_shoppers)
        self._n_events = 0
        self._n_refreshes = 0
        self._pop = np.zeros(self.n_items)

    @classmethod
    def example_context(cls, rng: np.random.Generator, n: int, dim_context: int,
                        n_items: int) -> FloatArray:
        """Contexts whose column 0 is a random anchor item (or -1)."""
        return anchored_context(rng, n, dim_context, n_items)

    # ------------------------------------------------------------ context
    def anchors(self, context: FloatArray) -> IntArray:
        """Anchor item (n,) of each row, -1 for none."""
        return read_anchors(context, self.anchor_column, self.n_items)

    def shoppers(self, context: FloatArray) -> IntArray:
        """Shopper index (n,) of each row, -1 for anonymous (always -1 without ``shopper_column``)."""
        n = context.shape[0]
        col = self.shopper_column
        if col is None:
            return np.full(n, -1, dtype=np.int64)
        if context.shape[1] <= col:
            raise PolicyError(f"`context` must hold the shopper index in column {col} (`shopper_column`), "
                              f"found only {context.shape[1]} columns.")
        values = context[:, col]
        bad = (values != np.round(values)) | (values < -1) | (values >= self.n_shoppers)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise PolicyError(f"`context[:, {col}]` must hold shopper indices in [-1, {self.n_shoppers - 1}] "
                              f"(-1 for anonymous), found {float(values[row])!r} at row {row}.")
        return values.astype(np.int64)

    # ------------------------------------------------------------ learning
    def _update(self, feedback: Feedback) -> None:
        """Absorb the feedback, rebuilding the model at every ``refresh_every``-th event."""
        n = feedback.n_rounds
        lo = 0
        while lo < n:
            to_boundary = self.refresh_every - self._n_events % self.refresh_every
            hi = min(n, lo + to_boundary)
            self._absorb(feedback.context[lo:hi], feedback.slate[lo:hi], feedback.reward[lo:hi])
            self._n_events += hi - lo
            lo = hi
            if self._n_events % self.refresh_every == 0:
                self._refresh()
                self._n_refreshes += 1

    def _absorb(self, context: FloatArray, slate: IntArray, reward: FloatArray) -> None:
        anchors = self.anchors(context)
        shoppers = self.shoppers(context)
        hit = reward > 0
        has = hit.any(axis=1)
        if not has.any():
            return
        rows = shoppers.copy()
        anon = np.flatnonzero(has & (rows < 0))
        rows[anon] = self._store.n_rows + np.arange(anon.size)
        r_idx, c_idx = np.nonzero(hit)
        items = slate[r_idx, c_idx]
        with_anchor = np.flatnonzero(has & (anchors >= 0))
        # Stored decision by decision (its rewarded items, then its anchor), as one event at a time would.
        order = np.argsort(np.concatenate([r_idx, with_anchor]), kind="stable")
        row_all = np.concatenate([rows[r_idx], rows[with_anchor]])[order]
        item_all = np.concatenate([items, anchors[with_anchor]])[order]
        self._store.append(row_all, item_all, np.ones(row_all.shape[0]))
        self._pop += np.bincount(item_all, minlength=self.n_items)

    @abstractmethod
    def _refresh(self) -> None:
        """Rebuild the model from ``self._store``."""

    # ------------------------------------------------------------ scoring
    def _scores(self, context: FloatArray) -> FloatArray:
        anchors = self.anchors(context)
        shoppers = self.shoppers(context)
        scores = self._score_rows(anchors, shoppers)
        pop = self._pop
        # Items the model cannot rank follow by popularity; the anchor itself goes last.
        scores = scores + 1e-6 * pop[None, :] / (1.0 + float(pop.max(initial=0.0)))
        has = anchors >= 0
        scores[np.flatnonzero(has), anchors[has]] = -1e300
        return scores

    @abstractmethod
    def _score_rows(self, anchors: IntArray, shoppers: IntArray) -> FloatArray:
        """Model scores (n, n_items) for rows with these anchors (-1: none) and shoppers (-1: none)."""

    def _shopper_items(self, matrix: sp.csr_matrix, shoppers: IntArray,
                       anchors: IntArray) -> sp.csr_matrix:
        """Each row's current items (n, n_items): the shopper's row of ``matrix`` plus the anchor."""
        n = shoppers.shape[0]
        known = shoppers >= 0
        if known.any() and matrix.shape[0]:
            rows = np.where(known & (shoppers < matrix.shape[0]), shoppers, 0)
            base = matrix[rows]
            base = sp.diags((known & (shoppers < matrix.shape[0])).astype(np.float64)) @ base
        else:
            base = sp.csr_matrix((n, self.n_items))
        has = anchors >= 0
        extra = sp.csr_matrix((np.ones(int(has.sum())), (np.flatnonzero(has), anchors[has])),
                              shape=(n, self.n_items))
        return (base + extra).tocsr()

    # ------------------------------------------------------------ state
    def _base_state(self) -> dict[str, np.ndarray[Any, Any]]:
        return {**self._store.state(), "counters": np.array([self._n_events, self._n_refreshes])}

    def _set_base_state(self, state: dict[str, np.ndarray[Any, Any]], model: dict[str, tuple[int, ...]]
                        ) -> None:
        size = state["rows"].shape if "rows" in state else (0,)
        shapes = {"rows": size, "items": size, "weights": size, "n_rows": (1,), "counters": (2,), **model}
        expect_state(state, shapes, type(self).__name__)
        self._store.set_state(state)
        self._pop = self._store.popularity()
        self._n_events, self._n_refreshes = (int(v) for v in state["counters"])
