"""The registry of estimators: each reads the prepared log and returns its :class:`Terms` and weights.

The arithmetic lives in pure functions of arrays: :mod:`bandits.ope.position` for
the per-position estimators, and :mod:`bandits.ope.slate` for the slate ones; this module adds what
the intervals need (the reward model's influence) and the diagnostics' weights.

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

from bandits.ope import position as pos
from bandits.ope import slate as SLATE
from bandits.ope._data import FloatArray, OPEData
from bandits.ope.intervals import Part, Terms, Tuned
from bandits.ope.reward_model import (
    Predictions,
    RidgeRewardModel,
    logged_features_mean,
    policy_features_mean,
    row_influence,
)
from simulator.errors import OPEError


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
    #: The largest weight any (row, slot) term can carry, known from the logging propensities
    #: (``1 / min pscore``), for the empirical-Bernstein bound; None where weights are unbounded.
    weight_bound: float | None = None


def _influence(ctx: Context, coef_policy: FloatArray, coef_logged: FloatArray) -> FloatArray | None:
    """First-order effect of each row through the reward model's coefficients (None for custom models).

    ``coef_policy`` and ``coef_logged`` (n, k) are the derivatives of the row's term with
    respect to ``q_hat_eval`` and ``q_hat`` at each slot.
    """
    pred = ctx.pred
    if pred is None or pred.model is None or not isinstance(ctx.model, RidgeRewardModel):
        return None
    grad = policy_features_mean(pred.model, ctx.data, ctx.model.link, coef_policy)
    grad -= logged_features_mean(ctx.data, coef_logged * pred.d_logged)
    return row_influence(ctx.model, pred.model, ctx.data, grad)


def _influences(ctx: Context, weights: list[FloatArray]) -> FloatArray | None:
    """:func:`_influence` of DR with each of ``weights`` ((n, k) each), as (n, G); one solve.

    The influence is linear in the gradient, and the gradient of DR with weights ``w``
    is the policy part minus the logged features weighted by ``w``.
    """
    pred = ctx.pred
    if pred is None or pred.model is None or not isinstance(ctx.model, RidgeRewardModel):
        return None
    d = ctx.data
    g_policy = policy_features_mean(pred.model, d, ctx.model.link, np.ones(d.item.shape))
    grads = np.column_stack([g_policy - logged_features_mean(d, w * pred.d_logged) for w in weights])
    H, X, resid = ctx.model.hessian_and_scores(pred.model, d)
    h = np.linalg.solve(H, grads)
    per_pair = np.asarray(X @ h) * resid[:, None]
    return np.asarray(per_pair.reshape(d.n, d.k, -1).sum(axis=1), dtype=np.float64)


def _tuned(ctx: Context, kind: str, label: str, model: bool) -> Result:
    """A shrunk estimator whose parameter is chosen by estimated MSE, again in every replicate."""
    d = ctx.data
    pred = _need_model(ctx) if model else None
    grid = pos.tuning_grid(kind, d.weight)
    q_logged = None if pred is None else pred.q_logged
    q_policy = None if pred is None else pred.q_policy
    terms, bias = pos.candidates(kind, grid, d.weight, d.reward, q_logged, q_policy)
    infl = (_influences(ctx, [pos.SHRINK[kind](d.weight, float(g)) for g in grid]) if model else None)
    tuned = Tuned(terms, bias, infl, grid)
    c = tuned.choice()
    removed = float(bias[:, c].mean())
    value = float(terms[:, c].mean())
    notes = (f"{label} = {grid[c]:.4g}, chosen from the data by estimated MSE and chosen again inside "
             "every bootstrap replicate",
             f"estimand: the shrunk value, not the policy's value; the shrinkage removed {removed:.4g} "
             f"({abs(removed) / max(abs(value), 1e-300):.1%} of the estimate) here, a bias the interval "
             "does not cover")
    bound = min(float(grid[c]), _item_bound(d)) if kind == "clip" else None
    return Result(Terms.from_tuned(tuned), d.weight, notes, weight_bound=bound)


def _item_bound(d: OPEData) -> float:
    """``1 / min pscore_item``: no evaluation probability (<= 1) can weigh a (row, slot) more."""
    return float(1.0 / d.pscore_item.min())


def _need_model(ctx: Context) -> Predictions:
    assert ctx.pred is not None  # estimate_all fits the model for estimators that need one
    return ctx.pred


def _dr_with(ctx: Context, w: FloatArray, notes: tuple[str, ...] = ()) -> Result:
    pred = _need_model(ctx)
    d = ctx.data
    parts = pos.dr_parts(w, d.reward, pred.q_logged, pred.q_policy)
    return Result(Terms(parts, _influence(ctx, np.ones(w.shape), w)), d.weight, notes)


def dm(ctx: Context) -> Result:
    """Direct method."""
    pred = _need_model(ctx)
    ones = np.ones(ctx.data.item.shape)
    return Result(Terms(pos.dm_parts(pred.q_policy), _influence(ctx, ones, np.zeros(ones.shape))), None)


def ips(ctx: Context) -> Result:
    """Inverse propensity scoring."""
    d = ctx.data
    return Result(Terms(pos.ips_parts(d.weight, d.reward)), d.weight, weight_bound=_item_bound(d))


def snips(ctx: Context) -> Result:
    """Self-normalised IPS."""
    d = ctx.data
    return Result(Terms(pos.snips_parts(d.weight, d.reward)), d.weight)


def dr(ctx: Context) -> Result:
    """Doubly robust."""
    return _dr_with(ctx, ctx.data.weight)


def sndr(ctx: Context) -> Result:
    """Self-normalised doubly robust."""
    pred = _need_model(ctx)
    d = ctx.data
    parts = pos.sndr_parts(d.weight, d.reward, pred.q_logged, pred.q_policy)
    scale = d.weight / np.maximum(d.weight.mean(axis=0), 1e-300)
    return Result(Terms(parts, _influence(ctx, np.ones(d.weight.shape), scale)), d.weight)


def switch_dr(ctx: Context) -> Result:
    """Switch-DR: the model alone where the weight exceeds ``tau`` (param ``tau``; tuned when absent)."""
    _need_model(ctx)
    d = ctx.data
    tau = ctx.params.get("tau")
    if not tau:
        return _tuned(ctx, "switch", "tau", model=True)
    return _dr_with(ctx, pos.switch_weights(d.weight, tau), (f"tau = {tau:.4g} (given)",))


def dros(ctx: Context) -> Result:
    """DR with optimistic shrinkage ``w -> lambda w / (w^2 + lambda)`` (param ``lambda``; tuned)."""
    _need_model(ctx)
    d = ctx.data
    lam = ctx.params.get("lambda")
    if not lam:
        return _tuned(ctx, "dros", "lambda", model=True)
    return _dr_with(ctx, pos.dros_weights(d.weight, lam), (f"lambda = {lam:.4g} (given)",))


def clipped_ips(ctx: Context) -> Result:
    """IPS with weights clipped at ``M`` (param ``clip``; tuned when absent)."""
    d = ctx.data
    clip = ctx.params.get("clip")
    if not clip:
        return _tuned(ctx, "clip", "M", model=False)
    return Result(Terms(pos.clipped_ips_parts(d.weight, d.reward, clip)), d.weight,
                  (f"M = {clip:.4g} (given)",), weight_bound=min(clip, _item_bound(d)))


def replay(ctx: Context) -> Result:
    """Replay (Li et al. 2011): keep the (row, slot)s whose logged item equals a draw of the policy.

    Unbiased when the logging policy is uniform over items at each slot.
    """
    d = ctx.data
    match = pos.replay_match(d.item, d.slot, d.action_dist, ctx.seed)
    kept = int(match.sum())
    notes = [f"replay kept {kept:,} of {match.size:,} decisions ({int((match * d.reward > 0).sum()):,} "
             "with a reward)"]
    if (match.sum(axis=0) == 0).any():
        notes.append("no logged item matched the policy's draw at some slot: replay is undefined there")
    if np.ptp(d.pscore_item) > 1e-12:
        notes.append("replay is unbiased only under uniform logging; this log's propensities vary")
    return Result(Terms(pos.replay_parts(match, d.reward)), None, tuple(notes))


# ---- slate estimators -------------------------------------------------------------------------


def _require(ctx: Context, name: str, estimator: str) -> FloatArray:
    value = getattr(ctx, name)
    if value is None:
        raise OPEError(f"estimator {estimator!r} needs `{name}` (see bandits.ope.estimate_all); pass it, "
                       "or leave this estimator out.")
    return np.asarray(value)


def _whole_slates(ctx: Context, estimator: str) -> OPEData:
    d = ctx.data
    if d.has_position:
        raise OPEError(f"estimator {estimator!r} needs whole slates (one row per slate); this log has one "
                       f"row per position. Leave {estimator!r} out.")
    return d


def _row_part(num: FloatArray) -> Terms:
    return Terms((Part(np.asarray(num, dtype=np.float64)[:, None]),))


def sips(ctx: Context) -> Result:
    """Standard slate IPS: whole-slate weight times the slate's total reward."""
    d = _whole_slates(ctx, "sips")
    eval_pscore = _require(ctx, "eval_pscore", "sips")
    num, _ = SLATE.sips_terms(d.reward, d.pscore, eval_pscore)
    return Result(_row_part(num), (eval_pscore / d.pscore)[:, None], weight_bound=float(1 / d.pscore.min()))


