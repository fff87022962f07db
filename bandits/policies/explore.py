"""Exploration on top of any scorer, and the check that a policy's log can support off-policy evaluation.

A scorer (any :class:`~bandits.policies.base.ScorePolicy`: popularity, the
collaborative filters, matrix factorisation, association rules, cold start…)
shows its top-k slate: deterministic, so its log gives every other slate
probability zero and no importance-weighting estimator can use it.
:class:`Explore` wraps a registered scorer by name and gives its slates full
support:

* ``method = "epsilon"``: the top-k slate with probability ``1 - epsilon``, a
  uniformly random valid slate otherwise (exact propensities);
* ``method = "softmax"``: Plackett-Luce over ``score / temperature`` (softmax
  without replacement; exact slate propensity, exact per-slot marginals for
  the first three slots, see :func:`bandits.slates.plackett_luce_slates`).

:func:`ope_support` says, for given contexts and masks, whether a policy puts
positive probability on every eligible item at every slot;
:func:`require_ope_support` raises an :class:`~simulator.errors.OPEError`
naming the fix when it does not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from bandits.policies.anchored import anchored_context
from bandits.policies.base import ScorePolicy, check_int, check_number
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
from bandits.slates import (
    epsilon_greedy_dist,
    epsilon_greedy_slates,
    plackett_luce_dist,
    plackett_luce_slates,
)
from simulator.errors import OPEError, PolicyError

METHODS = ("epsilon", "softmax")


@dataclass(frozen=True, slots=True)
class OPESupport:
    """Whether a policy's slates can be logged for off-policy evaluation.

    Attributes:
        supported: every eligible item has positive probability at every slot, on every row.
        min_prob: the smallest probability of an eligible item at a slot, over rows.
        deterministic_rows: rows (of those checked) where some slot is certain (probability 1).
        n_rows: rows checked.
    """

    supported: bool
    min_prob: float
    deterministic_rows: int
    n_rows: int


def ope_support(policy: SlatePolicy, context: Any, *, eligible: Any = None, required: Any = None,
                tol: float = 1e-12) -> OPESupport:
    """Check the full support of ``policy`` on ``context`` (n, d) from its action distribution."""
    dist = policy.action_dist(context, eligible=eligible, required=required)
    n, m, _ = dist.shape
    elig = np.ones((n, m), dtype=bool) if eligible is None else np.broadcast_to(
        np.asarray(eligible, dtype=bool), (n, m))
    probs = np.where(elig[:, :, None], dist, np.inf)
    min_prob = float(probs.min()) if n else 1.0
    certain = int((dist.max(axis=1) >= 1.0 - tol).any(axis=1).sum())
    return OPESupport(min_prob > tol, min_prob, certain, n)


def require_ope_support(policy: SlatePolicy, context: Any, **masks: Any) -> OPESupport:
    """:func:`ope_support`, raising an OPEError when the policy's log cannot support OPE."""
    report = ope_support(policy, context, **masks)
    if not report.supported:
        name = policy.policy_name
        raise OPEError(
            f"policy {name!r} gives some eligible items probability {report.min_prob:.3g} "
            f"({report.deterministic_rows} of {report.n_rows} rows are deterministic): a log written "
            "by it cannot support off-policy evaluation of other policies. Log with exploration: "
            f"make_policy('explore', base={name!r}, epsilon=0.1) or method='softmax'.")
    return report


