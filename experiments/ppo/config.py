"""The ``train-ppo`` config: frozen dataclasses read from TOML, every mistake reported at once.

Layout (every key optional except where noted; see ``experiments/configs/ppo_session.toml``,
whose settings are the defaults)::

    [world]      kind = "default" | "toy" | "calibrated", seed, reward = "click" | "purchase" | "revenue",
                 path = "world.json"  (kind = "calibrated": a world saved by ``slatewise world calibrate``),
                 toy = { n_items, k, n_types, max_steps, ... }  (ToyWorld arguments)
    [ppo]        total_steps, num_envs, n_steps, batch_size, n_epochs, learning_rate, gamma,
                 gae_lambda, clip_range, ent_coef, vf_coef, max_grad_norm, net_arch,
                 activation, item_features, price_knots, free_item_scores,
                 anchor_relation, reward_scale, seed, threads
    [eval]       every_steps, n_sessions, seeds (held out, >= 1), bandits, bandit_num_envs, temperature,
                 bandit_params = { name = { ... } }
    [checkpoint] every_steps, keep

The ``[ppo]`` table is also what a ``ppo`` entry of an experiment config sets in its
``params`` (:func:`parse_ppo_entry`): there ``train_steps`` is ``total_steps``,
``temperature`` is ``eval.temperature``, and the runner sets ``seed`` and ``threads``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from experiments.configs_schema import REWARDS, Checker, read_toml

WORLDS = ("default", "toy", "calibrated")
TOY_KEYS = ("n_items", "k", "n_types", "max_steps", "buy_prob", "checkout_prob", "abandon_prob")


@dataclass(frozen=True, slots=True)
class WorldSpec:
    """Which world the sessions come from, and what the agent is rewarded for.

    Attributes:
        kind: ``default`` (``simulator.world.World.default``), ``toy`` (``ToyWorld``) or
            ``calibrated`` (a saved world, e.g. fitted to the Open Bandit Dataset by
            ``slatewise world calibrate``; read from ``path``).
        seed: seed of the world's catalog and shoppers (not of the sessions); a
            calibrated world brings its own.
        reward: ``click``, ``purchase`` or ``revenue``, summed over the slate.
        toy: ``ToyWorld`` arguments when ``kind = "toy"``.
        path: the world file (JSON) when ``kind = "calibrated"``.
    """

    kind: str = "default"
    seed: int = 0
    reward: str = "revenue"
    toy: dict[str, float] = field(default_factory=dict)
    path: str | None = None


@dataclass(frozen=True, slots=True)
class PPOConfig:
    """PPO hyperparameters (stable-baselines3 names) and the network.

    The defaults are the settings of ``experiments/configs/ppo_session.toml``, the run
    behind the figures of ``docs/ppo.md`` (the default world, revenue per session).

    Attributes:
        total_steps: environment steps (session steps) to train for.
        num_envs: sessions stepped together.
        n_steps: steps per session per rollout (a rollout is ``num_envs * n_steps`` steps).
        batch_size: minibatch size.
        n_epochs: passes over each rollout.
        learning_rate: Adam step size.
        gamma: discount per session step.
        gae_lambda: GAE parameter.
        clip_range: PPO clip range.
        ent_coef: weight of the (first-stage) entropy bonus.
        vf_coef: weight of the value loss.
        max_grad_norm: gradient clipping.
        net_arch: hidden widths of the actor and the critic.
        activation: ``tanh`` or ``relu``.
        item_features: score items also through their features (category one-hot,
            standardised log price with a piecewise-linear basis, catalog features),
            shared across items (:func:`experiments.ppo.envs.item_features`).
        price_knots: knots of the log-price basis of the item features.
        free_item_scores: a free per-item score head besides the feature scores; false
            scores items through their features (and a per-item bias) only.
        anchor_relation: score items also by how they relate to the session's anchor
            (same category, log price above or below it; read from the context), see
            :func:`experiments.ppo.envs.anchor_relation`. Needs ``item_features``.
        reward_scale: the training reward is multiplied by it, so value targets stay
            near 1 (revenue per session is in the hundreds); evaluations are unscaled.
        seed: training seed (sessions and network).
        threads: torch threads (the machine is shared: 1 or 2).
    """

    total_steps: int = 1_000_000
    num_envs: int = 256
    n_steps: int = 32
    batch_size: int = 2048
    n_epochs: int = 4
    learning_rate: float = 3e-4
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_range: float = 0.2
    ent_coef: float = 0.003
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    net_arch: tuple[int, ...] = (128, 128)
    activation: str = "tanh"
    item_features: bool = True
    price_knots: int = 5
    free_item_scores: bool = True
    anchor_relation: bool = True
    reward_scale: float = 0.01
    seed: int = 0
    threads: int = 1

    @property
    def rollout_size(self) -> int:
        """Steps per PPO rollout: ``num_envs * n_steps``."""
        return self.num_envs * self.n_steps

    def batch_problem(self) -> str | None:
        """Why ``batch_size`` does not fit the rollout (it must divide it), or None."""
        rollout = self.rollout_size
        if rollout % self.batch_size == 0:
            return None
        fit = max(d for d in range(1, min(rollout, 4096) + 1) if rollout % d == 0)
        return (f"({self.batch_size}) must divide the rollout size num_envs * n_steps = {rollout}; "
                f"e.g. batch_size = {fit}")


@dataclass(frozen=True, slots=True)
class EvalConfig:
    """Periodic and final evaluation on held-out seeds.

    Attributes:
        every_steps: evaluate after about this many training steps (0: only at the end).
        n_sessions: sessions per seed per evaluation.
        seeds: held-out session seeds; the final comparison reports one value per seed.
        bandits: registered bandit policies trained online for the same number of steps.
        bandit_params: extra constructor arguments per bandit name.
        bandit_num_envs: sessions a bandit steps together while it learns online (one
            ``select`` and one ``update`` per batch step).
        temperature: Plackett-Luce temperature of the evaluated PPO policy.
    """

    every_steps: int = 100_000
    n_sessions: int = 2_000
    seeds: tuple[int, ...] = (10_001, 10_002, 10_003, 10_004, 10_005)
    bandits: tuple[str, ...] = ("linucb", "linear_ts", "epsilon_greedy", "uniform")
    bandit_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    bandit_num_envs: int = 1024
    temperature: float = 1.0


@dataclass(frozen=True, slots=True)
class CheckpointConfig:
    """Checkpoints (SB3 zips with optimizer state) for resumption.

    Attributes:
        every_steps: write one after about this many steps (0: only the final one).
        keep: how many recent checkpoints to keep.
    """

    every_steps: int = 250_000
    keep: int = 3


@dataclass(frozen=True, slots=True)
class TrainConfig:
    """The whole ``train-ppo`` config."""

    world: WorldSpec = field(default_factory=WorldSpec)
    ppo: PPOConfig = field(default_factory=PPOConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)

    def to_json(self) -> dict[str, Any]:
        """The config as plain JSON (written beside every run)."""
        return {
            "world": {"kind": self.world.kind, "seed": self.world.seed, "reward": self.world.reward,
                      "toy": dict(self.world.toy),
                      **({"path": self.world.path} if self.world.path is not None else {})},
            "ppo": {name: (list(v) if isinstance(v, tuple) else v)
                    for name, v in ((f, getattr(self.ppo, f)) for f in PPOConfig.__dataclass_fields__)},
            "eval": {"every_steps": self.eval.every_steps, "n_sessions": self.eval.n_sessions,
                     "seeds": list(self.eval.seeds), "bandits": list(self.eval.bandits),
                     "bandit_params": dict(self.eval.bandit_params),
                     "bandit_num_envs": self.eval.bandit_num_envs, "temperature": self.eval.temperature},
            "checkpoint": {"every_steps": self.checkpoint.every_steps, "keep": self.checkpoint.keep},
        }


def _int_list(chk: Checker, table: dict[str, Any], key: str, prefix: str, default: tuple[int, ...],
              minimum: int) -> tuple[int, ...]:
    value = chk.get(table, key, list, prefix, list(default))
    if value is None:
        return default
    if not value or not all(isinstance(v, int) and not isinstance(v, bool) and v >= minimum
                            for v in value):
        chk.fail(f"{prefix}{key}", f"expected a non-empty list of integers >= {minimum}, found {value!r}")
        return default
    return tuple(value)


#: Keys of the ``[ppo]`` table: the fields of :class:`PPOConfig`.
PPO_KEYS = tuple(PPOConfig.__dataclass_fields__)
_FLAGS = ("item_features", "free_item_scores", "anchor_relation")
_LIMITS: dict[str, tuple[float, float | None]] = {
    "total_steps": (1, None), "num_envs": (1, None), "n_steps": (1, None), "batch_size": (2, None),
    "n_epochs": (1, None), "learning_rate": (0.0, 1.0), "gamma": (0.0, 1.0), "gae_lambda": (0.0, 1.0),
    "clip_range": (0.0, 1.0), "ent_coef": (0.0, None), "vf_coef": (0.0, None),
    "max_grad_norm": (0.0, None), "seed": (0, None), "threads": (1, 64), "price_knots": (0, 64),
    "reward_scale": (1e-9, None)}
#: What a ``ppo`` entry of an experiment config sets in ``params`` (the runner sets seed and threads).
ENTRY_KEYS = ("train_steps", "temperature",
              *(key for key in PPO_KEYS if key not in ("total_steps", "seed", "threads")))


def parse_ppo_table(chk: Checker, table: dict[str, Any], prefix: str, **fixed: Any) -> PPOConfig:
    """The :class:`PPOConfig` of a ``[ppo]`` table (keys already checked), problems named ``prefix + key``.

    ``fixed`` fields are set by the caller and not read from ``table``; the others
    default to :class:`PPOConfig`'s.
    """
    d = PPOConfig()
    values: dict[str, Any] = dict(fixed)
    for name in PPO_KEYS:
        if name in fixed:
            continue
        default = getattr(d, name)
        if name == "net_arch":
            values[name] = _int_list(chk, table, name, prefix, d.net_arch, 1)
        elif name == "activation":
            values[name] = chk.get(table, name, str, prefix, d.activation, choices=["tanh", "relu"])
        elif name in _FLAGS:
            values[name] = chk.get(table, name, bool, prefix, default)
        else:
            kind: type = int if isinstance(default, int) else float
            lo, hi = _LIMITS[name]
            values[name] = chk.get(table, name, kind, prefix, default, minimum=lo, maximum=hi)
    if not values["free_item_scores"] and not values["item_features"]:
        chk.fail(f"{prefix}free_item_scores",
                 f"false needs {prefix}item_features = true (items need some score)")
    if values["anchor_relation"] and not values["item_features"]:
        chk.fail(f"{prefix}anchor_relation",
                 f"needs {prefix}item_features = true (it relates item features to the anchor's)")
    return PPOConfig(**values)


@dataclass(frozen=True, slots=True)
class PPOEntry:
    """A ``ppo`` entry of an experiment config: what to train before the run, and how it then plays.

    Attributes:
        ppo: the training settings (``total_steps`` from ``train_steps``, ``seed`` the run's seed).
        temperature: Plackett-Luce temperature of the trained policy as it plays.
    """

    ppo: PPOConfig
    temperature: float


def parse_ppo_entry(chk: Checker, params: dict[str, Any], prefix: str, seed: int = 0) -> PPOEntry:
    """Read an experiment entry's ``params`` (:data:`ENTRY_KEYS`), recording problems in ``chk``.

    Args:
        chk: collects the problems, each named ``prefix + key``.
        params: the entry's parameters.
        prefix: e.g. ``"policies[3].params."``.
        seed: the run's seed (PPO's training seed and the policy's).
    """
    chk.keys(params, ENTRY_KEYS, prefix)
    d = PPOConfig()
    steps = chk.get(params, "train_steps", int, prefix, d.total_steps, minimum=1)
    temperature = chk.get(params, "temperature", float, prefix, EvalConfig().temperature, minimum=1e-6)
    ppo = parse_ppo_table(chk, params, prefix, total_steps=steps, seed=seed, threads=1)
    problem = ppo.batch_problem() if ppo.batch_size >= 2 and ppo.rollout_size >= 1 else None
    if problem is not None:
        chk.fail(f"{prefix}batch_size", problem)
    return PPOEntry(ppo, temperature)


def parse_train_config(raw: dict[str, Any], source: str = "config",
                       base_dir: str | Path | None = None) -> TrainConfig:
    """Build a :class:`TrainConfig` from parsed TOML; raise ``ConfigError`` listing every problem."""
    chk = Checker()
    chk.keys(raw, ["world", "ppo", "eval", "checkpoint"], "")
    tables: dict[str, dict[str, Any]] = {}
    for name in ("world", "ppo", "eval", "checkpoint"):
        value = raw.get(name, {})
        if not isinstance(value, dict):
            chk.fail(name, f"expected a table, found {type(value).__name__}")
            value = {}
        tables[name] = value

    w = tables["world"]
    chk.keys(w, ["kind", "seed", "reward", "toy", "path"], "world.")
    toy = chk.get(w, "toy", dict, "world.", {})
    if toy:
        chk.keys(toy, TOY_KEYS, "world.toy.")
        for key in toy:
            if key in TOY_KEYS:
                chk.get(toy, key, (int, float), "world.toy.", minimum=0)
    world_kind = chk.get(w, "kind", str, "world.", "default", choices=WORLDS)
    world_path = chk.get(w, "path", str, "world.", None)
    if world_kind == "calibrated":
        if world_path is None:
            chk.fail("world.path", "is required when world.kind = \"calibrated\" (a world JSON written by "
                     "`slatewise world calibrate LOG -o world.json`)")
        else:
            # Relative to the config file when the file is there, else to the working directory.
            if base_dir is not None and not Path(world_path).is_absolute() \
                    and (Path(base_dir) / world_path).exists():
                world_path = str(Path(base_dir) / world_path)
            if not Path(world_path).is_file():
                chk.fail("world.path", f"no file at {world_path}")
    elif world_path is not None:
        chk.fail("world.path", f"is only read when world.kind = \"calibrated\", found kind = {world_kind!r}; "
                 "remove it or set the kind")
    world = WorldSpec(kind=world_kind,
                      seed=chk.get(w, "seed", int, "world.", 0, minimum=0),
                      reward=chk.get(w, "reward", str, "world.", "revenue", choices=REWARDS),
                      toy=dict(toy or {}), path=world_path)

    chk.keys(tables["ppo"], PPO_KEYS, "ppo.")
    ppo = parse_ppo_table(chk, tables["ppo"], "ppo.")

    e, de = tables["eval"], EvalConfig()
    chk.keys(e, ["every_steps", "n_sessions", "seeds", "bandits", "bandit_params", "bandit_num_envs",
                 "temperature"], "eval.")
    bandits = chk.get(e, "bandits", list, "eval.", list(de.bandits))
    if bandits is not None and not all(isinstance(b, str) for b in bandits):
        chk.fail("eval.bandits", f"expected a list of policy names, found {bandits!r}")
        bandits = list(de.bandits)
    known = _bandit_names()
    for b in bandits or []:
        if b not in known:
            chk.fail("eval.bandits", f"unknown policy {b!r}; choose from {sorted(known)}")
    params = chk.get(e, "bandit_params", dict, "eval.", {})
    for b, table in (params or {}).items():
        if b not in (bandits or []):
            chk.fail(f"eval.bandit_params.{b}", f"is not one of eval.bandits {bandits}")
        elif not isinstance(table, dict):
            chk.fail(f"eval.bandit_params.{b}", f"expected a table, found {type(table).__name__}")
    evalc = EvalConfig(every_steps=chk.get(e, "every_steps", int, "eval.", de.every_steps, minimum=0),
                       n_sessions=chk.get(e, "n_sessions", int, "eval.", de.n_sessions, minimum=1),
                       seeds=_int_list(chk, e, "seeds", "eval.", de.seeds, 0),
                       bandits=tuple(bandits or ()), bandit_params=dict(params or {}),
                       bandit_num_envs=chk.get(e, "bandit_num_envs", int, "eval.", de.bandit_num_envs,
                                               minimum=1),
                       temperature=chk.get(e, "temperature", float, "eval.", de.temperature, minimum=1e-6))
    if ppo.seed in evalc.seeds:
        chk.fail("eval.seeds", f"must be held out: the training seed ppo.seed = {ppo.seed} is among them")

    c, dc = tables["checkpoint"], CheckpointConfig()
    chk.keys(c, ["every_steps", "keep"], "checkpoint.")
    ckpt = CheckpointConfig(every_steps=chk.get(c, "every_steps", int, "checkpoint.", dc.every_steps,
                                                minimum=0),
                            keep=chk.get(c, "keep", int, "checkpoint.", dc.keep, minimum=1))
    chk.raise_if_any(source)
    return TrainConfig(world=world, ppo=ppo, eval=evalc, checkpoint=ckpt)


def load_train_config(path: str | Path) -> TrainConfig:
    """Read and validate a ``train-ppo`` TOML config."""
    return parse_train_config(read_toml(path), str(path), base_dir=Path(path).parent)


def _bandit_names() -> set[str]:
    """Registered policies that learn online (a class declaring ``learns_online = False`` does not)."""
    import bandits  # noqa: F401  (registers every bandit policy)
    from bandits import registered_policies

    return {name for name, cls in registered_policies().items() if getattr(cls, "learns_online", True)}
