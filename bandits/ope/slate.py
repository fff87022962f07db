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


def uniform_gamma_pinv(n_items: int, k: int) -> FloatArray:
    """Pseudoinverse of ``E[1_s 1_s^T]`` for slates drawn uniformly without replacement, (k*m, k*m).

    Index ``j * m + a`` is item ``a`` at slot ``j``.
    """
    m = n_items
    same_slot = np.eye(m) / m
    cross = (np.ones((m, m)) - np.eye(m)) / (m * (m - 1)) if m > 1 else np.zeros((m, m))
    gamma = np.kron(np.eye(k), same_slot) + np.kron(np.ones((k, k)) - np.eye(k), cross)
    return np.asarray(np.linalg.pinv(gamma, hermitian=True))


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

    This implementation covers logging over every item of ``eval_action_dist``
    (``n_eligible == n_items`` on every row).
    """
    n_items = eval_action_dist.shape[1]
    if (np.asarray(n_eligible) != n_items).any():
        raise OPEError(f"estimator 'pi' here assumes uniform logging over all {n_items} items; this log "
                       "has rows with fewer eligible items. Leave 'pi' out.")
    w = pi_weights(slate, eval_action_dist, n_items)
    return w * reward.sum(axis=1), w
