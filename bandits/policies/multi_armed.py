"""Context-free bandits over items: epsilon-greedy, UCB1, softmax (Plackett-Luce), popularity.

Each keeps per-item pull counts and reward sums. With an examination model a
pull at slot ``j`` counts ``examination[j]`` (position-based model), so the
mean ``rewards / pulls`` estimates the click rate when examined.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from bandits.policies.base import (
    ItemCounts,
    ScorePolicy,
    check_examination,
    check_int,
    check_number,
    slot_weights,
)
from bandits.policy import (
    BoolArray,
    Feedback,
    FloatArray,
    SlateDecision,
    SlatePolicy,
    register_policy,
)
from bandits.slates import plackett_luce_dist, plackett_luce_slates, slot_order


class _CountingPolicy(ScorePolicy):
    """A ScorePolicy whose state is :class:`ItemCounts`."""

    def __init__(self, n_items: int, k: int, dim_context: int = 0, *, epsilon: float = 0.0,
                 examination: Sequence[float] | None = None, seed: int | None = None) -> None:
        super().__init__(n_items, k, dim_context, epsilon=epsilon, examination=examination, seed=seed)
        self._counts = ItemCounts(self.n_items)

    def _update(self, feedback: Feedback) -> None:
        self._counts.add(feedback, slot_weights(feedback, self.examination, self.k))

    def _get_state(self) -> dict[str, np.ndarray[Any, Any]]:
        return self._counts.state()

    def _set_state(self, state: dict[str, np.ndarray[Any, Any]]) -> None:
        self._counts.set_state(state, type(self).__name__)


@register_policy("epsilon_greedy")
class EpsilonGreedy(_CountingPolicy):
    """Epsilon-greedy over slates on each item's mean reward.

    Items never shown score ``initial_value``. The greedy slate is the top-k
    means; with probability ``epsilon`` a uniform valid slate is shown instead.

    Args:
        n_items: catalog size.
        k: slate length.
        dim_context: context dimension (0: any; the context is ignored).
        epsilon: exploration probability in [0, 1].
        initial_value: score of an item with no pulls.
        examination: shape (k,), examination probability of each slot, or None.
        seed: seed of the policy's random generator.
    """

    def __init__(self, n_items: int, k: int, dim_context: int = 0, *, epsilon: float = 0.1,
                 initial_value: float = 0.0, examination: Sequence[float] | None = None,
                 seed: int | None = None) -> None:
        super().__init__(n_items, k, dim_context, epsilon=epsilon, examination=examination, seed=seed)
        self.initial_value = check_number("initial_value", initial_value)

    def _scores(self, context: FloatArray) -> FloatArray:
        c = self._counts
        mean = np.where(c.pulls > 0, c.rewards / np.maximum(c.pulls, 1e-300), self.initial_value)
        return np.broadcast_to(mean, (context.shape[0], self.n_items))


@register_policy("ucb1")
class UCB1(_CountingPolicy):
    """UCB1 (Auer et al. 2002) on each item's mean reward; the slate is the top-k upper bounds.

    ``score = mean + c * sqrt(2 ln t / pulls)`` with ``t`` the total pulls; items
    never shown score ``+inf`` (shown first, lower index first).

    Args:
        n_items: catalog size.
        k: slate length.
        dim_context: context dimension (0: any; the context is ignored).
        c: width of the confidence bound (> 0); rewards in [0, 1] suit ``c = 1``.
        examination: shape (k,), examination probability of each slot, or None.
        seed: seed of the policy's random generator.
    """

    def __init__(self, n_items: int, k: int, dim_context: int = 0, *, c: float = 1.0,
                 examination: Sequence[float] | None = None, seed: int | None = None) -> None:
        super().__init__(n_items, k, dim_context, epsilon=0.0, examination=examination, seed=seed)
        self.c = check_number("c", c, low=0.0, low_open=True)

    def _scores(self, context: FloatArray) -> FloatArray:
        c = self._counts
        t = max(float(c.pulls.sum()), 1.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            bonus = self.c * np.sqrt(2.0 * np.log(max(t, 1.0)) / c.pulls)
            score = np.where(c.pulls > 0, c.rewards / np.where(c.pulls > 0, c.pulls, 1.0) + bonus,
                             np.inf)
        return np.broadcast_to(score, (context.shape[0], self.n_items))


@register_policy("popularity")
class Popularity(_CountingPolicy):
    """The most popular items: top-k by total reward (clicks, purchases or revenue).

    Ties (e.g. before any feedback) go to the lower item index. With
    ``epsilon > 0`` a uniform valid slate is shown with that probability.

    Args:
        n_items: catalog size.
        k: slate length.
        dim_context: context dimension (0: any; the context is ignored).
        epsilon: exploration probability in [0, 1].
        examination: shape (k,), examination probability of each slot, or None.
        seed: seed of the policy's random generator.
    """

    def __init__(self, n_items: int, k: int, dim_context: int = 0, *, epsilon: float = 0.0,
                 examination: Sequence[float] | None = None, seed: int | None = None) -> None:
        super().__init__(n_items, k, dim_context, epsilon=epsilon, examination=examination, seed=seed)

    def _scores(self, context: FloatArray) -> FloatArray:
        return np.broadcast_to(self._counts.rewards, (context.shape[0], self.n_items))


@register_policy("softmax")
class Softmax(SlatePolicy):
    """Boltzmann exploration over slates: Plackett-Luce on ``mean / temperature``.

    Slates are drawn without replacement with probability proportional to
    ``exp(mean_i / temperature)`` (see :func:`bandits.slates.plackett_luce_slates`
    for the required rule). ``pscore`` is exact; ``pscore_item`` and
    ``action_dist`` are exact for ``k <= 3`` and Monte Carlo with ``n_draws``
    draws for slots beyond the third.

    Args:
        n_items: catalog size.
        k: slate length.
        dim_context: context dimension (0: any; the context is ignored).
        temperature: softmax temperature (> 0), in reward units.
        initial_value: mean assumed for an item with no pulls.
        n_draws: Monte Carlo draws for slots beyond the third (k > 3 only).
        examination: shape (k,), examination probability of each slot, or None.
        seed: seed of the policy's random generator.
    """

    def __init__(self, n_items: int, k: int, dim_context: int = 0, *, temperature: float = 0.1,
                 initial_value: float = 0.0, n_draws: int = 10_000,
                 examination: Sequence[float] | None = None, seed: int | None = None) -> None:
        super().__init__(n_items, k, dim_context, seed=seed)
        self.temperature = check_number("temperature", temperature, low=0.0, low_open=True)
        self.initial_value = check_number("initial_value", initial_value)
        self.n_draws = check_int("n_draws", n_draws, low=1)
        self.examination = check_examination(examination, self.k)
        self._order = slot_order(None if self.examination is None else np.asarray(self.examination),
                                 self.k)
        self._counts = ItemCounts(self.n_items)

    def _logits(self, n: int) -> FloatArray:
        c = self._counts
        mean = np.where(c.pulls > 0, c.rewards / np.maximum(c.pulls, 1e-300), self.initial_value)
        return np.broadcast_to(mean / self.temperature, (n, self.n_items))

    def _select(self, context: FloatArray, eligible: BoolArray | None,
                required: BoolArray | None) -> SlateDecision:
        slate, pscore, pscore_item, used = plackett_luce_slates(
            self._rng, self._logits(context.shape[0]), self.k, eligible, required, self._order,
            self.n_draws)
        return SlateDecision(slate, pscore, pscore_item, n_draws=used)

    def _action_dist(self, context: FloatArray, eligible: BoolArray | None,
                     required: BoolArray | None, n_draws: int | None) -> FloatArray:
        d = self.n_draws if n_draws is None else check_int("n_draws", n_draws, low=1)
        dist, _ = plackett_luce_dist(self._rng, self._logits(context.shape[0]), self.k, eligible,
                                     required, self._order, d)
        return dist

    def _update(self, feedback: Feedback) -> None:
        self._counts.add(feedback, slot_weights(feedback, self.examination, self.k))

    def _get_state(self) -> dict[str, np.ndarray[Any, Any]]:
        return self._counts.state()

    def _set_state(self, state: dict[str, np.ndarray[Any, Any]]) -> None:
        self._counts.set_state(state, type(self).__name__)