def iips(ctx: Context) -> Result:
    """Independent IPS: per-slot marginal weights."""
    d = ctx.data
    num, _ = SLATE.iips_terms(d.reward, d.pscore_item, d.pi_item)
    return Result(_row_part(num), d.weight, weight_bound=_item_bound(d))


def rips(ctx: Context) -> Result:
    """Reward-interaction IPS: slot ``j`` weighted by the prefix ``1..j``'s probability ratio."""
    d = _whole_slates(ctx, "rips")
    eval_c = _require(ctx, "eval_pscore_cascade", "rips")
    log_c = _require(ctx, "pscore_cascade", "rips")
    num, _ = SLATE.rips_terms(d.reward, log_c, eval_c)
    return Result(_row_part(num), eval_c / log_c, weight_bound=float(1 / log_c.min()))


def cascade_dr(ctx: Context) -> Result:
    """Cascade doubly robust (Kiyohara et al. 2022) with the per-slot reward model.

    ``Q_j`` (the reward from slot ``j`` on, given the logged prefix ``1..j``) is the model
    at the logged item of slot ``j`` plus the evaluation policy's expected model reward at
    the later slots; its expectation over slot ``j``'s item uses the policy's slot-``j``
    marginal (exact when the policy's choice at ``j`` does not depend on the items above
    it, and for deterministic policies; the estimator stays unbiased either way, since
    any ``Q`` is an unbiased control variate with correct prefix propensities).
    """
    d = _whole_slates(ctx, "cascade-dr")
    eval_c = _require(ctx, "eval_pscore_cascade", "cascade-dr")
    log_c = _require(ctx, "pscore_cascade", "cascade-dr")
    pred = _need_model(ctx)
    rest = np.cumsum(pred.q_policy[:, ::-1], axis=1)[:, ::-1] - pred.q_policy  # sum over l > j
    num, _ = SLATE.cascade_dr_terms(d.reward, log_c, eval_c, pred.q_logged + rest, pred.q_policy + rest)
    w = eval_c / log_c
    # d num / d q_policy_l telescopes to 1 at every slot; d num / d q_logged_j = -w_1..j
    return Result(Terms(_row_part(num).parts, _influence(ctx, np.ones(w.shape), w)), w)


