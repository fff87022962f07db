"""Deterministic, sticky A/B assignment that moves as few users as possible when weights change.

A user's bucket is a hash of the experiment's salt and the ``user_id`` into
:data:`N_BUCKETS` buckets; a bucket table maps each bucket to an arm. Buckets
also have a fixed *priority* (a hash of the salt and the bucket). A new split
is derived from the previous table: every arm keeps
``round(weight * N_BUCKETS)`` buckets (largest remainder), arms above their
new share give up their most recently granted buckets (highest priority
rank), and the freed buckets go to the arms below their share. So exactly
``sum(max(0, old - new))`` buckets move — the total-variation distance between
the two splits, the least any reassignment can move — and a user who keeps
their arm's share keeps their arm. The table is stored with each traffic
version, so every worker assigns the same way.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import numpy.typing as npt

N_BUCKETS = 10_000

BucketTable = npt.NDArray[np.uint8]


def _hash64(*parts: str) -> int:
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def bucket_of(user_id: str, salt: str) -> int:
    """The user's bucket in ``[0, N_BUCKETS)``: a hash of the salt and the ``user_id``."""
    return _hash64(salt, user_id) % N_BUCKETS


@lru_cache(maxsize=64)
def bucket_priority(salt: str) -> npt.NDArray[np.int64]:
    """Rank of every bucket, shape (N_BUCKETS,): lower ranks are granted first (read-only, cached)."""
    keys = np.array([_hash64(salt, "bucket", str(b)) for b in range(N_BUCKETS)], dtype=np.uint64)
    order = np.argsort(keys, kind="stable")
    rank = np.empty(N_BUCKETS, dtype=np.int64)
    rank[order] = np.arange(N_BUCKETS)
    rank.flags.writeable = False
    return rank


def bucket_counts(weights: Sequence[float]) -> npt.NDArray[np.int64]:
    """Buckets per arm, shape (n_arms,), summing to N_BUCKETS (largest-remainder rounding).

    Example:
        >>> bucket_counts([0.5, 0.25, 0.25]).tolist()
        [5000, 2500, 2500]
    """
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 1 or w.size == 0 or (w < 0).any() or not np.isfinite(w).all() or w.sum() <= 0:
        raise ValueError(f"`weights` must be non-negative numbers with a positive sum, found {list(w)}.")
    exact = w / w.sum() * N_BUCKETS
    counts: npt.NDArray[np.int64] = np.floor(exact).astype(np.int64)
    short = N_BUCKETS - int(counts.sum())
    if short:
        counts[np.argsort(-(exact - counts), kind="stable")[:short]] += 1
    return counts


def initial_table(weights: Sequence[float], salt: str) -> BucketTable:
    """The first bucket table: arms take consecutive runs of the priority order."""
    counts = bucket_counts(weights)
    if counts.size > 255:
        raise ValueError(f"an experiment may have at most 255 arms, found {counts.size}.")
    by_rank = np.repeat(np.arange(counts.size, dtype=np.uint8), counts)
    table: BucketTable = by_rank[bucket_priority(salt)]
    return table


def rebalance(table: BucketTable, weights: Sequence[float], salt: str) -> BucketTable:
    """A new table with the shares ``weights``, moving the fewest buckets from ``table``.

    Args:
        table: shape (N_BUCKETS,), the current arm of every bucket.
        weights: shape (n_arms,), the new shares.
        salt: the experiment's salt (fixes the bucket priorities).

    Returns:
        shape (N_BUCKETS,), the new table; exactly
        ``sum(max(0, old_count - new_count))`` entries differ from ``table``.
    """
    target = bucket_counts(weights)
    n_arms = target.size
    if table.shape != (N_BUCKETS,) or (table.size and int(table.max()) >= n_arms):
        raise ValueError(f"`table` must have shape ({N_BUCKETS},) with arms < {n_arms}.")
    rank = bucket_priority(salt)
    new = table.copy()
    current = np.bincount(table, minlength=n_arms)
    freed: list[npt.NDArray[np.int64]] = []
    for arm in range(n_arms):
        surplus = int(current[arm] - target[arm])
        if surplus > 0:
            mine = np.flatnonzero(table == arm)
            freed.append(mine[np.argsort(rank[mine], kind="stable")[-surplus:]])
    if not freed:
        return new
    pool = np.concatenate(freed)
    pool = pool[np.argsort(rank[pool], kind="stable")]
    start = 0
    for arm in range(n_arms):
        deficit = int(target[arm] - current[arm])
        if deficit > 0:
            new[pool[start:start + deficit]] = arm
            start += deficit
    return new


def assign(user_id: str, salt: str, table: BucketTable) -> int:
    """The arm index of ``user_id`` under ``table`` (deterministic and sticky)."""
    return int(table[bucket_of(user_id, salt)])
