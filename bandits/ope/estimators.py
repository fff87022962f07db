"""The estimators, each a pure function of the prepared arrays returning its :class:`Terms`.

Per-position estimators treat each (row, slot) as one decision with the logging
marginal ``pscore_item`` and the evaluation policy's slot distribution, and sum
the slots: for ``k = 1`` logs (one row per position, as in the Open Bandit
Dataset) they are the classic contextual-bandit estimators. With
``w = pi(a | x, s) / pscore_item``, ``q`` the reward model at the logged item and
``q_pi = sum_a pi(a | x, s) q(x, a, s)``:

=============  ================================================================
dm             mean q_pi                                 (Beygelzimer & Langford 2009)
ips            mean w r                                  (Horvitz & Thompson 1952)
snips          sum w r / sum w                           (Swaminathan & Joachims 2015)
dr             mean q_pi + w (r - q)                     (Dudik et al. 2011)
sndr           mean q_pi + sum w (r - q) / sum w
switch-dr      DR with w set to 0 where w > tau          (Wang et al. 2017)
dros           DR with w -> lambda w / (w^2 + lambda)    (Su et al. 2020)
clipped-ips    mean min(w, M) r                          (Bottou et al. 2013)
replay         mean r over rows whose logged item equals a draw of the policy (Li et al. 2011)
=============  ================================================================

Slate estimators use whole-slate or prefix probabilities:

=============  ================================================================
sips           mean (pi(s) / mu(s)) sum_j r_j            standard slate IPS
iips           sum_j mean w_j r_j                        independent IPS (Li et al. 2018)
rips           sum_j mean w_{1:j} r_j, prefix weights    reward-interaction IPS (McInerney et al. 2020)
pi             mean r(s) 1_s^T Gamma^+ q_pi              pseudoinverse (Swaminathan et al. 2017)
cascade-dr     DR over prefixes                          (Kiyohara et al. 2022)
=============  ================================================================

``tau``, ``lambda`` and ``M`` default to the value minimising an estimate of the
mean squared error over a grid: the variance of the terms plus the squared size
of what the shrinkage removes (the bias it can introduce).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bandits.ope._data import FloatArray, OPEData, OPEError
from bandits.ope.intervals import Part, Terms
from bandits.ope.reward_model import (
    Predictions,
    RidgeRewardModel,
    logged_features_mean,
    policy_features_mean,
    row_influence,
)


@dataclass(frozen=True, slots=True)
class Context:
    """Everything an estimator may read: data, model predictions, slate inputs, options."""

    data: OPEData
    pred: Predictions | None
    model: Any
    seed: int
    eval_pscore: FloatArray | None = None
    eval_pscore_cascade: FloatArray | None = None
    pscore_cascade: FloatArray | None = None
    params: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Result:
    """An estimator's terms and the importance weights its diagnostics describe."""

    terms: Terms
    weights: FloatArray | None
    notes: tuple[str, ...] = ()


def _influence(ctx: Context, coef_policy: FloatArray, coef_logged: FloatArray) -> FloatArray | None:
    """First-order effect of each row through the reward model's coefficients (None for custom models)."""
    pred = ctx.pred
    if pred is None or pred.model is None or not isinstance(ctx.model, RidgeRewardModel):
        return None
    grad = policy_features_mean(pred.model, ctx.data, ctx.model.link, coef_policy)
    grad -= logged_features_mean(ctx.data, coef_logged * pred.d_logged)
    return row_influence(ctx.model, pred.model, ctx.data, grad)


def _need_model(ctx: Context) -> Predictions:
    assert ctx.pred is not None  # estimate_all fits the model for estimators that need one
    return ctx.pred


def _dr_family(ctx: Context, w: FloatArray) -> Result:
    pred = _need_model(ctx)
    d = ctx.data
    num = pred.q_policy + w * (d.reward - pred.q_logged)
    return Result(Terms((Part(num),), _influence(ctx, np.ones(w.shape), w)), d.weight)


def dm(ctx: Context) -> Result:
    """Direct method."""
    pred = _need_model(ctx)
    ones = np.ones(ctx.data.item.shape)
    return Result(Terms((Part(pred.q_policy),), _influence(ctx, ones, np.zeros(ones.shape))), None)


def ips(ctx: Context) -> Result:
    """Inverse propensity scoring."""
    d = ctx.data
    return Result(Terms((Part(d.weight * d.reward),)), d.weight)


def snips(ctx: Context) -> Result:
    """Self-normalised IPS."""
    d = ctx.data
    return Result(Terms((Part(d.weight * d.reward, d.weight),)), d.weight)


def dr(ctx: Context) -> Result:
    """Doubly robust."""
    return _dr_family(ctx, ctx.data.weight)


def sndr(ctx: Context) -> Result:
    """Self-normalised doubly robust."""
    pred = _need_model(ctx)
    d = ctx.data
    parts = (Part(pred.q_policy), Part(d.weight * (d.reward - pred.q_logged), d.weight))
    scale = d.weight / np.maximum(d.weight.mean(axis=0), 1e-300)
    return Result(Terms(parts, _influence(ctx, np.ones(d.weight.shape), scale)), d.weight)


