"""Intervals: a vectorised Poisson bootstrap, the normal approximation, an empirical-Bernstein bound.

An estimate is a sum of ratio *parts*, ``V = sum_parts sum_j N_j / D_j`` where
``N_j = sum_i num[i, j]`` and ``D_j = sum_i den[i, j]`` (or the number of rows),
plus, for model-based estimators, a first-order term for the reward model's
own uncertainty, ``sum_i (c_i - 1) infl_i`` (see ``reward_model.row_influence``).

The bootstrap resamples rows with Poisson(1) counts (the Poisson bootstrap:
each row appears ``c_i ~ Poisson(1)`` times; asymptotically the same as the
multinomial bootstrap, and its per-row counts are independent, so replicate
sums can be computed in blocks of rows and merged). Counts come from 16-bit
uniforms through a lookup table of the Poisson(1) quantiles (probabilities
rounded to 1/65536, far below the Monte Carlo error of any bootstrap).
Replicate sums of every column of every estimator are one matrix product per
block of replicates; no Python loop runs over single resamples.

**Clusters.** Rows of one session (or user) are not independent. Given
``groups`` (n,), the bootstrap draws one Poisson count per *group* and gives it
to every row of the group; since every replicate quantity is a sum of columns,
this is the same as summing each column within its group and bootstrapping the
groups. The normal interval sums the influence function within groups
(the cluster-robust sandwich).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from scipy import stats

FloatArray = npt.NDArray[np.float64]

#: Poisson(1) value of each 16-bit uniform.
_LUT = np.searchsorted(stats.poisson.cdf(np.arange(32), 1.0),
                       (np.arange(65536) + 0.5) / 65536).astype(np.float32)
#: Replicates per matrix product (bounds memory: this many x n float32 counts).
_BLOCK_BYTES = 64 * 2**20


@dataclass(frozen=True, slots=True)
class Part:
    """One ratio part of an estimate: ``sum_j sum_i num[i, j] / sum_i den[i, j]`` (den None: / rows)."""

    num: FloatArray
    den: FloatArray | None = None


@dataclass(frozen=True, slots=True)
class Tuned:
    """A tuned estimator's candidates, so every bootstrap replicate can tune again.

    Attributes:
        terms: (n, G) per-row totals of the estimator at each grid value.
        bias: (n, G) per-row part the shrinkage removes at each grid value.
        influence: (n, G) the reward model's per-row influence at each grid value, or None.
        grid: (G,) the grid values (``tau``, ``M``, ``lambda``).
    """

    terms: FloatArray
    bias: FloatArray
    influence: FloatArray | None
    grid: FloatArray

    def choice(self) -> int:
        """Index of the grid value with the least estimated MSE on the full data."""
        n = self.terms.shape[0]
        mse = self.terms.var(axis=0, ddof=1) / n + self.bias.mean(axis=0) ** 2
        return int(np.argmin(mse))


@dataclass(frozen=True, slots=True)
class Terms:
    """What an estimator computes from the arrays: its parts and, if any, the model influence (n,).

    ``tuned`` (for estimators whose parameter is chosen from the data) holds every candidate;
    ``parts`` and ``influence`` are then those of the candidate chosen on the full data, and
    the bootstrap chooses again inside each replicate.
    """

    parts: tuple[Part, ...]
    influence: FloatArray | None = None
    tuned: Tuned | None = None

    @classmethod
    def from_tuned(cls, tuned: Tuned) -> Terms:
        """The terms of the candidate :meth:`Tuned.choice` picks, with every candidate kept."""
        c = tuned.choice()
        infl = None if tuned.influence is None else tuned.influence[:, c]
        return cls((Part(tuned.terms[:, c:c + 1]),), infl, tuned)

    def value(self) -> float:
        """The point estimate."""
        total = 0.0
        for p in self.parts:
            n = p.num.shape[0]
            den = p.den.sum(axis=0) if p.den is not None else np.full(p.num.shape[1], float(n))
            with np.errstate(divide="ignore", invalid="ignore"):
                total += float(np.sum(p.num.sum(axis=0) / den))
        return total

    def row_totals(self) -> FloatArray:
        """Per-row sum of the numerators (a mean-type estimate is their mean), (n,)."""
        return np.asarray(np.sum([p.num.sum(axis=1) for p in self.parts], axis=0), dtype=np.float64)

    def influence_function(self) -> FloatArray:
        """Each row's influence on the estimate, (n,): its variance / n is the estimate's variance.

        For tuned terms this holds the chosen parameter fixed.
        """
        n = self.parts[0].num.shape[0]
        out = np.zeros(n)
        for p in self.parts:
            if p.den is None:
                out += p.num.sum(axis=1) - p.num.sum(axis=0).sum() / n
            else:
                mean_den = p.den.mean(axis=0)
                with np.errstate(divide="ignore", invalid="ignore"):
                    ratio = p.num.sum(axis=0) / p.den.sum(axis=0)
                    out += np.nansum((p.num - ratio * p.den) / mean_den, axis=1)
        if self.influence is not None:
            out += n * (self.influence - self.influence.mean())
        return out


def poisson_counts(rng: np.random.Generator, size: tuple[int, int]) -> npt.NDArray[np.float32]:
    """Poisson(1) counts as float32, ``size = (replicates, rows)``."""
    return _LUT[rng.integers(0, 65536, size=size, dtype=np.uint16)]


def _replicate_sums(columns: npt.NDArray[np.float32], n_boot: int, seed: np.random.SeedSequence,
                    ) -> FloatArray:
    rng = np.random.default_rng(seed)
    n = columns.shape[0]
    block = max(1, min(n_boot, _BLOCK_BYTES // (4 * max(n, 1))))
    out = np.empty((n_boot, columns.shape[1]))
    for start in range(0, n_boot, block):
        b = min(block, n_boot - start)
        out[start:start + b] = poisson_counts(rng, (b, n)) @ columns
    return out


def bootstrap_sums(columns: FloatArray, n_boot: int, seed: int | Sequence[int],
                   threads: int = 2) -> FloatArray:
    """Replicate sums ``sum_i c_bi * columns[i, :]`` for ``n_boot`` Poisson replicates, (n_boot, C).

    Columns are centred before the float32 products and the centre added back
    exactly, which keeps the sums accurate over millions of rows. When most rows
    are zero in every column (clicks are rare), only the other rows get counts.
    The last column returned is the replicate's total count ``sum_i c_bi``.
    """
    key = [seed] if isinstance(seed, int) else list(seed)
    n = columns.shape[0]
    nonzero = np.flatnonzero(np.any(columns != 0, axis=1))
    if nonzero.size < n // 4:
        # Rows that are zero in every column add nothing but their count: draw counts for the
        # others only, and the zero rows' total count as one Poisson(n_zero) per replicate.
        rest = np.random.default_rng([*key, 12]).poisson(n - nonzero.size, n_boot).astype(np.float64)
        if not nonzero.size:
            return np.hstack([np.zeros((n_boot, columns.shape[1])), rest[:, None]])
        sums = bootstrap_sums(columns[nonzero], n_boot, seed, threads)
        sums[:, -1] += rest
        return sums
    centre = columns.mean(axis=0)
    work = np.hstack([columns - centre, np.ones((n, 1))]).astype(np.float32)
    threads = max(1, min(threads, n_boot))
    seqs = np.random.SeedSequence([*key, 11]).spawn(threads)
    sizes = [n_boot // threads + (1 if t < n_boot % threads else 0) for t in range(threads)]
    if threads == 1:
        parts = [_replicate_sums(work, n_boot, seqs[0])]
    else:
        with ThreadPoolExecutor(threads) as pool:
            parts = list(pool.map(_replicate_sums, [work] * threads, sizes, seqs))
    sums = np.vstack(parts)
    count = sums[:, -1:]
    return np.hstack([sums[:, :-1] + count * centre, count])


def group_codes(groups: npt.ArrayLike | None, n: int) -> npt.NDArray[np.int64] | None:
    """Dense codes ``0 .. G-1`` of ``groups`` (n,), or None when every row is its own group."""
    if groups is None:
        return None
    g = np.asarray(groups)
    if g.shape != (n,):
        raise ValueError(f"`groups` must have shape ({n},) (one id per row), found {g.shape}.")
    uniq, codes = np.unique(g, return_inverse=True)
    if uniq.size == n:
        return None
    return codes.astype(np.int64)


def group_sums(columns: FloatArray, codes: npt.NDArray[np.int64]) -> FloatArray:
    """Column sums within each group, (G, C)."""
    g = int(codes.max()) + 1
    indicator = sp.csr_matrix((np.ones(codes.size), (codes, np.arange(codes.size))), shape=(g, codes.size))
    return np.asarray(indicator @ columns)


def clustered_bootstrap_sums(columns: FloatArray, n_boot: int, seed: int | Sequence[int],
                             groups: npt.ArrayLike | None = None) -> FloatArray:
    """:func:`bootstrap_sums` with one Poisson count per group of ``groups`` (n,) (None: per row).

    The last column is the replicate's total count of *rows*.
    """
    codes = group_codes(groups, columns.shape[0])
    if codes is None:
        return bootstrap_sums(columns, n_boot, seed)
    agg = group_sums(np.hstack([columns, np.ones((columns.shape[0], 1))]), codes)
    sums = bootstrap_sums(agg, n_boot, seed)
    return sums[:, :-1]


def replicate_values(terms_list: list[Terms], n_boot: int, seed: int,
                     groups: npt.ArrayLike | None = None) -> list[FloatArray]:
    """Bootstrap replicates of every estimate in ``terms_list`` from one shared set of counts.

    ``groups`` (n,): resample whole groups (sessions) instead of rows.
    """
    cols: list[FloatArray] = []
    layout: list[list[tuple[int, int, int | None]]] = []
    infl_col: list[int | None] = []
    tuned_col: list[int | None] = []

    def width() -> int:
        return sum(c.shape[1] for c in cols)

    for terms in terms_list:
        entries: list[tuple[int, int, int | None]] = []
        if terms.tuned is not None:
            t = terms.tuned
            tuned_col.append(width())
            cols += [t.terms, t.terms**2, t.bias]
            if t.influence is not None:
                cols.append(t.influence)
            layout.append(entries)
            infl_col.append(None)
            continue
        tuned_col.append(None)
        for p in terms.parts:
            j0 = width()
            cols.append(p.num)
            d0 = None
            if p.den is not None:
                d0 = j0 + p.num.shape[1]
                cols.append(p.den)
            entries.append((j0, p.num.shape[1], d0))
        layout.append(entries)
        if terms.influence is not None:
            infl_col.append(width())
            cols.append(terms.influence[:, None])
        else:
            infl_col.append(None)
    sums = clustered_bootstrap_sums(np.hstack(cols), n_boot, seed, groups)
    count = sums[:, -1]
    out = []
    for terms, entries, ic, tc in zip(terms_list, layout, infl_col, tuned_col, strict=True):
        if tc is not None and terms.tuned is not None:
            out.append(_tuned_replicates(terms.tuned, sums, tc, count))
            continue
        value = np.zeros(n_boot)
        for j0, w, d0 in entries:
            num = sums[:, j0:j0 + w]
            den = sums[:, d0:d0 + w] if d0 is not None else count[:, None]
            with np.errstate(divide="ignore", invalid="ignore"):
                value += np.sum(num / den, axis=1)
        if ic is not None and terms.influence is not None:
            value += sums[:, ic] - count * terms.influence.mean()
        out.append(value)
    return out


def _tuned_replicates(t: Tuned, sums: FloatArray, start: int, count: FloatArray) -> FloatArray:
    """Each replicate's estimate with the parameter re-chosen by the MSE criterion on that replicate."""
    g = t.grid.size
    s1, s2, sb = (sums[:, start + i * g:start + (i + 1) * g] for i in range(3))
    n = np.maximum(count, 2.0)[:, None]
    mean = s1 / n
    var = np.maximum(s2 / n - mean**2, 0.0) * n / (n - 1) / n
    mse = var + (sb / n) ** 2
    pick = np.argmin(mse, axis=1)
    rows = np.arange(sums.shape[0])
    value = mean[rows, pick]
    if t.influence is not None:
        si = sums[:, start + 3 * g:start + 4 * g]
        value = value + si[rows, pick] - count * t.influence.mean(axis=0)[pick]
    return np.asarray(value)


