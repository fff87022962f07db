"""Uniform random slates: every valid slate equally likely, exact propensities."""

from __future__ import annotations

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
        slate, pscore, pscore_item = uniform_slates(self._rng, context.shape[0], self.n_items, self.k,
                                                    eligible, required)
        return SlateDecision(slate, pscore, pscore_item)

    def _action_dist(self, context: FloatArray, eligible: BoolArray | None,
                     required: BoolArray | None, n_draws: int | None) -> FloatArray:
        return uniform_dist(context.shape[0], self.n_items, self.k, eligible, required)

    def _update(self, feedback: Feedback) -> None:
        """Uniform random does not learn; feedback is checked and ignored."""
