"""What the session environments need from a world (structural types).

:class:`simulator.world.World` satisfies :class:`WorldLike`, and so does the
small known-answer :class:`simulator.envs.toy.ToyWorld`; any object with these
members can drive :class:`~simulator.envs.session.SessionEnv` and
:class:`~simulator.envs.vector.BatchSessionEnv`. All methods are batch-first:
``state`` holds ``n`` sessions. A world may change a state in place where a
method says "may" (``replace_sessions``, ``step(in_place=True)``); callers use
the returned state either way.
"""

from __future__ import annotations

from dataclasses import fields, is_dataclass, replace
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from simulator.errors import EnvError

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


class ObservationLike(Protocol):
    """What an agent sees of ``n`` sessions."""

    @property
    def context(self) -> Any:
        """Shape (n, d), the contexts."""
        ...

    @property
    def eligible(self) -> Any:
        """Shape (n, n_items) bool, the items a slate may show."""
        ...

    @property
    def required(self) -> Any:
        """Shape (n, n_items) bool, items of which a slate must hold one, or None."""
        ...


class StepOutcomeLike(Protocol):
    """What one batched world step returns (arrays over ``n`` sessions)."""

    @property
    def click(self) -> Any:
        """Shape (n, k), clicks per slot."""
        ...

    @property
    def purchase(self) -> Any:
        """Shape (n, k), purchases per slot."""
        ...

    @property
    def revenue(self) -> Any:
        """Shape (n, k), revenue per slot in the shop's currency."""
        ...

    @property
    def reward(self) -> Any:
        """Shape (n,), the slate's reward of the world's ``reward_type``."""
        ...

    @property
    def expected_reward(self) -> Any:
        """Shape (n,), the shown slate's exact expected reward before the step."""
        ...

    @property
    def cross_sell(self) -> Any:
        """Shape (n, k) bool, which shown items were a cross-sell."""
        ...

    @property
    def up_sell(self) -> Any:
        """Shape (n, k) bool, which shown items were an up-sell."""
        ...

    @property
    def anchor_changed(self) -> Any:
        """Shape (n,) bool, sessions whose item values or eligible items changed with the step."""
        ...

    @property
    def checkout(self) -> Any:
        """Shape (n,) bool, the session ended with a checkout."""
        ...

    @property
    def abandon(self) -> Any:
        """Shape (n,) bool, the shopper left."""
        ...

    @property
    def state(self) -> Any:
        """The sessions after the step."""
        ...


@runtime_checkable
class WorldLike(Protocol):
    """A ground-truth shop the session environments can step."""

    @property
    def n_items(self) -> int:
        """Catalog size."""
        ...

    @property
    def k(self) -> int:
        """Slate length."""
        ...

    @property
    def dim_context(self) -> int:
        """Context dimension ``d``."""
        ...

    @property
    def max_steps(self) -> int:
        """Step limit of a session."""
        ...

    @property
    def reward_type(self) -> str:
        """``click``, ``purchase`` or ``revenue``."""
        ...

    def new_sessions(self, n: int, rng: np.random.Generator) -> Any:
        """``n`` fresh sessions."""
        ...

    def replace_sessions(self, state: Any, rows: Any, rng: np.random.Generator) -> Any:
        """The sessions with those at ``rows`` (m,) int replaced by fresh ones (may change ``state``)."""
        ...

    def observe(self, state: Any, bounds: tuple[FloatArray, FloatArray] | None = None) -> ObservationLike:
        """Contexts (clipped to ``bounds``), eligible and required items of the sessions."""
        ...

    def context(self, state: Any) -> Any:
        """Shape (n, d) contexts."""
        ...

    def eligible(self, state: Any) -> Any:
        """Shape (n, n_items) bool, items that may be shown."""
        ...

    def cross_sell(self, state: Any) -> Any:
        """Shape (n, n_items) bool, items that are a cross-sell for the session."""
        ...

    def up_sell(self, state: Any) -> Any:
        """Shape (n, n_items) bool, items that are an up-sell for the session."""
        ...

    def expected_reward(self, state: Any, slate: Any) -> Any:
        """Shape (n,), expected reward of ``slate`` (n, k)."""
        ...

    def best_slate(self, state: Any, *, rows: Any = None, seen: Any = None) -> Any:
        """``((m, k) slates, (m,) expected rewards)`` of the best slates of the sessions at ``rows``.

        All sessions when ``rows`` is None; ``seen`` is ``observe(state)`` when the caller has it.
        """
        ...

    def step(self, state: Any, slate: Any, rng: np.random.Generator, *, in_place: bool = False) -> Any:
        """One step of every session: a :class:`StepOutcomeLike` (may advance ``state`` when ``in_place``)."""
        ...


def merge_sessions(state: Any, rows: Any, new: Any) -> Any:
    """``state`` with the sessions at ``rows`` (a mask or indices) replaced by ``new`` (one per row).

    Works on any dataclass whose array fields have the sessions on axis 0.
    """
    if not is_dataclass(state) or isinstance(state, type):
        raise EnvError(f"cannot merge sessions of a {type(state).__name__}; expected a dataclass "
                       "of per-session arrays.")
    rows = np.asarray(rows)
    n = rows.shape[0] if rows.dtype == np.bool_ else int(getattr(state, "n", -1))
    changes: dict[str, Any] = {}
    for f in fields(state):
        old = getattr(state, f.name)
        if isinstance(old, np.ndarray) and old.ndim >= 1 and old.shape[0] == n:
            merged = old.copy()
            merged[rows] = getattr(new, f.name)
            changes[f.name] = merged
    return replace(state, **changes)