def percentile_interval(replicates: FloatArray, level: float) -> tuple[float, float, float]:
    """``(low, high, stderr)`` of bootstrap replicates (NaN replicates dropped)."""
    r = replicates[np.isfinite(replicates)]
    if r.size < 2:
        return math.nan, math.nan, math.nan
    alpha = (1 - level) / 2
    low, high = np.quantile(r, [alpha, 1 - alpha])
    return float(low), float(high), float(r.std(ddof=1))


def clustered_stderr(infl: FloatArray, groups: npt.ArrayLike | None = None) -> float:
    """Standard error of a mean whose rows have influence ``infl`` (n,), clustered by ``groups``.

    With ``G`` groups: ``sqrt(G / (G - 1) * sum_g (sum_{i in g} infl_i - n_g mean)^2) / n``;
    without groups, the usual ``std / sqrt(n)``.
    """
    n = infl.size
    if n < 2:
        return math.nan
    codes = group_codes(groups, n)
    if codes is None:
        return float(infl.std(ddof=1) / math.sqrt(n))
    centred = infl - infl.mean()
    per_group = np.bincount(codes, weights=centred)
    g = per_group.size
    if g < 2:
        return math.nan
    return float(math.sqrt(g / (g - 1) * float((per_group**2).sum())) / n)


