"""Action wrappers for the batched session environment (vectorised over sessions).

* :class:`BatchTopKSlate` — actions are scores ``(num_envs, n_items)``; each
  session shows its ``k`` highest-scoring eligible items.
* :class:`BatchSlateRepair` — actions are slates ``(num_envs, k)`` that may hold
  duplicates or ineligible items (as a per-slot categorical policy such as
  PPO's ``MultiDiscrete`` head proposes); each bad slot gets the
  lowest-indexed eligible item not yet shown.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from gymnasium import spaces
from gymnasium.vector import VectorActionWrapper, VectorEnv
from gymnasium.vector.utils import batch_space

from simulator.envs.slates import top_k
from simulator.errors import EnvError, InvalidSlateError

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


def _batch_base(env: VectorEnv[Any, Any, Any], wrapper: str) -> Any:
    base = env.unwrapped
    if not all(hasattr(base, name) for name in ("n_items", "k", "action_mask")):
        raise EnvError(f"{wrapper} wraps slatewise.envs.BatchSessionEnv, found {type(base).__name__}.")
    return base


class BatchTopKSlate(VectorActionWrapper[Any, Any, Any, Any]):
    """Scores ``(num_envs, n_items)`` in ``[-1, 1]`` to slates of the top-k eligible items.

    Args:
        env: a :class:`~simulator.envs.vector.BatchSessionEnv` (possibly wrapped).
    """

    def __init__(self, env: VectorEnv[Any, Any, Any]) -> None:
        super().__init__(env)
        self._base = _batch_base(env, "BatchTopKSlate")
        self.single_action_space = spaces.Box(-1.0, 1.0, shape=(self._base.n_items,), dtype=np.float32)
        self.action_space = batch_space(self.single_action_space, env.num_envs)

    def actions(self, actions: Any) -> IntArray:
        """Scores, shape (num_envs, n_items), to slates, shape (num_envs, k)."""
        scores = np.asarray(actions)
        expected = (self.num_envs, self._base.n_items)
        if scores.shape != expected:
            raise InvalidSlateError(f"`actions` must have shape {expected} (one score per item per "
                                    f"session), found shape {scores.shape}.")
        return top_k(scores, self._base.k, self._base.action_mask())


def repair_slates(slates: Any, eligible: BoolArray) -> tuple[IntArray, BoolArray]:
    """Replace duplicate and ineligible items, vectorised over rows.

    Each slot keeps its item unless the item is ineligible or already shown in
    an earlier slot; such slots get the lowest-indexed eligible items not yet
    shown, in slot order.

    Args:
        slates: shape (n, k) item indices in [0, n_items).
        eligible: shape (n, n_items) bool, with at least ``k`` True per row.

    Returns:
        The repaired slates (n, k) and which rows changed (n,).

    Raises:
        InvalidSlateError: indices outside the catalog or fewer than ``k`` eligible items.
    """
    out = np.array(slates, dtype=np.int64)
    n, k = out.shape
    n_items = eligible.shape[1]
    if out.size and (out.min() < 0 or out.max() >= n_items):
        raise InvalidSlateError(f"`actions` item indices must lie in [0, {n_items - 1}]; repair "
                                "fixes duplicates and ineligible items, not indices outside the catalog.")
    if (eligible.sum(axis=1) < k).any():
        raise InvalidSlateError(f"a session has fewer than k = {k} eligible items.")
    rows = np.arange(n)
    used = np.zeros((n, n_items), dtype=bool)
    bad = np.zeros((n, k), dtype=bool)
    for j in range(k):
        item = out[:, j]
        ok = eligible[rows, item] & ~used[rows, item]
        bad[:, j] = ~ok
        used[rows[ok], item[ok]] = True
    for j in range(k):
        fix = np.flatnonzero(bad[:, j])
        if fix.size:
            first = np.argmax(eligible[fix] & ~used[fix], axis=1)
            out[fix, j] = first
            used[fix, first] = True
    changed = np.asarray(bad.any(axis=1), dtype=bool)
    return out, changed


class BatchSlateRepair(VectorActionWrapper[Any, Any, Any, Any]):
    """Repair every session's slate before it reaches the batched environment.

    Args:
        env: a :class:`~simulator.envs.vector.BatchSessionEnv` (possibly wrapped).
    """

    def __init__(self, env: VectorEnv[Any, Any, Any]) -> None:
        super().__init__(env)
        self._base = _batch_base(env, "BatchSlateRepair")
        self.single_action_space = spaces.MultiDiscrete(
            np.full(self._base.k, self._base.n_items, dtype=np.int64))
        self.action_space = batch_space(self.single_action_space, env.num_envs)

    def actions(self, actions: Any) -> IntArray:
        """Slates (num_envs, k), repaired."""
        arr = np.asarray(actions)
        expected = (self.num_envs, self._base.k)
        if arr.shape != expected or arr.dtype.kind not in "iu":
            raise InvalidSlateError(f"`actions` must be integers of shape {expected}, found "
                                    f"{arr.dtype} {arr.shape}.")
        repaired, _ = repair_slates(arr, self._base.action_mask())
        return repaired