class _Explore(SlatePolicy):
    """Epsilon-greedy or softmax exploration over a registered scorer's item scores.

    Args:
        n_items: catalog size.
        k: slate length.
        dim_context: context dimension.
        base: registered name of a scoring policy (a ``ScorePolicy``).
        base_params: keyword arguments of ``base`` (besides n_items, k, dim_context, seed).
        method: ``"epsilon"`` or ``"softmax"``.
        epsilon: exploration probability in (0, 1] (``method = "epsilon"``).
        temperature: softmax temperature (> 0), in score units (``method = "softmax"``).
        n_draws: Monte Carlo draws for the softmax marginals beyond the third slot.
        seed: seed of the policy's random generator (the base gets the same seed).
    """

    #: The base reads the anchor item from its context (set by the registered subclasses).
    anchor_context: ClassVar[bool] = False

    def __init__(self, n_items: int, k: int, dim_context: int = 0, *, base: str = "popularity",
                 base_params: dict[str, Any] | None = None, method: str = "epsilon",
                 epsilon: float = 0.1, temperature: float = 1.0, n_draws: int = 10_000,
                 seed: int | None = None) -> None:
        super().__init__(n_items, k, dim_context, seed=seed)
        if method not in METHODS:
            raise PolicyError(f"`method` must be one of {METHODS}, found {method!r}.")
        self.method = method
        self.epsilon = check_number("epsilon", epsilon, low=0.0, high=1.0, low_open=True)
        self.temperature = check_number("temperature", temperature, low=0.0, low_open=True)
        self.n_draws = check_int("n_draws", n_draws, low=1)
        self.base = base
        self.base_params = dict(base_params or {})
        clash = {"n_items", "k", "dim_context", "seed"} & set(self.base_params)
        if clash:
            raise PolicyError(f"`base_params` may not set {sorted(clash)}: the wrapper passes its own.")
        cls = registered_policies().get(base)
        if cls is None or not issubclass(cls, ScorePolicy):
            raise PolicyError(f"`base` must name a scoring policy (a ScorePolicy, e.g. 'popularity', "
                              f"'item_cf', 'als'), found {base!r}.")
        if getattr(cls, "anchor_context", False) is not self.anchor_context:
            other = "explore_anchored" if not self.anchor_context else "explore"
            raise PolicyError(f"`base` {base!r} {'reads' if not self.anchor_context else 'does not read'} "
                              f"an anchor item; wrap it with {other!r}.")
        inner = make_policy(base, n_items=self.n_items, k=self.k, dim_context=self.dim_context, seed=seed,
                            **self._inner_extra(), **self.base_params)
        assert isinstance(inner, ScorePolicy)
        if getattr(inner, "epsilon", 0.0):
            raise PolicyError(f"`base_params` sets epsilon = {inner.epsilon} on {base!r}; leave the base "
                              "greedy and explore in the wrapper.")
        self.inner = inner

    def _inner_extra(self) -> dict[str, Any]:
        return {}

    def _logits(self, context: FloatArray) -> FloatArray:
        scores = self.inner._scores(context)
        finite = np.isfinite(scores) & (scores > -1e299)
        # The base marks items it must never rank first (its anchor) with a huge negative score.
        low = np.where(finite, scores, np.inf).min(axis=1, keepdims=True)
        safe = np.where(finite, scores, np.where(np.isfinite(low), low, 0.0) - 50.0 * self.temperature)
        return np.asarray(safe / self.temperature, dtype=np.float64)

    def _select(self, context: FloatArray, eligible: BoolArray | None,
                required: BoolArray | None) -> SlateDecision:
        if self.method == "epsilon":
            greedy = self.inner.greedy(context, eligible, required)
            slate, pscore, pscore_item = epsilon_greedy_slates(self._rng, greedy, self.epsilon, self.n_items,
                                                               eligible, required)
            return SlateDecision(slate, pscore, pscore_item)
        slate, pscore, pscore_item, used = plackett_luce_slates(
            self._rng, self._logits(context), self.k, eligible, required, self.inner._order, self.n_draws)
        return SlateDecision(slate, pscore, pscore_item, n_draws=used)

    def _action_dist(self, context: FloatArray, eligible: BoolArray | None,
                     required: BoolArray | None, n_draws: int | None) -> FloatArray:
        if self.method == "epsilon":
            return epsilon_greedy_dist(self.inner.greedy(context, eligible, required), self.epsilon,
                                       self.n_items, eligible, required)
        d = self.n_draws if n_draws is None else check_int("n_draws", n_draws, low=1)
        dist, _ = plackett_luce_dist(self._rng, self._logits(context), self.k, eligible, required,
                                     self.inner._order, d)
        return dist

    def _update(self, feedback: Feedback) -> None:
        self.inner.update(feedback)

    def _get_state(self) -> dict[str, np.ndarray[Any, Any]]:
        return {f"base.{key}": value for key, value in self.inner._get_state().items()}

    def _set_state(self, state: dict[str, np.ndarray[Any, Any]]) -> None:
        stray = sorted(key for key in state if not key.startswith("base."))
        if stray:
            raise PolicyError(f"saved state of {type(self).__name__} holds arrays {stray} outside its base.")
        self.inner._set_state({key[5:]: value for key, value in state.items()})


@register_policy("explore")
class Explore(_Explore):
    """Exploration over a scorer that reads the shopper's context (see the module docstring)."""

    anchor_context: ClassVar[bool] = False

    @classmethod
    def example(cls, n_items: int, k: int, dim_context: int, *, seed: int | None = None) -> Explore:
        """Softmax over popularity."""
        return cls(n_items, k, dim_context, base="popularity", method="softmax", temperature=0.5, seed=seed)


@register_policy("explore_anchored")
class ExploreAnchored(_Explore):
    """Exploration over a scorer that reads the anchor item from the context.

    Args:
        n_items: catalog size.
        k: slate length.
        dim_context: context dimension.
        base: registered name of an anchored scoring policy (e.g. ``"item_cf"``, ``"als"``).
        base_params: keyword arguments of ``base`` (besides n_items, k, dim_context, seed, anchor_column).
        method: ``"epsilon"`` or ``"softmax"``.
        epsilon: exploration probability in (0, 1] (``method = "epsilon"``).
        temperature: softmax temperature (> 0), in score units (``method = "softmax"``).
        n_draws: Monte Carlo draws for the softmax marginals beyond the third slot.
        anchor_column: context column holding the anchor item index (-1: none), passed to the base.
        seed: seed of the policy's random generator (the base gets the same seed).
    """

    anchor_context: ClassVar[bool] = True

    def __init__(self, n_items: int, k: int, dim_context: int = 0, *, base: str = "bought_together",
                 base_params: dict[str, Any] | None = None, method: str = "epsilon",
                 epsilon: float = 0.1, temperature: float = 1.0, n_draws: int = 10_000,
                 anchor_column: int = 0, seed: int | None = None) -> None:
        self.anchor_column = check_int("anchor_column", anchor_column, low=0)
        super().__init__(n_items, k, dim_context, base=base, base_params=base_params, method=method,
                         epsilon=epsilon, temperature=temperature, n_draws=n_draws, seed=seed)

    def _inner_extra(self) -> dict[str, Any]:
        return {"anchor_column": self.anchor_column}

    @classmethod
    def example(cls, n_items: int, k: int, dim_context: int, *,
                seed: int | None = None) -> ExploreAnchored:
        """Epsilon-greedy over bought-together rules."""
        return cls(n_items, k, dim_context, base="bought_together", epsilon=0.2, seed=seed)

    @classmethod
    def example_context(cls, rng: np.random.Generator, n: int, dim_context: int,
                        n_items: int) -> FloatArray:
        """Contexts whose column 0 is a random anchor item (or -1)."""
        return anchored_context(rng, n, dim_context, n_items)
