"""Bernoulli Thompson sampling with a Beta prior per item (the Open Bandit Dataset's production policy)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy import special

from bandits.policies import quadrature
from bandits.policies.base import (
    DEFAULT_N_DRAWS,
    ItemCounts,
    SampledScorePolicy,
    check_binary_reward,
    item_array,
    slot_weights,
)
from bandits.policy import BoolArray, Feedback, FloatArray, IntArray, register_policy


class _BetaGrid:
    """Each item's Beta posterior as ``log F`` and ``log f`` on the fixed grid of :mod:`quadrature`.

    Only the window ``mean +- BETA_TAIL sd`` of each item is filled (``log F`` is 0 above
    it); rows are refreshed when an item's posterior changes.
    """

    def __init__(self, n_items: int) -> None:
        g = quadrature.BETA_POINTS
        self.x = (np.arange(g) + 0.5) / g
        self.log_x, self.log_1mx = np.log(self.x), np.log1p(-self.x)
        self.log_cdf = np.zeros((n_items, g))
        self.log_pdf = np.full((n_items, g), -np.inf)
        self.lo = np.zeros(n_items, dtype=np.int64)
        self.hi = np.zeros(n_items, dtype=np.int64)
        self.sd = np.zeros(n_items)

    def refresh(self, items: IntArray, a: FloatArray, b: FloatArray) -> None:
        """Recompute the rows of ``items`` for posteriors ``Beta(a, b)`` (each (n_items,))."""
        g = quadrature.BETA_POINTS
        for i in items.tolist():
            ai, bi = float(a[i]), float(b[i])
            mean = ai / (ai + bi)
            sd = float(np.sqrt(ai * bi / ((ai + bi) ** 2 * (ai + bi + 1.0))))
            lo = max(0, int(np.floor((mean - quadrature.BETA_TAIL * sd) * g)))
            hi = min(g - 1, int(np.ceil((mean + quadrature.BETA_TAIL * sd) * g)))
            window = slice(lo, hi + 1)
            self.log_cdf[i] = 0.0
            with np.errstate(divide="ignore"):
                self.log_cdf[i, window] = np.maximum(np.log(special.betainc(ai, bi, self.x[window])), -700.0)
            self.log_pdf[i, window] = ((ai - 1.0) * self.log_x[window] + (bi - 1.0) * self.log_1mx[window]
                                       - special.betaln(ai, bi))
            self.lo[i], self.hi[i], self.sd[i] = lo, hi, sd

    def max_prob(self, allowed: BoolArray) -> FloatArray | None:
        """P(each item is the largest draw among ``allowed`` (n_items,)); None if the grid is too coarse."""
        if self.sd[allowed].min() < 2.0 / quadrature.BETA_POINTS:
            return None  # a posterior narrower than two grid steps: Monte Carlo instead
        out = np.empty(self.sd.shape[0])
        quadrature.beta_max_prob(self.log_cdf, self.log_pdf, self.lo, self.hi, allowed, out)
        return out


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
        self._grid = _BetaGrid(self.n_items)
        self._refresh(np.arange(self.n_items))

    def _refresh(self, items: IntArray) -> None:
        a, b = self.posterior()
        self._grid.refresh(items, a, b)
        self._unmasked: FloatArray | None = None  # P(max) over every item, until the next update

    def _max_probabilities(self, context: FloatArray, allowed: BoolArray) -> FloatArray | None:
        n = allowed.shape[0]
        if allowed.all():
            if self._unmasked is None:
                self._unmasked = self._grid.max_prob(np.ones(self.n_items, dtype=np.bool_))
            if self._unmasked is None:
                return None
            return np.broadcast_to(self._unmasked, (n, self.n_items))
        keys, inverse = np.unique(allowed, axis=0, return_inverse=True)
        out = np.empty((keys.shape[0], self.n_items))
        for g in range(keys.shape[0]):  # one integral per distinct mask, not per row
            p = self._grid.max_prob(keys[g])
            if p is None:
                return None
            out[g] = p
        return out[inverse.ravel()]

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
        self._refresh(np.unique(feedback.slate))

    def _get_state(self) -> dict[str, np.ndarray[Any, Any]]:
        return self._counts.state()

    def _set_state(self, state: dict[str, np.ndarray[Any, Any]]) -> None:
        self._counts.set_state(state, type(self).__name__)
        self._refresh(np.arange(self.n_items))
