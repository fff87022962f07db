"""The slate estimators' probabilities, derived from a policy's action distribution and the log.

SIPS needs the evaluated policy's probability of each logged slate; RIPS and
cascade-DR the probabilities of each logged prefix ``1..j`` under both policies.
A policy gives its slot marginals ``action_dist (n, n_items, k)``, from which
:func:`policy_slate_pscores` builds the slate as drawn slot after slot, each
slot's marginal renormalised over the items not yet shown:

    P(s_1..s_j) = prod_{l <= j} pi_l(s_l) / (1 - sum_{m < l} pi_l(s_m)).

This is exact for deterministic policies and for uniform sampling without
replacement (over the catalog or an eligible set); for other policies it is an
approximation and the estimates say so. On the logging side a log holds the whole
slate's ``pscore`` and the slot marginals; :func:`logged_prefix_pscores` takes
prefix 1 from the first slot's marginal and prefix ``k`` from ``pscore`` (both
exact); a middle prefix is exact for uniform logging and otherwise interpolated
geometrically between them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from bandits.ope._data import FloatArray, IntArray
from simulator.logs import SlateLog


@dataclass(frozen=True, slots=True)
class SlateInputs:
    """What ``estimate_all`` needs for ``sips``, ``rips`` and ``cascade-dr``.

    Attributes:
        eval_pscore: (n,) the evaluated policy's probability of each logged slate.
        eval_pscore_cascade: (n, k) its probability of each logged prefix ``1..j``.
        pscore_cascade: (n, k) the logging policy's probability of each logged prefix.
        notes: ``(input name, approximation in words)`` for each input that is not exact.
    """

    eval_pscore: FloatArray
    eval_pscore_cascade: FloatArray
    pscore_cascade: FloatArray
    notes: tuple[tuple[str, str], ...]


def _is_deterministic_or_uniform(dist: FloatArray) -> bool:
    """Every row either puts probability 1 on one item per slot, or is the same uniform at every slot."""
    onehot = np.isclose(dist.max(axis=1), 1.0).all(axis=1)
    same = np.isclose(dist, dist[:, :, :1]).all(axis=(1, 2))
    first = dist[:, :, 0]
    top = first.max(axis=1, keepdims=True)
    flat = (np.isclose(first, top) | (first == 0)).all(axis=1)
    return bool((onehot | (same & flat)).all())


def policy_slate_pscores(action_dist: Any, slate: Any) -> tuple[FloatArray, FloatArray, bool]:
    """The policy's probabilities of each logged slate and prefix from its slot marginals.

    Args:
        action_dist: (n, n_items, >= k) the policy's probability of each item at each slot.
        slate: (n, k) the logged items in slot order.

    Returns:
        ``(eval_pscore (n,), eval_pscore_cascade (n, k), exact)``; ``exact`` says the
        policy is deterministic or uniform on every row (the construction is exact).

    >>> dist = np.full((1, 4, 2), 0.25)  # uniform over 4 items, 2 slots: 1 / (4 * 3)
    >>> round(float(policy_slate_pscores(dist, np.array([[0, 1]]))[0][0]), 6)
    0.083333
    """
    dist = np.asarray(action_dist, dtype=np.float64)
    items: IntArray = np.asarray(slate, dtype=np.int64)
    n, k = items.shape
    rows = np.arange(n)[:, None]
    cascade = np.empty((n, k))
    prob = np.ones(n)
    for j in range(k):
        at_j = dist[:, :, j]
        num = at_j[np.arange(n), items[:, j]]
        used = at_j[rows, items[:, :j]].sum(axis=1) if j else np.zeros(n)
        den = 1.0 - used
        with np.errstate(divide="ignore", invalid="ignore"):
            step = np.where((num > 0) & (den > 1e-12), num / den, 0.0)
        prob = prob * np.clip(step, 0.0, 1.0)
        cascade[:, j] = prob
    return cascade[:, -1].copy(), cascade, _is_deterministic_or_uniform(dist[:, :, :k])


def logged_prefix_pscores(log: SlateLog) -> tuple[FloatArray, bool]:
    """The logging policy's probability of each logged prefix ``1..j``, (n, k), and whether it is exact."""
    marg = np.asarray(log.pscore_item, dtype=np.float64)
    pscore = np.asarray(log.pscore, dtype=np.float64)
    n, k = marg.shape
    out = np.empty((n, k))
    out[:, 0] = marg[:, 0]
    out[:, -1] = pscore
    if k <= 2:
        return out, True
    m = 1.0 / marg[:, 0]
    falling = np.cumprod(m[:, None] - np.arange(k), axis=1)
    uniform = np.isclose(marg, marg[:, :1]).all(axis=1) & np.isclose(pscore * falling[:, -1], 1.0)
    with np.errstate(divide="ignore"):
        gamma = (pscore / marg.prod(axis=1)) ** (1.0 / (k - 1))
    for j in range(1, k - 1):
        guess = np.clip(out[:, j - 1] * marg[:, j] * gamma, pscore, out[:, j - 1])
        out[:, j] = np.where(uniform, 1.0 / falling[:, j], guess)
    return out, bool(uniform.all())


def slate_inputs(log: SlateLog, action_dist: Any) -> SlateInputs:
    """Every slate estimator's probabilities for the policy of ``action_dist`` on ``log`` (whole slates)."""
    eval_pscore, eval_cascade, policy_exact = policy_slate_pscores(action_dist, log.slate)
    log_cascade, log_exact = logged_prefix_pscores(log)
    notes: list[tuple[str, str]] = []
    if not policy_exact:
        note = ("the policy's slate probabilities are built from its slot marginals (each slot renormalised "
                "over the items not yet shown), exact only for deterministic and uniform policies: this "
                "estimate may be biased by it")
        notes += [("eval_pscore", note), ("eval_pscore_cascade", note)]
    if not log_exact:
        notes.append(("pscore_cascade", "the log holds no probabilities of its middle prefixes; they are "
                      "interpolated between the first slot's marginal and the slate's pscore: this estimate "
                      "may be biased by it"))
    return SlateInputs(eval_pscore, eval_cascade, log_cascade, tuple(notes))