def pseudoinverse(ctx: Context) -> Result:
    """The pseudoinverse estimator, for slates logged uniformly at random over the whole catalog."""
    d = _whole_slates(ctx, "pi")
    m, k = d.n_items, d.k
    n_elig = SLATE.uniform_n_eligible(d.pscore, k, m)
    if (n_elig < 0).any():
        row = int(np.flatnonzero(n_elig < 0)[0])
        raise OPEError(f"estimator 'pi' is for uniform logging over all {m} items (pscore "
                       f"{1 / SLATE.falling(m, k):.4g}); this log's pscore at row {row} is "
                       f"{d.pscore[row]:.4g}, "
                       "which no uniform draw of distinct items gives (its pscore ranges over "
                       f"[{d.pscore.min():.4g}, {d.pscore.max():.4g}]). Leave 'pi' out.")
    num, w = SLATE.pi_terms(d.reward, d.item, d.action_dist[:, :, :k], n_elig)
    return Result(_row_part(num), np.asarray(w, dtype=np.float64)[:, None])


@dataclass(frozen=True, slots=True)
class Spec:
    """A registered estimator: its function and what it needs.

    Attributes:
        fn: computes the estimator's :class:`Result` from a :class:`Context`.
        model: needs the reward model.
        needs: the optional ``estimate_all`` arguments it needs.
        slate: a slate estimator (left out of the defaults unless its inputs are given).
        mean_type: the estimate is a plain mean of per-row terms (the empirical-Bernstein
            bound applies).
    """

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
