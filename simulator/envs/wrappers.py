"""Wrappers that turn a slate environment into what a learner needs.

* :class:`TopKSlate` — the action is a score per item (a ``Box``), the slate is
  the ``k`` best eligible items: for continuous-action learners such as PPO
  with a Gaussian policy.
* :class:`SlateMask` — exposes which items are eligible (``action_masks()``, the
  convention of sb3-contrib's MaskablePPO, and optionally in the observation)
  and can repair a slate with duplicate or ineligible items.
* :class:`NormalizeContext` — standardises the context with fixed statistics
  (the log's or the world's), so every run sees the same transformation.

Every wrapper works on the slatewise base environments (``ReplayEnv``,
``SessionEnv``), which expose ``n_items``, ``k``, ``action_mask()`` and
``context_stats()``.
"""

from __future__ import annotations

from typing import Any, Protocol, SupportsFloat, runtime_checkable

import gymnasium as gym
import numpy as np
import numpy.typing as npt
from gymnasium import spaces

from simulator.envs.slates import top_k
from simulator.errors import EnvError, InvalidSlateError

ObsArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
FloatArray = npt.NDArray[np.float64]


@runtime_checkable
class SlateEnvLike(Protocol):
    """What the wrappers need from the base environment."""

    n_items: int
    k: int

    def action_mask(self) -> BoolArray:
        """Items that may be shown now, shape (n_items,)."""
        ...

    def context_stats(self) -> tuple[FloatArray, FloatArray]:
        """Mean and standard deviation of the context, each shape (d,)."""
        ...


def _base(env: gym.Env[Any, Any], wrapper: str) -> SlateEnvLike:
    base = env.unwrapped
    if not isinstance(base, SlateEnvLike):
        raise EnvError(f"{wrapper} wraps slatewise slate environments (ReplayEnv, SessionEnv), found "
                       f"{type(base).__name__}, which lacks n_items, k, action_mask() or "
                       "context_stats().")
    return base


class TopKSlate(gym.ActionWrapper[Any, npt.NDArray[np.float32], IntArray]):
    """Action = one score per item; the slate is the ``k`` highest-scoring eligible items.

    The action space is ``Box(-1, 1, (n_items,), float32)`` (symmetric and
    bounded, as continuous-action learners expect); any finite scores work,
    ties go to the lower item index.

    Args:
        env: a slatewise slate environment (possibly already wrapped).
    """

    def __init__(self, env: gym.Env[Any, Any]) -> None:
        super().__init__(env)
        self._slate_env = _base(env, "TopKSlate")
        n = self._slate_env.n_items
        self.action_space = spaces.Box(-1.0, 1.0, shape=(n,), dtype=np.float32)

    def action(self, action: npt.NDArray[np.float32]) -> IntArray:
        """Scores, shape (n_items,), to a slate, shape (k,).

        Raises:
            InvalidSlateError: scores of the wrong shape or NaN.
        """
        scores = np.asarray(action)
        n = self._slate_env.n_items
        if scores.shape != (n,):
            raise InvalidSlateError(f"`action` must be shape ({n},), one score per item, found shape "
                                    f"{scores.shape}.")
        return top_k(scores, self._slate_env.k, self._slate_env.action_mask())


