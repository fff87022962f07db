"""A tiny known-answer world for tests and examples (in the spirit of SB3's ``IdentityEnv``).

Shopper type ``t`` (drawn uniformly) is most attracted to items ``t``,
``t + 1``, ..., ``t + k - 1`` (mod ``n_items``), in that order, and every
other item is equally dull; slot ``j`` is seen with probability
``1 / (j + 1)``. So with every item eligible the best slate for type ``t`` is
``[t, t + 1, ..., t + k - 1] mod n_items`` and its expected clicks are known
in closed form. A purchased item leaves the eligible set; a session ends at
checkout (possible once something was bought), at abandonment, or at
``max_steps``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from simulator.envs.protocol import merge_sessions
from simulator.envs.slates import top_k

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
REWARD_TYPES = ("click", "purchase", "revenue")


@dataclass(frozen=True, slots=True)
class ToySessionState:
    """Sessions of the toy world (arrays over ``n`` sessions).

    Attributes:
        shopper_type: shape (n,) int64, in ``0 .. n_types - 1``.
        step: shape (n,) int64, steps taken.
        bought: shape (n, n_items) bool, items purchased so far.
    """

    shopper_type: IntArray
    step: IntArray
    bought: BoolArray

    @property
    def n(self) -> int:
        """Number of sessions."""
        return int(self.step.shape[0])

    def take(self, rows: Any) -> ToySessionState:
        """The sessions at ``rows`` (indices or a boolean mask)."""
        return ToySessionState(self.shopper_type[rows], self.step[rows], self.bought[rows])


@dataclass(frozen=True, slots=True)
class ToyObservation:
    """Contexts (n, d), eligible items (n, n_items); the toy requires nothing."""

    context: FloatArray
    eligible: BoolArray
    required: None = None


@dataclass(frozen=True, slots=True)
class ToyOutcome:
    """One step of every session: per-slot outcomes (n, k), per-session flags (n,).

    ``expected_reward``, ``cross_sell`` and ``up_sell`` are those of the shown
    slate before the step; ``anchor_changed`` marks sessions that bought
    something (their eligible items changed).
    """

    click: FloatArray
    purchase: FloatArray
    revenue: FloatArray
    reward: FloatArray
    expected_reward: FloatArray
    cross_sell: BoolArray
    up_sell: BoolArray
    checkout: BoolArray
    abandon: BoolArray
    anchor_changed: BoolArray
    state: ToySessionState


class ToyWorld:
    """A world whose best slate is known.

    Args:
        n_items: catalog size.
        k: slate length.
        n_types: shopper types (``<= n_items``).
        max_steps: step limit of a session.
        reward_type: ``click``, ``purchase`` or ``revenue``.
        buy_prob: probability that a click becomes a purchase.
        checkout_prob: probability of checking out after a step with a purchase.
        abandon_prob: probability of leaving after any step.
    """

    def __init__(self, n_items: int = 8, k: int = 3, n_types: int = 4, max_steps: int = 10,
                 reward_type: str = "click", buy_prob: float = 0.3, checkout_prob: float = 0.5,
                 abandon_prob: float = 0.1) -> None:
        if not 1 <= k <= n_items:
            raise ValueError(f"`k` must lie in [1, n_items = {n_items}], found {k}.")
        if not 1 <= n_types <= n_items:
            raise ValueError(f"`n_types` must lie in [1, n_items = {n_items}], found {n_types}.")
        if max_steps < 1:
            raise ValueError(f"`max_steps` must be at least 1, found {max_steps}.")
        if reward_type not in REWARD_TYPES:
            raise ValueError(f"`reward_type` must be one of {list(REWARD_TYPES)}, found {reward_type!r}.")
        for name, p in (("buy_prob", buy_prob), ("checkout_prob", checkout_prob),
                        ("abandon_prob", abandon_prob)):
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"`{name}` must be a probability in [0, 1], found {p}.")
        self.n_items, self.k, self.n_types, self.max_steps = n_items, k, n_types, max_steps
        self.reward_type = reward_type
        self.buy_prob, self.checkout_prob, self.abandon_prob = buy_prob, checkout_prob, abandon_prob
        offset = (np.arange(n_items)[None, :] - np.arange(n_types)[:, None]) % n_items
        #: shape (n_types, n_items), click probability at the first slot.
        self.attraction: FloatArray = np.where(offset < k, 0.85 - 0.6 * offset / k, 0.05).astype(np.float64)
        #: shape (k,), probability that slot j is looked at.
        self.position_bias: FloatArray = (1.0 / (1.0 + np.arange(k))).astype(np.float64)
        #: shape (n_items,), item prices.
        self.price: FloatArray = 10.0 + 5.0 * np.arange(n_items, dtype=np.float64)
        #: shape (n_items,), category of each item (two categories).
        self.category: IntArray = np.arange(n_items, dtype=np.int64) % 2
        value = {"click": np.ones(n_items), "purchase": np.full(n_items, buy_prob),
                 "revenue": buy_prob * self.price}[reward_type]
        self._item_value: FloatArray = value

    @property
    def dim_context(self) -> int:
        """One-hot shopper type, step fraction and bought fraction."""
        return self.n_types + 2

    def context_bounds(self) -> tuple[FloatArray, FloatArray]:
        """Every context lies in [0, 1]."""
        return np.zeros(self.dim_context), np.ones(self.dim_context)

    def new_sessions(self, n: int, rng: np.random.Generator) -> ToySessionState:
        """``n`` fresh shoppers of uniformly drawn types."""
        return ToySessionState(shopper_type=rng.integers(self.n_types, size=n).astype(np.int64),
                               step=np.zeros(n, dtype=np.int64),
                               bought=np.zeros((n, self.n_items), dtype=bool))

    def replace_sessions(self, state: ToySessionState, rows: IntArray,
                         rng: np.random.Generator) -> ToySessionState:
        """``state`` with the sessions at ``rows`` (m,) replaced by ``new_sessions(m, rng)`` (a new state)."""
        return merge_sessions(state, rows, self.new_sessions(len(rows), rng))  # type: ignore[no-any-return]

    def observe(self, state: ToySessionState,
                bounds: tuple[FloatArray, FloatArray] | None = None) -> ToyObservation:
        """Contexts (clipped to ``bounds`` when given) and eligible items."""
        ctx = self.context(state)
        if bounds is not None:
            ctx = np.clip(ctx, bounds[0], bounds[1])
        return ToyObservation(ctx, self.eligible(state))

    def context(self, state: ToySessionState) -> FloatArray:
        """Shape (n, n_types + 2)."""
        n = state.step.shape[0]
        out = np.zeros((n, self.dim_context))
        out[np.arange(n), state.shopper_type] = 1.0
        out[:, -2] = state.step / self.max_steps
        out[:, -1] = state.bought.mean(axis=1)
        return out

    def eligible(self, state: ToySessionState) -> BoolArray:
        """Items not bought yet, shape (n, n_items)."""
        return ~state.bought

    def cross_sell(self, state: ToySessionState) -> BoolArray:
        """Items of the other category than something already bought, shape (n, n_items)."""
        has: BoolArray = np.stack([(state.bought & (self.category == c)).any(axis=1) for c in (0, 1)],
                                  axis=1)
        out: BoolArray = has[:, 1 - self.category] & ~state.bought
        return out

    def up_sell(self, state: ToySessionState) -> BoolArray:
        """Items dearer than the dearest item bought, shape (n, n_items)."""
        top = np.where(state.bought, self.price, -np.inf).max(axis=1)
        any_bought = np.asarray(state.bought.any(axis=1), dtype=bool)
        out: BoolArray = (self.price[None, :] > top[:, None]) & any_bought[:, None]
        return out

    def _weights(self, state: ToySessionState) -> FloatArray:
        return self.attraction[state.shopper_type] * self._item_value

    def expected_reward(self, state: ToySessionState, slate: IntArray) -> FloatArray:
        """Shape (n,), expected reward of slates (n, k)."""
        w = np.take_along_axis(self._weights(state), slate, axis=1)
        out: FloatArray = (w * self.position_bias).sum(axis=1)
        return out

    def best_slate(self, state: ToySessionState, *, rows: Any = None,
                   seen: Any = None) -> tuple[IntArray, FloatArray]:
        """The best eligible slates (m, k) and their expected rewards (m,), of the sessions at ``rows``.

        Slot weights decrease, so the best slate puts the highest-valued
        eligible items in slot order (rearrangement inequality). ``seen`` is not used.
        """
        if rows is not None:
            state = state.take(np.asarray(rows, dtype=np.int64))
        slates = top_k(self._weights(state), self.k, self.eligible(state))
        return slates, self.expected_reward(state, slates)

    def step(self, state: ToySessionState, slate: IntArray, rng: np.random.Generator, *,
             in_place: bool = False) -> ToyOutcome:
        """Draw clicks, purchases, checkout and abandonment for every session.

        Returns a new state (``in_place`` is accepted and not used).
        """
        n = slate.shape[0]
        expected = self.expected_reward(state, slate)
        cross = np.take_along_axis(self.cross_sell(state), slate, axis=1)
        up = np.take_along_axis(self.up_sell(state), slate, axis=1)
        p_click = np.take_along_axis(self.attraction[state.shopper_type], slate, axis=1) \
            * self.position_bias
        click = (rng.random((n, self.k)) < p_click).astype(np.float64)
        purchase = click * (rng.random((n, self.k)) < self.buy_prob)
        revenue = purchase * self.price[slate]
        reward = {"click": click, "purchase": purchase, "revenue": revenue}[self.reward_type].sum(axis=1)
        bought = state.bought.copy()
        rows = np.repeat(np.arange(n), self.k)
        bought[rows[purchase.ravel() > 0], slate.ravel()[purchase.ravel() > 0]] = True
        checkout = (purchase.sum(axis=1) > 0) & (rng.random(n) < self.checkout_prob)
        abandon = ~checkout & (rng.random(n) < self.abandon_prob)
        new_state = ToySessionState(shopper_type=state.shopper_type, step=state.step + 1, bought=bought)
        return ToyOutcome(click=click, purchase=purchase, revenue=revenue, reward=reward,
                          expected_reward=expected, cross_sell=cross, up_sell=up, checkout=checkout,
                          abandon=abandon, anchor_changed=purchase.sum(axis=1) > 0, state=new_state)