def _mse_pick(grid: FloatArray, terms_of: Callable[[float], FloatArray], bias_of: Callable[[float], float],
              ) -> float:
    best, best_mse = float(grid[0]), np.inf
    for g in grid:
        t = terms_of(float(g))
        mse = float(t.var(ddof=1) / t.size) + bias_of(float(g)) ** 2
        if mse < best_mse:
            best, best_mse = float(g), mse
    return best


def _weight_grid(w: FloatArray) -> FloatArray:
    return np.unique(np.quantile(w, [0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1.0]))


def switch_dr(ctx: Context) -> Result:
    """Switch-DR: DM where the weight exceeds ``tau`` (param ``tau``; tuned when absent)."""
    pred = _need_model(ctx)
    d = ctx.data
    resid = d.reward - pred.q_logged

    def terms_of(tau: float) -> FloatArray:
        return np.asarray((pred.q_policy + np.where(d.weight <= tau, d.weight, 0.0) * resid).sum(axis=1))

    def bias_of(tau: float) -> float:
        return abs(float((np.where(d.weight > tau, d.weight, 0.0) * resid).sum(axis=1).mean()))

    tau = ctx.params.get("tau") or _mse_pick(_weight_grid(d.weight), terms_of, bias_of)
    result = _dr_family(ctx, np.where(d.weight <= tau, d.weight, 0.0))
    return Result(result.terms, d.weight, (f"tau = {tau:.4g}",))


def dros(ctx: Context) -> Result:
    """DR with optimistic shrinkage: ``w -> lambda w / (w^2 + lambda)`` (param ``lambda``; tuned)."""
    pred = _need_model(ctx)
    d = ctx.data
    resid = d.reward - pred.q_logged

    def shrunk(lam: float) -> FloatArray:
        return np.asarray(lam * d.weight / (d.weight**2 + lam))

    def terms_of(lam: float) -> FloatArray:
        return np.asarray((pred.q_policy + shrunk(lam) * resid).sum(axis=1))

    def bias_of(lam: float) -> float:
        return abs(float(((d.weight - shrunk(lam)) * resid).sum(axis=1).mean()))

    top = max(float((d.weight**2).max()), 1e-6)
    lam = ctx.params.get("lambda") or _mse_pick(np.geomspace(top * 1e-4, top * 1e3, 15), terms_of, bias_of)
    result = _dr_family(ctx, shrunk(lam))
    return Result(result.terms, d.weight, (f"lambda = {lam:.4g}",))


def clipped_ips(ctx: Context) -> Result:
    """IPS with weights clipped at ``M`` (param ``clip``; tuned when absent)."""
    d = ctx.data

    def terms_of(m: float) -> FloatArray:
        return np.asarray((np.minimum(d.weight, m) * d.reward).sum(axis=1))

    def bias_of(m: float) -> float:
        return abs(float(((d.weight - np.minimum(d.weight, m)) * d.reward).sum(axis=1).mean()))

    clip = ctx.params.get("clip") or _mse_pick(_weight_grid(d.weight), terms_of, bias_of)
    return Result(Terms((Part(np.minimum(d.weight, clip) * d.reward),)), d.weight, (f"M = {clip:.4g}",))


def replay(ctx: Context) -> Result:
    """Replay (Li et al. 2011): keep the (row, slot)s whose logged item equals a draw of the policy.

    Unbiased when the logging policy is uniform over items at each slot.
    """
    d = ctx.data
    rng = np.random.default_rng([ctx.seed, 13])
    match = np.zeros(d.item.shape)
    rows = np.arange(d.n)
    for j in range(d.k):
        cdf = np.cumsum(d.action_dist[rows, :, d.slot[:, j]], axis=1)
        u = rng.random(d.n) * cdf[:, -1]
        drawn = np.minimum((cdf < u[:, None]).sum(axis=1), d.n_items - 1)
        match[:, j] = drawn == d.item[:, j]
    kept = int(match.sum())
    notes = [f"replay kept {kept:,} of {match.size:,} decisions ({int((match * d.reward > 0).sum()):,} "
             "with a reward)"]
    if (match.sum(axis=0) == 0).any():
        notes.append("no logged item matched the policy's draw at some slot: replay is undefined there")
    if np.ptp(d.pscore_item) > 1e-12:
        notes.append("replay is unbiased only under uniform logging; this log's propensities vary")
    return Result(Terms((Part(match * d.reward, match),)), None, tuple(notes))


# ---- slate estimators -------------------------------------------------------------------------


def _require(ctx: Context, name: str, estimator: str) -> FloatArray:
    value = getattr(ctx, name)
    if value is None:
        raise OPEError(f"estimator {estimator!r} needs `{name}` (see bandits.ope.estimate_all); pass it, "
                       "or leave this estimator out.")
    return np.asarray(value)