class SlateMask(gym.Wrapper[Any, IntArray, Any, IntArray]):
    """Expose eligible items as an action mask, and optionally repair invalid slates.

    ``action_masks()`` returns shape ``(k * n_items,)``: the eligible items
    repeated for each slot, the layout sb3-contrib's MaskablePPO expects for a
    ``MultiDiscrete`` action. A per-slot mask cannot forbid duplicates across
    slots, so with ``repair=True`` a slate is fixed before it reaches the base
    environment: each slot keeps its item unless that item is ineligible or
    already shown in an earlier slot, in which case it gets the
    lowest-indexed eligible item not yet shown; ``info["repaired"]`` says
    whether anything changed.

    Args:
        env: a slatewise slate environment.
        repair: fix duplicate and ineligible items instead of raising.
        in_observation: make the observation a ``Dict`` with ``observation`` (the
            context) and ``action_mask`` (``MultiBinary(n_items)``, int8).
    """

    def __init__(self, env: gym.Env[Any, Any], *, repair: bool = False,
                 in_observation: bool = False) -> None:
        super().__init__(env)
        self._slate_env = _base(env, "SlateMask")
        self.repair = repair
        self.in_observation = in_observation
        if in_observation:
            self.observation_space = spaces.Dict({
                "observation": env.observation_space,
                "action_mask": spaces.MultiBinary(self._slate_env.n_items),
            })

    def action_masks(self) -> BoolArray:
        """Eligible items per slot, shape (k * n_items,) bool."""
        return np.tile(self._slate_env.action_mask(), self._slate_env.k)

    def _obs(self, obs: Any) -> Any:
        if not self.in_observation:
            return obs
        return {"observation": obs, "action_mask": self._slate_env.action_mask().astype(np.int8)}

    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        """Reset the wrapped environment (see its ``reset``)."""
        obs, info = self.env.reset(seed=seed, options=options)
        return self._obs(obs), info

    def step(self, action: IntArray) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        """Step with ``action`` (repaired first when ``repair=True``)."""
        repaired = False
        if self.repair:
            action, repaired = self.repair_slate(action)
        obs, reward, terminated, truncated, info = self.env.step(action)
        if self.repair:
            info["repaired"] = repaired
        return self._obs(obs), reward, terminated, truncated, info

    def repair_slate(self, action: Any) -> tuple[IntArray, bool]:
        """The slate with duplicates and ineligible items replaced, and whether it changed.

        Args:
            action: shape (k,), item indices in [0, n_items).

        Returns:
            shape (k,) int64 slate of distinct eligible items, and a flag.

        Raises:
            InvalidSlateError: wrong shape or an index outside the catalog (those
                are not repairable), or fewer than ``k`` eligible items.
        """
        n, k = self._slate_env.n_items, self._slate_env.k
        slate = np.asarray(action)
        if slate.shape != (k,) or slate.dtype.kind not in "iu":
            raise InvalidSlateError(f"`action` must be an integer array of shape ({k},), found "
                                    f"shape {slate.shape} dtype {slate.dtype}.")
        if slate.min() < 0 or slate.max() >= n:
            raise InvalidSlateError(f"`action` item indices must lie in [0, {n - 1}], found "
                                    f"{slate.tolist()}.")
        free = self._slate_env.action_mask().copy()
        if free.sum() < k:
            raise InvalidSlateError(f"only {int(free.sum())} eligible items, fewer than k = {k}.")
        out = slate.astype(np.int64).copy()
        bad = []
        for j, item in enumerate(out.tolist()):
            if free[item]:
                free[item] = False
            else:
                bad.append(j)
        if not bad:
            return out, False
        out[bad] = np.flatnonzero(free)[: len(bad)]
        return out, True


class NormalizeContext(gym.ObservationWrapper[ObsArray, Any, ObsArray]):
    """Standardise the context with fixed statistics: ``(obs - mean) / (std + epsilon)``.

    Unlike Gymnasium's running ``NormalizeObservation``, the statistics do not
    drift with what the agent does, so two runs (or a training run and an
    evaluation run) see the same transformation.

    Args:
        env: an environment with a ``Box`` observation of shape (d,).
        mean: shape (d,); with ``std`` None, taken from the base environment's
            ``context_stats()`` (the log's columns, or contexts sampled from the world).
        std: shape (d,).
        epsilon: added to ``std`` so constant columns stay finite.
    """

    def __init__(self, env: gym.Env[ObsArray, Any], mean: Any | None = None, std: Any | None = None,
                 epsilon: float = 1e-8) -> None:
        super().__init__(env)
        space = env.observation_space
        if not isinstance(space, spaces.Box) or len(space.shape) != 1:
            raise EnvError(f"NormalizeContext needs a Box observation of shape (d,), found {space}.")
        d = space.shape[0]
        if (mean is None) != (std is None):
            raise EnvError("pass both `mean` and `std`, or neither (to use the environment's "
                           "context_stats()).")
        if mean is None:
            mean, std = _base(env, "NormalizeContext").context_stats()
        m = np.asarray(mean, dtype=np.float64)
        s = np.asarray(std, dtype=np.float64)
        for name, arr in (("mean", m), ("std", s)):
            if arr.shape != (d,):
                raise EnvError(f"`{name}` must have shape ({d},), found {arr.shape}.")
            if not np.isfinite(arr).all():
                raise EnvError(f"`{name}` must be finite.")
        if (s < 0).any():
            raise EnvError(f"`std` must be >= 0, found {float(s.min())}.")
        self.mean = m
        self.std = s
        self.epsilon = epsilon
        self._scale = 1.0 / (s + epsilon)
        low = ((space.low.astype(np.float64) - m) * self._scale).astype(np.float32)
        high = ((space.high.astype(np.float64) - m) * self._scale).astype(np.float32)
        self._box = spaces.Box(low, high, dtype=np.float32)
        self.observation_space = self._box

    def observation(self, observation: ObsArray) -> ObsArray:
        """Standardised context, shape (d,) float32."""
        z = (np.asarray(observation, dtype=np.float64) - self.mean) * self._scale
        return np.clip(z.astype(np.float32), self._box.low, self._box.high)
