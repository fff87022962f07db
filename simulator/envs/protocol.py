"""What the session environments need from a world (structural types).

:class:`simulator.world.World` satisfies :class:`WorldLike`, and so does the
small known-answer :class:`simulator.envs.toy.ToyWorld`; any object with these
members can drive :class:`~simulator.envs.session.SessionEnv` and
:class:`~simulator.envs.vector.BatchSessionEnv`. All methods are batch-first:
``state`` holds ``n`` sessions.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


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

    def best_slate(self, state: Any) -> Any:
        """``((n, k) slates, (n,) expected rewards)`` of the best slates."""
        ...

    def step(self, state: Any, slate: Any, rng: np.random.Generator) -> Any:
        """One step of every session: a :class:`StepOutcomeLike`."""
        ...
