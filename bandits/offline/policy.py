"""``offline_pl``: a Plackett-Luce slate policy over linear item scores, for off-policy learning.

Score of item ``i`` in context ``x``: ``s_i(x) = ((x - mean) / std) @ W[:, i] + b[i]``.
A slate is drawn by Plackett-Luce over the eligible items with logits
``s(x) / temperature`` (stage 0 picks an item with probability ``softmax``, each
later stage picks among the items left), so propensities are exact for the first
three slots (:func:`bandits.slates.plackett_luce_slates`). The weights are
learned state, fitted from a log by :func:`bandits.offline.train.fit_offline_pl`;
``update`` learns nothing (the policy is trained offline, then plays frozen).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from bandits.policies.base import check_int, check_number, expect_state
from bandits.policy import BoolArray, Feedback, FloatArray, SlateDecision, SlatePolicy, register_policy
from bandits.slates import plackett_luce_dist, plackett_luce_slates
from simulator.errors import PolicyError


@register_policy("offline_pl")
class OfflinePLPolicy(SlatePolicy):
    """Plackett-Luce over linear item scores of the standardised context; fitted offline.

    Untrained (all weights zero) it is the uniform Plackett-Luce policy.

    Args:
        n_items: catalog size.
        k: slate length.
        dim_context: context width ``d`` (0: scores are the per-item bias alone).
        temperature: logits are the scores divided by it (> 0); smaller is greedier.
        n_draws: Monte Carlo draws for the per-slot marginals of slots 4 and later.
        seed: seed of the slate draws.
    """

    #: ``update`` learns nothing: the weights are fitted from a whole log (``fit_offline_pl``).
    learns_online: ClassVar[bool] = False

    def __init__(self, n_items: int, k: int, dim_context: int = 0, *, temperature: float = 1.0,
                 n_draws: int = 10_000, seed: int | None = None) -> None:
        super().__init__(n_items, k, dim_context, seed=seed)
        self.temperature = check_number("temperature", temperature, low=0.0, low_open=True)
        self.n_draws = check_int("n_draws", n_draws, low=1)
        d = self.dim_context
        self._weight = np.zeros((d, self.n_items))
        self._bias = np.zeros(self.n_items)
        self._mean = np.zeros(d)
        self._std = np.ones(d)

    # ------------------------------------------------------------ weights
    def set_weights(self, weight: Any, bias: Any, mean: Any, std: Any) -> None:
        """Install fitted weights: ``weight`` (d, n_items), ``bias`` (n_items,), ``mean``/``std`` (d,)."""
        d, m = self.dim_context, self.n_items
        arrays = {"weight": (weight, (d, m)), "bias": (bias, (m,)), "mean": (mean, (d,)), "std": (std, (d,))}
        out = {}
        for name, (value, shape) in arrays.items():
            arr = np.array(value, dtype=np.float64)
            if arr.shape != shape or not np.isfinite(arr).all():
                raise PolicyError(f"`{name}` must be finite with shape {shape}, found {arr.shape}.")
            out[name] = arr
        if (out["std"] <= 0).any():
            raise PolicyError("`std` must be positive in every context column.")
        self._weight, self._bias, self._mean, self._std = out["weight"], out["bias"], out["mean"], out["std"]

    def scores(self, context: FloatArray) -> FloatArray:
        """Plackett-Luce logits (n, n_items) for validated contexts (n, d)."""
        z = (context[:, :self.dim_context] - self._mean) / self._std
        out: FloatArray = (z @ self._weight + self._bias) / self.temperature
        return out

    def sample_slates(self, context: Any, eligible: Any = None) -> tuple[Any, FloatArray]:
        """Slates (n, k) and their exact probabilities (n,), without the per-slot marginals.

        The distribution of :meth:`select` (without ``required``) at ``O(n_items)`` per row,
        for runs that only total rewards (``select``'s marginals cost ``O(n_items ** 2)``).
        """
        ctx, elig, _ = self._check_inputs(context, eligible, None)
        logits = self.scores(ctx)
        masked = logits if elig is None else np.where(elig, logits, -np.inf)
        slate = np.argsort(-(masked + self._rng.gumbel(size=masked.shape)), axis=1,
                           kind="stable")[:, :self.k].astype(np.int64)
        weights = np.exp(masked - masked.max(axis=1, keepdims=True))
        chosen = np.take_along_axis(weights, slate, axis=1)
        left = np.empty_like(chosen)
        rows = np.arange(ctx.shape[0])
        for s in range(self.k):
            left[:, s] = weights.sum(axis=1)
            weights[rows, slate[:, s]] = 0.0
        pscore: FloatArray = np.prod(chosen / left, axis=1)
        return slate, pscore

    # ------------------------------------------------------------ the policy
    def _select(self, context: FloatArray, eligible: BoolArray | None,
                required: BoolArray | None) -> SlateDecision:
        slate, pscore, pscore_item, used = plackett_luce_slates(
            self._rng, self.scores(context), self.k, eligible, required, n_draws=self.n_draws)
        return SlateDecision(slate=slate, pscore=pscore, pscore_item=pscore_item, n_draws=used)

    def _action_dist(self, context: FloatArray, eligible: BoolArray | None,
                     required: BoolArray | None, n_draws: int | None) -> FloatArray:
        dist, _ = plackett_luce_dist(self._rng, self.scores(context), self.k, eligible, required,
                                     n_draws=n_draws or self.n_draws)
        return dist

    def _update(self, feedback: Feedback) -> None:
        """Nothing to learn one batch at a time: refit on the whole log with ``fit_offline_pl``."""

    def _get_state(self) -> dict[str, np.ndarray[Any, Any]]:
        return {"weight": self._weight.copy(), "bias": self._bias.copy(), "mean": self._mean.copy(),
                "std": self._std.copy()}

    def _set_state(self, state: dict[str, np.ndarray[Any, Any]]) -> None:
        d, m = self.dim_context, self.n_items
        expect_state(state, {"weight": (d, m), "bias": (m,), "mean": (d,), "std": (d,)}, "OfflinePLPolicy")
        self.set_weights(state["weight"], state["bias"], state["mean"], state["std"])