def normal_interval(terms: Terms, value: float, level: float,
                    groups: npt.ArrayLike | None = None) -> tuple[float, float, float]:
    """``(low, high, stderr)`` from the influence function (the delta method for ratios).

    ``groups`` (n,): cluster-robust standard error over groups (sessions).
    """
    se = clustered_stderr(terms.influence_function(), groups)
    z = float(stats.norm.ppf(0.5 + level / 2))
    return value - z * se, value + z * se, se


def empirical_bernstein_lower(row_totals: FloatArray, level: float, *, low: float, high: float) -> float:
    """One-sided lower confidence bound on the mean of i.i.d. terms known to lie in ``[low, high]``.

    Maurer & Pontil (2009): with probability at least ``level``,
    ``E[Z] >= mean - sqrt(2 V ln(2/delta) / n) - 7 b ln(2/delta) / (3 (n - 1))`` for ``Z`` in an
    interval of width ``b = high - low`` known *before* seeing the data (the reward's range
    times the largest possible weight); ``V`` is the sample variance. A width read off the
    observed terms would not make a guaranteed bound. Terms outside ``[low, high]`` raise.
    """
    n = row_totals.size
    if n < 2:
        return math.nan
    if not high >= low:
        raise ValueError(f"empirical_bernstein_lower: need high >= low, found [{low}, {high}].")
    tol = 1e-9 * max(1.0, abs(low), abs(high))
    if row_totals.min() < low - tol or row_totals.max() > high + tol:
        raise ValueError(f"empirical_bernstein_lower: terms range over [{row_totals.min():.6g}, "
                         f"{row_totals.max():.6g}], outside the stated range [{low:.6g}, {high:.6g}]; "
                         "state the range the terms can take.")
    delta = 1 - level
    width = float(high - low)
    log_term = math.log(2 / delta)
    var = float(row_totals.var(ddof=1))
    return float(row_totals.mean() - math.sqrt(2 * var * log_term / n) - 7 * width * log_term / (3 * (n - 1)))
