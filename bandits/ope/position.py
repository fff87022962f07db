"""Per-position estimators as pure functions of ``(n, k)`` arrays.

Each (row, slot) is one decision: the logged item's reward ``r``, its logging
marginal ``pscore_item`` and the evaluation policy's probability of the same item
at the same slot, ``eval_pscore_item``; ``w = eval_pscore_item / pscore_item``.
Model-based estimators also take the reward model's prediction at the logged item,
``q_hat``, and its expectation under the evaluation policy at that slot,
``q_hat_eval = sum_a pi(a | x, s) q(x, a, s)``. A value is the expected reward
summed over the slots of a row; for ``k = 1`` (or arrays of shape ``(n,)``) these
are the classic contextual-bandit estimators.

The ``*_parts`` functions return the :class:`~bandits.ope.intervals.Part` s the
intervals resample; the plain functions (``ips``, ``dr``, ...) validate their
inputs and return the point estimate.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from bandits.ope._data import FloatArray, IntArray, check_slot_array
from bandits.ope.intervals import Part, Terms
from simulator.errors import OPEError

Parts = tuple[Part, ...]


# ---- parts: what each estimator sums (inputs already checked) ----------------------------------


def dm_parts(q_policy: FloatArray) -> Parts:
    """Direct method: ``mean q_hat_eval``."""
    return (Part(q_policy),)


def ips_parts(weight: FloatArray, reward: FloatArray) -> Parts:
    """IPS: ``mean w r``."""
    return (Part(weight * reward),)


def snips_parts(weight: FloatArray, reward: FloatArray) -> Parts:
    """Self-normalised IPS: ``sum w r / sum w`` per slot."""
    return (Part(weight * reward, weight),)


def dr_parts(weight: FloatArray, reward: FloatArray, q_logged: FloatArray, q_policy: FloatArray) -> Parts:
    """Doubly robust: ``mean q_hat_eval + w (r - q_hat)`` (``weight`` may be switched or shrunk)."""
    return (Part(q_policy + weight * (reward - q_logged)),)


def sndr_parts(weight: FloatArray, reward: FloatArray, q_logged: FloatArray, q_policy: FloatArray) -> Parts:
    """Self-normalised DR: ``mean q_hat_eval + sum w (r - q_hat) / sum w`` per slot."""
    return (Part(q_policy), Part(weight * (reward - q_logged), weight))


def clipped_ips_parts(weight: FloatArray, reward: FloatArray, clip: float) -> Parts:
    """IPS with weights clipped at ``clip``."""
    return (Part(np.minimum(weight, clip) * reward),)


def replay_parts(match: FloatArray, reward: FloatArray) -> Parts:
    """Replay: mean reward over the matched decisions, per slot."""
    return (Part(match * reward, match),)


# ---- tuning of switch-DR, DRos and clipped IPS -----------------------------------------------


def mse_scores(terms: FloatArray, bias: FloatArray) -> FloatArray:
    """Estimated MSE of each candidate, (G,).

    The variance of the mean of ``terms[:, g]`` plus the squared mean of ``bias[:, g]``
    (what the shrinkage removes), both (n, G).
    """
    n = terms.shape[0]
    return np.asarray(terms.var(axis=0, ddof=1) / n + bias.mean(axis=0) ** 2)


def _weight_grid(w: FloatArray) -> FloatArray:
    return np.unique(np.quantile(w, [0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1.0]))


def switch_weights(weight: FloatArray, tau: float) -> FloatArray:
    """Switch-DR's weights: ``w`` where ``w <= tau``, else 0 (the model alone)."""
    return np.where(weight <= tau, weight, 0.0)


def dros_weights(weight: FloatArray, lam: float) -> FloatArray:
    """DRos's optimistically shrunk weights ``lambda w / (w^2 + lambda)``."""
    return np.asarray(lam * weight / (weight**2 + lam))


def clip_weights(weight: FloatArray, clip: float) -> FloatArray:
    """Clipped IPS's weights ``min(w, M)``."""
    return np.minimum(weight, clip)


#: How each tuned estimator shrinks its weights, given the grid value.
SHRINK: dict[str, Callable[[FloatArray, float], FloatArray]] = {
    "switch": switch_weights, "dros": dros_weights, "clip": clip_weights,
}


