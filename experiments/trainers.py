"""How the policy of each ``[[policies]]`` entry is built and trained: one trainer per kind.

A trainer says which ``params`` an entry may set (checked when the config
loads), builds the entry's agent for a world, and declares whether the policy
**learns online** (``online = True``: it starts untrained and learns from the
run's own sessions, as a served bandit does) or is **trained first and then
plays frozen** (``online = False``: the agent comes back trained, e.g. PPO on
whole sessions by stable-baselines3). :func:`trainer_for` finds the trainer of
a name: a registered one (:data:`TRAINERS`), else :class:`OnlineTrainer` for
any registered policy that learns online.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from typing import Any, ClassVar

from bandits import registered_policies
from experiments.agents import WorldAgent, build_agent
from experiments.configs_schema import Checker
from experiments.ppo.config import EvalConfig, TrainConfig, WorldSpec, parse_ppo_entry
from simulator.errors import ConfigError

#: Constructor arguments the runner fills from the world, never the config.
RESERVED_PARAMS = ("n_items", "k", "dim_context", "seed")


class Trainer(ABC):
    """Builds, and when it is trained before the run trains, the policy of one kind of entry."""

    #: True: the policy learns from the run's sessions; False: it is trained first, then plays frozen.
    online: ClassVar[bool]

    @abstractmethod
    def check(self, chk: Checker, params: dict[str, Any], prefix: str) -> None:
        """Record every problem of an entry's ``params`` in ``chk`` (keys named ``prefix + key``)."""

    @abstractmethod
    def build(self, params: dict[str, Any], world: Any, seed: int) -> WorldAgent:
        """The entry's agent for ``world``: untrained when :attr:`online`, else trained."""


class OnlineTrainer(Trainer):
    """A registered bandit policy: built for the world, it learns online from the run's sessions.

    Args:
        name: the registered policy name.
    """

    online = True

    def __init__(self, name: str) -> None:
        self.name = name

    def accepted(self) -> list[str]:
        """Constructor parameters an entry may set (those the runner fills are not among them)."""
        signature = inspect.signature(registered_policies()[self.name].__init__)
        return [p for p in signature.parameters if p not in ("self", *RESERVED_PARAMS)]

    def check(self, chk: Checker, params: dict[str, Any], prefix: str) -> None:
        """Every key must be a constructor parameter of the policy."""
        allowed = self.accepted()
        for key in params:
            if key not in allowed:
                chk.fail(f"{prefix}{key}", f"unknown parameter of {self.name!r}; choose from {allowed}")

    def build(self, params: dict[str, Any], world: Any, seed: int) -> WorldAgent:
        """:func:`experiments.agents.build_agent` with the entry's parameters."""
        return build_agent(self.name, world, seed, params)


class PPOTrainer(Trainer):
    """PPO trained by stable-baselines3 on whole sessions of the world, then frozen.

    ``params`` are the ``[ppo]`` table of ``slatewise train-ppo`` (same keys, same
    defaults: :class:`experiments.ppo.config.PPOConfig`) with ``train_steps`` for
    ``total_steps`` and ``temperature`` for the trained policy's temperature; the
    runner sets the seed and one torch thread.
    """

    online = False

    def check(self, chk: Checker, params: dict[str, Any], prefix: str) -> None:
        """The keys and values of the ``[ppo]`` table, and a batch size that divides the rollout."""
        parse_ppo_entry(chk, params, prefix)

    def build(self, params: dict[str, Any], world: Any, seed: int) -> WorldAgent:
        """Train PPO for ``train_steps`` session steps with ``seed``; the trained policy plays frozen."""
        from experiments.ppo.train import train_frozen

        chk = Checker()
        entry = parse_ppo_entry(chk, params, "params.", seed=seed)
        chk.raise_if_any("ppo entry")
        config = TrainConfig(world=WorldSpec(seed=int(world.seed or 0), reward=world.reward_type),
                             ppo=entry.ppo, eval=EvalConfig(temperature=entry.temperature, bandits=()))
        return WorldAgent(train_frozen(config, world), anchored=False)


#: Trainers of the names that need their own (every other registered policy learns online).
TRAINERS: dict[str, Trainer] = {"ppo": PPOTrainer()}


def trainer_names() -> list[str]:
    """Every name an entry may use: the registered trainers and the registered online policies."""
    online = [name for name, cls in registered_policies().items() if getattr(cls, "learns_online", True)]
    return sorted({*TRAINERS, *online})


def trainer_for(name: str) -> Trainer:
    """The trainer of policy entries named ``name``.

    Raises:
        ConfigError: no trainer is registered for ``name`` and it is not a policy that learns online.
    """
    if name in TRAINERS:
        return TRAINERS[name]
    if name not in trainer_names():
        raise ConfigError(f"no policy {name!r} that learns online and no trainer for it; choose from "
                          f"{trainer_names()}.")
    return OnlineTrainer(name)