def sips(ctx: Context) -> Result:
    """Standard slate IPS: whole-slate weight times the slate's total reward."""
    eval_pscore = _require(ctx, "eval_pscore", "sips")
    w = eval_pscore / ctx.data.pscore
    return Result(Terms((Part((w * ctx.data.reward.sum(axis=1))[:, None]),)), w[:, None])


def iips(ctx: Context) -> Result:
    """Independent IPS: per-slot marginal weights (equal to per-position IPS)."""
    return ips(ctx)


def rips(ctx: Context) -> Result:
    """Reward-interaction IPS: slot ``j`` weighted by the prefix ``1..j``'s probability ratio."""
    eval_c = _require(ctx, "eval_pscore_cascade", "rips")
    log_c = _require(ctx, "pscore_cascade", "rips")
    w = eval_c / log_c
    return Result(Terms((Part(w * ctx.data.reward),)), w)


def cascade_dr(ctx: Context) -> Result:
    """Cascade doubly robust (Kiyohara et al. 2022) with a per-slot reward model.

    ``Q_j(x, a_1..j) = q(x, a_j, j) + sum_{l > j} q_pi(x, l)`` and its expectation over slot
    ``j``'s item under the policy is approximated by the policy's slot-``j`` marginal
    (exact when the policy's choice at ``j`` does not depend on the items above it,
    and for deterministic policies). Per row:
    ``sum_j w_1..j (r_j - Q_j) + w_1..j-1 E_pi[Q_j]``.
    """
    eval_c = _require(ctx, "eval_pscore_cascade", "cascade-dr")
    log_c = _require(ctx, "pscore_cascade", "cascade-dr")
    pred = _need_model(ctx)
    d = ctx.data
    w = eval_c / log_c
    w_prev = np.hstack([np.ones((d.n, 1)), w[:, :-1]])
    rest = np.cumsum(pred.q_policy[:, ::-1], axis=1)[:, ::-1] - pred.q_policy  # sum over l > j
    num = w * (d.reward - pred.q_logged - rest) + w_prev * (pred.q_policy + rest)
    return Result(Terms((Part(num),), _influence(ctx, np.ones(w.shape), w)), w)


def uniform_gamma_pinv(n_items: int, k: int) -> FloatArray:
    """Pseudoinverse of ``E[1_s 1_s^T]`` for slates drawn uniformly without replacement, (k*m, k*m).

    Index ``j * m + a`` is item ``a`` at slot ``j``.
    """
    m = n_items
    same_slot = np.eye(m) / m
    cross = (np.ones((m, m)) - np.eye(m)) / (m * (m - 1)) if m > 1 else np.zeros((m, m))
    gamma = np.kron(np.eye(k), same_slot) + np.kron(np.ones((k, k)) - np.eye(k), cross)
    return np.asarray(np.linalg.pinv(gamma, hermitian=True))


def pi_weights(item: Any, action_dist: FloatArray, n_items: int) -> FloatArray:
    """Per-row pseudoinverse weight ``1_s^T Gamma^+ q_pi`` under uniform logging, (n,)."""
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


def pseudoinverse(ctx: Context) -> Result:
    """The pseudoinverse estimator, for slates logged uniformly at random over the whole catalog."""
    d = ctx.data
    if d.has_position:
        raise OPEError("estimator 'pi' needs whole slates (one row per slate); this log has one row per "
                       "position. Leave 'pi' out.")
    m, k = d.n_items, d.k
    uniform = 1.0 / np.prod(m - np.arange(k, dtype=np.float64))
    if not np.allclose(d.pscore, uniform, rtol=1e-6):
        raise OPEError(f"estimator 'pi' is implemented for uniform logging over all {m} items (pscore "
                       f"{uniform:.4g}); this log's pscore ranges over [{d.pscore.min():.4g}, "
                       f"{d.pscore.max():.4g}]. Leave 'pi' out.")
    w = pi_weights(d.item, d.action_dist, m)
    return Result(Terms((Part((w * d.reward.sum(axis=1))[:, None]),)), w[:, None])


@dataclass(frozen=True, slots=True)
class Spec:
    """A registered estimator: its function and what it needs."""

    fn: Callable[[Context], Result]
    model: bool = False
    needs: tuple[str, ...] = ()
    slate: bool = False
    mean_type: bool = True


ESTIMATORS: dict[str, Spec] = {
    "dm": Spec(dm, model=True),
    "ips": Spec(ips),
    "snips": Spec(snips, mean_type=False),
    "dr": Spec(dr, model=True),
    "sndr": Spec(sndr, model=True, mean_type=False),
    "switch-dr": Spec(switch_dr, model=True),
    "dros": Spec(dros, model=True),
    "clipped-ips": Spec(clipped_ips),
    "replay": Spec(replay, mean_type=False),
    "sips": Spec(sips, needs=("eval_pscore",), slate=True),
    "iips": Spec(iips, slate=True),
    "rips": Spec(rips, needs=("eval_pscore_cascade", "pscore_cascade"), slate=True),
    "pi": Spec(pseudoinverse, slate=True),
    "cascade-dr": Spec(cascade_dr, model=True, needs=("eval_pscore_cascade", "pscore_cascade"), slate=True),
}
