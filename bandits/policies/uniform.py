"""Uniform random slates: every valid slate equally likely, exact propensities."""

from __future__ import annotations

import numpy as np

from bandits.policy import BoolArray, Feedback, FloatArray, SlateDecision, SlatePolicy, register_policy
from bandits.slates import uniform_dist, uniform_slates


@register_policy("uniform")
class UniformPolicy(SlatePolicy):
    """Uniformly random valid slates; ignores the context and learns nothing.

    A valid slate is an ordered tuple of ``k`` distinct eligible items holding a
    required item when the row has one. ``pscore`` is one over the number of
    valid slates, exactly.

    Args:
        n_items: catalog size.
        k: slate length.
        dim_context: context dimension (0: any; the context is ignored).
        seed: seed of the policy's random generator.
    """

    def __init__(self, n_items: int, k: int, dim_context: int = 0, *, seed: int | None = None) -> None:
        super().__init__(n_items, k, dim_context, seed=seed)

    def _select(self, context: FloatArray, eligible: BoolArray | None,
                required: BoolArray | None) -> SlateDecision:
        if context.shape[0] == 1 and eligible is None and required is None:
            # one unmasked row: an ordered k-subset drawn uniformly, probability 1 / (n_items)_k
            m, k = self.n_items, self.k
            slate = self._rng.choice(m, size=k, replace=False).astype(np.int64)[None, :]
            n_slates = float(np.prod(np.arange(m - k + 1, m + 1, dtype=np.float64)))
            return SlateDecision(slate, np.array([1.0 / n_slates]), np.full((1, k), 1.0 / m))
        slate, pscore, pscore_item = uniform_slates(self._rng, context.shape[0], self.n_items, self.k,
                                                    eligible, required)
        return SlateDecision(slate, pscore, pscore_item)

    def _action_dist(self, context: FloatArray, eligible: BoolArray | None,
                     required: BoolArray | None, n_draws: int | None) -> FloatArray:
        return uniform_dist(context.shape[0], self.n_items, self.k, eligible, required)

    def _update(self, feedback: Feedback) -> None:
        """Uniform random does not learn; feedback is checked and ignored."""
