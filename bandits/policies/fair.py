"""A limit on how exposure is shared: Plackett-Luce over any scorer, with per-group boosts.

:class:`FairExposure` wraps a score policy (``linucb``, ``ridge_epsilon_greedy``,
``popularity``, ...): it draws slates by Plackett-Luce over
``z_i / temperature + boost[group(i)]`` (``z`` the base's item scores standardised
per context) and, from the feedback it learns on,
keeps a running estimate of each group's share of position-weighted exposure
(:mod:`bandits.exposure`). After each update the boosts move by projected dual
ascent: ``boost_g = lo_g - hi_g``, where after each decision
``lo_g <- max(0, lo_g + (step / window) * (min_g - share_g) / min_g)`` and
``hi_g <- max(0, hi_g + (step / window) * (share_g - max_g) / max_g)`` (the running
share is updated decision by decision, so a batch update and one update per
decision give the same boosts),
so a group below its minimum share is shown more and one above its maximum less.

Propensities stay exact: the boosts change only in :meth:`update`, so every
decision is a draw from a known Plackett-Luce distribution, and its ``pscore``
is the product of the stage probabilities of that distribution. The bounds hold
*amortised*: the running share is an exponential average over about ``window``
decisions and converges to the bounds at a rate set by ``step``; the tests
measure the tolerance reached on 10,000 decisions of the default world.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy.signal import lfilter

from bandits.exposure import position_weights
from bandits.policies.base import ScorePolicy, check_examination, check_int, check_number
from bandits.policy import (
    BoolArray,
    Feedback,
    FloatArray,
    SlateDecision,
    SlatePolicy,
    make_policy,
    register_policy,
    registered_policies,
)
from bandits.slates import plackett_luce_dist, plackett_luce_slates, slot_order
from simulator.errors import PolicyError

#: largest absolute boost added to a logit (the multipliers themselves are not capped)
MAX_BOOST = 20.0


def _projected_sum(start: FloatArray, steps: FloatArray) -> FloatArray:
    """The end of ``x <- max(0, x + step)`` over the rows of ``steps`` (n, groups), vectorised.

    The reflected walk has the closed form ``x_t = S_t - min(0, min_{s <= t} S_s)`` with
    ``S_t = x_0 + steps_1 + ... + steps_t`` (``x_0 >= 0``).
    """
    walk = start[None, :] + np.cumsum(steps, axis=0)
    out: FloatArray = walk[-1] - np.minimum(0.0, walk.min(axis=0))
    return out


def _shares(name: str, value: Mapping[str, float] | None, groups: tuple[str, ...],
            default: float) -> np.ndarray[Any, np.dtype[np.float64]]:
    out = np.full(len(groups), default)
    if not value:
        return out
    if not isinstance(value, Mapping):
        raise PolicyError(f"`{name}` must map group names to shares, found {type(value).__name__}.")
    unknown = sorted(set(map(str, value)) - set(groups))
    if unknown:
        raise PolicyError(f"`{name}` names groups {unknown} that no item has; groups are {list(groups)}.")
    for group, share in value.items():
        out[groups.index(str(group))] = check_number(f"{name}[{group!r}]", share, low=0.0, high=1.0)
    return out


@register_policy("fair_exposure")
class FairExposure(SlatePolicy):
    """Plackett-Luce slates over a base scorer, with exposure shares per group held within bounds.

    Args:
        n_items: catalog size.
        k: slate length.
        dim_context: context dimension (passed to the base policy).
        base: registered name of a score policy (deterministic item scores).
        base_params: constructor arguments of the base policy.
        category: shape (n_items,), each item's group (a category or a seller).
        min_share: group -> smallest share of position-weighted exposure it should get.
        max_share: group -> largest share it may get.
        temperature: softmax temperature (> 0) over the base scores standardised per context
            (in standard deviations of the row's scores), so boosts mean the same whatever
            the base's score scale.
        step: dual step size (logit units per unit of share outside the bounds).
        window: decisions over which the running exposure share averages (>= 1).
        examination: shape (k,), examination probability of each slot (the exposure
            weights; the DCG discount when None).
        n_draws: Monte Carlo draws for the marginals of slots beyond the third.
        seed: seed of the sampling (the base policy gets the same seed).
    """

    def __init__(self, n_items: int, k: int, dim_context: int = 0, *, base: str = "linucb",
                 base_params: Mapping[str, Any] | None = None, category: Sequence[Any] | None = None,
                 min_share: Mapping[str, float] | None = None, max_share: Mapping[str, float] | None = None,
                 temperature: float = 0.5, step: float = 5.0, window: int = 1000,
                 examination: Sequence[float] | None = None, n_draws: int = 10_000,
                 seed: int | None = None) -> None:
        super().__init__(n_items, k, dim_context, seed=seed)
        policies = registered_policies()
        scorers = sorted(name for name, cls in policies.items() if issubclass(cls, ScorePolicy))
        if base not in policies or not issubclass(policies[base], ScorePolicy):
            raise PolicyError(f"`base` must be a registered score policy, one of {scorers}; found {base!r}.")
        if category is None:
            raise PolicyError("`category` (each item's group) is required: pass the catalog's category or "
                              "seller column.")
        labels = tuple(str(c) for c in category)
        if len(labels) != self.n_items:
            raise PolicyError(f"`category` must name the group of each of the {self.n_items} items, found "
                              f"{len(labels)}.")
        self.base = base
        self.base_params = dict(base_params or {})
        self.category = list(labels)
        self.groups = tuple(sorted(set(labels)))
        self._group_index = np.array([self.groups.index(c) for c in labels], dtype=np.int64)
        self.min_share = dict(min_share or {})
        self.max_share = dict(max_share or {})
        self._low = _shares("min_share", self.min_share, self.groups, 0.0)
        self._high = _shares("max_share", self.max_share, self.groups, 1.0)
        if np.any(self._low > self._high) or self._low.sum() > 1.0 + 1e-9:
            raise PolicyError(f"exposure bounds cannot all hold: min_share {self.min_share} must sum to at "
                              f"most 1 and each be <= its max_share {self.max_share}.")
        self.temperature = check_number("temperature", temperature, low=0.0)
        if self.temperature <= 0:
            raise PolicyError(f"`temperature` must be > 0, found {temperature!r}.")
        self.step = check_number("step", step, low=0.0)
        self.window = check_int("window", window, low=1)
        self.examination = check_examination(examination, self.k)
        self.n_draws = check_int("n_draws", n_draws, low=1)
        self._weights = position_weights(self.k, self.examination)
        self._order = slot_order(None if self.examination is None else np.asarray(self.examination), self.k)
        params = {"n_items": self.n_items, "k": self.k, "dim_context": self.dim_context, "seed": seed,
                  **self.base_params}
        if examination is not None and "examination" in inspect.signature(policies[base]).parameters:
            params.setdefault("examination", examination)
        self._base: ScorePolicy = make_policy(base, **params)  # type: ignore[assignment]
        self._lam_low = np.zeros(len(self.groups))
        self._lam_high = np.zeros(len(self.groups))
        self._share = np.zeros(len(self.groups))
        self._seen = np.zeros(1)

    # ------------------------------------------------------------ what the policy exposes
    @property
    def boosts(self) -> dict[str, float]:
        """The current boost of each group (logit units)."""
        return {g: float(b) for g, b in zip(self.groups, self._boost, strict=True)}

    @property
    def _boost(self) -> FloatArray:
        out: FloatArray = np.clip(self._lam_low - self._lam_high, -MAX_BOOST, MAX_BOOST)
        return out

    @property
    def exposure_share(self) -> dict[str, float]:
        """The running share of position-weighted exposure of each group."""
        return {g: float(s) for g, s in zip(self.groups, self._corrected_share, strict=True)}

    def _logits(self, context: FloatArray) -> FloatArray:
        scores: FloatArray = self._base._scores(context)  # the base's score hook
        spread = scores.std(axis=1, keepdims=True)
        z = (scores - scores.mean(axis=1, keepdims=True)) / np.where(spread > 0, spread, 1.0)
        out: FloatArray = z / self.temperature + self._boost[self._group_index][None, :]
        return out

    # ------------------------------------------------------------ hooks
    def _select(self, context: FloatArray, eligible: BoolArray | None,
                required: BoolArray | None) -> SlateDecision:
        slate, pscore, pscore_item, _ = plackett_luce_slates(self._rng, self._logits(context), self.k,
                                                             eligible, required, self._order, self.n_draws)
        return SlateDecision(slate, pscore, pscore_item)

    def _action_dist(self, context: FloatArray, eligible: BoolArray | None,
                     required: BoolArray | None, n_draws: int | None) -> FloatArray:
        dist, _ = plackett_luce_dist(self._rng, self._logits(context), self.k, eligible, required,
                                     self._order, n_draws or self.n_draws)
        return dist

    def _update(self, feedback: Feedback) -> None:
        self._base.update(feedback)
        n = feedback.n_rounds
        if n == 0:
            return
        # each decision's exposure shares per group, shape (n, groups)
        n_groups = len(self.groups)
        flat = (np.arange(n)[:, None] * n_groups + self._group_index[feedback.slate]).ravel()
        w = np.broadcast_to(self._weights, feedback.slate.shape).ravel()
        x = np.asarray(np.bincount(flat, weights=w, minlength=n * n_groups), dtype=np.float64)
        x = x.reshape(n, n_groups)
        x = x / x.sum(axis=1, keepdims=True)
        # the running share after each decision: an exponential average over ``window``
        # decisions, bias-corrected, decision by decision (so batches and single events agree)
        decay = 1.0 - 1.0 / self.window
        raw = lfilter([1.0 - decay], [1.0, -decay], x, axis=0, zi=decay * self._share[None, :])[0]
        seen = self._seen[0] + np.arange(1, n + 1, dtype=np.float64)
        share = raw / (1.0 - decay ** seen)[:, None]
        # projected dual ascent on each bound's multiplier, with the deficit relative to the bound;
        # a decision's step is taken with the share after it, so the order of updates is kept
        eta = self.step / self.window
        below = np.where(self._low > 0, (self._low - share) / np.maximum(self._low, 1e-12), 0.0)
        above = np.where(self._high < 1, (share - self._high) / np.maximum(self._high, 1e-12), 0.0)
        self._lam_low = _projected_sum(self._lam_low, eta * below)
        self._lam_high = _projected_sum(self._lam_high, eta * above)
        self._share = raw[-1].copy()
        self._seen = self._seen + n

    @property
    def _corrected_share(self) -> FloatArray:
        seen = float(self._seen[0])
        if seen == 0:
            return np.zeros(len(self.groups))
        out: FloatArray = self._share / (1.0 - (1.0 - 1.0 / self.window) ** seen)
        return out

    def _get_state(self) -> dict[str, np.ndarray[Any, Any]]:
        state = {f"base.{key}": value for key, value in self._base._get_state().items()}
        state.update(lam_low=self._lam_low.copy(), lam_high=self._lam_high.copy(), share=self._share.copy(),
                     seen=self._seen.copy())
        return state

    def _set_state(self, state: dict[str, np.ndarray[Any, Any]]) -> None:
        missing = sorted({"lam_low", "lam_high", "share", "seen"} - set(state))
        if missing:
            raise PolicyError(f"fair_exposure state lacks {missing}; was it saved by this policy?")
        groups = len(self.groups)
        if any(state[key].shape != (groups,) for key in ("lam_low", "lam_high", "share")):
            raise PolicyError(f"fair_exposure state has {state['share'].shape[0]} groups, expected {groups}.")
        self._lam_low = np.asarray(state["lam_low"], dtype=np.float64).copy()
        self._lam_high = np.asarray(state["lam_high"], dtype=np.float64).copy()
        self._share = np.asarray(state["share"], dtype=np.float64).copy()
        self._seen = np.asarray(state["seen"], dtype=np.float64).copy()
        self._base._set_state({key[5:]: value for key, value in state.items() if key.startswith("base.")})

    @classmethod
    def example(cls, n_items: int, k: int, dim_context: int, *, seed: int | None = None) -> SlatePolicy:
        """Three groups of items, the last one held to at least a third of the exposure."""
        category = [f"g{i % 3}" for i in range(n_items)]
        return cls(n_items=n_items, k=k, dim_context=dim_context, category=category,
                   min_share={"g2": 0.3}, seed=seed)