def tuning_grid(kind: str, weight: FloatArray) -> FloatArray:
    """Candidate values of ``tau`` (``'switch'``), ``M`` (``'clip'``) or ``lambda`` (``'dros'``)."""
    if kind == "dros":
        top = max(float((weight**2).max()), 1e-6)
        return np.geomspace(top * 1e-4, top * 1e3, 15)
    return _weight_grid(weight)


def candidates(kind: str, grid: FloatArray, weight: FloatArray, reward: FloatArray,
               q_logged: FloatArray | None = None,
               q_policy: FloatArray | None = None) -> tuple[FloatArray, FloatArray]:
    """Per-row totals of the estimator at each grid value and the part the shrinkage removes.

    Both (n, G). Without a model (``q_logged`` None) the estimator is shrunk IPS.
    """
    resid = reward if q_logged is None else reward - q_logged
    base = 0.0 if q_policy is None else q_policy.sum(axis=1)
    terms = np.empty((weight.shape[0], grid.size))
    bias = np.empty_like(terms)
    for g, value in enumerate(grid):
        shrunk = SHRINK[kind](weight, float(value))
        terms[:, g] = base + (shrunk * resid).sum(axis=1)
        bias[:, g] = ((weight - shrunk) * resid).sum(axis=1)
    return terms, bias


def _tune(kind: str, weight: FloatArray, reward: FloatArray, q_logged: FloatArray | None = None,
          q_policy: FloatArray | None = None) -> float:
    grid = tuning_grid(kind, weight)
    terms, bias = candidates(kind, grid, weight, reward, q_logged, q_policy)
    return float(grid[int(np.argmin(mse_scores(terms, bias)))])


def tune_switch(weight: FloatArray, reward: FloatArray, q_logged: FloatArray, q_policy: FloatArray) -> float:
    """``tau`` from the weight quantiles minimising variance + (what the switch removes)^2."""
    return _tune("switch", weight, reward, q_logged, q_policy)


def tune_dros(weight: FloatArray, reward: FloatArray, q_logged: FloatArray, q_policy: FloatArray) -> float:
    """``lambda`` on a geometric grid around the squared weights, by the same criterion."""
    return _tune("dros", weight, reward, q_logged, q_policy)


def tune_clip(weight: FloatArray, reward: FloatArray) -> float:
    """Clipping level ``M`` from the weight quantiles, by the same criterion."""
    return _tune("clip", weight, reward)


def replay_match(item: IntArray, slot: IntArray, action_dist: FloatArray, seed: int) -> FloatArray:
    """1 where a draw from the policy's slot distribution equals the logged item, else 0, (n, k).

    ``item`` and ``slot`` are (n, k); ``action_dist`` is (n, n_items, n_positions).
    """
    rng = np.random.default_rng([seed, 13])
    n, k = item.shape
    n_items = action_dist.shape[1]
    rows = np.arange(n)
    match = np.zeros((n, k))
    for j in range(k):
        cdf = np.cumsum(action_dist[rows, :, slot[:, j]], axis=1)
        u = rng.random(n) * cdf[:, -1]
        drawn = np.minimum((cdf < u[:, None]).sum(axis=1), n_items - 1)
        match[:, j] = drawn == item[:, j]
    return match


# ---- the public functions of arrays --------------------------------------------------------------


def _checked(reward: Any, pscore_item: Any, eval_pscore_item: Any) -> tuple[FloatArray, FloatArray]:
    r = check_slot_array("reward", reward, None, "value")
    p = check_slot_array("pscore_item", pscore_item, r.shape, "pscore")
    pi = check_slot_array("eval_pscore_item", eval_pscore_item, r.shape, "probability")
    return r, pi / p


def _model(q_hat: Any, q_hat_eval: Any, shape: tuple[int, ...]) -> tuple[FloatArray, FloatArray]:
    return (check_slot_array("q_hat", q_hat, shape, "value"),
            check_slot_array("q_hat_eval", q_hat_eval, shape, "value"))


def dm(q_hat_eval: Any) -> float:
    """Direct method from ``q_hat_eval`` (n, k) or (n,): the mean over rows of its sum over slots."""
    return Terms(dm_parts(check_slot_array("q_hat_eval", q_hat_eval, None, "value"))).value()


