"""Bernoulli Thompson sampling with a Beta prior per item (the Open Bandit Dataset's production policy)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from bandits.policies.base import (
    DEFAULT_N_DRAWS,
    ItemCounts,
    SampledScorePolicy,
    check_binary_reward,
    item_array,
    slot_weights,
)
from bandits.policy import Feedback, FloatArray, register_policy


@register_policy("bernoulli_ts")
class BernoulliTS(SampledScorePolicy):
    """Bernoulli Thompson sampling: top-k of one draw from each item's Beta posterior.

    Item ``i``'s click rate has prior ``Beta(alpha[i], beta[i])``; after ``s``
    clicks in ``p`` (examination-weighted) pulls its posterior is
    ``Beta(alpha[i] + s, beta[i] + max(p - s, 0))``. The slate is the top-k of
    one posterior draw per item. The production policy of the Open Bandit
    Dataset is this policy with the prior in ``bts_prior.json`` and no updates;
    its per-slot distribution is the Monte Carlo frequency of each item at each
    slot over ``n_draws`` joint draws, the same for every context.

    Args:
        n_items: catalog size.
        k: slate length.
        dim_context: context dimension (0: any; the context is ignored).
        alpha: prior successes, a positive number or shape (n_items,).
        beta: prior failures, a positive number or shape (n_items,).
        n_draws: Monte Carlo draws for propensities.
        examination: shape (k,), examination probability of each slot, or None.
        seed: seed of the policy's random generator.
    """

    context_free = True

    def __init__(self, n_items: int, k: int, dim_context: int = 0, *,
                 alpha: float | Sequence[float] = 1.0, beta: float | Sequence[float] = 1.0,
                 n_draws: int = DEFAULT_N_DRAWS, examination: Sequence[float] | None = None,
                 seed: int | None = None) -> None:
        super().__init__(n_items, k, dim_context, n_draws=n_draws, examination=examination, seed=seed)
        self._alpha0 = item_array("alpha", alpha, self.n_items, positive=True)
        self._beta0 = item_array("beta", beta, self.n_items, positive=True)
        # Stored as given: a scalar prior stays a scalar in the saved configuration.
        self.alpha: float | FloatArray = (float(self._alpha0[0]) if np.ndim(alpha) == 0
                                          else self._alpha0.copy())
        self.beta: float | FloatArray = (float(self._beta0[0]) if np.ndim(beta) == 0
                                         else self._beta0.copy())
        self._counts = ItemCounts(self.n_items)

    def posterior(self) -> tuple[FloatArray, FloatArray]:
        """The Beta posterior parameters ``(a, b)``, each shape (n_items,)."""
        c = self._counts
        return self._alpha0 + c.rewards, self._beta0 + np.maximum(c.pulls - c.rewards, 0.0)

    def _sampler(self, context: FloatArray) -> Callable[[slice, int], FloatArray]:
        a, b = self.posterior()
        n = context.shape[0]

        def draw(rows: slice, n_draws: int) -> FloatArray:
            n_rows = len(range(*rows.indices(n)))
            return self._rng.beta(a, b, size=(n_rows, n_draws, self.n_items))

        return draw

    def _update(self, feedback: Feedback) -> None:
        check_binary_reward(feedback, "bernoulli_ts")
        self._counts.add(feedback, slot_weights(feedback, self.examination, self.k))

    def _get_state(self) -> dict[str, np.ndarray[Any, Any]]:
        return self._counts.state()

    def _set_state(self, state: dict[str, np.ndarray[Any, Any]]) -> None:
        self._counts.set_state(state, type(self).__name__)
