"""Off-policy evaluation of whole sessions: the value is the expected reward summed over a session.

A session's decisions change what comes next (purchases fill the cart and move the
anchor, a poor slate makes the shopper leave), so a policy's per-decision value can
rank policies in the opposite order to their per-session value. These estimators
weight each decision by the product of the whole-slate ratios ``w_t = pi(s_t | x_t) /
mu(s_t | x_t)`` of the session's decisions so far, ``rho_t = w_0 ... w_t``:

=========  ====================================================================
pdis       mean over sessions of ``sum_t rho_t r_t``  (per-decision IS, Precup et al. 2000)
wpdis      ``sum_t sum_s rho_st r_st / sum_s rho_st``  (weighted per-decision IS)
dr         ``sum_t rho_t (r_t - q_t) + rho_{t-1} v_t``  (sequential DR, Jiang & Li 2016)
wdr        DR with each step's weights normalised  (weighted DR, Thomas & Brunskill 2016)
=========  ====================================================================

``r_t`` is the decision's reward summed over its slots; ``q_t`` a session-level reward
model's prediction of the return from step ``t`` on (the rewards of step ``t`` and
later) given the state and the logged slate, ``v_t`` its expectation when the slate is
drawn from the evaluation policy. An ended session stays in an absorbing state with
reward 0 and weight 1. DR is unbiased for any model; the model only reduces variance.

Intervals come from a bootstrap over sessions. Where the logger's support is too
thin for the evaluation policy (too few effective sessions agree with its first
decision, or with whole sessions: effective number of sessions of the first or the
final weights below ``min_effective_sessions``), the estimate is not a number:
``value`` is NaN and the warnings say why.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from bandits.ope._data import FloatArray, IntArray, check_action_dist
from bandits.ope.intervals import Part, Terms, percentile_interval, replicate_values
from bandits.ope.slate_inputs import policy_slate_pscores
from simulator.errors import OPEError
from simulator.logs import SlateLog

SESSION_ESTIMATORS = ("pdis", "wpdis", "dr", "wdr")
ESTIMANDS = ("session", "decision")
#: Fewer effective sessions than this agreeing with the first decision: "support too thin".
MIN_EFFECTIVE_SESSIONS = 30


@dataclass(frozen=True, slots=True)
class SessionEstimate:
    """One estimator's estimate of a policy's value per session.

    ``value``, ``low`` and ``high`` are NaN when ``supported`` is False (the warnings say
    why). ``ess_first`` / ``ess_last`` are the effective numbers of sessions behind the
    first decision and behind whole sessions; ``mean_weight`` the mean final weight
    ``rho`` (about 1 when the propensities are right).
    """

    estimator: str
    value: float
    low: float
    high: float
    level: float
    stderr: float
    n_sessions: int
    n_decisions: int
    ess_first: float
    ess_last: float
    mean_weight: float
    supported: bool
    warnings: tuple[str, ...]
    estimand: str = "session"

    def to_dict(self) -> dict[str, Any]:
        """Plain data (lists for tuples; NaN stays NaN)."""
        out = asdict(self)
        out["warnings"] = list(self.warnings)
        return out


def session_grid(session: npt.ArrayLike, step: npt.ArrayLike) -> tuple[IntArray, IntArray, int]:
    """Row ``i``'s session index ``0 .. S-1`` and its position ``0 .. T-1`` within the session.

    Positions follow ``step`` order within each session. Returns ``(row_session (n,),
    row_pos (n,), T)``.
    """
    sid = np.asarray(session)
    st = np.asarray(step)
    if sid.shape != st.shape or sid.ndim != 1:
        raise OPEError(f"`session` {sid.shape} and `step` {st.shape} must be equal (n,) arrays.")
    _, code = np.unique(sid, return_inverse=True)
    order = np.lexsort((st, code))
    sorted_code = code[order]
    start = np.r_[0, np.flatnonzero(np.diff(sorted_code)) + 1]
    pos_sorted = np.arange(sid.size) - np.repeat(start, np.diff(np.r_[start, sid.size]))
    pos = np.empty(sid.size, dtype=np.int64)
    pos[order] = pos_sorted
    return code.astype(np.int64), pos, int(pos.max()) + 1 if sid.size else 0


def _padded(values: FloatArray, code: IntArray, pos: IntArray, T: int, fill: float) -> FloatArray:
    out = np.full((int(code.max()) + 1, T), fill)
    out[code, pos] = values
    return out


def session_terms(name: str, session: npt.ArrayLike, step: npt.ArrayLike, reward: npt.ArrayLike,
                  weight: npt.ArrayLike, q_logged: npt.ArrayLike | None = None,
                  v_eval: npt.ArrayLike | None = None) -> tuple[Terms, FloatArray]:
    """The :class:`Terms` of session estimator ``name`` (rows: sessions; columns: steps).

    Args:
        name: one of :data:`SESSION_ESTIMATORS`.
        session: (n,) session id of each decision.
        step: (n,) step of each decision within its session.
        reward: (n,) the decision's reward summed over its slots.
        weight: (n,) whole-slate ratio ``pi(s | x) / mu(s | x)`` of the logged slate.
        q_logged: (n,) model return from this step on, logged slate (``dr``, ``wdr``).
        v_eval: (n,) its expectation under the evaluation policy (``dr``, ``wdr``).

    Returns:
        ``(terms, rho)``: the terms and the cumulative weights ``rho`` (S, T).
    """
    if name not in SESSION_ESTIMATORS:
        raise OPEError(f"unknown session estimator {name!r}; choose from {list(SESSION_ESTIMATORS)}.")
    code, pos, T = session_grid(session, step)
    r = _padded(np.asarray(reward, dtype=np.float64), code, pos, T, 0.0)
    w = _padded(np.asarray(weight, dtype=np.float64), code, pos, T, 1.0)
    rho = np.asarray(np.cumprod(w, axis=1), dtype=np.float64)
    if name == "pdis":
        return Terms((Part(rho * r),)), rho
    if name == "wpdis":
        return Terms((Part(rho * r, rho),)), rho
    if q_logged is None or v_eval is None:
        raise OPEError(f"session estimator {name!r} needs `q_logged` and `v_eval` from a session reward "
                       "model (see SessionRewardModel).")
    q = _padded(np.asarray(q_logged, dtype=np.float64), code, pos, T, 0.0)
    v = _padded(np.asarray(v_eval, dtype=np.float64), code, pos, T, 0.0)
    # q_t predicts r_t + (return after t); the DR recursion telescopes to per-step terms with
    # the next step's model value: sum_t rho_t (r_t + v_{t+1} - q_t) + v_0.
    v_next = np.hstack([v[:, 1:], np.zeros((v.shape[0], 1))])
    first = np.zeros_like(v)
    first[:, 0] = v[:, 0]
    if name == "dr":
        return Terms((Part(rho * (r + v_next - q) + first),)), rho
    return Terms((Part(rho * (r + v_next - q), rho), Part(first))), rho


def _design(context: FloatArray, slate: IntArray, n_items: int) -> sp.csr_matrix:
    """``[1, x, onehot(item at slot j) for each j]``, (n, 1 + d + k * n_items)."""
    n, k = slate.shape
    dense = sp.csr_matrix(np.hstack([np.ones((n, 1)), context]))
    cols = (slate + np.arange(k) * n_items).ravel()
    onehot = sp.csr_matrix((np.ones(n * k), (np.repeat(np.arange(n), k), cols)), shape=(n, k * n_items))
    return sp.csr_matrix(sp.hstack([dense, onehot]))


class SessionRewardModel:
    """Ridge regression of the return from a decision on, linear in ``[1, x, onehot(item, slot)]``.

    Linear in the per-slot item indicators, so its expectation under any evaluation policy
    is exact from the policy's slot marginals. Cross-fitted over sessions.

    Args:
        alpha: ridge penalty (the intercept unpenalised).
        n_folds: folds of sessions (a session is never scored by a model fitted on it).
    """

    def __init__(self, alpha: float = 1.0, n_folds: int = 3) -> None:
        if not alpha > 0 or n_folds < 2:
            raise OPEError(f"SessionRewardModel needs alpha > 0 and n_folds >= 2, found {alpha}, {n_folds}.")
        self.alpha, self.n_folds = float(alpha), int(n_folds)

    def predict(self, context: FloatArray, slate: IntArray, action_dist: FloatArray, session: IntArray,
                step: IntArray, reward: FloatArray, seed: int = 0) -> tuple[FloatArray, FloatArray]:
        """``(q_logged (n,), v_eval (n,))``, cross-fitted by session."""
        n, k = slate.shape
        m = action_dist.shape[1]
        code, pos, T = session_grid(session, step)
        r = _padded(reward, code, pos, T, 0.0)
        togo = np.cumsum(r[:, ::-1], axis=1)[:, ::-1][code, pos]
        X = _design(context, slate, m)
        labels = np.arange(int(code.max()) + 1) % self.n_folds
        fold = np.random.default_rng([seed, 21]).permutation(labels)[code]
        pen = np.full(X.shape[1], self.alpha)
        pen[0] = 1e-8
        q, v = np.empty(n), np.empty(n)
        d = context.shape[1]
        for f in range(self.n_folds):
            train, test = fold != f, fold == f
            if not test.any():
                continue
            Xt = X[train]
            beta = np.linalg.solve((Xt.T @ Xt).toarray() + np.diag(pen), Xt.T @ togo[train])
            q[test] = X[test] @ beta
            item_coef = beta[1 + d:].reshape(k, m)  # (slot, item)
            v[test] = beta[0] + context[test] @ beta[1:1 + d] + np.einsum(
                "iaj,ja->i", action_dist[test][:, :, :k], item_coef)
        return q, v


def _ess(w: FloatArray) -> float:
    sq = float((w**2).sum())
    return float(w.sum() ** 2 / sq) if sq > 0 else 0.0


def estimate_sessions(log: SlateLog, action_dist: Any, *, eval_pscore: Any = None,
                      estimators: Sequence[str] = SESSION_ESTIMATORS, n_bootstrap: int = 200,
                      level: float = 0.95, seed: int = 0,
                      min_effective_sessions: int = MIN_EFFECTIVE_SESSIONS,
                      model: SessionRewardModel | None = None) -> list[SessionEstimate]:
    """Estimate the value per session of the policy whose ``action_dist`` is given, on ``log``.

    Args:
        log: whole-slate log (one row per decision) with ``session_id`` and ``step``.
        action_dist: (n, n_items, k) evaluation-policy slot marginals at each logged decision.
        eval_pscore: (n,) evaluation probability of each logged whole slate (default: built
            from the slot marginals, see :func:`bandits.ope.slate_inputs.policy_slate_pscores`).
        estimators: names from :data:`SESSION_ESTIMATORS`.
        n_bootstrap: replicates of the bootstrap over sessions.
        level: confidence level.
        seed: seeds the model's folds and the bootstrap.
        min_effective_sessions: below this many effective sessions behind the first
            decision or behind whole sessions, the estimate is refused ("support too thin").
        model: the session reward model for ``dr``/``wdr`` (default :class:`SessionRewardModel`).
    """
    if not 0 < level < 1:
        raise OPEError(f"`level` must be in (0, 1), found {level}.")
    if n_bootstrap < 2:
        raise OPEError(f"`n_bootstrap` must be >= 2 for session intervals, found {n_bootstrap}.")
    if log.position is not None:
        raise OPEError("session estimators need whole slates (one row per decision); this log has one "
                       "row per position. Use estimand='decision'.")
    unknown = [e for e in estimators if e not in SESSION_ESTIMATORS]
    if unknown:
        raise OPEError(f"unknown session estimator(s) {unknown}; choose from {list(SESSION_ESTIMATORS)}.")
    n = log.n_rounds
    dist = check_action_dist(action_dist, n, log.n_items, log.n_positions)
    notes: list[str] = []
    if eval_pscore is None:
        pi_slate, _, exact = policy_slate_pscores(dist, log.slate)
        if not exact:
            notes.append("the evaluation policy's slate probabilities are built from its slot marginals "
                         "(each slot renormalised over the items not yet shown): exact only for "
                         "deterministic and uniform policies (pass eval_pscore otherwise)")
    else:
        pi_slate = np.asarray(eval_pscore, dtype=np.float64)
        if pi_slate.shape != (n,) or not np.isfinite(pi_slate).all() or (pi_slate < 0).any() \
                or (pi_slate > 1).any():
            raise OPEError(f"`eval_pscore` must be (n,) = ({n},) probabilities in [0, 1].")
    weight = pi_slate / np.asarray(log.pscore)
    reward = np.asarray(log.reward).sum(axis=1)
    session, step = np.asarray(log.session_id), np.asarray(log.step)
    q = v = None
    if any(e in ("dr", "wdr") for e in estimators):
        q, v = (model or SessionRewardModel()).predict(np.asarray(log.context, dtype=np.float64),
                                                       np.asarray(log.slate), dist, session, step, reward,
                                                       seed)
    results = [session_terms(e, session, step, reward, weight, q, v) for e in estimators]
    rho = results[0][1]
    n_sessions = rho.shape[0]
    ess_first, ess_last = _ess(rho[:, 0]), _ess(rho[:, -1])
    mean_w = float(rho[:, -1].mean())
    supported = min(ess_first, ess_last) >= min_effective_sessions
    warns = list(notes)
    if not supported:
        where = "the policy's first decision" if ess_first < min_effective_sessions else "whole sessions"
        warns.append(f"support too thin: only {min(ess_first, ess_last):.1f} effective sessions (of "
                     f"{n_sessions:,}) agree with {where} (need {min_effective_sessions}); the logger "
                     "rarely shows this policy's slates all through a session, so no number is reported")
    if abs(mean_w - 1) > 0.1 and supported:
        warns.append(f"mean session weight {mean_w:.3f} (expected 1): the propensities or the policy's "
                     "slate probabilities are probably wrong")
    reps = replicate_values([t for t, _ in results], n_bootstrap, seed)
    out = []
    for name, (terms, _), rep in zip(estimators, results, reps, strict=True):
        if supported:
            value = terms.value()
            low, high, se = percentile_interval(rep, level)
        else:
            value = low = high = se = math.nan
        out.append(SessionEstimate(name, value, low, high, level, se, n_sessions, n, ess_first, ess_last,
                                   mean_w, supported, tuple(warns)))
    return out