def ips(reward: Any, pscore_item: Any, eval_pscore_item: Any) -> float:
    """Inverse propensity scoring; each argument (n, k) or (n,)."""
    r, w = _checked(reward, pscore_item, eval_pscore_item)
    return Terms(ips_parts(w, r)).value()


def snips(reward: Any, pscore_item: Any, eval_pscore_item: Any) -> float:
    """Self-normalised IPS; each argument (n, k) or (n,)."""
    r, w = _checked(reward, pscore_item, eval_pscore_item)
    return Terms(snips_parts(w, r)).value()


def dr(reward: Any, pscore_item: Any, eval_pscore_item: Any, q_hat: Any, q_hat_eval: Any) -> float:
    """Doubly robust; each argument (n, k) or (n,)."""
    r, w = _checked(reward, pscore_item, eval_pscore_item)
    q, q_pi = _model(q_hat, q_hat_eval, r.shape)
    return Terms(dr_parts(w, r, q, q_pi)).value()


def sndr(reward: Any, pscore_item: Any, eval_pscore_item: Any, q_hat: Any, q_hat_eval: Any) -> float:
    """Self-normalised doubly robust; each argument (n, k) or (n,)."""
    r, w = _checked(reward, pscore_item, eval_pscore_item)
    q, q_pi = _model(q_hat, q_hat_eval, r.shape)
    return Terms(sndr_parts(w, r, q, q_pi)).value()


def switch_dr(reward: Any, pscore_item: Any, eval_pscore_item: Any, q_hat: Any, q_hat_eval: Any, *,
              tau: float | None = None) -> float:
    """Switch-DR: the model alone where ``w > tau`` (``tau`` tuned when None)."""
    r, w = _checked(reward, pscore_item, eval_pscore_item)
    q, q_pi = _model(q_hat, q_hat_eval, r.shape)
    t = tau if tau is not None else tune_switch(w, r, q, q_pi)
    return Terms(dr_parts(switch_weights(w, t), r, q, q_pi)).value()


def dros(reward: Any, pscore_item: Any, eval_pscore_item: Any, q_hat: Any, q_hat_eval: Any, *,
         lam: float | None = None) -> float:
    """DR with optimistic shrinkage ``w -> lam w / (w^2 + lam)`` (``lam`` tuned when None)."""
    r, w = _checked(reward, pscore_item, eval_pscore_item)
    q, q_pi = _model(q_hat, q_hat_eval, r.shape)
    lam_ = lam if lam is not None else tune_dros(w, r, q, q_pi)
    return Terms(dr_parts(dros_weights(w, lam_), r, q, q_pi)).value()


def clipped_ips(reward: Any, pscore_item: Any, eval_pscore_item: Any, *, clip: float | None = None) -> float:
    """IPS with weights clipped at ``clip`` (tuned when None)."""
    r, w = _checked(reward, pscore_item, eval_pscore_item)
    return Terms(clipped_ips_parts(w, r, clip if clip is not None else tune_clip(w, r))).value()


def replay(reward: Any, slate: Any, eval_action_dist: Any, *, seed: int = 0) -> float:
    """Replay (Li et al. 2011) on ``slate`` (n, k) with the policy's (n, n_items, k) distribution.

    Unbiased when the logging policy is uniform over the items at each slot.
    """
    r = check_slot_array("reward", reward, None, "value")
    item = np.asarray(slate)
    if item.ndim == 1:
        item = item[:, None]
    dist = np.asarray(eval_action_dist, dtype=np.float64)
    if item.shape != r.shape or dist.ndim != 3 or dist.shape[0] != r.shape[0] or dist.shape[2] != r.shape[1]:
        raise OPEError(f"replay: `slate` {item.shape} must match `reward` {r.shape}, and `eval_action_dist` "
                       f"{dist.shape} must be (n, n_items, k).")
    if item.size and (item.min() < 0 or item.max() >= dist.shape[1]):
        raise OPEError(f"replay: `slate` holds item indices outside [0, {dist.shape[1]}), the items of "
                       "`eval_action_dist`.")
    slot = np.broadcast_to(np.arange(r.shape[1]), r.shape)
    return Terms(replay_parts(replay_match(item.astype(np.int64), slot, dist, seed), r)).value()
