"""Run a batched session environment as a stable-baselines3 ``VecEnv`` (fast PPO rollouts).

SB3 algorithms step their own ``VecEnv`` API rather than ``gymnasium.vector``;
:class:`SB3BatchEnv` adapts a :class:`~simulator.envs.vector.BatchSessionEnv`
(usually wrapped in :class:`~simulator.envs.vector_wrappers.BatchTopKSlate`
or :class:`~simulator.envs.vector_wrappers.BatchSlateRepair`) so that one SB3
step is one numpy call over every session.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import VectorEnv
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices, VecEnvStepReturn


class SB3BatchEnv(VecEnv):
    """A ``gymnasium.vector`` environment with same-step autoreset, seen as an SB3 ``VecEnv``.

    The final observation of a finished session goes into its info dict as
    ``terminal_observation`` and a step-limit ending sets
    ``TimeLimit.truncated``, as SB3 expects.

    Args:
        env: the vector environment (``metadata["autoreset_mode"]`` must be same-step).
    """

    def __init__(self, env: VectorEnv[Any, Any, Any]) -> None:
        mode = env.metadata.get("autoreset_mode")
        if mode is None or getattr(mode, "value", mode) != "SameStep":
            raise ValueError(f"SB3BatchEnv needs a vector env with same-step autoreset, found {mode!r}.")
        self.venv = env
        super().__init__(env.num_envs, env.single_observation_space, env.single_action_space)
        self._actions: Any = None

    def reset(self) -> Any:
        """Reset every session (with the seed given to ``seed()``, if any)."""
        seed = self._seeds[0] if self._seeds and self._seeds[0] is not None else None
        obs, _ = self.venv.reset(seed=seed)
        self._reset_seeds()
        self._reset_options()
        return obs

    def step_async(self, actions: np.ndarray[Any, Any]) -> None:
        """Store the actions for :meth:`step_wait`."""
        self._actions = actions

    def step_wait(self) -> VecEnvStepReturn:
        """Step every session; ``dones`` is ``terminated | truncated``."""
        obs, reward, terminated, truncated, info = self.venv.step(self._actions)
        dones = np.logical_or(terminated, truncated)
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        if dones.any():
            final = info["final_obs"]
            for i in np.flatnonzero(dones).tolist():
                infos[i]["terminal_observation"] = final[i]
                infos[i]["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i])
        return obs, np.asarray(reward, dtype=np.float32), dones, infos

    def close(self) -> None:
        """Close the vector environment."""
        self.venv.close()

    def _indices(self, indices: VecEnvIndices) -> list[int]:
        if indices is None:
            return list(range(self.num_envs))
        if isinstance(indices, int):
            return [indices]
        return list(indices) if isinstance(indices, Iterable) else [int(indices)]

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        """The vector environment's attribute, once per requested index."""
        value = getattr(self.venv, attr_name)
        return [value for _ in self._indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        """Set an attribute of the (single, shared) vector environment."""
        setattr(self.venv, attr_name, value)

    def env_method(self, method_name: str, *method_args: Any, indices: VecEnvIndices = None,
                   **method_kwargs: Any) -> list[Any]:
        """Call a method of the vector environment once, reported per index."""
        result = getattr(self.venv, method_name)(*method_args, **method_kwargs)
        return [result for _ in self._indices(indices)]

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper[Any, Any, Any, Any]],
                       indices: VecEnvIndices = None) -> list[bool]:
        """Single-env wrappers are not used here: False for every index."""
        return [False for _ in self._indices(indices)]

    def get_images(self) -> Sequence[np.ndarray[Any, Any] | None]:
        """No rendering."""
        return [None for _ in range(self.num_envs)]
