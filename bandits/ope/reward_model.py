"""Reward models for DM and DR: ``q(x, a, s) = E[reward | context x, item a, slot s]``.

The built-in models are generalised linear in the features ``[1, x, onehot(a),
onehot(s)]`` (``p = 1 + d + n_items + n_positions`` coefficients), fitted by
penalised least squares (:class:`RidgeRewardModel`) or penalised logistic
regression by Newton's method (:class:`LogisticRewardModel`). Their additive
form gives the expectation under a policy without an ``(n, n_items)`` design:
``sum_a pi(a) q(x, a, s)``.

Besides predictions they give what honest intervals need: the score
``psi_i`` of each row (the gradient of its log-likelihood in the coefficients)
and the penalised Hessian ``H``, so an estimate's dependence on the fitted
coefficients can be propagated (``delta beta ~= H^-1 sum_i psi_i``).

Any scikit-learn-style object with ``fit(X, y)`` and ``predict(X)`` (or
``predict_proba``) can be passed instead; it is fitted on the dense features
above and cannot report its own uncertainty.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from scipy.special import expit

from bandits.ope._data import FloatArray, IntArray, OPEData
from simulator.errors import OPEError

#: Rows per chunk when a computation needs ``(rows, n_items)`` arrays.
CHUNK = 65_536


def design(context: FloatArray, item: IntArray, slot: IntArray, n_items: int,
           n_positions: int) -> sp.csr_matrix:
    """Sparse features of (row, slot) pairs, shape (n * k, p): ``[1, x, onehot(item), onehot(slot)]``.

    ``context`` is (n, d); ``item`` and ``slot`` are (n, k); pairs are in row-major order.
    """
    n, k = item.shape
    d = context.shape[1]
    x = np.repeat(context, k, axis=0)
    m = n * k
    dense = sp.csr_matrix(np.hstack([np.ones((m, 1)), x]))
    onehots = sp.csr_matrix((np.ones(2 * m), (np.repeat(np.arange(m), 2),
                                              np.column_stack([1 + d + item.ravel(),
                                                               1 + d + n_items + slot.ravel()]).ravel())),
                            shape=(m, 1 + d + n_items + n_positions))
    return sp.csr_matrix(sp.hstack([dense, sp.csr_matrix((m, n_items + n_positions))]) + onehots)


@dataclass(frozen=True, slots=True)
class Fitted:
    """Coefficients ``beta (p,)`` split by feature block."""

    beta: FloatArray
    d: int
    n_items: int

    @property
    def intercept(self) -> float:
        """The constant."""
        return float(self.beta[0])

    @property
    def w_context(self) -> FloatArray:
        """(d,) context coefficients."""
        return self.beta[1:1 + self.d]

    @property
    def w_item(self) -> FloatArray:
        """(n_items,) item effects."""
        return self.beta[1 + self.d:1 + self.d + self.n_items]

    @property
    def w_slot(self) -> FloatArray:
        """(n_positions,) slot effects."""
        return self.beta[1 + self.d + self.n_items:]

    def link_input(self, context: FloatArray, item: IntArray, slot: IntArray) -> FloatArray:
        """Linear predictor of (row, slot) pairs, (n, k)."""
        base = self.intercept + context @ self.w_context
        return base[:, None] + self.w_item[item] + self.w_slot[slot]


@dataclass(frozen=True, slots=True)
class Predictions:
    """A reward model's view of a log under an evaluation policy.

    Attributes:
        q_logged: (n, k) predicted reward of the logged item at its slot.
        q_policy: (n, k) expected predicted reward at that slot when the item is drawn
            from the evaluation policy's slot distribution.
        d_logged: (n, k) derivative of the mean function at the logged item (1 for ridge).
        model: the fitted linear model whose uncertainty can be propagated, or None.
    """

    q_logged: FloatArray
    q_policy: FloatArray
    d_logged: FloatArray
    model: Fitted | None


class RewardModel(Protocol):
    """What :func:`cross_fit` needs of a reward model."""

    name: str

    def fit(self, data: OPEData, rows: IntArray) -> Any:
        """Fit on ``rows``; return the fitted state."""
        ...

    def predict(self, state: Any, data: OPEData, rows: IntArray) -> tuple[FloatArray, FloatArray]:
        """``(q_logged, q_policy)`` for ``rows``, each (len(rows), k)."""
        ...


def _policy_expectation(fitted: Fitted, data: OPEData, rows: IntArray, link: str) -> FloatArray:
    """``sum_a pi(a | x, s) q(x, a, s)`` at each (row, slot) of ``rows``, (len(rows), k)."""
    ctx = data.context[rows]
    slot = data.slot[rows]
    base = fitted.intercept + ctx @ fitted.w_context
    out = np.empty(slot.shape)
    for j in range(slot.shape[1]):
        for start in range(0, rows.size, CHUNK):
            sl = slice(start, start + CHUNK)
            dist = data.action_dist[rows[sl], :, slot[sl, j]]  # (chunk, n_items)
            if link == "identity":
                out[sl, j] = base[sl] + fitted.w_slot[slot[sl, j]] + dist @ fitted.w_item
            else:
                lin = (base[sl] + fitted.w_slot[slot[sl, j]])[:, None] + fitted.w_item[None, :]
                out[sl, j] = np.einsum("ij,ij->i", dist, expit(lin))
    return out


class RidgeRewardModel:
    """Penalised least squares on ``[1, x, onehot(item), onehot(slot)]`` (the intercept unpenalised).

    Args:
        alpha: the penalty (in units of rows: the prior weight of a zero coefficient).
    """

    name = "ridge"
    link = "identity"

    def __init__(self, alpha: float = 1.0) -> None:
        if not alpha > 0:
            raise OPEError(f"RidgeRewardModel: alpha must be > 0, found {alpha}.")
        self.alpha = float(alpha)

    def _penalty(self, p: int) -> FloatArray:
        pen = np.full(p, self.alpha)
        pen[0] = 1e-8
        return pen

    def fit(self, data: OPEData, rows: IntArray) -> Fitted:
        """Solve the normal equations on ``rows``."""
        X = design(data.context[rows], data.item[rows], data.slot[rows], data.n_items, data.n_positions)
        y = data.reward[rows].ravel()
        gram = (X.T @ X).toarray() + np.diag(self._penalty(X.shape[1]))
        beta = np.linalg.solve(gram, X.T @ y)
        return Fitted(beta, data.context.shape[1], data.n_items)

    def predict(self, state: Fitted, data: OPEData, rows: IntArray) -> tuple[FloatArray, FloatArray]:
        """``(q_logged, q_policy)`` of ``rows``."""
        q = state.link_input(data.context[rows], data.item[rows], data.slot[rows])
        return q, _policy_expectation(state, data, rows, self.link)

    def hessian_and_scores(self, state: Fitted,
                           data: OPEData) -> tuple[FloatArray, sp.csr_matrix, FloatArray]:
        """``H (p, p)``, the pair design ``X (n*k, p)`` and pair residual weights ``e (n*k,)``.

        Row ``i``'s score is ``sum_j X[i*k + j] * e[i*k + j]``.
        """
        X = design(data.context, data.item, data.slot, data.n_items, data.n_positions)
        resid = data.reward.ravel() - X @ state.beta
        H = (X.T @ X).toarray() + np.diag(self._penalty(X.shape[1]))
        return H, X, resid

    def derivative(self, state: Fitted, data: OPEData) -> FloatArray:
        """Derivative dq / d(linear predictor) at the logged pairs, (n, k): 1 for a linear model."""
        return np.ones(data.item.shape)


class LogisticRewardModel(RidgeRewardModel):
    """Penalised logistic regression on the same features, for rewards in [0, 1] (clicks).

    Args:
        alpha: L2 penalty on the coefficients (the intercept unpenalised).
        max_iter: Newton iterations.
        tol: stop when the largest coefficient change is below this.
    """

    name = "logistic"
    link = "logit"

    def __init__(self, alpha: float = 1.0, max_iter: int = 50, tol: float = 1e-8) -> None:
        super().__init__(alpha)
        self.max_iter = max_iter
        self.tol = tol

    def fit(self, data: OPEData, rows: IntArray) -> Fitted:
        """Newton's method (iteratively reweighted least squares) on ``rows``."""
        y = data.reward[rows].ravel()
        if ((y < 0) | (y > 1)).any():
            raise OPEError("reward_model='logistic' needs rewards in [0, 1] (clicks); this log's rewards "
                           f"range over [{y.min():.3g}, {y.max():.3g}]. Use reward_model='ridge'.")
        X = design(data.context[rows], data.item[rows], data.slot[rows], data.n_items, data.n_positions)
        pen = self._penalty(X.shape[1])
        beta = np.zeros(X.shape[1])
        mean = float(np.clip(y.mean(), 1e-6, 1 - 1e-6))
        beta[0] = np.log(mean / (1 - mean))
        for _ in range(self.max_iter):
            prob = expit(X @ beta)
            v = prob * (1 - prob)
            grad = X.T @ (y - prob) - pen * beta
            hess = (X.T @ X.multiply(v[:, None])).toarray() + np.diag(pen)
            step = np.linalg.solve(hess, grad)
            beta += step
            if np.abs(step).max() < self.tol:
                break
        return Fitted(beta, data.context.shape[1], data.n_items)

    def predict(self, state: Fitted, data: OPEData, rows: IntArray) -> tuple[FloatArray, FloatArray]:
        """``(q_logged, q_policy)`` of ``rows``: probabilities."""
        q = expit(state.link_input(data.context[rows], data.item[rows], data.slot[rows]))
        return q, _policy_expectation(state, data, rows, self.link)

    def hessian_and_scores(self, state: Fitted,
                           data: OPEData) -> tuple[FloatArray, sp.csr_matrix, FloatArray]:
        """``H``, the pair design and the pair residuals ``y - p`` (the logistic score weights)."""
        X = design(data.context, data.item, data.slot, data.n_items, data.n_positions)
        prob = expit(X @ state.beta)
        v = prob * (1 - prob)
        H = (X.T @ X.multiply(v[:, None])).toarray() + np.diag(self._penalty(X.shape[1]))
        return H, X, data.reward.ravel() - prob

    def derivative(self, state: Fitted, data: OPEData) -> FloatArray:
        """sigma'(linear predictor) at the logged pairs, (n, k)."""
        prob = expit(state.link_input(data.context, data.item, data.slot))
        return prob * (1 - prob)


