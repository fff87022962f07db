"""Compiled (numba) kernel for the exact third-stage marginals of a Plackett-Luce draw.

The probability that item ``i`` is drawn third sums over every ordered pair
``(a, b)`` of earlier items: ``O(n_items ** 2)`` per row. With numpy that takes
several temporary ``(rows, n_items, n_items)`` arrays and a dozen passes over
them; this kernel makes a few vectorised passes over one row of ``b`` per ``a`` and keeps
nothing larger than ``n_items``. It computes what the numpy form in
:mod:`bandits.slates` computed, with the same care for rounding: a remaining
mass is never found by subtracting nearly equal numbers (the one entry where
that could happen, the heaviest item's, is summed directly).

Shapes: ``w`` (n, m) PL weights (0 for ineligible items), ``p0`` (n, m) stage-0
probabilities, ``r1`` (n, m) mass left after removing each item. Compiled on
first use and cached on disk (``cache=True``).
"""

from __future__ import annotations

import numpy as np
from numba import njit

# Re-association and contraction only (vectorised sums), NaN and infinity semantics kept.
_FAST = {"reassoc", "contract"}


@njit(cache=True, fastmath=_FAST, error_model="numpy")
def pl_third_stage(w: np.ndarray, p0: np.ndarray, r1: np.ndarray, out: np.ndarray) -> None:
    """``out[r, i]`` = P(item ``i`` is drawn third) in row ``r``.

    ``P = w_i * sum_{a != i} p0_a * sum_{b not in {a, i}} w_b / (R1[a] * R2[a, b])``
    with ``R2[a, b]`` the mass left after removing ``a`` and ``b``. ``R2[a, b]`` is
    ``R1[a] - w_b`` (at least ``w_b`` of it is left, so no cancellation) except
    when ``b`` is the heaviest item other than ``a``; those entries come from two
    sums taken directly (everything but the heaviest item; everything but the
    two heaviest). The inner sum over ``b != i`` is a total minus one term,
    except for the term that dominates the total, which is summed directly.
    """
    n, m = w.shape
    u = np.empty(m)
    acc = np.empty(m)
    for r in range(n):
        wr = w[r]
        t1 = 0
        for j in range(m):  # first index of the largest weight (numpy's argsort tie rule)
            if wr[j] > wr[t1]:
                t1 = j
        t2 = t1
        for j in range(m):
            if j != t1 and (t2 == t1 or wr[j] > wr[t2]):
                t2 = j
        s_no_t1 = 0.0
        s_no_t12 = 0.0
        for j in range(m):
            if j != t1:
                s_no_t1 += wr[j]
                if j != t2:
                    s_no_t12 += wr[j]
        for j in range(m):
            acc[j] = 0.0
        for a in range(m):
            ra = r1[r, a]
            pa = p0[r, a]
            if pa <= 0.0 or ra <= 0.0:
                continue
            top_b = t2 if a == t1 else t1
            r2_top = s_no_t12 if a in (t1, t2) else s_no_t1 - wr[a]
            inv_ra = 1.0 / ra
            for b in range(m):  # branch-free, so LLVM vectorises it; b = a and b = top_b patched below
                r2 = ra - wr[b]
                u[b] = wr[b] * inv_ra / r2 if r2 > 0.0 else 0.0
            u[a] = 0.0
            u[top_b] = wr[top_b] * inv_ra / r2_top if r2_top > 0.0 else 0.0
            big_at = int(np.argmax(u))
            big = u[big_at]
            total = 0.0
            rest = 0.0  # every u but the largest, added up directly
            for b in range(m):
                total += u[b]
                rest += u[b] if b != big_at else 0.0
            if big <= 0.0:
                big_at = -1
            keep_a = acc[a]  # i = a is not a third-stage outcome after a
            keep_big = acc[big_at] if big_at >= 0 else 0.0
            for i in range(m):
                acc[i] += pa * (total - u[i])
            acc[a] = keep_a
            if big_at >= 0:  # total - big would cancel when big dominates: use the direct sum
                acc[big_at] = keep_big + pa * rest
        for i in range(m):
            out[r, i] = wr[i] * max(acc[i], 0.0)
