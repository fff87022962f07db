"""Neighbourhood collaborative filtering over the shopper x item matrix: item-based and user-based.

Both read the anchor (and, with ``shopper_column``, the shopper) from the
context and learn from the interaction store of
:mod:`bandits.policies.interactions`. A row's *current items* are the anchor
plus, for a known shopper, the shopper's row of the matrix.

Similarity of two vectors ``u, v`` (columns for items, rows for shoppers) is
the cosine ``u.v / (|u| |v|)`` — of binary interactions for ``"cosine"``, of
interaction counts centred per shopper for ``"adjusted_cosine"`` (each
shopper's mean count removed from their non-zero entries) — times the
shrinkage ``n_uv / (n_uv + shrinkage)`` where ``n_uv`` is the number of
co-rated entries, so similarities resting on few shoppers count less.

Refresh cadence: new interactions enter the store at once; the similarity
index (item-based: each item's ``n_neighbours`` most similar items; user-based:
the matrix snapshot the neighbours are searched in) is rebuilt every
``refresh_every`` events. An exact incremental update would touch every
neighbour list an interaction changes, O(basket x n_items) per event.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from bandits.policies.base import check_int, check_number
from bandits.policies.interactions import InteractionPolicy
from bandits.policy import FloatArray, IntArray, register_policy
from simulator.errors import PolicyError

SIMILARITIES = ("cosine", "adjusted_cosine")


def top_n_per_row(mat: sp.csr_matrix, n: int) -> sp.csr_matrix:
    """Keep the ``n`` largest entries of each row (ties to the lower column), dropping the rest."""
    coo = mat.tocoo()
    order = np.lexsort((coo.col, -coo.data, coo.row))
    rows = coo.row[order]
    starts = np.searchsorted(rows, rows, side="left")
    keep = order[(np.arange(rows.shape[0]) - starts) < n]
    return sp.csr_matrix((coo.data[keep], (coo.row[keep], coo.col[keep])), shape=mat.shape)


def binary(mat: sp.csr_matrix) -> sp.csr_matrix:
    """1.0 where ``mat`` has a non-zero entry."""
    out = sp.csr_matrix(mat, dtype=np.float64, copy=True)
    out.data = (out.data != 0).astype(np.float64)
    out.eliminate_zeros()
    return out


def centred(mat: sp.csr_matrix) -> sp.csr_matrix:
    """Each row's mean non-zero weight removed from its non-zero entries (adjusted cosine)."""
    out = mat.copy().astype(np.float64)
    counts = np.diff(out.indptr)
    sums = np.add.reduceat(out.data, out.indptr[:-1]) if out.nnz else np.zeros(out.shape[0])
    means = np.where(counts > 0, sums / np.maximum(counts, 1), 0.0)
    out.data = out.data - np.repeat(means, counts)
    return out


def shrunk_cosine(a: sp.csr_matrix, b: sp.csr_matrix, a_bin: sp.csr_matrix, b_bin: sp.csr_matrix,
                  shrinkage: float) -> sp.csr_matrix:
    """Shrunk cosine of every row of ``a`` with every row of ``b`` (sparse, zero where nothing is shared)."""
    dot = (a @ b.T).tocsr()
    co = (a_bin @ b_bin.T).tocsr()
    na = np.sqrt(np.asarray(a.multiply(a).sum(axis=1)).ravel())
    nb = np.sqrt(np.asarray(b.multiply(b).sum(axis=1)).ravel())
    coo = dot.tocoo()
    co.sum_duplicates()  # canonical: row-major, sorted columns
    co_coo = co.tocoo()
    width = max(dot.shape[1], 1)
    co_keys = co_coo.row.astype(np.int64) * width + co_coo.col
    keys = coo.row.astype(np.int64) * width + coo.col
    pos = np.clip(np.searchsorted(co_keys, keys), 0, max(co_keys.shape[0] - 1, 0))
    co_val = co_coo.data[pos] if co_keys.shape[0] else np.zeros(keys.shape[0])
    denom = na[coo.row] * nb[coo.col]
    val = np.where(denom > 0, coo.data / np.where(denom > 0, denom, 1.0), 0.0) * co_val / (co_val + shrinkage)
    out = sp.csr_matrix((val, (coo.row, coo.col)), shape=dot.shape)
    out.eliminate_zeros()
    return out


