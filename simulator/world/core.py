"""The ground-truth shop: sessions, contexts, business rules, the response model and its truth.

Shapes are batch-first: a :class:`SessionState` holds ``n`` sessions; a slate
batch is ``(n, k)`` item indices; per-item arrays are ``(n, n_items)``.

Response model (position-based): slot ``j`` is examined with probability
``position_bias[j]``; an examined item is clicked with its *attraction* for
this shopper and anchor, ``sigmoid(item_bias + shopper @ item_weight +
bonus)``, where the bonus depends on the item being a cross-sell, an up-sell
or neither relative to the anchor; a click becomes a purchase with
``sigmoid(buy_base - price_sens * (log price - median log price))``; revenue
is price times purchase. So the expected reward of a slate is
``sum_j position_bias[j] * attraction * value`` (value 1, the purchase
probability, or purchase probability times price), linear in the per-slot
item marginals, and the best slate puts the ``k`` items of largest
``attraction * value`` on the slots in order of examination.

The model is written once, as the compiled kernels of
:mod:`simulator.world._kernels`; :class:`World` checks its inputs and calls
them on the constants it lays out at construction (:mod:`simulator.world.tables`).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from simulator.errors import WorldError
from simulator.logs import Catalog
from simulator.world import _kernels
from simulator.world.config import WorldConfig
from simulator.world.params import WorldParams, synthetic_params
from simulator.world.tables import END, SLOT, anchor_probs, build_tables

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
_NO_REQUIRED = np.zeros((0, 0), dtype=np.bool_)


@dataclass(frozen=True, slots=True)
class SessionState:
    """``n`` shopping sessions as plain arrays.

    Attributes:
        profile: shape (n,) int64, the shopper profile (a segment in synthetic worlds).
        segment: shape (n,) int64, the shopper's segment.
        shopper: shape (n, f), shopper features.
        price_sens: shape (n,), price sensitivity.
        patience: shape (n,), patience (abandonment logit removed).
        anchor: shape (n,) int64, the anchor item (what the shopper is looking at).
        cart: shape (n, n_items) bool, items in the cart.
        cart_value: shape (n,), value of the cart in currency units.
        step: shape (n,) int64, steps taken so far.
        alive: shape (n,) bool, the session has not ended.
    """

    profile: IntArray
    segment: IntArray
    shopper: FloatArray
    price_sens: FloatArray
    patience: FloatArray
    anchor: IntArray
    cart: BoolArray
    cart_value: FloatArray
    step: IntArray
    alive: BoolArray

    @property
    def n(self) -> int:
        """Number of sessions."""
        return int(self.anchor.shape[0])

    def take(self, rows: Any) -> SessionState:
        """The sessions at ``rows`` (indices or a boolean mask), copied."""
        return SessionState(*(getattr(self, f.name)[rows] for f in fields(self)))

    def copy(self) -> SessionState:
        """A copy of every array."""
        return SessionState(*(getattr(self, f.name).copy() for f in fields(self)))


class StepOutcome:
    """What one step of ``n`` sessions produced (views of the step's output records).

    Attributes:
        click: shape (n, k) float, 1.0 where the slot was clicked.
        purchase: shape (n, k) float, 1.0 where the slot's item was bought.
        revenue: shape (n, k), price of each bought item (0 elsewhere).
        reward: shape (n,), the slate's reward of the world's ``reward_type`` summed over slots.
        expected_reward: shape (n,), the shown slate's exact expected reward before the step.
        cross_sell, up_sell: shape (n, k) bool, which shown items were a cross-sell / up-sell.
        checkout: shape (n,) bool, the session ended with a checkout.
        abandon: shape (n,) bool, the shopper left without checking out.
        truncated: shape (n,) bool, the session reached ``max_steps``.
        done: shape (n,) bool, the session ended (checkout, abandonment or step limit).
        anchor_changed: shape (n,) bool, a purchase moved the anchor (and filled the cart).
        state: the sessions after the step (ended ones have ``alive`` False).
    """

    __slots__ = ("_ends", "_slots", "state")

    def __init__(self, slots: npt.NDArray[np.void], ends: npt.NDArray[np.void], state: SessionState) -> None:
        self._slots, self._ends, self.state = slots, ends, state

    @property
    def click(self) -> FloatArray:
        """Shape (n, k), 1.0 where the slot was clicked."""
        out: FloatArray = self._slots["click"]
        return out

    @property
    def purchase(self) -> FloatArray:
        """Shape (n, k), 1.0 where the slot's item was bought."""
        out: FloatArray = self._slots["purchase"]
        return out

    @property
    def revenue(self) -> FloatArray:
        """Shape (n, k), price of each bought item (0 elsewhere)."""
        out: FloatArray = self._slots["revenue"]
        return out

    @property
    def cross_sell(self) -> BoolArray:
        """Shape (n, k) bool, the shown items that were cross-sells."""
        out: BoolArray = self._slots["cross_sell"]
        return out

    @property
    def up_sell(self) -> BoolArray:
        """Shape (n, k) bool, the shown items that were up-sells."""
        out: BoolArray = self._slots["up_sell"]
        return out

    @property
    def reward(self) -> FloatArray:
        """Shape (n,), the slate's reward of the world's reward type."""
        out: FloatArray = self._ends["reward"]
        return out

    @property
    def expected_reward(self) -> FloatArray:
        """Shape (n,), the shown slate's exact expected reward."""
        out: FloatArray = self._ends["expected_reward"]
        return out

    @property
    def checkout(self) -> BoolArray:
        """Shape (n,) bool, the session ended with a checkout."""
        out: BoolArray = self._ends["checkout"]
        return out

    @property
    def abandon(self) -> BoolArray:
        """Shape (n,) bool, the shopper left."""
        out: BoolArray = self._ends["abandon"]
        return out

    @property
    def truncated(self) -> BoolArray:
        """Shape (n,) bool, the session reached the step limit."""
        out: BoolArray = self._ends["truncated"]
        return out

    @property
    def done(self) -> BoolArray:
        """Shape (n,) bool, the session ended."""
        out: BoolArray = self._ends["done"]
        return out

    @property
    def anchor_changed(self) -> BoolArray:
        """Shape (n,) bool, a purchase moved the anchor."""
        out: BoolArray = self._ends["anchor_changed"]
        return out


@dataclass(frozen=True, slots=True)
class Observation:
    """What an agent sees of ``n`` sessions.

    Attributes:
        context: shape (n, dim_context), :meth:`World.context` (clipped to the bounds asked for).
        eligible: shape (n, n_items) bool, :meth:`World.eligible`.
        required: shape (n, n_items) bool, :meth:`World.required`, or None when the world requires nothing.
    """

    context: FloatArray
    eligible: BoolArray
    required: BoolArray | None


class World:
    """A ground-truth shop (see the module docstring for the model).

    Args:
        config: the shop's configuration (sizes, response and session settings).
        seed: seed of the generator that draws the catalog, complements and segments.
        params: explicit arrays (a calibrated or loaded world); then ``seed`` is
            not used and the size fields of ``config`` are ignored.
    """

    def __init__(self, config: WorldConfig | None = None, seed: int | None = None, *,
                 params: WorldParams | None = None) -> None:
        if config is None:
            config = WorldConfig()
        if not isinstance(config, WorldConfig):
            raise WorldError(f"`config` must be a WorldConfig, found {type(config).__name__}; "
                             "load one with WorldConfig.from_toml(path).")
        self.config = config
        self.seed = seed
        if params is None:
            params = synthetic_params(config, np.random.default_rng(seed))
        if params.position_bias.shape[0] != config.k:
            raise WorldError(f"`config.k` = {config.k} but the world has "
                             f"{params.position_bias.shape[0]} slots of position bias.")
        if config.k + 1 > params.n_items:
            raise WorldError(f"`config.k` must be at most n_items - 1 = {params.n_items - 1}, "
                             f"found {config.k}.")
        self.params = params
        p = params
        self._tables = build_tables(config, params)
        self._log_price: FloatArray = np.log(p.price)
        self._n_cat = len(p.category_names)
        self._require = bool(config.require_cross_sell)
        self._unbounded = (np.full(self.dim_context, -np.inf), np.full(self.dim_context, np.inf))
        self.catalog = Catalog(
            item_id=p.item_id,
            category=np.asarray([p.category_names[c] for c in p.item_category]),
            price=p.price,
            features=p.item_features,
            feature_names=p.item_feature_names,
        )

    # ------------------------------------------------------------------ building
    @classmethod
    def default(cls, seed: int | None = 0) -> World:
        """The default shop: 300 items in 12 categories, k = 3, revenue reward, 20 steps."""
        return cls(WorldConfig(), seed)

    def anchor_probs(self) -> FloatArray:
        """Shape (P, n_items): probability of each first anchor for each shopper profile.

        A softmax of the item's attraction logit for the profile (taste features at 0).
        """
        return anchor_probs(self.params)

    # ------------------------------------------------------------------ sizes
    @property
    def n_items(self) -> int:
        """Catalog size."""
        return self.params.n_items

    @property
    def k(self) -> int:
        """Slate length."""
        return self.config.k

    @property
    def max_steps(self) -> int:
        """Step limit of a session."""
        return self.config.max_steps

    @property
    def reward_type(self) -> str:
        """``click``, ``purchase`` or ``revenue``."""
        return self.config.reward_type

    @property
    def n_features(self) -> int:
        """Shopper features ``f``."""
        return int(self.params.item_weight.shape[0])

    @property
    def dim_context(self) -> int:
        """Context dimension: shopper features, anchor category one-hot, 4 session numbers."""
        return self.n_features + self._n_cat + 4

    @property
    def context_names(self) -> tuple[str, ...]:
        """Names of the ``dim_context`` context columns."""
        return (*self.params.feature_names,
                *(f"anchor_{c}" for c in self.params.category_names),
                "anchor_log_price", "cart_size", "cart_log_value", "step_fraction")

    @property
    def position_bias(self) -> FloatArray:
        """Shape (k,), examination probability of each slot."""
        return self._tables.exam.copy()

    def with_config(self, **changes: Any) -> World:
        """The same catalog and shoppers with some settings changed (e.g. ``reward_type``)."""
        return World(replace(self.config, **changes), self.seed, params=self.params)

    # ------------------------------------------------------------------ sessions
    def new_sessions(self, n: int, rng: np.random.Generator) -> SessionState:
        """``n`` fresh sessions: shoppers drawn from the profiles, anchors from :meth:`anchor_probs`.

        Args:
            n: number of sessions (>= 0).
            rng: draws the shoppers and anchors.
        """
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
            raise WorldError(f"`n` must be an integer >= 0, found {n!r}.")
        self._check_rng(rng)
        n = int(n)
        state = SessionState(
            profile=np.empty(n, dtype=np.int64), segment=np.empty(n, dtype=np.int64),
            shopper=np.empty((n, self.n_features)), price_sens=np.empty(n), patience=np.empty(n),
            anchor=np.empty(n, dtype=np.int64), cart=np.empty((n, self.n_items), dtype=np.bool_),
            cart_value=np.empty(n), step=np.empty(n, dtype=np.int64), alive=np.empty(n, dtype=np.bool_))
        self._reset(state, np.arange(n, dtype=np.int64), rng)
        return state

    def replace_sessions(self, state: SessionState, rows: Any, rng: np.random.Generator) -> SessionState:
        """New shoppers in place of the sessions at ``rows``, changing ``state`` in place.

        The new sessions are those ``new_sessions(len(rows), rng)`` would draw.

        Args:
            state: ``n`` sessions (its arrays are written).
            rows: shape (m,) int, indices of the sessions to replace.
            rng: draws the shoppers and anchors.

        Returns:
            ``state``.
        """
        self._check_state(state)
        self._check_rng(rng)
        idx = np.asarray(rows)
        if idx.dtype.kind not in "iu" or idx.ndim != 1:
            raise WorldError(f"`rows` must be a 1-d array of session indices, found dtype {idx.dtype} "
                             f"and shape {idx.shape}; use np.flatnonzero(mask) for a mask.")
        if idx.size and (idx.min() < 0 or idx.max() >= state.n):
            raise WorldError(f"`rows` must lie in [0, {state.n - 1}], found {idx.min()}..{idx.max()}.")
        self._reset(state, idx.astype(np.int64, copy=False), rng)
        return state

    def _reset(self, state: SessionState, rows: IntArray, rng: np.random.Generator) -> None:
        # one random() call per session and draw: the profile (inverted in its CDF), the taste
        # features (-1 + 2u) and the first anchor (inverted in the profile's anchor CDF)
        t = self._tables
        u = rng.random(rows.shape[0] * (t.taste + 2))
        _kernels.reset_rows(rows, u, t.profile_cdf, t.anchor_cdf, t.profile_features, t.profile_price_sens,
                            t.profile_patience, t.profile_segment, t.taste, state.profile, state.segment,
                            state.shopper, state.price_sens, state.patience, state.anchor, state.cart,
                            state.cart_value, state.step, state.alive)

    @staticmethod
    def _check_rng(rng: Any) -> None:
        if not isinstance(rng, np.random.Generator):
            raise WorldError(f"`rng` must be a numpy.random.Generator, found {type(rng).__name__}; "
                             "use np.random.default_rng(seed).")

    def observe(self, state: SessionState,
                bounds: tuple[FloatArray, FloatArray] | None = None) -> Observation:
        """:meth:`context`, :meth:`eligible` and :meth:`required` of ``state``, in one call.

        Args:
            state: ``n`` sessions.
            bounds: ``(low, high)``, each shape (dim_context,) float64, to clip the contexts to, or None.
        """
        self._check_state(state)
        n = state.n
        low, high = self._unbounded if bounds is None else bounds
        context = np.empty((n, self.dim_context))
        eligible = np.empty((n, self.n_items), dtype=np.bool_)
        required = np.zeros((n, self.n_items), dtype=np.bool_) if self._require else _NO_REQUIRED
        t = self._tables
        _kernels.observe(state.shopper, state.anchor, state.cart, state.cart_value, state.step, t.items,
                         t.category, t.price, t.complement, t.rules, self.k, low, high, context, eligible,
                         required)
        return Observation(context, eligible, required if self._require else None)

    def context(self, state: SessionState) -> FloatArray:
        """Shape (n, dim_context): the shoppers and their sessions as numbers.

        Columns: shopper features, anchor category one-hot, anchor log
        price (standardised over the catalog), cart size / (k * max_steps), log(1 + cart
        value), step / max_steps.
        """
        return self.observe(state).context

    def context_bounds(self) -> tuple[FloatArray, FloatArray]:
        """Per-column bounds (each shape (dim_context,)) that hold every context."""
        p = self.params
        f, c = self.n_features, self._n_cat
        low, high = np.zeros(self.dim_context), np.ones(self.dim_context)
        if f:
            low[:f] = p.profile_features.min(axis=0)
            high[:f] = p.profile_features.max(axis=0)
            if p.taste_features:
                low[f - p.taste_features:f], high[f - p.taste_features:f] = -1.0, 1.0
        z = self._tables.items["price_z"]
        low[f + c], high[f + c] = float(z.min()), float(z.max())
        high[f + c + 2] = float(np.log1p(self.params.price.sum()))
        flat = high <= low
        high[flat] = low[flat] + 1.0
        return low, high

    # ------------------------------------------------------------------ candidates
    def _check_state(self, state: Any) -> SessionState:
        if not isinstance(state, SessionState):
            raise WorldError(f"`state` must be a SessionState from world.new_sessions(), found "
                             f"{type(state).__name__}.")
        if state.cart.ndim != 2 or state.cart.shape[1] != self.n_items:
            raise WorldError(f"`state.cart` must have shape (n, {self.n_items}), found "
                             f"{state.cart.shape}; the state belongs to another world.")
        return state

    def _relations(self, state: SessionState) -> tuple[BoolArray, BoolArray]:
        self._check_state(state)
        cross = np.empty((state.n, self.n_items), dtype=np.bool_)
        up = np.empty((state.n, self.n_items), dtype=np.bool_)
        t = self._tables
        _kernels.relations(state.anchor, t.category, t.price, t.complement, cross, up)
        return cross, up

    def cross_sell(self, state: SessionState) -> BoolArray:
        """Shape (n, n_items) bool: items of a category complementary to the anchor's."""
        return self._relations(state)[0]

    def up_sell(self, state: SessionState) -> BoolArray:
        """Shape (n, n_items) bool: items of the anchor's category that cost more than it."""
        return self._relations(state)[1]

    def eligible(self, state: SessionState) -> BoolArray:
        """Shape (n, n_items) bool: the items a slate may show.

        Not in the cart, not the anchor, and (when
        ``candidates_only``) a cross-sell or up-sell. Rows with fewer than ``k``
        candidates fall back to every item outside the cart and the anchor, and
        a cart so full that fewer than ``k`` items are left lets its items back
        (only in small worlds with long sessions).
        """
        return self.observe(state).eligible

    def required(self, state: SessionState) -> BoolArray | None:
        """Shape (n, n_items) bool of items of which a slate must hold one, or None.

        The eligible
        cross-sells when ``require_cross_sell``, else None.
        """
        if not self._require:
            return None
        return self.observe(state).required

    # ------------------------------------------------------------------ responses
    def _item_terms(self, state: SessionState, rows: IntArray) -> tuple[FloatArray, FloatArray]:
        """Attraction and value of every item for the sessions at ``rows``, each (m, n_items)."""
        t = self._tables
        m = rows.shape[0]
        buf = np.empty((m, self.n_items))
        _kernels.item_logits(rows, state.shopper, state.anchor, t.weight, t.category, t.price, t.bias,
                             t.base_bonus, t.members, t.starts, t.complement, t.rules, buf)
        np.exp(buf, out=buf)  # numpy's vectorised exp: ~10x a scalar exp per item
        attraction, value = np.empty((m, self.n_items)), np.empty((m, self.n_items))
        _kernels.item_values(rows, state.profile, state.price_sens, t.profile_price_sens,
                             t.profile_click_value, t.items, t.price, t.rules, buf, attraction, value)
        return attraction, value

    def _all_rows(self, state: SessionState) -> IntArray:
        return np.arange(state.n, dtype=np.int64)

    def attraction(self, state: SessionState) -> FloatArray:
        """Shape (n, n_items): click probability of each item if examined."""
        self._check_state(state)
        return self._item_terms(state, self._all_rows(state))[0]

    def purchase_prob(self, state: SessionState) -> FloatArray:
        """Shape (n, n_items): probability that a click on the item becomes a purchase."""
        self._check_state(state)
        out = np.empty((state.n, self.n_items))
        _kernels.purchase_probs(state.price_sens, self._tables.items, self._tables.rules, out)
        return out

    def item_value(self, state: SessionState) -> FloatArray:
        """Shape (n, n_items): expected reward of an item on a slot examined for sure.

        That is (attraction times the reward of a click).
        """
        self._check_state(state)
        return self._item_terms(state, self._all_rows(state))[1]

    def _check_slate(self, state: SessionState, slate: Any) -> IntArray:
        arr = np.asarray(slate)
        if arr.dtype.kind not in "iu":
            raise WorldError(f"`slate` must hold integer item indices, found dtype {arr.dtype}.")
        if arr.shape != (state.n, self.k):
            raise WorldError(f"`slate` must have shape ({state.n}, {self.k}) (n sessions, k slots), "
                             f"found {arr.shape}.")
        arr = np.ascontiguousarray(arr, dtype=np.int64)
        row, problem = _kernels.first_bad_slate(arr, self.n_items, state.alive)
        if problem == 0:
            raise WorldError(f"`slate` holds items outside [0, {self.n_items - 1}]; map item ids to "
                             "catalog indices first.")
        if problem == 1:
            raise WorldError(f"`slate` row {row} repeats an item: {arr[row].tolist()}; a slate "
                             "shows k distinct items.")
        return arr

    def _slate_terms(self, state: SessionState, slate: Any) -> tuple[FloatArray, FloatArray, FloatArray,
                                                                      FloatArray]:
        self._check_state(state)
        s = self._check_slate(state, slate)
        n, k = s.shape
        t = self._tables
        click, purchase = np.empty((n, k)), np.empty((n, k))
        abandon, expected = np.empty(n), np.empty(n)
        _kernels.slate_terms(s, state.shopper, state.price_sens, state.patience, state.anchor, state.step,
                             t.items, t.category, t.price, t.weight_t, t.complement, t.rules, t.exam, click,
                             purchase, abandon, expected)
        return click, purchase, abandon, expected

    def expected_reward(self, state: SessionState, slate: Any) -> FloatArray:
        """Exact expected reward of each slate, shape (n,).

        Args:
            state: ``n`` sessions.
            slate: shape (n, k) item indices in slot order.
        """
        return self._slate_terms(state, slate)[3]

    def expected_reward_dist(self, state: SessionState, action_dist: Any) -> FloatArray:
        """Exact expected reward of a stochastic policy, shape (n,).

        Args:
            state: ``n`` sessions.
            action_dist: shape (n, n_items, k), probability of each item at each slot.
        """
        self._check_state(state)
        dist = np.asarray(action_dist, dtype=np.float64)
        if dist.shape != (state.n, self.n_items, self.k):
            raise WorldError(f"`action_dist` must have shape ({state.n}, {self.n_items}, {self.k}), "
                             f"found {dist.shape}.")
        out: FloatArray = np.einsum("nik,ni,k->n", dist, self.item_value(state), self._tables.exam)
        return out

    def best_slate(self, state: SessionState, *, rows: Any = None,
                   seen: Observation | None = None) -> tuple[IntArray, FloatArray]:
        """The slate of largest expected reward, and its expected reward.

        Among eligible items, holding a required cross-sell when the rules ask for one.

        Args:
            state: ``n`` sessions.
            rows: shape (m,) int, only these sessions (all when None).
            seen: ``observe(state)`` when the caller has it (saves computing the eligible items again).

        Returns:
            ``(slate, value)``: shapes (m, k) and (m,).
        """
        self._check_state(state)
        idx = self._all_rows(state) if rows is None else np.asarray(rows, dtype=np.int64)
        seen = self.observe(state) if seen is None else seen
        value = self._item_terms(state, idx)[1]
        return self._top(idx, value, value, seen)

    def _top(self, rows: IntArray, value: FloatArray, score: FloatArray,
             seen: Observation) -> tuple[IntArray, FloatArray]:
        t = self._tables
        slate = np.empty((rows.shape[0], self.k), dtype=np.int64)
        out = np.empty(rows.shape[0])
        required = _NO_REQUIRED if seen.required is None else seen.required
        _kernels.best_slates(rows, value, score, seen.eligible, required, self._require, t.exam, t.slot_order,
                             slate, out)
        return slate, out

    def best_slate_for(self, state: SessionState, scores: Any) -> tuple[IntArray, FloatArray]:
        """Top-``k`` eligible items by ``scores`` (n, n_items), and the slate's exact value (n,).

        Items go on the slots by examination (best score on the most examined
        slot), honouring the rules.
        """
        self._check_state(state)
        sc = np.ascontiguousarray(scores, dtype=np.float64)
        if sc.shape != (state.n, self.n_items):
            raise WorldError(f"`scores` must have shape ({state.n}, {self.n_items}), found {sc.shape}.")
        rows = self._all_rows(state)
        return self._top(rows, self._item_terms(state, rows)[1], sc, self.observe(state))

    def slate_probs(self, state: SessionState, slate: Any) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Outcome probabilities of showing ``slate`` (n, k).

        Returns:
            ``(click (n, k), purchase (n, k), abandon (n,))``: the probability that
            each slot is clicked, that it is bought (slots are independent), and
            that the shopper abandons if nothing is bought.
        """
        click, purchase, abandon, _ = self._slate_terms(state, slate)
        return click, purchase, abandon

    # ------------------------------------------------------------------ dynamics
    def step(self, state: SessionState, slate: Any, rng: np.random.Generator, *,
             in_place: bool = False) -> StepOutcome:
        """Show one slate to every live session and draw what the shoppers do.

        Clicks are Bernoulli(position_bias * attraction); a click becomes a purchase
        with the purchase probability; bought items enter the cart and the first one
        becomes the new anchor. Without a purchase the shopper abandons with
        ``sigmoid(abandon_base + fatigue * step - relevance_weight * relevance +
        overprice_weight * overprice - patience)``; with a non-empty cart a shopper
        who stays checks out with ``checkout_prob``. Ended sessions (``alive`` False)
        produce zeros and stay as they are.

        Args:
            state: ``n`` sessions.
            slate: shape (n, k) distinct item indices (rows of ended sessions are ignored).
            rng: draws every outcome: ``rng.random((n, 2k + 2))``, per slot the click then the
                purchase uniforms, then abandonment and checkout.
            in_place: advance ``state`` itself (then ``outcome.state is state``) instead of a copy.
        """
        self._check_state(state)
        s = self._check_slate(state, slate)
        nxt = state if in_place else state.copy()
        n, k = s.shape
        t = self._tables
        u = rng.random((n, 2 * k + 2))
        slots, ends = np.empty((n, k), dtype=SLOT), np.empty(n, dtype=END)
        _kernels.step_sessions(s, u, nxt.shopper, nxt.price_sens, nxt.patience, nxt.anchor, nxt.cart,
                               nxt.cart_value, nxt.step, nxt.alive, t.items, t.category, t.price,
                               t.weight_t, t.complement, t.rules, t.exam, slots, ends)
        return StepOutcome(slots, ends, nxt)
