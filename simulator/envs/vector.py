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

from typing import Any

import numpy as np
import numpy.typing as npt
from gymnasium import spaces
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from simulator.envs.errors import ResetNeededError
from simulator.envs.protocol import WorldLike
from simulator.envs.session import context_bounds, context_stats, resolve_world
from simulator.envs.slates import SlateSpace, check_required, check_slates
from simulator.errors import EnvError

ObsArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
FloatArray = npt.NDArray[np.float64]


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
        # the best slates, recomputed for a row only when its anchor or cart changed
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
            if self._state is None:
                self._state = self.world.new_sessions(self.num_envs, rng)
            else:
                every = np.arange(self.num_envs, dtype=np.int64)
                self._state = self.world.replace_sessions(self._state, every, rng)
            self._steps[:] = 0
            stale = np.ones(self.num_envs, dtype=bool)
        else:
            rows = np.asarray(mask)
            if rows.dtype != np.bool_ or rows.shape != (self.num_envs,):
                raise EnvError(f"`options['reset_mask']` must be a bool array of shape "
                               f"({self.num_envs},), found {rows.dtype} {rows.shape}.")
            if rows.any():
                self._state = self.world.replace_sessions(self._state, np.flatnonzero(rows), rng)
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
        info: dict[str, Any] = {}
        # the sessions are ours, so the world may advance them in place
        out = self.world.step(self._state, slates, self.np_random, in_place=True)
        state = out.state
        if self.diagnostics:
            best_slate, best = self._best_slate.copy(), self._best_reward.copy()
            expected = np.asarray(out.expected_reward, dtype=np.float64)
            info.update(expected_reward=expected, best_reward=best, best_slate=best_slate,
                        regret=best - expected)
        cross, up = np.asarray(out.cross_sell, dtype=bool), np.asarray(out.up_sell, dtype=bool)
        stale = np.asarray(out.anchor_changed, dtype=bool)
        self._steps += 1
        checkout = np.asarray(out.checkout, dtype=bool)
        abandon = np.asarray(out.abandon, dtype=bool)
        terminated = checkout | abandon
        truncated = ~terminated & (self._steps >= self.max_steps)
        done = terminated | truncated
        step_count = self._steps.copy()
        if done.any():
            ended = np.asarray(self.world.observe(state.take(done), bounds=self._bounds64).context)
            final_obs = np.zeros((self.num_envs, ended.shape[1]), dtype=np.float32)
            final_obs[done] = ended
            info["final_obs"] = final_obs
            info["_final_obs"] = done.copy()
            state = self.world.replace_sessions(state, np.flatnonzero(done), self.np_random)
            self._steps[done] = 0
            stale = stale | done
        self._state = state
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

    def _observe(self, stale: BoolArray) -> ObsArray:
        """Observations of the sessions; ``stale`` (num_envs,) marks rows whose item values changed."""
        seen = self.world.observe(self._state, bounds=self._bounds64)
        self._eligible = np.asarray(seen.eligible, dtype=bool)
        required = seen.required
        self._required = None if required is None else np.asarray(required, dtype=bool)
        if self.diagnostics and stale.any():
            # item values and eligibility change only with the anchor and the cart (a new
            # session or a purchase): only those rows' best slates are recomputed
            rows = np.flatnonzero(stale)
            best_slate, best_reward = self.world.best_slate(self._state, rows=rows, seen=seen)
            self._best_slate[rows] = best_slate
            self._best_reward[rows] = best_reward
        return np.asarray(seen.context, dtype=np.float32)
