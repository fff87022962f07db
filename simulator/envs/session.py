"""Multi-step shopping sessions over a ground-truth world, as a Gymnasium environment.

One episode is one shopper's session in a :class:`simulator.world.World`: at
each step the agent sees the context vector (shopper and session state) and
shows a slate of ``k`` distinct eligible items; the world draws clicks and
purchases, and the session ends at checkout or abandonment (``terminated``) or
at the world's step limit (``truncated``).
"""

from __future__ import annotations

from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
import numpy.typing as npt
from gymnasium import spaces

from simulator.envs.errors import ResetNeededError
from simulator.envs.protocol import WorldLike
from simulator.envs.slates import SlateSpace, check_required, check_slate
from simulator.errors import EnvError

ObsArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
FloatArray = npt.NDArray[np.float64]


class SessionEnv(gym.Env[ObsArray, IntArray]):
    """One shopper's session in a world; the action is the slate shown at each step.

    Observation: ``Box(..., (d,), float32)``, ``world.context`` of the session.
    Action: ``MultiDiscrete([n_items] * k)`` (a :class:`SlateSpace`), ``k``
    distinct items that are eligible now (``info["action_mask"]``);
    ``action_space.sample()`` draws among the eligible items.
    Reward: the world's ``reward_type`` (click, purchase or revenue) summed over the slate.

    ``info`` after a step: ``click``, ``purchase``, ``revenue`` (shape (k,), per
    slot), ``cross_sell`` and ``up_sell`` (shape (k,) bool: which shown items
    are cross-sell / up-sell for this shopper), ``checkout``, ``abandon``,
    ``step``, ``action_mask`` (shape (n_items,), eligible items for the next
    step) and, when the world requires one of some items in every slate (a
    cross-sell), ``required_mask`` (shape (n_items,)); with ``diagnostics=True``
    also ``expected_reward`` (of the shown slate), ``best_reward`` and
    ``best_slate`` (the world's best slate now) and ``regret``
    (``best_reward - expected_reward``).

    Args:
        world: the ground truth (a :class:`simulator.world.World`, or anything
            :class:`~simulator.envs.protocol.WorldLike`); ``None`` builds
            ``World.default(seed=world_seed)``.
        world_seed: seed of the default world's catalog and shoppers (not of the sessions).
        diagnostics: compute the expected and best reward of every step (exact
            regret, at some cost in speed).
        render_mode: only ``None`` is supported.
    """

    metadata = {"render_modes": []}  # noqa: RUF012 (Gymnasium declares it an instance attribute)

    def __init__(self, world: WorldLike | None = None, *, world_seed: int = 0, diagnostics: bool = True,
                 render_mode: str | None = None) -> None:
        if render_mode is not None:
            raise EnvError(f"`render_mode` must be None (SessionEnv does not render), found "
                           f"{render_mode!r}.")
        self.world = resolve_world(world, world_seed)
        self.world_seed = world_seed
        self.diagnostics = diagnostics
        self.render_mode = render_mode
        self.n_items = int(self.world.n_items)
        self.k = int(self.world.k)
        self.max_steps = int(self.world.max_steps)
        low, high = context_bounds(self.world)
        self._low, self._high = low, high
        self.observation_space = spaces.Box(low, high, dtype=np.float32)
        self.action_space = SlateSpace(self.n_items, self.k, eligible=self.action_mask,
                                       required=self._required_now)
        self._state: Any = None
        self._eligible: BoolArray = np.ones(self.n_items, dtype=bool)
        self._required: BoolArray | None = None
        self._row0: IntArray = np.zeros(1, dtype=np.int64)
        self._best_slate: IntArray = np.zeros((1, self.k), dtype=np.int64)
        self._best_reward: FloatArray = np.zeros(1)
        self._steps = 0
        self._active = False

    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[ObsArray, dict[str, Any]]:
        """Start a new session.

        Args:
            seed: seeds ``self.np_random``, which draws the shopper and every outcome.
            options: not used; must be None or empty.

        Returns:
            The context, shape (d,) float32, and info with ``action_mask`` and ``step``.
        """
        super().reset(seed=seed)
        if options:
            raise EnvError(f"`options` is not used by SessionEnv, found keys {sorted(options)}.")
        if self._state is None:
            self._state = self.world.new_sessions(1, self.np_random)
        else:  # the session arrays are ours: the world may renew them in place
            self._state = self.world.replace_sessions(self._state, self._row0, self.np_random)
        self._steps = 0
        self._active = True
        obs = self._observe(values_stale=True)
        info: dict[str, Any] = {"action_mask": self._eligible.copy(), "step": 0}
        if self._required is not None:
            info["required_mask"] = self._required[0].copy()
        return obs, info

    def step(self, action: Any) -> tuple[ObsArray, SupportsFloat, bool, bool, dict[str, Any]]:
        """Show a slate and let the shopper respond.

        Args:
            action: shape (k,), distinct eligible item indices.

        Returns:
            ``(obs, reward, terminated, truncated, info)`` as described in the class docstring.

        Raises:
            ResetNeededError: before ``reset`` or after the session ended.
            InvalidSlateError: wrong shape, out of range, duplicate or ineligible items.
        """
        if not self._active or self._state is None:
            raise ResetNeededError("Call reset() before step(): the session has not started or has "
                                   "ended (terminated or truncated was returned).")
        slate = check_slate(action, self.n_items, self.k, self._eligible)
        slates = slate[None, :]
        if self._required is not None:
            check_required(slates, self._required)
        info: dict[str, Any] = {}
        # the state is ours, so the world may advance it in place; the outcome's arrays are new each step
        out = self.world.step(self._state, slates, self.np_random, in_place=True)
        self._state = out.state
        if self.diagnostics:
            expected = float(out.expected_reward[0])
            best = float(self._best_reward[0])
            info["expected_reward"] = expected
            info["best_reward"] = best
            info["best_slate"] = self._best_slate[0].copy()
            info["regret"] = best - expected
        info["cross_sell"] = np.asarray(out.cross_sell[0], dtype=bool)
        info["up_sell"] = np.asarray(out.up_sell[0], dtype=bool)
        click = np.asarray(out.click[0], dtype=np.float64)
        purchase = np.asarray(out.purchase[0], dtype=np.float64)
        revenue, reward = np.asarray(out.revenue[0], dtype=np.float64), float(out.reward[0])
        checkout, abandon, stale = bool(out.checkout[0]), bool(out.abandon[0]), bool(out.anchor_changed[0])
        self._steps += 1
        terminated = checkout or abandon
        truncated = not terminated and self._steps >= self.max_steps
        self._active = not (terminated or truncated)
        obs = self._observe(values_stale=stale)
        info["click"] = click
        info["purchase"] = purchase
        info["revenue"] = revenue
        info["checkout"] = checkout
        info["abandon"] = abandon
        info["step"] = self._steps
        info["action_mask"] = self._eligible.copy()
        if self._required is not None:
            info["required_mask"] = self._required[0].copy()
        return obs, reward, terminated, truncated, info

    def action_mask(self) -> BoolArray:
        """Items that may be shown at the current step, shape (n_items,) bool."""
        return self._eligible.copy()

    def _required_now(self) -> BoolArray | None:
        return None if self._required is None else self._required[0]

    def context_stats(self) -> tuple[FloatArray, FloatArray]:
        """Mean and standard deviation of the context over fresh sessions (4,096, fixed seed)."""
        return context_stats(self.world)

    def _observe(self, values_stale: bool) -> ObsArray:
        seen = self.world.observe(self._state)
        self._eligible = np.asarray(seen.eligible[0], dtype=bool)
        required = seen.required
        self._required = None if required is None else np.asarray(required, dtype=bool)
        if self.diagnostics and self._active and values_stale:
            # item values and eligibility change only with the anchor and the cart, that is on
            # a new session or a purchase: the best slate is recomputed only then
            best_slate, best_reward = self.world.best_slate(self._state, seen=seen)
            self._best_slate[0] = best_slate[0]
            self._best_reward[0] = best_reward[0]
        obs: ObsArray = np.asarray(seen.context[0], dtype=np.float32)
        return obs


