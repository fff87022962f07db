"""Many shopping sessions stepped at once with numpy: a Gymnasium vector environment.

:class:`BatchSessionEnv` holds ``num_envs`` independent sessions of one
:class:`~simulator.world.World` and steps them all in one call to the world,
so a bandit simulation or a PPO rollout pays the Python overhead once per
batch, not once per session. It is a :class:`gymnasium.vector.VectorEnv`
(``gymnasium.make_vec("slatewise/Session-v0", num_envs=1024)`` builds it) with
same-step autoreset: a session that ends is replaced by a new shopper in the
same call, and its last observation is in ``info["final_obs"]`` (rows flagged
by ``info["_final_obs"]``).
"""

from __future__ import annotations

from dataclasses import fields, is_dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt
from gymnasium import spaces
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from simulator.envs.errors import ResetNeededError
from simulator.envs.protocol import WorldLike
from simulator.envs.session import context_bounds, context_stats, fused_world, resolve_world
from simulator.envs.slates import SlateSpace, check_required, check_slates
from simulator.errors import EnvError

ObsArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
FloatArray = npt.NDArray[np.float64]


def merge_sessions(state: Any, rows: BoolArray, new: Any) -> Any:
    """``state`` with the sessions at ``rows`` replaced by ``new`` (one per True row).

    Works on any dataclass whose array fields have the sessions on axis 0.
    """
    if not is_dataclass(state) or isinstance(state, type):
        raise EnvError(f"cannot merge sessions of a {type(state).__name__}; expected a dataclass "
                       "of per-session arrays.")
    n = rows.shape[0]
    changes: dict[str, Any] = {}
    for f in fields(state):
        old = getattr(state, f.name)
        if isinstance(old, np.ndarray) and old.ndim >= 1 and old.shape[0] == n:
            merged = old.copy()
            merged[rows] = getattr(new, f.name)
            changes[f.name] = merged
    return replace(state, **changes)


def _read_only(a: BoolArray) -> BoolArray:
    """A read-only view: the environment's own mask (fresh from the world each step) without a copy."""
    view = a.view()
    view.flags.writeable = False
    return view


