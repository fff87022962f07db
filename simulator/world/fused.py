"""The world's session dynamics fused into a few compiled calls, for the session environments.

:class:`FusedWorld` does what an environment step asks of a
:class:`~simulator.world.core.World` — draw new sessions, step them, tell which
shown items were cross-sells or up-sells, the shown slate's and the best
slate's exact expected reward, the next contexts and eligible items — in four
numba kernels (``simulator.world._kernels``) instead of some sixty numpy calls.
It is the same model: for the same generator it draws the same sessions and
the same outcomes as ``World.new_sessions`` and ``World.step``, and its
expected rewards agree with ``World.expected_reward`` / ``World.best_slate`` up
to floating-point rounding (tests check both).

Slates are trusted here: the environments validate every action at their
boundary first. :meth:`FusedWorld.step` and :meth:`FusedWorld.reset_rows`
change the state they are given in place (an environment owns its sessions);
``World.step`` returns a new one. Shapes are batch-first over ``n`` sessions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import numpy.typing as npt

from simulator.world import _kernels
from simulator.world.core import SessionState

if TYPE_CHECKING:
    from simulator.world.core import World

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
_REWARD_CODES = {"click": 0, "purchase": 1, "revenue": 2}


class Observation(NamedTuple):
    """What an agent sees of ``n`` sessions.

    Attributes:
        context: shape (n, d), ``World.context`` (clipped to the bounds given to :meth:`FusedWorld.observe`).
        eligible: shape (n, n_items) bool, ``World.eligible``.
        required: shape (n, n_items) bool, ``World.required``, or None when the world requires nothing.
    """

    context: FloatArray
    eligible: BoolArray
    required: BoolArray | None


class FusedStep:
    """What one step of ``n`` sessions produced (``World.step``'s outcome, and more).

    Views into two buffers, made on access (an environment reads only what it reports):

    Attributes:
        click, purchase, revenue: shape (n, k) float, per slot.
        reward: shape (n,), the slate's reward of the world's ``reward_type``.
        expected_reward: shape (n,), the shown slate's exact expected reward.
        checkout, abandon, truncated, done: shape (n,) bool.
        anchor_changed: shape (n,) bool, a purchase moved the anchor (item values changed).
        cross_sell, up_sell: shape (n, k) bool, which shown items are a cross-sell / up-sell.
        values: shape (n, 3k + 2), the buffer: click, purchase, revenue, reward, expected reward.
        flags: shape (n, 2k + 5) bool, the buffer: checkout, abandon, truncated, done,
            anchor changed, cross-sell (k), up-sell (k).
    """

    __slots__ = ("flags", "k", "values")

    def __init__(self, values: FloatArray, flags: BoolArray, k: int) -> None:
        self.values, self.flags, self.k = values, flags, k

    @property
    def click(self) -> FloatArray:
        """Shape (n, k), 1.0 where the slot was clicked."""
        return self.values[:, :self.k]

    @property
    def purchase(self) -> FloatArray:
        """Shape (n, k), 1.0 where the slot's item was bought."""
        return self.values[:, self.k:2 * self.k]

    @property
    def revenue(self) -> FloatArray:
        """Shape (n, k), price of each bought item (0 elsewhere)."""
        return self.values[:, 2 * self.k:3 * self.k]

    @property
    def reward(self) -> FloatArray:
        """Shape (n,), the slate's reward of the world's reward type."""
        return self.values[:, 3 * self.k]

    @property
    def expected_reward(self) -> FloatArray:
        """Shape (n,), the shown slate's exact expected reward."""
        return self.values[:, 3 * self.k + 1]

    @property
    def checkout(self) -> BoolArray:
        """Shape (n,) bool, the session ended with a checkout."""
        return self.flags[:, 0]

    @property
    def abandon(self) -> BoolArray:
        """Shape (n,) bool, the shopper left."""
        return self.flags[:, 1]

    @property
    def truncated(self) -> BoolArray:
        """Shape (n,) bool, the session reached the step limit."""
        return self.flags[:, 2]

    @property
    def done(self) -> BoolArray:
        """Shape (n,) bool, the session ended."""
        return self.flags[:, 3]

    @property
    def anchor_changed(self) -> BoolArray:
        """Shape (n,) bool, a purchase moved the anchor."""
        return self.flags[:, 4]

    @property
    def cross_sell(self) -> BoolArray:
        """Shape (n, k) bool, the shown items that are cross-sells."""
        return self.flags[:, 5:5 + self.k]

    @property
    def up_sell(self) -> BoolArray:
        """Shape (n, k) bool, the shown items that are up-sells."""
        return self.flags[:, 5 + self.k:]


class FusedWorld:
    """Compiled session dynamics of one :class:`~simulator.world.core.World`.

    Args:
        world: the world; its arrays are copied into the layouts the kernels read.
    """

    def __init__(self, world: World) -> None:
        p, cfg = world.params, world.config
        self.world = world
        self.n_items, self.k, self.max_steps = world.n_items, world.k, world.max_steps
        price = np.asarray(p.price, dtype=np.float64)
        log_price = np.log(price)
        scale = max(float(log_price.std()), 1e-9)
        rel_log_price = log_price - float(np.median(log_price))
        # the packed layouts of simulator.world._kernels
        self._item = np.ascontiguousarray(np.column_stack([
            np.asarray(p.item_weight, dtype=np.float64).T.reshape(self.n_items, -1), p.item_bias, price,
            log_price, rel_log_price, (log_price - log_price.mean()) / scale]))
        weight = np.asarray(p.item_weight, dtype=np.float64).reshape(-1, self.n_items)
        self._weight = np.ascontiguousarray(weight)
        self._bias = np.ascontiguousarray(p.item_bias, dtype=np.float64)
        self._price = price
        self._category = np.ascontiguousarray(p.item_category, dtype=np.int64)
        self._complement = np.ascontiguousarray(p.complement, dtype=np.bool_)
        exam = np.asarray(p.position_bias, dtype=np.float64)
        self._scalars = np.concatenate([[cfg.buy_base, cfg.checkout_prob, cfg.abandon_base, cfg.fatigue,
                                         cfg.relevance_weight, cfg.overprice_weight, cfg.cross_bonus,
                                         cfg.up_bonus, cfg.other_bonus], exam]).astype(np.float64)
        self._ints = np.array([_REWARD_CODES[cfg.reward_type], cfg.max_steps, cfg.candidates_only,
                               cfg.require_cross_sell], dtype=np.int64)
        self._require = bool(cfg.require_cross_sell)
        cat = self._category
        self._base_bonus = np.ascontiguousarray(
            np.where(self._complement[:, cat], cfg.cross_bonus, cfg.other_bonus), dtype=np.float64)
        self._members = np.argsort(cat, kind="stable").astype(np.int64)
        self._starts = np.searchsorted(cat[self._members], np.arange(self._complement.shape[0] + 1)).astype(
            np.int64)
        self._slot_order = np.argsort(-exam, kind="stable").astype(np.int64)
        self._dim = world.dim_context
        self._unbounded = (np.full(self._dim, -np.inf), np.full(self._dim, np.inf))
        # reward of a click on each item for each profile (the purchase probability depends on
        # the profile's price sensitivity only)
        sens = np.asarray(p.profile_price_sens, dtype=np.float64)[:, None]
        buy = 1.0 / (1.0 + np.exp(-(cfg.buy_base - sens * rel_log_price[None, :])))
        code = _REWARD_CODES[cfg.reward_type]
        self._click_value = np.ascontiguousarray(
            np.ones_like(buy) if code == 0 else (buy if code == 1 else buy * price[None, :]))
        self._profile_sens = sens[:, 0]
        cdf = np.cumsum(np.asarray(p.profile_weight, dtype=np.float64))
        self._profile_cdf = cdf / cdf[-1]
        self._anchor_cdf = world.anchor_cdf
        self._profile_arrays = (np.ascontiguousarray(p.profile_features, dtype=np.float64),
                                np.asarray(p.profile_price_sens, dtype=np.float64),
                                np.asarray(p.profile_patience, dtype=np.float64),
                                np.asarray(p.profile_segment, dtype=np.int64))
        self._taste = int(p.taste_features)
        self._n_feat = int(np.asarray(p.item_weight).shape[0])
        self._no_required = np.zeros((0, 0), dtype=np.bool_)

    # ------------------------------------------------------------------ sessions
    def new_sessions(self, n: int, rng: np.random.Generator) -> SessionState:
        """``World.new_sessions(n, rng)``: the same sessions from the same generator."""
        state = SessionState(
            profile=np.empty(n, dtype=np.int64), segment=np.empty(n, dtype=np.int64),
            shopper=np.empty((n, self._n_feat)), price_sens=np.empty(n), patience=np.empty(n),
            anchor=np.empty(n, dtype=np.int64), cart=np.empty((n, self.n_items), dtype=np.bool_),
            cart_value=np.empty(n), step=np.empty(n, dtype=np.int64), alive=np.empty(n, dtype=np.bool_))
        self.reset_rows(state, np.arange(n, dtype=np.int64), rng)
        return state

    def reset_rows(self, state: SessionState, rows: IntArray, rng: np.random.Generator) -> None:
        """New shoppers in place of the sessions at ``rows`` (m,): ``World.new_sessions(m, rng)``'s draws."""
        # World.new_sessions draws rng.choice(p=...), then uniform(-1, 1, (m, taste)), then
        # random(m); Generator.choice with p inverts one random() per draw in the normalised
        # CDF and uniform(-1, 1) is -1 + 2 random(), so one random() call gives the same numbers.
        u = rng.random(rows.shape[0] * (self._taste + 2))
        features, sens, patience, segment = self._profile_arrays
        _kernels.reset_rows(rows, u, self._profile_cdf, self._anchor_cdf, features, sens, patience, segment,
                            self._taste, state.profile, state.segment, state.shopper, state.price_sens,
                            state.patience, state.anchor, state.cart, state.cart_value, state.step,
                            state.alive)

    # ------------------------------------------------------------------ truth
    def item_values(self, state: SessionState, out: FloatArray, rows: IntArray | None = None) -> FloatArray:
        """``World.item_value(state)`` written into ``out`` (n, n_items), only at ``rows`` when given.

        Sessions must have their profile's price sensitivity (as every session
        :meth:`new_sessions` or ``World.new_sessions`` draws).
        """
        idx = np.arange(state.n, dtype=np.int64) if rows is None else np.asarray(rows, dtype=np.int64)
        neg_logit = np.empty((idx.shape[0], self.n_items))
        _kernels.item_logits(idx, state.shopper, state.anchor, self._weight, self._bias, self._price,
                             self._category, self._complement, self._base_bonus, self._members, self._starts,
                             self._scalars, neg_logit)
        np.exp(neg_logit, out=neg_logit)  # numpy's vectorised exp: ~10x a scalar exp per item
        _kernels.finish_values(idx, state.profile, self._click_value, neg_logit, out)
        return out

    def observe(self, state: SessionState,
                bounds: tuple[FloatArray, FloatArray] | None = None) -> Observation:
        """``World.context``, ``World.eligible`` and ``World.required`` of ``state``, in one call.

        Args:
            state: ``n`` sessions.
            bounds: ``(low, high)``, each (d,), to clip the contexts to, or None.
        """
        n = state.n
        low, high = self._unbounded if bounds is None else bounds
        context = np.empty((n, self._dim))
        eligible = np.empty((n, self.n_items), dtype=np.bool_)
        required = np.zeros((n, self.n_items), dtype=np.bool_) if self._require else self._no_required
        _kernels.observe(state.shopper, state.anchor, state.cart, state.cart_value, state.step, self._item,
                         self._category, self._complement, self._ints, self.k, low, high, context,
                         eligible, required)
        return Observation(context, eligible, required if self._require else None)

    def best_slates(self, seen: Observation, values: FloatArray, out_slate: IntArray,
                    out_reward: FloatArray, rows: IntArray | None = None) -> None:
        """``World.best_slate`` written into ``out_slate`` (n, k) and ``out_reward`` (n,), at ``rows`` only.

        Args:
            seen: the sessions' :meth:`observe` (their eligible and required items).
            values: shape (n, n_items), the sessions' :meth:`item_values`.
            out_slate: shape (n, k), where the best slates go.
            out_reward: shape (n,), where their exact expected rewards go.
            rows: the sessions to fill (all when None).
        """
        idx = np.arange(values.shape[0], dtype=np.int64) if rows is None else rows
        required = self._no_required if seen.required is None else seen.required
        _kernels.best_slates(idx, values, seen.eligible, required, self._require, self._slot_order,
                             self._scalars, out_slate, out_reward)

    # ------------------------------------------------------------------ dynamics
    def step(self, state: SessionState, slate: IntArray, rng: np.random.Generator) -> FusedStep:
        """``World.step(state, slate, rng)`` (same draws) done in place on ``state``, plus the step's truth.

        Args:
            state: ``n`` sessions; its anchor, cart, cart value, step and alive arrays are updated.
            slate: shape (n, k) int64, valid slates (distinct, in range; not checked here).
            rng: draws the outcomes (the same numbers ``World.step`` draws).
        """
        n, k = slate.shape[0], self.k
        u = rng.random((n, 2 * k + 2))
        out_f = np.empty((n, 3 * k + 2))
        out_b = np.empty((n, 2 * k + 5), dtype=np.bool_)
        _kernels.step_sessions(slate, u, state.shopper, state.price_sens, state.patience, state.anchor,
                               state.cart, state.cart_value, state.step, state.alive, self._item,
                               self._category, self._complement, self._scalars, self._ints, out_f, out_b)
        return FusedStep(out_f, out_b, k)
