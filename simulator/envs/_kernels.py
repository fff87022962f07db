"""Compiled (numba) checks for the batched environment's hot path (cached on disk)."""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def first_bad_slate(slates: np.ndarray, n_items: int, eligible: np.ndarray, use_eligible: bool) -> int:
    """The first row of ``slates`` (n, k) that is not a valid slate; -1 when every row is.

    Invalid: an item outside ``[0, n_items)``, a repeat, or (when ``use_eligible``)
    an item with ``eligible`` (n, n_items) False.
    """
    n, k = slates.shape
    for r in range(n):
        for j in range(k):
            item = slates[r, j]
            if item < 0 or item >= n_items:
                return r
            if use_eligible and not eligible[r, item]:
                return r
            for prev in range(j):
                if slates[r, prev] == item:
                    return r
    return -1
