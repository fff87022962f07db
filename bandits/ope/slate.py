"""Slate estimators' per-row terms.

Every function returns per-row
``(num (n,), den (n,))``; the estimate is ``num.sum() / n`` and ``den`` is the row's
importance weight (its mean is about 1 when the propensities are right).
Shapes: ``reward (n, k)``; ``pscore``/``eval_pscore (n,)`` whole-slate
probabilities; ``*_item (n, k)`` slot marginals of the logged items;
``*_cascade (n, k)`` probabilities of the logged prefixes ``1..j``.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from bandits.ope._data import FloatArray, IntArray
from simulator.errors import OPEError

Pair = tuple[FloatArray, FloatArray]


def sips_terms(reward: FloatArray, pscore: FloatArray, eval_pscore: FloatArray) -> Pair:
    """Standard slate IPS: whole-slate weight ``pi(s) / mu(s)`` times the slate's total reward."""
    w = eval_pscore / pscore
    return w * reward.sum(axis=1), w


def iips_terms(reward: FloatArray, pscore_item: FloatArray, eval_pscore_item: FloatArray) -> Pair:
    """Independent IPS (Li et al. 2018): ``sum_j w_j r_j`` with slot-marginal weights."""
    w = eval_pscore_item / pscore_item
    return (w * reward).sum(axis=1), w.mean(axis=1)


def rips_terms(reward: FloatArray, pscore_cascade: FloatArray, eval_pscore_cascade: FloatArray) -> Pair:
    """Reward-interaction IPS (McInerney et al. 2020): slot ``j`` weighted by its prefix ``1..j``."""
    w = eval_pscore_cascade / pscore_cascade
    return (w * reward).sum(axis=1), w.mean(axis=1)


def cascade_dr_terms(reward: FloatArray, pscore_cascade: FloatArray, eval_pscore_cascade: FloatArray,
                     q_hat: FloatArray, q_hat_eval: FloatArray) -> Pair:
    """Cascade doubly robust (Kiyohara et al. 2022).

    ``q_hat[i, j]`` estimates the reward from slot ``j`` on given the logged prefix
    ``1..j``; ``q_hat_eval[i, j]`` its expectation when slot ``j``'s item is drawn from
    the evaluation policy after the logged prefix ``1..j-1``. Per row:
    ``sum_j w_1..j (r_j - q_hat_j) + w_1..j-1 q_hat_eval_j`` (``w_1..0 = 1``).
    """
    w = eval_pscore_cascade / pscore_cascade
    w_prev = np.hstack([np.ones((w.shape[0], 1)), w[:, :-1]])
    return (w * (reward - q_hat) + w_prev * q_hat_eval).sum(axis=1), w.mean(axis=1)


#: Eigenvalues of ``Gamma`` below this share of its largest are treated as zero. ``Gamma``'s
#: null space (dimension ``k - 1``) comes out of the eigendecomposition as round-off near
#: ``1e-17``, while its smallest true eigenvalue is about ``1 / m`` of the largest: any cutoff
#: between the two gives the exact pseudoinverse, and ``1e-8`` is far from both.
PINV_RTOL = 1e-8


def psd_pinv(matrix: FloatArray, rtol: float = PINV_RTOL) -> FloatArray:
    """Pseudoinverse of a symmetric positive semi-definite matrix with an explicit cutoff.

    Eigenvalues at most ``rtol * largest`` are dropped (their directions are the null
    space), the rest inverted. ``np.linalg.pinv``'s default cutoff (``1e-15`` relative)
    sits inside the round-off of a large ``Gamma``'s null space and can invert noise.
    """
    vals, vecs = np.linalg.eigh(matrix)
    keep = vals > rtol * max(float(vals.max()), 0.0)
    inv = np.where(keep, 1.0 / np.where(keep, vals, 1.0), 0.0)
    return np.asarray((vecs * inv) @ vecs.T)


