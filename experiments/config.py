"""Experiment configs: TOML files loaded into frozen, validated dataclasses.

Example (``experiments/configs/demo.toml``)::

    name = "demo"
    seeds = [0, 1, 2]

    [data]
    source = "world"          # world | calibrated | log
    world_seed = 0
    reward = "revenue"        # click | purchase | revenue

    [simulate]
    sessions = 1500           # sessions per policy x seed
    batch_sessions = 100      # sessions run between two learning updates

    [compare]
    logging_policy = "softmax"   # a built-in world logging policy
    log_sessions = 3000
    estimators = ["ips", "snips", "dr"]
    estimand = "decision"        # decision | session

    [[policies]]
    name = "linucb"
    label = "LinUCB"
    params = { alpha = 0.5 }

A typo in a key or an unknown policy name is an error that names the key and
the choices; every problem is reported at once and nothing is written. What
an entry's ``params`` may hold is said by its trainer (:mod:`experiments.trainers`):
a bandit's constructor parameters, or for ``ppo`` the ``[ppo]`` table of
``slatewise train-ppo``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bandits.ope import ESTIMANDS, ESTIMATORS, SESSION_ESTIMATORS
from experiments.configs_schema import REWARDS, Checker, read_toml
from experiments.trainers import RESERVED_PARAMS, Trainer, trainer_for, trainer_names
from simulator.errors import ConfigError, ConfigProblem

DATA_SOURCES = ("world", "calibrated", "log")


@dataclass(frozen=True, slots=True)
class DataSpec:
    """Where decisions come from: a world (default or from a TOML), a calibrated world, or a log."""

    source: str = "world"
    world_config: str | None = None
    world_seed: int = 0
    path: str | None = None
    reward: str = "revenue"


@dataclass(frozen=True, slots=True)
class PolicySpec:
    """A policy entry: its name, its label in reports and its parameters.

    How the policy is built and trained (and which ``params`` it takes) is its
    :attr:`trainer`'s business.
    """

    name: str
    label: str
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def trainer(self) -> Trainer:
        """Builds the policy; says whether it learns online or is trained first and plays frozen."""
        return trainer_for(self.name)


@dataclass(frozen=True, slots=True)
class SimulateSpec:
    """Online learning runs: sessions per policy x seed, sessions between updates."""

    sessions: int = 2000
    batch_sessions: int = 100


@dataclass(frozen=True, slots=True)
class CompareSpec:
    """Offline comparison: the logging policy, the log's size, the estimand and its estimators.

    ``estimand`` is ``"decision"`` (expected reward of one decision summed over its
    slots, on the logged decisions; estimators from ``bandits.ope.ESTIMATORS``) or
    ``"session"`` (expected total reward of a whole session; estimators from
    ``bandits.ope.SESSION_ESTIMATORS``, truth by Monte Carlo over ``truth_sessions``
    sessions of each policy).
    """

    logging_policy: str = "softmax"
    log_sessions: int = 3000
    estimators: tuple[str, ...] = ("ips", "snips", "dr")
    train_sessions: int = 1000
    estimand: str = "decision"
    truth_sessions: int = 20_000


@dataclass(frozen=True, slots=True)
class ExperimentConfig:
    """A whole experiment."""

    name: str
    data: DataSpec
    policies: tuple[PolicySpec, ...]
    seeds: tuple[int, ...] = (0, 1, 2)
    simulate: SimulateSpec = SimulateSpec()
    compare: CompareSpec = CompareSpec()
    workers: int = 0

    @property
    def labels(self) -> list[str]:
        """Policy labels in config order."""
        return [p.label for p in self.policies]


def parse_experiment_config(raw: dict[str, Any], source: str = "config",
                            base_dir: Path | None = None) -> ExperimentConfig:
    """Validate a parsed TOML document into an :class:`ExperimentConfig`."""
    from simulator.world import LOGGING_POLICIES

    c = Checker()
    c.keys(raw, ("name", "seeds", "data", "policies", "simulate", "compare", "workers"), "")
    name = c.get(raw, "name", str, "", "experiment")
    seeds_raw = c.get(raw, "seeds", list, "", [0, 1, 2])
    seeds: list[int] = []
    for i, s in enumerate(seeds_raw or []):
        if isinstance(s, bool) or not isinstance(s, int) or s < 0:
            c.fail(f"seeds[{i}]", f"expected an integer >= 0, found {s!r}")
        else:
            seeds.append(s)
    if seeds_raw is not None and not seeds_raw:
        c.fail("seeds", "needs at least one seed")
    if len(set(seeds)) != len(seeds):
        c.fail("seeds", f"seeds repeat: {seeds}")
    workers = c.get(raw, "workers", int, "", 0, minimum=0)

    data_raw = c.get(raw, "data", dict, "", {})
    c.keys(data_raw, ("source", "world_config", "world_seed", "path", "reward"), "data.")
    source_kind = c.get(data_raw, "source", str, "data.", "world", choices=DATA_SOURCES)
    path = c.get(data_raw, "path", str, "data.", None)
    world_config = c.get(data_raw, "world_config", str, "data.", None)

    def resolve(p: str | None) -> str | None:
        if p is None or base_dir is None or Path(p).is_absolute():
            return p
        candidate = base_dir / p
        return str(candidate) if candidate.exists() else p

    path, world_config = resolve(path), resolve(world_config)
    if source_kind in ("calibrated", "log") and path is None:
        c.fail("data.path", f"is required when data.source = {source_kind!r}")
    if path is not None and not Path(path).exists():
        c.fail("data.path", f"no file at {path}")
    if world_config is not None and not Path(world_config).exists():
        c.fail("data.world_config", f"no file at {world_config}")
    data = DataSpec(
        source=source_kind or "world",
        world_config=world_config,
        world_seed=c.get(data_raw, "world_seed", int, "data.", 0, minimum=0),
        path=path,
        reward=c.get(data_raw, "reward", str, "data.", "revenue", choices=REWARDS) or "revenue",
    )

    sim_raw = c.get(raw, "simulate", dict, "", {})
    c.keys(sim_raw, ("sessions", "batch_sessions"), "simulate.")
    simulate = SimulateSpec(
        sessions=c.get(sim_raw, "sessions", int, "simulate.", 2000, minimum=1),
        batch_sessions=c.get(sim_raw, "batch_sessions", int, "simulate.", 100, minimum=1),
    )

    cmp_raw = c.get(raw, "compare", dict, "", {})
    c.keys(cmp_raw, ("logging_policy", "log_sessions", "estimators", "train_sessions", "estimand",
                     "truth_sessions"), "compare.")
    estimand = c.get(cmp_raw, "estimand", str, "compare.", "decision", choices=sorted(ESTIMANDS))
    if estimand not in ESTIMANDS:
        estimand = "decision"
    if estimand == "session" and source_kind == "log":
        c.fail("compare.estimand", "'session' needs a world to know the truth (data.source = 'world' or "
               "'calibrated'); score a log's sessions with `slatewise ope LOG --estimand session`")
    default_est = ["ips", "snips", "dr"] if estimand == "decision" else list(SESSION_ESTIMATORS)
    est_raw = c.get(cmp_raw, "estimators", list, "compare.", default_est)
    if estimand == "session":
        _check_session_estimators(c, est_raw or [])
    else:
        _check_decision_estimators(c, est_raw or [], source_kind, path)
    compare = CompareSpec(
        logging_policy=c.get(cmp_raw, "logging_policy", str, "compare.", "softmax",
                             choices=LOGGING_POLICIES) or "softmax",
        log_sessions=c.get(cmp_raw, "log_sessions", int, "compare.", 3000, minimum=10),
        estimators=tuple(est_raw or ()),
        train_sessions=c.get(cmp_raw, "train_sessions", int, "compare.", 1000, minimum=1),
        estimand=estimand,
        truth_sessions=c.get(cmp_raw, "truth_sessions", int, "compare.", 20_000, minimum=2),
    )

    names = trainer_names()
    policies: list[PolicySpec] = []
    pol_raw = c.get(raw, "policies", list, "", None)
    if pol_raw is not None and not pol_raw:
        c.fail("policies", "needs at least one [[policies]] table")
    for i, entry in enumerate(pol_raw or []):
        prefix = f"policies[{i}]."
        if not isinstance(entry, dict):
            c.fail(f"policies[{i}]", f"expected a table, found {entry!r}")
            continue
        c.keys(entry, ("name", "label", "params"), prefix)
        pname = c.get(entry, "name", str, prefix, choices=names)
        label = c.get(entry, "label", str, prefix, pname or f"policy{i}")
        params = c.get(entry, "params", dict, prefix, {})
        if pname in names and source_kind == "log" and not trainer_for(pname).online:
            c.fail(f"{prefix}name", f"{pname!r} is trained in a world before it plays; data.source = 'log' "
                   "has none (use data.source = 'world' or 'calibrated')")
        if pname in names and params:
            for key in params:
                if key in RESERVED_PARAMS:
                    c.fail(f"{prefix}params.{key}", "is set by the runner from the world; remove it")
            trainer_for(pname).check(c, {k: v for k, v in params.items() if k not in RESERVED_PARAMS},
                                     f"{prefix}params.")
        if pname:
            policies.append(PolicySpec(pname, label or pname, dict(params or {})))
    labels = [p.label for p in policies]
    for dup in sorted({x for x in labels if labels.count(x) > 1}):
        c.fail("policies", f"label {dup!r} is used twice; give each policy its own label")
    c.raise_if_any(source)
    return ExperimentConfig(name=name or "experiment", data=data, policies=tuple(policies),
                            seeds=tuple(seeds), simulate=simulate, compare=compare, workers=workers or 0)


def _check_decision_estimators(c: Checker, names: list[Any], source_kind: str | None,
                               path: str | None) -> None:
    """Per-decision estimators: known to ``bandits.ope.ESTIMATORS`` and usable on the configured data."""
    known = tuple(ESTIMATORS)
    for i, e in enumerate(names):
        if e not in known:
            c.fail(f"compare.estimators[{i}]", f"unknown estimator {e!r} for compare.estimand = 'decision'; "
                   f"choose from {list(known)}")
        elif e == "pi":
            c.fail(f"compare.estimators[{i}]", "'pi' needs slates logged uniformly over the whole catalog, "
                   "which no world log or log file here meets; remove it")
        elif ESTIMATORS[e].slate and source_kind == "log" and path is not None and _per_position(path):
            c.fail(f"compare.estimators[{i}]", f"{e!r} needs whole slates, but {path} has one row per "
                   "position; remove it or use a per-position estimator")


def _check_session_estimators(c: Checker, names: list[Any]) -> None:
    """Per-session estimators: known to ``bandits.ope.SESSION_ESTIMATORS``."""
    for i, e in enumerate(names):
        if e not in SESSION_ESTIMATORS:
            c.fail(f"compare.estimators[{i}]", f"{e!r} is not an estimator of compare.estimand = 'session'; "
                   f"choose from {list(SESSION_ESTIMATORS)}")


def _per_position(path: str) -> bool:
    """The log file at ``path`` has one row per position (read from its Parquet schema only)."""
    try:
        import pyarrow.parquet as pq

        return "position" in pq.read_schema(path).names
    except (OSError, ValueError):
        return False


def load_experiment_config(path: str | Path) -> ExperimentConfig:
    """Read and validate an experiment config file (paths inside resolve against its folder)."""
    p = Path(path)
    return parse_experiment_config(read_toml(p), str(p), p.parent)


__all__ = ["ConfigError", "ConfigProblem", "ExperimentConfig", "PolicySpec", "load_experiment_config",
           "parse_experiment_config"]
