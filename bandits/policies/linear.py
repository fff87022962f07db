"""Contextual bandits on per-item ridge regressions: LinUCB and epsilon-greedy ridge.

Both model the reward of item ``i`` in context ``x`` as ``x . theta_i``. With an
examination model, a reward at slot ``j`` is learned as ``examination[j] * x . theta_i``
(features scaled by the slot's examination probability), so ``theta_i`` stays
the reward when examined.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from bandits.policies import _kernels
from bandits.policies.base import ScorePolicy, check_number, slot_weights
from bandits.policies.ridge import RidgeArms
from bandits.policy import Feedback, FloatArray, IntArray, SlateDecision, register_policy
from simulator.errors import PolicyError

_ONE = np.ones(1)  # the propensity of a deterministic slate, shared read-only by select_one
_ONE.flags.writeable = False


def check_dim_context(dim_context: int, policy: str) -> None:
    """Contextual policies need a fixed context dimension."""
    if dim_context < 1:
        raise PolicyError(f"{policy} needs `dim_context` >= 1 (the context width), found {dim_context}.")


def ridge_observations(feedback: Feedback, examination: tuple[float, ...] | None,
                       k: int) -> tuple[Any, FloatArray, FloatArray]:
    """Flatten feedback to (item (T,), features (T, d), target (T,)), features scaled by examination."""
    k_fb = feedback.slate.shape[1]
    x = feedback.context if k_fb == 1 else np.repeat(feedback.context, k_fb, axis=0)
    if examination is not None:
        x = x * slot_weights(feedback, examination, k).reshape(-1, 1)
    return feedback.slate.ravel(), x, feedback.reward.ravel()


class _RidgePolicy(ScorePolicy):
    """A ScorePolicy whose state is :class:`RidgeArms`."""

    def __init__(self, n_items: int, k: int, dim_context: int, *, reg: float = 1.0, epsilon: float = 0.0,
                 examination: Sequence[float] | None = None, seed: int | None = None) -> None:
        super().__init__(n_items, k, dim_context, epsilon=epsilon, examination=examination, seed=seed)
        check_dim_context(self.dim_context, type(self).__name__)
        self.reg = check_number("reg", reg, low=0.0, low_open=True)
        self._ridge = RidgeArms(self.n_items, self.dim_context, self.reg)

    def _update(self, feedback: Feedback) -> None:
        self._ridge.update(*ridge_observations(feedback, self.examination, self.k))

    def _get_state(self) -> dict[str, np.ndarray[Any, Any]]:
        return self._ridge.state()

    def _set_state(self, state: dict[str, np.ndarray[Any, Any]]) -> None:
        self._ridge.set_state(state, type(self).__name__)


@register_policy("linucb")
class LinUCB(_RidgePolicy):
    """Disjoint LinUCB (Li et al. 2010): top-k of ``x . theta_i + alpha * sqrt(x^T A_i^{-1} x)``.

    Deterministic given its state (ties go to the lower item index), so
    propensities are exactly 1 for the chosen slate.

    Args:
        n_items: catalog size.
        k: slate length.
        dim_context: context dimension ``d`` (>= 1).
        alpha: width of the upper confidence bound (>= 0).
        reg: ridge penalty (> 0).
        examination: shape (k,), examination probability of each slot, or None.
        seed: seed of the policy's random generator (unused by the decision itself).

    Example:
        >>> import numpy as np
        >>> policy = LinUCB(n_items=5, k=2, dim_context=3, alpha=1.0, seed=0)
        >>> policy.select(np.ones((4, 3))).slate.shape
        (4, 2)
    """

    def __init__(self, n_items: int, k: int, dim_context: int, *, alpha: float = 1.0, reg: float = 1.0,
                 examination: Sequence[float] | None = None, seed: int | None = None) -> None:
        super().__init__(n_items, k, dim_context, reg=reg, epsilon=0.0, examination=examination,
                         seed=seed)
        self.alpha = check_number("alpha", alpha, low=0.0)
        self._ones_k = np.ones((1, k))
        self._ones_k.flags.writeable = False

    def _select_one_hook(self, context: FloatArray) -> SlateDecision:
        """One checked context (d,): the slate ``select`` gives, by one compiled scoring call."""
        scores = self._ridge.ucb_one(np.ascontiguousarray(context), self.alpha)
        slate = np.empty((1, self.k), dtype=np.int64)
        _kernels.top_k_one(scores, self.k, self._order, slate[0])
        # a deterministic slate: propensities 1, shared read-only arrays (no allocation per call)
        return SlateDecision(slate, _ONE, self._ones_k)

    def _update_one_hook(self, context: FloatArray, slate: IntArray, reward: FloatArray) -> None:
        """One checked event: a single position without examination is one rank-one update."""
        if slate.shape[0] == 1 and self.examination is None:
            self._ridge.update_one(int(slate[0]), np.ascontiguousarray(context), float(reward[0]))
            return
        self._update(Feedback(context[None, :], slate[None, :], reward[None, :]))

    def _scores(self, context: FloatArray) -> FloatArray:
        ridge = self._ridge
        if context.shape[0] == 1:  # one compiled call, the same numbers as select_one
            return ridge.ucb_one(np.ascontiguousarray(context[0], dtype=np.float64), self.alpha)[None, :]
        if self.alpha == 0.0:
            return ridge.mean(context)
        width = ridge.variance(context)
        np.sqrt(width, out=width)
        width *= self.alpha
        width += ridge.mean(context)
        return width


@register_policy("ridge_epsilon_greedy")
class RidgeEpsilonGreedy(_RidgePolicy):
    """Epsilon-greedy over slates on per-item ridge predictions ``x . theta_i``.

    Args:
        n_items: catalog size.
        k: slate length.
        dim_context: context dimension ``d`` (>= 1).
        epsilon: exploration probability in [0, 1].
        reg: ridge penalty (> 0).
        examination: shape (k,), examination probability of each slot, or None.
        seed: seed of the policy's random generator.
    """

    def __init__(self, n_items: int, k: int, dim_context: int, *, epsilon: float = 0.1, reg: float = 1.0,
                 examination: Sequence[float] | None = None, seed: int | None = None) -> None:
        super().__init__(n_items, k, dim_context, reg=reg, epsilon=epsilon, examination=examination,
                         seed=seed)

    def _scores(self, context: FloatArray) -> FloatArray:
        return self._ridge.mean(context)
