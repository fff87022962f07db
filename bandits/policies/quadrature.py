"""Propensities of Thompson sampling by quadrature: the probability that each arm's draw is the largest.

With independent score distributions (a Gaussian or a Beta posterior per item),
the chance that item ``i``'s draw beats every other eligible item's is a
one-dimensional integral,

    P_i = integral f_i(x) prod_{j != i} F_j(x) dx,

with ``f_i`` the density and ``F_j`` the distribution function of each draw. It
is computed on a grid, vectorised over arms (the log-product ``sum_j log F_j``
is formed once per grid point and each arm divides out its own factor), only
over the *contenders*: items whose draw can be the largest with a probability
above about ``1e-12`` (an item whose upper tail lies below another's lower tail
is not one). The results are normalised over the contenders.

* Gaussian draws (linear Thompson sampling, one context at a time):
  trapezoidal rule on an even grid of step ``UNIFORM_STEP`` times the narrowest
  contender's standard deviation, over the range where the largest draw lies;
  when the contenders' widths differ so much that this grid would be longer,
  on the union of ``NORMAL_POINTS`` points spread over ``mean_i +- TAIL sd_i``
  of each contender (every contender's scale is resolved either way).
* Beta draws (Bernoulli Thompson sampling): a fixed midpoint grid of
  ``BETA_POINTS`` points on (0, 1); each item keeps ``log F`` and ``log f`` on
  the window of the grid where its posterior has mass, refreshed only when its
  posterior changes.

Compiled on first use and cached on disk (numba).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

#: Half-width, in standard deviations, of each item's window (Gaussian tail mass beyond: 1e-15).
TAIL = 8.0
#: Grid points per contender for Gaussian draws.
NORMAL_POINTS = 64
#: Step of the even grid, in standard deviations of the narrowest contender.
UNIFORM_STEP = 0.25
#: Points of the fixed grid on (0, 1) for Beta draws.
BETA_POINTS = 4096
#: Half-width, in standard deviations, of a Beta posterior's window on the grid.
BETA_TAIL = 14.0
_LOG_FLOOR = -700.0
_SQRT2 = math.sqrt(2.0)
_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


@njit(cache=True)
def _log_ndtr(z: float) -> float:  # pragma: no cover - compiled
    """Log of the standard normal distribution function (asymptotic far in the lower tail)."""
    if z > -20.0:
        return max(math.log(0.5 * math.erfc(-z / _SQRT2)), _LOG_FLOOR)
    return max(-0.5 * z * z - math.log(-z) - _LOG_SQRT_2PI, _LOG_FLOOR)


@njit(cache=True)
def normal_max_prob(mean: np.ndarray, sd: np.ndarray, allowed: np.ndarray,
                    out: np.ndarray) -> bool:  # pragma: no cover - compiled
    """``out[r, i]`` = P(item i's N(mean, sd^2) draw is the largest of the allowed items of row r).

    Shapes: ``mean``, ``sd``, ``allowed`` (bool), ``out`` all (n, m). Returns False (and
    leaves ``out`` unspecified) when an allowed item has ``sd <= 0`` (a point mass), which
    the grid cannot integrate.
    """
    n, m = mean.shape
    g = NORMAL_POINTS
    cont = np.empty(m, dtype=np.int64)
    for r in range(n):
        low = -np.inf
        for j in range(m):
            if allowed[r, j]:
                if not sd[r, j] > 0.0:
                    return False
                low = max(low, mean[r, j] - TAIL * sd[r, j])
        c = 0
        for j in range(m):
            out[r, j] = 0.0
            if allowed[r, j] and mean[r, j] + TAIL * sd[r, j] >= low:
                cont[c] = j
                c += 1
        if c == 1:
            out[r, cont[0]] = 1.0
            continue
        high, narrowest = -np.inf, np.inf
        for a in range(c):
            j = cont[a]
            high = max(high, mean[r, j] + TAIL * sd[r, j])
            narrowest = min(narrowest, sd[r, j])
        uniform = int((high - low) / (UNIFORM_STEP * narrowest)) + 2
        if uniform <= c * g:  # one even grid fine enough for the narrowest contender is cheaper
            pts = np.empty(uniform)
            for t in range(uniform):
                pts[t] = low + (high - low) * t / (uniform - 1)
        else:
            pts = np.empty(c * g)
            for a in range(c):
                j = cont[a]
                for t in range(g):
                    pts[a * g + t] = mean[r, j] + sd[r, j] * TAIL * (2.0 * t / (g - 1) - 1.0)
            pts.sort()
        npts = pts.shape[0]
        log_cdf = np.empty((c, npts))
        log_pdf = np.empty((c, npts))
        total = np.zeros(npts)
        for a in range(c):
            j = cont[a]
            mu, s = mean[r, j], sd[r, j]
            ls = math.log(s)
            for p in range(npts):
                z = (pts[p] - mu) / s
                log_cdf[a, p] = _log_ndtr(z)
                log_pdf[a, p] = -0.5 * z * z - _LOG_SQRT_2PI - ls
                total[p] += log_cdf[a, p]
        norm = 0.0
        for a in range(c):
            acc = 0.0
            prev = math.exp(log_pdf[a, 0] + total[0] - log_cdf[a, 0])
            for p in range(1, npts):
                cur = math.exp(log_pdf[a, p] + total[p] - log_cdf[a, p])
                acc += 0.5 * (cur + prev) * (pts[p] - pts[p - 1])
                prev = cur
            out[r, cont[a]] = acc
            norm += acc
        for a in range(c):
            out[r, cont[a]] /= norm
    return True


@njit(cache=True)
def beta_max_prob(log_cdf: np.ndarray, log_pdf: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                  allowed: np.ndarray, out: np.ndarray) -> None:  # pragma: no cover - compiled
    """``out[i]`` = P(item i's Beta draw is the largest of the allowed items), on the fixed grid.

    ``log_cdf``, ``log_pdf`` (m, G): each item's log distribution function and log density
    on the grid, valid on its window ``lo[i]..hi[i]`` (``log_cdf`` is 0 above the window);
    ``allowed`` (m,) bool; ``out`` (m,).
    """
    m = log_cdf.shape[0]
    g_low, g_high = 0, 0
    for j in range(m):
        out[j] = 0.0
        if allowed[j]:
            g_low = max(g_low, lo[j])
            g_high = max(g_high, hi[j])
    total = np.zeros(g_high + 1 - g_low)
    for j in range(m):
        if allowed[j]:
            for t in range(g_low, min(hi[j], g_high) + 1):
                total[t - g_low] += log_cdf[j, t]
    norm = 0.0
    for i in range(m):
        if not allowed[i] or hi[i] < g_low:
            continue
        acc = 0.0
        for t in range(max(lo[i], g_low), hi[i] + 1):
            acc += math.exp(log_pdf[i, t] + total[t - g_low] - log_cdf[i, t])
        out[i] = acc
        norm += acc
    for i in range(m):
        out[i] /= norm