class BatchSessionEnv(VectorEnv[ObsArray, IntArray, Any]):
    """``num_envs`` sessions of a world, stepped together.

    Observations: shape (num_envs, d) float32. Actions: shape (num_envs, k)
    int, one slate of distinct eligible items per session. Rewards,
    ``terminated`` and ``truncated``: shape (num_envs,).

    ``info`` holds batch arrays: ``click``, ``purchase``, ``revenue`` (num_envs, k),
    ``cross_sell``, ``up_sell`` (num_envs, k) bool, ``checkout``, ``abandon``
    (num_envs,), ``action_mask`` (num_envs, n_items) for the next step (and
    ``required_mask`` when the world requires one of some items per slate), ``step``
    (num_envs,); with ``diagnostics=True`` also ``expected_reward``,
    ``best_reward``, ``regret`` (num_envs,) and ``best_slate`` (num_envs, k); and
    ``final_obs`` (num_envs, d) with the mask ``_final_obs`` for sessions that
    ended this step (they have been replaced by new shoppers).

    Args:
        num_envs: sessions stepped together.
        world: the ground truth; ``None`` builds ``World.default(seed=world_seed)``.
        world_seed: seed of the default world.
        diagnostics: compute expected and best rewards every step.
        render_mode: only ``None``.
    """

    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP, "render_modes": []}  # noqa: RUF012

    def __init__(self, num_envs: int = 1024, world: WorldLike | None = None, *, world_seed: int = 0,
                 diagnostics: bool = True, render_mode: str | None = None) -> None:
        if not isinstance(num_envs, int | np.integer) or num_envs < 1:
            raise EnvError(f"`num_envs` must be a positive integer, found {num_envs!r}.")
        if render_mode is not None:
            raise EnvError(f"`render_mode` must be None, found {render_mode!r}.")
        self.world = resolve_world(world, world_seed)
        self.num_envs = int(num_envs)
        self.world_seed = world_seed
        self.diagnostics = diagnostics
        self.render_mode = render_mode
        self.n_items = int(self.world.n_items)
        self.k = int(self.world.k)
        self.max_steps = int(self.world.max_steps)
        low, high = context_bounds(self.world)
        self._low, self._high = low, high
        # float32 bounds widened to float64, so clipping before the cast gives what clipping after it does
        self._bounds64 = (low.astype(np.float64), high.astype(np.float64))
        self.single_observation_space = spaces.Box(low, high, dtype=np.float32)
        self.single_action_space = SlateSpace(self.n_items, self.k)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._state: Any = None
        self._steps: IntArray = np.zeros(self.num_envs, dtype=np.int64)
        self._eligible: BoolArray = np.ones((self.num_envs, self.n_items), dtype=bool)
        self._required: BoolArray | None = None
        self._required_fn = getattr(self.world, "required", None)
        self._fused = fused_world(self.world)
        # item values (num_envs, n_items) for the best slates; a row changes only with its anchor
        self._values: FloatArray = np.zeros((self.num_envs, self.n_items) if self._fused else (0, 0))
        self._best_slate: IntArray = np.zeros((self.num_envs, self.k), dtype=np.int64)
        self._best_reward: FloatArray = np.zeros(self.num_envs)

    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[ObsArray, dict[str, Any]]:
        """Start new sessions (all, or those in ``options["reset_mask"]``).

        Args:
            seed: seeds the one generator that draws every session and outcome.
            options: ``{"reset_mask": (num_envs,) bool}`` resets only those sessions.

        Returns:
            Observations (num_envs, d) and info with ``action_mask`` and ``step``.
        """
        if seed is not None or self._np_random is None:
            self._np_random, self._np_random_seed = seeding.np_random(seed)
        rng = self.np_random
        opts = options or {}
        unknown = sorted(set(opts) - {"reset_mask"})
        if unknown:
            raise EnvError(f"`options` may hold only 'reset_mask', found {unknown}.")
        mask = opts.get("reset_mask")
        if mask is None or self._state is None:
            if self._fused is not None and self._state is not None:
                self._fused.reset_rows(self._state, np.arange(self.num_envs, dtype=np.int64), rng)
            else:
                self._state = self._new_sessions(self.num_envs, rng)
            self._steps[:] = 0
            stale = np.ones(self.num_envs, dtype=bool)
        else:
            rows = np.asarray(mask)
            if rows.dtype != np.bool_ or rows.shape != (self.num_envs,):
                raise EnvError(f"`options['reset_mask']` must be a bool array of shape "
                               f"({self.num_envs},), found {rows.dtype} {rows.shape}.")
            if rows.any() and self._fused is not None:
                self._fused.reset_rows(self._state, np.flatnonzero(rows), rng)
                self._steps[rows] = 0
            elif rows.any():
                new = self.world.new_sessions(int(rows.sum()), rng)
                self._state = merge_sessions(self._state, rows, new)
                self._steps[rows] = 0
            stale = rows
        obs = self._observe(stale)
        info: dict[str, Any] = {"action_mask": _read_only(self._eligible), "step": self._steps.copy()}
        if self._required is not None:
            info["required_mask"] = _read_only(self._required)
        return obs, info

    def step(self, actions: Any) -> tuple[ObsArray, FloatArray, BoolArray, BoolArray, dict[str, Any]]:
        """Show one slate per session; finished sessions restart in the same call.

        Args:
            actions: shape (num_envs, k) item indices.

        Returns:
            ``(obs, reward, terminated, truncated, info)``, batch arrays.

        Raises:
            ResetNeededError: before ``reset``.
            InvalidSlateError: naming the first bad row.
        """
        if self._state is None:
            raise ResetNeededError("Call reset() before step(): the sessions have not started.")
        slates = check_slates(actions, self.n_items, self.k, self._eligible, n=self.num_envs)
        check_required(slates, self._required, name="actions")
        state = self._state
        world = self.world
        info: dict[str, Any] = {}
        out: Any
        if self._fused is not None:
            fused = out = self._fused.step(state, slates, self.np_random)  # advances state in place
            if self.diagnostics:
                best_slate, best = self._best_slate.copy(), self._best_reward.copy()
                expected = fused.expected_reward
                info.update(expected_reward=expected, best_reward=best, best_slate=best_slate,
                            regret=best - expected)
            cross, up = fused.cross_sell, fused.up_sell
            stale = fused.anchor_changed
        else:
            if self.diagnostics:
                expected = np.asarray(world.expected_reward(state, slates), dtype=np.float64)
                best_slate, best = world.best_slate(state)
                best = np.asarray(best, dtype=np.float64)
                info.update(expected_reward=expected, best_reward=best, best_slate=best_slate,
                            regret=best - expected)
            cross = np.take_along_axis(world.cross_sell(state), slates, axis=1)
            up = np.take_along_axis(world.up_sell(state), slates, axis=1)
            out = world.step(state, slates, self.np_random)
            stale = np.zeros(self.num_envs, dtype=bool)
        self._steps += 1
        checkout = np.asarray(out.checkout, dtype=bool)
        abandon = np.asarray(out.abandon, dtype=bool)
        terminated = checkout | abandon
        truncated = ~terminated & (self._steps >= self.max_steps)
        done = terminated | truncated
        new_state = state if self._fused is not None else out.state
        step_count = self._steps.copy()
        if done.any():
            if self._fused is not None:
                ended = self._fused.observe(new_state.take(done), bounds=self._bounds64).context
                final_obs = np.zeros((self.num_envs, ended.shape[1]), dtype=np.float32)
                final_obs[done] = ended
            else:
                final = np.clip(np.asarray(world.context(new_state), dtype=np.float32), self._low,
                                self._high)
                final_obs = np.zeros_like(final)
                final_obs[done] = final[done]
            info["final_obs"] = final_obs
            info["_final_obs"] = done.copy()
            if self._fused is not None:
                self._fused.reset_rows(new_state, np.flatnonzero(done), self.np_random)
            else:
                fresh = self.world.new_sessions(int(done.sum()), self.np_random)
                new_state = merge_sessions(new_state, done, fresh)
            self._steps[done] = 0
            stale = stale | done
        self._state = new_state
        obs = self._observe(stale)
        info.update(click=np.asarray(out.click), purchase=np.asarray(out.purchase),
                    revenue=np.asarray(out.revenue, dtype=np.float64), cross_sell=cross, up_sell=up,
                    checkout=checkout, abandon=abandon, step=step_count,
                    action_mask=_read_only(self._eligible))
        if self._required is not None:
            info["required_mask"] = _read_only(self._required)
        reward = np.asarray(out.reward, dtype=np.float64)
        return obs, reward, terminated, truncated, info

    def action_mask(self) -> BoolArray:
        """Eligible items of every session, shape (num_envs, n_items) bool."""
        return self._eligible.copy()

    def context_stats(self) -> tuple[FloatArray, FloatArray]:
        """Mean and standard deviation of fresh sessions' contexts, each shape (d,)."""
        return context_stats(self.world)

    def _new_sessions(self, n: int, rng: np.random.Generator) -> Any:
        if self._fused is not None:
            return self._fused.new_sessions(n, rng)
        return self.world.new_sessions(n, rng)

    def _observe(self, stale: BoolArray) -> ObsArray:
        """Observations of the sessions; ``stale`` (num_envs,) marks rows whose item values changed."""
        if self._fused is not None:
            seen = self._fused.observe(self._state, bounds=self._bounds64)
            self._eligible = seen.eligible
            self._required = seen.required
            if self.diagnostics and stale.any():
                # item values and eligibility change only with the anchor and the cart (a new
                # session or a purchase): only those rows' best slates are recomputed
                rows = np.flatnonzero(stale)
                self._fused.item_values(self._state, self._values, rows)
                self._fused.best_slates(seen, self._values, self._best_slate, self._best_reward, rows)
            return seen.context.astype(np.float32)
        self._eligible = np.asarray(self.world.eligible(self._state), dtype=bool)
        if self._required_fn is not None:
            required = self._required_fn(self._state)
            self._required = None if required is None else np.asarray(required, dtype=bool)
        ctx = np.asarray(self.world.context(self._state), dtype=np.float32)
        return np.clip(ctx, self._low, self._high)
