"""Thompson sampling on linear models: Gaussian (ridge posterior) and logistic (Laplace approximation).

Both keep one independent posterior per item, so for one context the sampled
reward ``x . theta_i`` of each item is a univariate normal,
``N(x . mean_i, v^2 x^T Sigma_i x)``: slates are the top-k of one such draw per
item, drawn directly without sampling the d-dimensional parameters.
Propensities are Monte Carlo estimates (see :class:`~bandits.policies.base.SampledScorePolicy`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from bandits.policies import quadrature
from bandits.policies.base import (
    DEFAULT_N_DRAWS,
    SampledScorePolicy,
    check_binary_reward,
    check_int,
    check_number,
    expect_state,
)
from bandits.policies.linear import check_dim_context, ridge_observations
from bandits.policies.ridge import RidgeArms
from bandits.policy import BoolArray, Feedback, FloatArray, IntArray, register_policy


def normal_sampler(policy: SampledScorePolicy, mean: FloatArray,
                    sd: FloatArray) -> Callable[[slice, int], FloatArray]:
    """Draws ``(n_rows, n_draws, n_items)`` of independent ``N(mean, sd^2)`` scores."""

    def draw(rows: slice, n_draws: int) -> FloatArray:
        mu, s = mean[rows], sd[rows]
        z = policy._rng.standard_normal((mu.shape[0], n_draws, mu.shape[1]))
        return mu[:, None, :] + s[:, None, :] * z

    return draw


def normal_quadrature(mean: FloatArray, sd: FloatArray, allowed: BoolArray) -> FloatArray | None:
    """P(each item's N(mean, sd^2) draw is the largest allowed one) (n, n_items), or None (some sd is 0)."""
    out = np.empty(mean.shape)
    ok = quadrature.normal_max_prob(np.ascontiguousarray(mean), np.ascontiguousarray(sd),
                                    np.ascontiguousarray(allowed), out)
    return out if ok else None


def _sigmoid(z: FloatArray) -> FloatArray:
    """Logistic function without overflow warnings."""
    return 0.5 * (1.0 + np.tanh(0.5 * z))


@register_policy("linear_ts")
class LinearTS(SampledScorePolicy):
    """Linear Thompson sampling (Agrawal & Goyal 2013) with a per-item ridge posterior.

    Item ``i``'s parameter has posterior ``N(theta_i, v^2 A_i^{-1})`` with the
    ridge statistics of :class:`~bandits.policies.ridge.RidgeArms`.

    Args:
        n_items: catalog size.
        k: slate length.
        dim_context: context dimension ``d`` (>= 1).
        v: posterior scale (> 0); larger explores more.
        reg: ridge penalty (> 0).
        n_draws: Monte Carlo draws for propensities.
        examination: shape (k,), examination probability of each slot, or None.
        seed: seed of the policy's random generator.
    """

    def __init__(self, n_items: int, k: int, dim_context: int, *, v: float = 0.2, reg: float = 1.0,
                 n_draws: int = DEFAULT_N_DRAWS, examination: Sequence[float] | None = None,
                 seed: int | None = None) -> None:
        super().__init__(n_items, k, dim_context, n_draws=n_draws, examination=examination, seed=seed)
        check_dim_context(self.dim_context, "LinearTS")
        self.v = check_number("v", v, low=0.0, low_open=True)
        self.reg = check_number("reg", reg, low=0.0, low_open=True)
        self._ridge = RidgeArms(self.n_items, self.dim_context, self.reg)

    def _moments(self, context: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Mean and standard deviation (n, n_items) of each item's sampled reward."""
        ridge = self._ridge
        return ridge.mean(context), self.v * np.sqrt(ridge.variance(context))

    def _sampler(self, context: FloatArray) -> Callable[[slice, int], FloatArray]:
        return normal_sampler(self, *self._moments(context))

    def _max_probabilities(self, context: FloatArray, allowed: BoolArray) -> FloatArray | None:
        return normal_quadrature(*self._moments(context), allowed)

    def _update(self, feedback: Feedback) -> None:
        self._ridge.update(*ridge_observations(feedback, self.examination, self.k))

    def _get_state(self) -> dict[str, np.ndarray[Any, Any]]:
        return self._ridge.state()

    def _set_state(self, state: dict[str, np.ndarray[Any, Any]]) -> None:
        self._ridge.set_state(state, "LinearTS")


@register_policy("logistic_ts")
class LogisticTS(SampledScorePolicy):
    """Logistic Thompson sampling with a Laplace approximation per item (Chapelle & Li 2011).

    Item ``i`` has a Gaussian posterior ``N(m_i, P_i^{-1})`` on its logistic
    regression weights. Each update is a Bayesian step from the current
    posterior as prior: ``newton_steps`` Newton iterations find the mode of the
    log posterior over the new observations, and the precision becomes the
    Hessian there. Slates are the top-k of sampled logits (the sigmoid is
    monotone). Rewards must be in [0, 1]; examination weights are not used in
    learning (the model has no position term).

    Args:
        n_items: catalog size.
        k: slate length.
        dim_context: context dimension ``d`` (>= 1).
        v: scale of the posterior draws (> 0); 1 is plain Thompson sampling.
        reg: prior precision (> 0).
        newton_steps: Newton iterations per update (>= 1).
        n_draws: Monte Carlo draws for propensities.
        examination: shape (k,), examination probability of each slot (ordering only), or None.
        seed: seed of the policy's random generator.
    """

    def __init__(self, n_items: int, k: int, dim_context: int, *, v: float = 1.0, reg: float = 1.0,
                 newton_steps: int = 8, n_draws: int = DEFAULT_N_DRAWS,
                 examination: Sequence[float] | None = None, seed: int | None = None) -> None:
        super().__init__(n_items, k, dim_context, n_draws=n_draws, examination=examination, seed=seed)
        check_dim_context(self.dim_context, "LogisticTS")
        self.v = check_number("v", v, low=0.0, low_open=True)
        self.reg = check_number("reg", reg, low=0.0, low_open=True)
        self.newton_steps = check_int("newton_steps", newton_steps, low=1)
        m, d = self.n_items, self.dim_context
        self._mean = np.zeros((m, d))
        self._precision = np.repeat(np.eye(d)[None] * self.reg, m, axis=0)
        self._cov = np.repeat(np.eye(d)[None] / self.reg, m, axis=0)

    def _moments(self, context: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Mean and standard deviation (n, n_items) of each item's sampled logit."""
        mean = context @ self._mean.T
        var = np.einsum("ind,nd->ni", np.matmul(context, self._cov), context)
        return mean, self.v * np.sqrt(np.maximum(var, 0.0))

    def _sampler(self, context: FloatArray) -> Callable[[slice, int], FloatArray]:
        return normal_sampler(self, *self._moments(context))

    def _max_probabilities(self, context: FloatArray, allowed: BoolArray) -> FloatArray | None:
        return normal_quadrature(*self._moments(context), allowed)

    def _update(self, feedback: Feedback) -> None:
        check_binary_reward(feedback, "logistic_ts")
        k_fb = feedback.slate.shape[1]
        items = feedback.slate.ravel()
        x = np.repeat(feedback.context, k_fb, axis=0)
        y = feedback.reward.ravel()
        if items.size == 0:
            return
        order = np.argsort(items, kind="stable")
        items, x, y = items[order], x[order], y[order]
        touched, starts = np.unique(items, return_index=True)
        group = np.searchsorted(touched, items)
        self._newton(touched, starts, group, x, y)

    def _newton(self, touched: IntArray, starts: IntArray, group: IntArray, x: FloatArray,
                y: FloatArray) -> None:
        """Laplace update of the touched items' posteriors, vectorised over items."""
        prior_mean = self._mean[touched]
        prior_prec = self._precision[touched]
        w = prior_mean.copy()
        outer = x[:, :, None] * x[:, None, :]
        hess = prior_prec
        for _ in range(self.newton_steps):
            p = _sigmoid(np.einsum("td,td->t", x, w[group]))
            grad = np.einsum("ide,ie->id", prior_prec, w - prior_mean)
            grad += np.add.reduceat(x * (p - y)[:, None], starts, axis=0)
            curv = np.add.reduceat(outer * (p * (1.0 - p))[:, None, None], starts, axis=0)
            hess = prior_prec + curv
            w = w - np.linalg.solve(hess, grad[:, :, None])[:, :, 0]
        p = _sigmoid(np.einsum("td,td->t", x, w[group]))
        hess = prior_prec + np.add.reduceat(outer * (p * (1.0 - p))[:, None, None], starts, axis=0)
        self._mean[touched] = w
        self._precision[touched] = hess
        self._cov[touched] = np.linalg.inv(hess)

    def _get_state(self) -> dict[str, np.ndarray[Any, Any]]:
        return {"mean": self._mean.copy(), "precision": self._precision.copy(), "cov": self._cov.copy()}

    def _set_state(self, state: dict[str, np.ndarray[Any, Any]]) -> None:
        m, d = self.n_items, self.dim_context
        expect_state(state, {"mean": (m, d), "precision": (m, d, d), "cov": (m, d, d)}, "LogisticTS")
        self._mean = np.array(state["mean"], dtype=np.float64)
        self._precision = np.array(state["precision"], dtype=np.float64)
        self._cov = np.array(state["cov"], dtype=np.float64)
