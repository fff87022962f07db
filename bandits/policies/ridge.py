"""Per-item ridge regression state shared by the linear policies (LinUCB, linear TS, ridge greedy).

Item ``i`` keeps ``A_i = reg * I + sum x x^T`` (d, d), its inverse, ``b_i = sum r x``
(d,) and ``theta_i = A_i^{-1} b_i``. One slate of distinct items is learned by
Sherman-Morrison rank-one updates of the inverses (compiled kernels,
:mod:`bandits.policies._kernels`); larger batches add their summed outer
products per item and re-invert only the items they touched.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bandits.policies import _kernels
from bandits.policies.base import expect_state
from bandits.policy import FloatArray, IntArray

#: Rows per chunk when summing outer products of a large batch.
_OUTER_CHUNK = 8_192
#: Batches up to this many rows are learned by sequential rank-one updates (exact, and
#: cheaper than re-inverting the touched items).
_RANK_ONE_ROWS = 64


class RidgeArms:
    """Disjoint ridge regressions, one per item.

    Args:
        n_items: number of items (arms).
        dim: feature dimension ``d``.
        reg: ridge penalty (> 0), the prior precision.
    """

    def __init__(self, n_items: int, dim: int, reg: float) -> None:
        eye = np.eye(dim)
        self.A = np.repeat(eye[None] * reg, n_items, axis=0)
        self.A_inv = np.repeat(eye[None] / reg, n_items, axis=0)
        self.b = np.zeros((n_items, dim))
        self.theta = np.zeros((n_items, dim))
        # Upper triangle of each inverse, off-diagonal entries doubled: the quadratic form
        # x^T A^{-1} x is then one product with the d(d+1)/2 distinct terms x_d x_e.
        self._iu = np.triu_indices(dim)
        self._tri_weight = np.where(self._iu[0] == self._iu[1], 1.0, 2.0)
        self._tri_row = self._iu[0].astype(np.int64)
        self._tri_col = self._iu[1].astype(np.int64)
        self._tri = self._triangles(self.A_inv)

    def _triangles(self, a_inv: FloatArray) -> FloatArray:
        """The weighted upper triangles (m, d (d + 1) / 2) of inverses ``a_inv`` (m, d, d), C-ordered.

        C order because the one-context kernel reads one item's row at a time (fancy
        indexing alone gives Fortran order here).
        """
        return np.ascontiguousarray(a_inv[:, self._iu[0], self._iu[1]] * self._tri_weight)

    def update(self, items: IntArray, x: FloatArray, y: FloatArray) -> None:
        """Learn from observations: item (T,), features (T, d), target (T,)."""
        if items.size == 0:
            return
        if items.size == 1:
            self.update_one(int(items[0]), x[0], float(y[0]))
            return
        if items.size <= _RANK_ONE_ROWS:
            _kernels.rank_ones(self.A, self.A_inv, self.b, self.theta, self._tri, self._tri_row,
                               self._tri_col, self._tri_weight, np.ascontiguousarray(items, dtype=np.int64),
                               np.ascontiguousarray(x, dtype=np.float64),
                               np.ascontiguousarray(y, dtype=np.float64))
            return
        order = np.argsort(items, kind="stable")
        items, x, y = items[order], x[order], y[order]
        touched, starts = np.unique(items, return_index=True)
        d = x.shape[1]
        sums = np.zeros((touched.size, d, d))
        group = np.searchsorted(touched, items)
        for lo in range(0, items.size, _OUTER_CHUNK):
            hi = min(items.size, lo + _OUTER_CHUNK)
            xs = x[lo:hi]
            np.add.at(sums, group[lo:hi], xs[:, :, None] * xs[:, None, :])
        self.A[touched] += sums
        self.b[touched] += np.add.reduceat(x * y[:, None], starts, axis=0)
        self.A_inv[touched] = np.linalg.inv(self.A[touched])
        self._tri[touched] = self._triangles(self.A_inv[touched])
        self.theta[touched] = np.einsum("ide,ie->id", self.A_inv[touched], self.b[touched])

    def update_one(self, item: int, x: FloatArray, y: float) -> None:
        """Learn one observation: Sherman-Morrison update of ``item`` (the online hot path).

        ``x`` must be a contiguous float64 array of shape (d,).
        """
        _kernels.rank_one(self.A, self.A_inv, self.b, self.theta, self._tri, self._tri_row, self._tri_col,
                          self._tri_weight, item, x, y)

    def ucb_one(self, x: FloatArray, alpha: float) -> FloatArray:
        """``x . theta_i + alpha * sqrt(x^T A_i^{-1} x)`` (n_items,) for one context ``x`` (d,), float64."""
        out = np.empty(self.theta.shape[0])
        _kernels.ucb_scores(self.theta, self._tri, self._tri_row, self._tri_col, x, alpha, out)
        return out

    def mean(self, context: FloatArray) -> FloatArray:
        """Predicted reward (n, n_items) for contexts (n, d)."""
        return context @ self.theta.T

    def variance(self, context: FloatArray) -> FloatArray:
        """``x^T A_i^{-1} x`` (n, n_items) for contexts (n, d): the ridge predictive variance factor.

        Computed as one matrix product of the distinct terms ``x_d x_e`` (d <= e) with the
        upper triangles of every ``A_i^{-1}``.
        """
        iu0, iu1 = self._iu
        if context.shape[0] == 1:
            x = context[0]
            single: FloatArray = self._tri @ (x[iu0] * x[iu1])
            return np.maximum(single, 0.0, out=single)[None, :]
        n = context.shape[0]
        out = np.empty((n, self._tri.shape[0]))
        step = max(1, _OUTER_CHUNK * 8 // max(1, iu0.size))
        d = context.shape[1]
        for lo in range(0, n, step):
            x = context[lo:lo + step]
            terms = np.empty((x.shape[0], iu0.size))
            at = 0
            for row in range(d):  # the terms x_row * x_e for e >= row, in triu order
                terms[:, at:at + d - row] = x[:, row:row + 1] * x[:, row:]
                at += d - row
            np.matmul(terms, self._tri.T, out=out[lo:lo + x.shape[0]])
        return np.maximum(out, 0.0, out=out)

    def state(self) -> dict[str, np.ndarray[Any, Any]]:
        """Arrays to save."""
        return {"A": self.A.copy(), "A_inv": self.A_inv.copy(), "b": self.b.copy(),
                "theta": self.theta.copy()}

    def set_state(self, state: dict[str, np.ndarray[Any, Any]], policy: str) -> None:
        """Restore arrays saved by :meth:`state`."""
        m, d = self.b.shape
        expect_state(state, {"A": (m, d, d), "A_inv": (m, d, d), "b": (m, d), "theta": (m, d)}, policy)
        self.A = np.array(state["A"], dtype=np.float64, order="C")
        self.A_inv = np.array(state["A_inv"], dtype=np.float64, order="C")
        self.b = np.array(state["b"], dtype=np.float64, order="C")
        self.theta = np.array(state["theta"], dtype=np.float64, order="C")
        self._tri = self._triangles(self.A_inv)