class _NeighbourCF(InteractionPolicy):
    """Shared arguments and checks of the two collaborative filters."""

    def __init__(self, n_items: int, k: int, dim_context: int = 0, *, anchor_column: int = 0,
                 shopper_column: int | None = None, n_shoppers: int = 0, similarity: str = "cosine",
                 shrinkage: float = 10.0, n_neighbours: int = 50, refresh_every: int = 1000,
                 epsilon: float = 0.0, examination: Sequence[float] | None = None,
                 seed: int | None = None) -> None:
        super().__init__(n_items, k, dim_context, anchor_column=anchor_column, shopper_column=shopper_column,
                         n_shoppers=n_shoppers, refresh_every=refresh_every, epsilon=epsilon,
                         examination=examination, seed=seed)
        if similarity not in SIMILARITIES:
            raise PolicyError(f"`similarity` must be one of {SIMILARITIES}, found {similarity!r}.")
        self.similarity = similarity
        self.shrinkage = check_number("shrinkage", shrinkage, low=0.0)
        self.n_neighbours = check_int("n_neighbours", n_neighbours, low=1)
        self._snap = 0
        self._matrix = sp.csr_matrix((self._store.n_rows, self.n_items))

    def _snapshot(self) -> None:
        self._snap = self._store.size
        self._matrix = self._store.matrix()

    def _weighted(self, mat: sp.csr_matrix) -> sp.csr_matrix:
        """Counts centred per shopper (adjusted cosine), or binary interactions (cosine)."""
        if self.similarity == "adjusted_cosine":
            return centred(mat)
        return binary(mat)

    def _current(self, anchors: IntArray, shoppers: IntArray) -> sp.csr_matrix:
        return self._shopper_items(self._matrix, shoppers, anchors)


