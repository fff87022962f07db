"""Compiled (numba) kernels for the one-event hot path of the ridge policies.

A policy that decides one context and then learns from it (a served request, a
replayed log) pays per event for every numpy call it makes, about a
microsecond each; scoring 80 items and updating one inverse is only a few
thousand multiply-adds. These kernels do the whole step in one compiled call.
They compute what :class:`~bandits.policies.ridge.RidgeArms` computes with
numpy, up to floating-point rounding (sums are re-associated so they vectorise).

Shapes: ``n`` items, ``d`` features; ``A``, ``A_inv`` (n, d, d); ``b``, ``theta``
(n, d); ``tri`` (n, d (d + 1) / 2), the weighted upper triangles of ``A_inv``.
Compiled on first use and cached on disk (``cache=True``).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

# Re-association and contraction only: lets LLVM vectorise the reductions, but keeps
# NaN and infinity semantics (no 'nnan' / 'ninf'), so bad input is still caught.
_FAST = {"reassoc", "contract"}


@njit(cache=True, fastmath=_FAST)
def all_finite(x: np.ndarray) -> bool:
    """True when every entry of the 1-d array ``x`` is finite."""
    for v in x:  # noqa: SIM110 - numba compiles the loop, not a generator
        if not math.isfinite(v):
            return False
    return True


@njit(cache=True, fastmath=_FAST)
def ucb_scores(theta: np.ndarray, tri: np.ndarray, tri_row: np.ndarray, tri_col: np.ndarray,
               x: np.ndarray, alpha: float, out: np.ndarray) -> None:
    """``out[i] = x . theta_i + alpha * sqrt(max(x^T A_i^{-1} x, 0))`` for every item (alpha 0: the mean).

    The quadratic form is read from ``tri`` (the distinct terms of each symmetric
    inverse, off-diagonal ones doubled): d (d + 1) / 2 products per item instead of d^2.
    """
    n, d = theta.shape
    m = tri_row.shape[0]
    xx = np.empty(m)
    for j in range(m):
        xx[j] = x[tri_row[j]] * x[tri_col[j]]
    for i in range(n):
        th, ti = theta[i], tri[i]  # row views: contiguous loops that LLVM vectorises
        mean = 0.0
        for r in range(d):
            mean += th[r] * x[r]
        if alpha == 0.0:
            out[i] = mean
            continue
        q = 0.0
        for j in range(m):
            q += ti[j] * xx[j]
        out[i] = mean + alpha * math.sqrt(max(q, 0.0))


@njit(cache=True)
def top_k_one(scores: np.ndarray, k: int, order: np.ndarray, out: np.ndarray) -> None:
    """The k best items of one row of ``scores`` (n,) into ``out`` (k,) in slot order.

    What :func:`bandits.slates.topk_slates` returns for one unmasked row: stage ``s``
    takes the best item not yet taken (ties and NaN as ``np.argmax``: the lower index;
    ``-inf`` scores rank just above nothing) and goes to slot ``order[s]``. Needs
    ``k <= n``.
    """
    n = scores.shape[0]
    lowest = -1.7976931348623157e308  # -inf scores rank as the lowest finite number
    taken = np.zeros(n, dtype=np.bool_)
    for stage in range(k):
        best = -1
        best_v = 0.0
        for i in range(n):
            if taken[i]:
                continue
            v = max(scores[i], lowest) if not math.isnan(scores[i]) else scores[i]
            if best < 0 or v > best_v or (math.isnan(v) and not math.isnan(best_v)):
                best, best_v = i, v
        taken[best] = True
        out[order[stage]] = best


@njit(cache=True, fastmath=_FAST)
def rank_one(a: np.ndarray, a_inv: np.ndarray, b: np.ndarray, theta: np.ndarray, tri: np.ndarray,
             tri_row: np.ndarray, tri_col: np.ndarray, tri_weight: np.ndarray, item: int,
             x: np.ndarray, y: float) -> None:
    """Learn one observation ``(x, y)`` of ``item``: Sherman-Morrison on its inverse, then ``theta``."""
    d = x.shape[0]
    ai = a_inv[item]
    v = np.empty(d)
    for r in range(d):
        s = 0.0
        for c in range(d):
            s += ai[r, c] * x[c]
        v[r] = s
    denom = 1.0
    for r in range(d):
        denom += x[r] * v[r]
    for r in range(d):
        f = v[r] / denom
        for c in range(d):
            ai[r, c] -= f * v[c]
            a[item, r, c] += x[r] * x[c]
        b[item, r] += y * x[r]
    for j in range(tri_row.shape[0]):
        tri[item, j] = ai[tri_row[j], tri_col[j]] * tri_weight[j]
    for r in range(d):
        s = 0.0
        for c in range(d):
            s += ai[r, c] * b[item, c]
        theta[item, r] = s


@njit(cache=True)
def rank_ones(a: np.ndarray, a_inv: np.ndarray, b: np.ndarray, theta: np.ndarray, tri: np.ndarray,
              tri_row: np.ndarray, tri_col: np.ndarray, tri_weight: np.ndarray, items: np.ndarray,
              x: np.ndarray, y: np.ndarray) -> None:
    """:func:`rank_one` for each row of ``items`` (T,), ``x`` (T, d), ``y`` (T,), in order."""
    for t in range(items.shape[0]):
        rank_one(a, a_inv, b, theta, tri, tri_row, tri_col, tri_weight, items[t], x[t], y[t])