class SklearnRewardModel:
    """Any object with ``fit(X, y)`` and ``predict(X)`` / ``predict_proba(X)`` on dense features.

    Its uncertainty is unknown to slatewise, so DM/DR intervals with it hold the
    model fixed (the estimate says so in its warnings).
    """

    name = "custom"

    def __init__(self, estimator: Any) -> None:
        if not (hasattr(estimator, "fit") and (hasattr(estimator, "predict")
                                               or hasattr(estimator, "predict_proba"))):
            raise OPEError(f"reward_model {estimator!r} needs fit(X, y) and predict(X) (or predict_proba); "
                           "or pass 'ridge' or 'logistic'.")
        self.template = estimator

    def _clone(self) -> Any:
        try:
            from copy import deepcopy

            return deepcopy(self.template)
        except Exception as err:  # pragma: no cover - exotic estimators
            raise OPEError(f"cannot copy reward_model {self.template!r} for cross-fitting: {err}") from None

    def _predict(self, est: Any, X: Any) -> FloatArray:
        if hasattr(est, "predict_proba"):
            return np.asarray(est.predict_proba(X), dtype=np.float64)[:, 1]
        return np.asarray(est.predict(X), dtype=np.float64)

    def fit(self, data: OPEData, rows: IntArray) -> Any:
        """Fit a copy on ``rows``' pairs."""
        X = design(data.context[rows], data.item[rows], data.slot[rows], data.n_items, data.n_positions)
        est = self._clone()
        est.fit(X.toarray(), data.reward[rows].ravel())
        return est

    def predict(self, state: Any, data: OPEData, rows: IntArray) -> tuple[FloatArray, FloatArray]:
        """Predictions at the logged pairs, and the policy expectation over every item (chunked)."""
        n_rows, k = data.item[rows].shape
        X = design(data.context[rows], data.item[rows], data.slot[rows], data.n_items, data.n_positions)
        q = self._predict(state, X.toarray()).reshape(n_rows, k)
        q_pi = np.empty((n_rows, k))
        items = np.arange(data.n_items)
        step = max(1, CHUNK // data.n_items)
        for j in range(k):
            for start in range(0, n_rows, step):
                r = rows[start:start + step]
                s = data.slot[r, j]
                all_items = np.broadcast_to(items, (r.size, data.n_items))
                all_slots = np.broadcast_to(s[:, None], (r.size, data.n_items))
                Xa = design(data.context[r], all_items, all_slots, data.n_items, data.n_positions).toarray()
                qa = self._predict(state, Xa).reshape(r.size, data.n_items)
                q_pi[start:start + r.size, j] = np.einsum("ij,ij->i", data.action_dist[r, :, s], qa)
        return q, q_pi


def make_reward_model(spec: str | Any) -> RidgeRewardModel | SklearnRewardModel:
    """``'ridge'``, ``'logistic'``, a built-in model instance, or a scikit-learn-style estimator."""
    if isinstance(spec, RidgeRewardModel | SklearnRewardModel):
        return spec
    if spec == "ridge":
        return RidgeRewardModel()
    if spec == "logistic":
        return LogisticRewardModel()
    if isinstance(spec, str):
        raise OPEError(f"unknown reward_model {spec!r}; choose 'ridge', 'logistic' or pass an estimator "
                       "with fit(X, y) and predict(X).")
    return SklearnRewardModel(spec)


def folds(n: int, n_folds: int, seed: int) -> IntArray:
    """Fold label of each row, (n,), a seeded balanced split."""
    if n_folds < 2:
        return np.zeros(n, dtype=np.int64)
    if n < 2 * n_folds:
        raise OPEError(f"n_folds={n_folds} needs at least {2 * n_folds} rows; the log has {n}. "
                       "Use fewer folds.")
    labels = np.arange(n, dtype=np.int64) % n_folds
    return np.random.default_rng([seed, 7]).permutation(labels)


def cross_fit(model: RidgeRewardModel | SklearnRewardModel, data: OPEData, n_folds: int,
              seed: int) -> Predictions:
    """Predictions where each row is scored by a model fitted on the other folds (``n_folds < 2``: no split).

    For the built-in models the full-data fit is also returned, for the uncertainty
    propagation in the intervals.
    """
    label = folds(data.n, n_folds, seed)
    q_logged = np.empty(data.item.shape)
    q_policy = np.empty(data.item.shape)
    all_rows = np.arange(data.n)
    for f in np.unique(label):
        test = all_rows[label == f]
        train = all_rows[label != f] if n_folds >= 2 else all_rows
        state = model.fit(data, train)
        q_logged[test], q_policy[test] = model.predict(state, data, test)
    if isinstance(model, RidgeRewardModel):
        full = model.fit(data, all_rows)
        return Predictions(q_logged, q_policy, model.derivative(full, data), full)
    return Predictions(q_logged, q_policy, np.ones(data.item.shape), None)


def policy_features_mean(fitted: Fitted, data: OPEData, link: str, coef: FloatArray) -> FloatArray:
    """``(1/n) sum_{i,j} coef_ij * d/dbeta E_pi[q(x_i, a, s_ij)]``, shape (p,).

    For the identity link the gradient is ``[1, x, pi(. | x, s), onehot(s)]``; for the
    logit link each item's term is weighted by ``sigma'`` at that item.
    """
    d, m, S = data.context.shape[1], data.n_items, data.n_positions
    out = np.zeros(1 + d + m + S)
    base = fitted.intercept + data.context @ fitted.w_context
    for j in range(data.k):
        for start in range(0, data.n, CHUNK):
            sl = slice(start, start + CHUNK)
            s = data.slot[sl, j]
            dist = data.action_dist[np.arange(data.n)[sl], :, s]
            if link == "identity":
                g = dist
            else:
                prob = expit((base[sl] + fitted.w_slot[s])[:, None] + fitted.w_item[None, :])
                g = dist * prob * (1 - prob)
            c = coef[sl, j]
            total = g.sum(axis=1) * c
            out[0] += total.sum()
            out[1:1 + d] += total @ data.context[sl]
            out[1 + d:1 + d + m] += c @ g
            out[1 + d + m:] += np.bincount(s, weights=total, minlength=S)
    return out / data.n


def logged_features_mean(data: OPEData, coef: FloatArray) -> FloatArray:
    """``(1/n) sum_{i,j} coef_ij * [1, x_i, onehot(item_ij), onehot(slot_ij)]``, shape (p,)."""
    m, S = data.n_items, data.n_positions
    row = coef.sum(axis=1)
    out = np.concatenate([[row.sum()], row @ data.context,
                          np.bincount(data.item.ravel(), weights=coef.ravel(), minlength=m),
                          np.bincount(data.slot.ravel(), weights=coef.ravel(), minlength=S)])
    return out / data.n


def row_influence(model: RidgeRewardModel, fitted: Fitted, data: OPEData, grad: FloatArray) -> FloatArray:
    """Each row's first-order effect on an estimate through the fitted coefficients, (n,).

    With ``grad = d estimate / d beta`` and ``delta beta ~= H^-1 sum_i psi_i``, row ``i``
    moves the estimate by ``psi_i . H^-1 grad``; the returned array is that, so that
    ``n * influence`` is the model's share of the estimate's influence function.
    """
    H, X, resid = model.hessian_and_scores(fitted, data)
    h = np.linalg.solve(H, grad)
    per_pair = (X @ h) * resid
    return np.asarray(per_pair.reshape(data.n, data.k).sum(axis=1), dtype=np.float64)


def as_float(a: npt.ArrayLike) -> FloatArray:
    """A float64 array."""
    return np.asarray(a, dtype=np.float64)