def resolve_world(world: WorldLike | None, world_seed: int) -> WorldLike:
    """``world``, or the default world when it is None; a clear error for anything else."""
    if world is None:
        from simulator.world import World  # here, so simulator.envs imports without building a world

        default: WorldLike = World.default(seed=world_seed)
        return default
    if not isinstance(world, WorldLike):
        raise EnvError(f"`world` must be a simulator.world.World (or provide its methods: n_items, k, "
                       f"dim_context, max_steps, reward_type, new_sessions, context, eligible, "
                       f"cross_sell, up_sell, expected_reward, best_slate, step), found "
                       f"{type(world).__name__}.")
    return world


def context_bounds(world: WorldLike) -> tuple[ObsArray, ObsArray]:
    """Bounds of the observation space: the world's ``context_bounds()`` when it has one."""
    bounds = getattr(world, "context_bounds", None)
    d = int(world.dim_context)
    if bounds is None:
        return np.full(d, -np.inf, dtype=np.float32), np.full(d, np.inf, dtype=np.float32)
    low, high = bounds()
    return np.asarray(low, dtype=np.float32).reshape(d), np.asarray(high, dtype=np.float32).reshape(d)


def context_stats(world: WorldLike, n: int = 4096, seed: int = 0) -> tuple[FloatArray, FloatArray]:
    """Mean and standard deviation of the contexts of ``n`` fresh sessions, each shape (d,)."""
    state = world.new_sessions(n, np.random.default_rng(seed))
    ctx = np.asarray(world.context(state), dtype=np.float64)
    return ctx.mean(axis=0), ctx.std(axis=0)