@register_policy("item_cf")
class ItemCF(_NeighbourCF):
    """Item-based collaborative filtering (Sarwar et al. 2001) with shrunk cosine and top-N neighbours.

    ``score(i) = sum over current items j of sim(j, i)`` where ``sim(j, .)``
    keeps only item ``j``'s ``n_neighbours`` most similar items. Items without
    a neighbour score follow by popularity; the anchor itself goes last.

    Args:
        n_items: catalog size.
        k: slate length.
        dim_context: context dimension (0: any width holding the anchor column).
        anchor_column: context column holding the anchor item index (-1: none).
        shopper_column: context column holding the shopper index (-1: anonymous), or None.
        n_shoppers: number of known shoppers when ``shopper_column`` is set.
        similarity: ``"cosine"`` or ``"adjusted_cosine"``.
        shrinkage: ``lambda`` (>= 0) of the shrinkage ``n / (n + lambda)``.
        n_neighbours: neighbours kept per item (>= 1).
        refresh_every: events between rebuilds of the neighbour table (>= 1).
        epsilon: exploration probability in [0, 1].
        examination: shape (k,), examination probability of each slot, or None.
        seed: seed of the policy's random generator.
    """

    def __init__(self, n_items: int, k: int, dim_context: int = 0, *, anchor_column: int = 0,
                 shopper_column: int | None = None, n_shoppers: int = 0, similarity: str = "cosine",
                 shrinkage: float = 10.0, n_neighbours: int = 50, refresh_every: int = 1000,
                 epsilon: float = 0.0, examination: Sequence[float] | None = None,
                 seed: int | None = None) -> None:
        super().__init__(n_items, k, dim_context, anchor_column=anchor_column, shopper_column=shopper_column,
                         n_shoppers=n_shoppers, similarity=similarity, shrinkage=shrinkage,
                         n_neighbours=n_neighbours, refresh_every=refresh_every, epsilon=epsilon,
                         examination=examination, seed=seed)
        self._set_neighbours(sp.csr_matrix((self.n_items, self.n_items)))

    @classmethod
    def example(cls, n_items: int, k: int, dim_context: int, *, seed: int | None = None) -> ItemCF:
        """A small item-based filter refreshed every 50 events, with a little exploration."""
        return cls(n_items, k, dim_context, shrinkage=2.0, n_neighbours=3, refresh_every=50, epsilon=0.1,
                   seed=seed)

    def item_similarity(self) -> sp.csr_matrix:
        """Shrunk similarity of every item pair from the last snapshot, (n_items, n_items), diagonal 0."""
        cols = self._weighted(self._matrix).T.tocsr()
        seen = binary(self._matrix).T.tocsr()
        sim = shrunk_cosine(cols, cols, seen, seen, self.shrinkage).tolil()
        sim.setdiag(0.0)
        out = sim.tocsr()
        out.eliminate_zeros()
        return out

    def _refresh(self) -> None:
        self._snapshot()
        sim = self.item_similarity()
        # Only positive similarities vote (adjusted cosine can be negative).
        sim.data = np.maximum(sim.data, 0.0)
        sim.eliminate_zeros()
        self._set_neighbours(top_n_per_row(sim, self.n_neighbours))

    def _set_neighbours(self, nb: sp.csr_matrix) -> None:
        """Keep the neighbour matrix and a padded (n_items, n_neighbours) table of it for anchor-only rows."""
        self._neighbours = nb
        counts = np.diff(nb.indptr)
        width = max(int(counts.max(initial=0)), 1)
        self._nbr_idx = np.zeros((self.n_items, width), dtype=np.int64)
        self._nbr_sim = np.zeros((self.n_items, width))
        rows = np.repeat(np.arange(self.n_items), counts)
        slot = np.arange(nb.nnz) - np.repeat(nb.indptr[:-1], counts)
        self._nbr_idx[rows, slot] = nb.indices
        self._nbr_sim[rows, slot] = nb.data

    def _score_rows(self, anchors: IntArray, shoppers: IntArray) -> FloatArray:
        if self.shopper_column is None:  # current items = the anchor: read its neighbour list
            scores = np.zeros((anchors.shape[0], self.n_items))
            has = np.flatnonzero(anchors >= 0)
            np.add.at(scores, (has[:, None], self._nbr_idx[anchors[has]]), self._nbr_sim[anchors[has]])
            return scores
        current = self._current(anchors, shoppers)
        current.data = np.ones_like(current.data)
        return np.asarray((current @ self._neighbours).toarray(), dtype=np.float64)

    def _get_state(self) -> dict[str, np.ndarray[Any, Any]]:
        nb = self._neighbours.tocoo()
        return {**self._base_state(), "snap": np.array([self._snap]),
                "nbr_row": nb.row.astype(np.int64), "nbr_col": nb.col.astype(np.int64),
                "nbr_sim": nb.data.astype(np.float64)}

    def _set_state(self, state: dict[str, np.ndarray[Any, Any]]) -> None:
        nnz = state["nbr_row"].shape if "nbr_row" in state else (0,)
        self._set_base_state(state, {"snap": (1,), "nbr_row": nnz, "nbr_col": nnz, "nbr_sim": nnz})
        self._snap = int(state["snap"][0])
        self._matrix = self._store.matrix_prefix(self._snap)
        m = self.n_items
        self._set_neighbours(sp.csr_matrix((state["nbr_sim"], (state["nbr_row"], state["nbr_col"])),
                                           shape=(m, m)))