def uniform_gamma(n_items: int, k: int) -> FloatArray:
    """``E[1_s 1_s^T]`` for slates drawn uniformly without replacement, (k*m, k*m).

    Index ``j * m + a`` is item ``a`` at slot ``j``.
    """
    m = n_items
    same_slot = np.eye(m) / m
    cross = (np.ones((m, m)) - np.eye(m)) / (m * (m - 1)) if m > 1 else np.zeros((m, m))
    return np.asarray(np.kron(np.eye(k), same_slot) + np.kron(np.ones((k, k)) - np.eye(k), cross))


def uniform_gamma_pinv(n_items: int, k: int) -> FloatArray:
    """Pseudoinverse of :func:`uniform_gamma` (cutoff :data:`PINV_RTOL`), (k*m, k*m)."""
    return psd_pinv(uniform_gamma(n_items, k))


def falling(m: npt.ArrayLike, k: int) -> FloatArray:
    """``m (m-1) ... (m-k+1)``: ordered slates of ``k`` distinct items out of ``m``."""
    out = np.ones_like(np.asarray(m, dtype=np.float64))
    for j in range(k):
        out = out * (np.asarray(m, dtype=np.float64) - j)
    return out


def uniform_n_eligible(pscore: FloatArray, k: int, n_items: int, rtol: float = 1e-6) -> IntArray:
    """The number of eligible items each row's ``pscore`` implies under uniform logging, (n,).

    A slate drawn uniformly from ``e`` eligible items has ``pscore = 1 / (e (e-1) ... (e-k+1))``;
    rows whose ``pscore`` matches no ``e`` in ``[k, n_items]`` to relative ``rtol`` get ``-1``.
    The test is relative: absolute tolerances mean nothing at propensities near ``1e-8``.
    """
    e = np.arange(k, n_items + 1)
    slates = falling(e, k)  # increasing in e
    target = 1.0 / np.asarray(pscore, dtype=np.float64)
    idx = np.clip(np.searchsorted(slates, target), 0, e.size - 1)
    best = np.where((idx > 0) & (np.abs(slates[idx - 1] - target) < np.abs(slates[idx] - target)),
                    idx - 1, idx)
    ok = np.abs(slates[best] * np.asarray(pscore) - 1.0) <= rtol
    return np.where(ok, e[best], -1).astype(np.int64)


def pi_weights(item: IntArray, action_dist: FloatArray, n_items: int) -> FloatArray:
    """Per-row pseudoinverse weight ``1_s^T Gamma^+ q_pi`` under uniform logging, (n,).

    ``item`` is (n, k); ``action_dist`` (n, n_items, >= k) holds the policy's slot marginals.
    """
    n, k = item.shape
    g = uniform_gamma_pinv(n_items, k)
    idx = np.arange(k) * n_items + item  # (n, k)
    out = np.empty(n)
    step = 8192
    for start in range(0, n, step):
        sl = slice(start, start + step)
        q = action_dist[sl, :, :k].transpose(0, 2, 1).reshape(-1, k * n_items)  # (chunk, k*m), j-major
        rows = g[idx[sl]]  # (chunk, k, k*m)
        out[sl] = np.einsum("ijp,ip->i", rows, q)
    return out


def pi_terms(reward: FloatArray, slate: IntArray, eval_action_dist: FloatArray, n_eligible: IntArray) -> Pair:
    """The pseudoinverse estimator (Swaminathan et al. 2017) for slates logged uniformly over the catalog.

    ``n_eligible`` (n,) is the number of items the logging policy drew each row's slate
    from (see :func:`uniform_n_eligible`); this implementation needs it to equal
    ``n_items`` on every row, and refuses the log otherwise (with fewer eligible items,
    ``Gamma`` differs per row and the catalog-wide pseudoinverse is biased).
    """
    n_items = eval_action_dist.shape[1]
    n_elig = np.asarray(n_eligible)
    bad = n_elig != n_items
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise OPEError(f"estimator 'pi' assumes uniform logging over all {n_items} items, but "
                       f"{int(bad.sum()):,} of {n_elig.size:,} rows were logged from fewer (row {row}: "
                       f"{int(n_elig[row])} eligible items; a world log never shows the anchor item). "
                       "Leave 'pi' out, or use 'iips'/'ips', which use each row's own propensities.")
    w = pi_weights(slate, eval_action_dist, n_items)
    return w * reward.sum(axis=1), w