@register_policy("user_cf")
class UserCF(_NeighbourCF):
    """User-based collaborative filtering with shrunk cosine and top-N neighbours.

    A row's current items (anchor plus the shopper's own row) are compared with
    every row of the matrix snapshot; the ``n_neighbours`` most similar rows
    (never the shopper's own) vote: ``score(i) = sum_v sim(u, v) x[v, i]``.
    Without shopper ids the rows are past baskets and the current items are the
    anchor: session-based nearest neighbours.

    Args:
        n_items: catalog size.
        k: slate length.
        dim_context: context dimension (0: any width holding the anchor column).
        anchor_column: context column holding the anchor item index (-1: none).
        shopper_column: context column holding the shopper index (-1: anonymous), or None.
        n_shoppers: number of known shoppers when ``shopper_column`` is set.
        similarity: ``"cosine"`` or ``"adjusted_cosine"``.
        shrinkage: ``lambda`` (>= 0) of the shrinkage ``n / (n + lambda)``.
        n_neighbours: neighbours that vote per decision (>= 1).
        refresh_every: events between snapshots of the matrix searched for neighbours (>= 1).
        epsilon: exploration probability in [0, 1].
        examination: shape (k,), examination probability of each slot, or None.
        seed: seed of the policy's random generator.
    """

    @classmethod
    def example(cls, n_items: int, k: int, dim_context: int, *, seed: int | None = None) -> UserCF:
        """Shoppers known by index in context column 1, refreshed every 50 events."""
        return cls(n_items, k, dim_context, shopper_column=1, n_shoppers=20, shrinkage=2.0, n_neighbours=5,
                   refresh_every=50, epsilon=0.1, seed=seed)

    @classmethod
    def example_context(cls, rng: np.random.Generator, n: int, dim_context: int,
                        n_items: int) -> FloatArray:
        """Column 0 a random anchor (or -1), column 1 a random shopper of 20 (or -1)."""
        ctx = super().example_context(rng, n, max(dim_context, 2), n_items)
        ctx[:, 1] = rng.integers(-1, 20, size=n)
        return ctx

    def _refresh(self) -> None:
        self._snapshot()
        self._index()

    def _index(self) -> None:
        """Binary rows, their sizes and columns, for anchor-only neighbour search."""
        self._binary = binary(self._matrix)
        self._by_item = self._binary.tocsc()
        self._row_size = np.diff(self._binary.indptr).astype(np.float64)

    def _anchor_votes(self, anchors: IntArray) -> FloatArray:
        """Session kNN, plain cosine: baskets holding the anchor score ``1 / sqrt(|b|) / (1 + shrinkage)``."""
        scores = np.zeros((anchors.shape[0], self.n_items))
        col = self._by_item
        for r, a in enumerate(anchors.tolist()):
            if a < 0:
                continue
            rows = col.indices[col.indptr[a]:col.indptr[a + 1]]
            if rows.size == 0:
                continue
            sim = 1.0 / np.sqrt(self._row_size[rows]) / (1.0 + self.shrinkage)
            top = np.lexsort((rows, -sim))[: self.n_neighbours]
            scores[r] = np.asarray(sim[top] @ self._binary[rows[top]].toarray()).ravel()
        return scores

    def _score_rows(self, anchors: IntArray, shoppers: IntArray) -> FloatArray:
        n = anchors.shape[0]
        mat = self._matrix
        if mat.nnz == 0:
            return np.zeros((n, self.n_items))
        if self.shopper_column is None and self.similarity == "cosine":
            return self._anchor_votes(anchors)
        current = self._current(anchors, shoppers)
        weighted_rows = self._weighted(mat)
        cur_w = self._weighted(current)
        sim = shrunk_cosine(cur_w, weighted_rows, binary(current), binary(mat), self.shrinkage).tocoo()
        own = (shoppers[sim.row] >= 0) & (sim.col == shoppers[sim.row])
        keep = (~own) & (sim.data > 0)
        others = sp.csr_matrix((sim.data[keep], (sim.row[keep], sim.col[keep])), shape=sim.shape)
        votes = top_n_per_row(others, self.n_neighbours)
        return np.asarray((votes @ binary(mat)).toarray(), dtype=np.float64)

    def _get_state(self) -> dict[str, np.ndarray[Any, Any]]:
        return {**self._base_state(), "snap": np.array([self._snap])}

    def _set_state(self, state: dict[str, np.ndarray[Any, Any]]) -> None:
        self._set_base_state(state, {"snap": (1,)})
        self._snap = int(state["snap"][0])
        self._matrix = self._store.matrix_prefix(self._snap)
        self._index()
