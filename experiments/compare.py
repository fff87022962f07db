"""Offline comparison: off-policy estimates of each policy beside the world's true value.

Each evaluated policy is first trained online for ``train_sessions`` sessions
(seed = the config's first seed) and then frozen. The comparison log is
generated under a built-in logging policy with exact propensities; for every
logged decision the truth of each evaluated policy is computed exactly from
the world's state, ``world.expected_reward_dist(state, action_dist)``. The
truth of a policy is the mean over logged decisions: the same quantity the
estimators estimate (expected slate reward per decision on the logged states).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from bandits.policy import Feedback, make_policy
from experiments.config import ExperimentConfig
from experiments.engine import Engine, LocalEngine
from experiments.simulate import (
    WorldAgent,
    build_agent,
    build_world,
    run_round,
    slot_reward,
    train_ppo_agent,
)
from simulator.logs import LogMetadata, SlateLog, load_parquet
from simulator.world import World, make_logging_policy

FloatArray = npt.NDArray[np.float64]
logger = logging.getLogger(__name__)


def _estimators() -> dict[str, Any]:
    from bandits.ope import ESTIMATORS

    return dict(ESTIMATORS)


class _LazyNames:
    """The estimator names of ``bandits.ope``, read when first needed."""

    def __iter__(self) -> Any:
        return iter(_estimators())

    def __contains__(self, name: object) -> bool:
        return name in _estimators()


ESTIMATORS = _LazyNames()


@dataclass(frozen=True, slots=True)
class ComparisonLog:
    """A logged sample with each evaluated policy's action distribution and exact truth."""

    log: SlateLog
    action_dist: dict[str, FloatArray]
    truth: dict[str, FloatArray]


def log_with_truth(world: World, agents: dict[str, WorldAgent], logging_policy: str,
                   n_sessions: int, seed: int) -> ComparisonLog:
    """Log ``n_sessions`` sessions under the built-in ``logging_policy``, with per-decision truth.

    Per decision it records each agent's action distribution (n, n_items, k) and
    its exact expected reward (n,).
    """
    rng = np.random.default_rng([seed, 3])
    logger_policy = make_logging_policy(logging_policy)
    parts: dict[str, list[Any]] = {key: [] for key in (
        "context", "slate", "reward", "pscore", "pscore_item", "purchase", "revenue", "session", "step")}
    dists: dict[str, list[FloatArray]] = {label: [] for label in agents}
    truths: dict[str, list[FloatArray]] = {label: [] for label in agents}
    state = world.new_sessions(n_sessions, rng)
    index = np.arange(n_sessions)
    while state.n:
        eligible, required = world.eligible(state), world.required(state)
        for label, agent in agents.items():
            dist = agent.policy.action_dist(agent.context(world, state), eligible=eligible, required=required)
            dists[label].append(dist)
            truths[label].append(world.expected_reward_dist(state, dist))
        d = logger_policy.decide(world, state, rng)
        out = world.step(state, d.slate, rng)
        parts["context"].append(world.context(state))
        parts["slate"].append(d.slate)
        parts["pscore"].append(d.pscore)
        parts["pscore_item"].append(d.pscore_item)
        parts["reward"].append(slot_reward(world, out))
        parts["purchase"].append(out.purchase)
        parts["revenue"].append(out.revenue)
        parts["session"].append(index)
        parts["step"].append(state.step)
        keep = out.state.alive
        state, index = out.state.take(keep), index[keep]
    cat = {key: np.concatenate(value) for key, value in parts.items()}
    log = SlateLog.from_arrays(
        context=cat["context"], slate=cat["slate"], reward=cat["reward"], pscore=cat["pscore"],
        pscore_item=cat["pscore_item"], catalog=world.catalog, purchase=cat["purchase"],
        revenue=cat["revenue"], session_id=cat["session"], step=cat["step"],
        metadata=LogMetadata(logging_policy=logger_policy.describe(), reward_type=world.reward_type,
                             context_names=world.context_names,
                             source=f"slatewise world (seed {world.seed})"),
    )
    return ComparisonLog(log, {k: np.concatenate(v) for k, v in dists.items()},
                         {k: np.concatenate(v) for k, v in truths.items()})


def _train_one(task: tuple[ExperimentConfig, int]) -> WorldAgent:
    config, i = task
    world = build_world(config.data)
    seed = config.seeds[0]
    spec = config.policies[i]
    if spec.name == "ppo":  # trained on whole sessions by stable-baselines3, not online here
        return train_ppo_agent(world, spec.params, seed)
    agent = build_agent(spec, world, seed)
    rng = np.random.default_rng([seed, 4])
    done = 0
    while done < config.compare.train_sessions:
        b = min(config.simulate.batch_sessions, config.compare.train_sessions - done)
        run_round(world, agent, b, rng, learn=True)
        done += b
    return agent


def train_agents(config: ExperimentConfig, engine: Engine | None = None, *,
                 progress: bool = False) -> dict[str, WorldAgent]:
    """Every configured policy, trained online for ``compare.train_sessions`` sessions, then frozen.

    Each policy trains in its own task (seeded by the config's first seed), so
    the agents are the same whatever the engine.
    """
    engine = engine or LocalEngine(config.workers or None)
    tasks = [(config, i) for i in range(len(config.policies))]
    agents = engine.map(_train_one, tasks, desc="train", progress=progress)
    return {spec.label: agent for spec, agent in zip(config.policies, agents, strict=True)}


def compare(config: ExperimentConfig, *, n_bootstrap: int = 200, engine: Engine | None = None,
            progress: bool = False) -> pd.DataFrame:
    """Off-policy estimate, interval and truth of each policy by each configured estimator.

    Returns:
        One row per (policy, estimator): ``estimate``, ``low``, ``high``, ``truth``,
        ``covered`` (truth inside the interval), ``ess``, ``max_weight``, ``mean_weight``.
    """
    from bandits.ope import estimate_all

    if config.data.source == "log":
        return compare_on_log(config, n_bootstrap=n_bootstrap)
    world = build_world(config.data)
    agents = train_agents(config, engine, progress=progress)
    sample = log_with_truth(world, agents, config.compare.logging_policy, config.compare.log_sessions,
                            config.seeds[0])
    rows = []
    for label in agents:
        truth = float(sample.truth[label].mean())
        results = estimate_all(sample.log, sample.action_dist[label],
                               estimators=config.compare.estimators, n_bootstrap=n_bootstrap,
                               seed=config.seeds[0])
        for est in results:
            rows.append({"policy": label, "estimator": est.estimator, "estimate": est.value,
                         "low": est.low, "high": est.high, "truth": truth,
                         "covered": bool(est.low <= truth <= est.high), "ess": est.ess,
                         "max_weight": est.max_weight, "mean_weight": est.mean_weight})
    return pd.DataFrame(rows)


def compare_on_log(config: ExperimentConfig, *, n_bootstrap: int = 200) -> pd.DataFrame:
    """Offline comparison on a log file: learn on its first half, estimate on the second; no truth.

    Policies are built for the log's catalog (``k`` = the log's slots on the page)
    and learn from the first half of the rows in log order; ``truth`` is NaN.
    """
    from bandits.ope import estimate_all

    assert config.data.path is not None  # checked by the config
    log = load_parquet(config.data.path)
    if log.n_rounds < 4:
        raise ValueError(f"data.path {config.data.path} holds {log.n_rounds} decisions; compare needs a "
                         "log with at least 4 (half to learn on, half to estimate on).")
    cut = log.n_rounds // 2
    train, test = log.take(np.arange(cut)), log.take(np.arange(cut, log.n_rounds))
    rows = []
    for spec in config.policies:
        params: dict[str, Any] = {"n_items": log.n_items, "k": log.n_positions,
                                  "dim_context": log.dim_context, "seed": config.seeds[0]}
        policy = make_policy(spec.name, **(params | spec.params))
        policy.update(Feedback.from_log(train))
        dist = policy.action_dist(test.context)
        for est in estimate_all(test, dist, estimators=config.compare.estimators, n_bootstrap=n_bootstrap,
                                seed=config.seeds[0]):
            rows.append({"policy": spec.label, "estimator": est.estimator, "estimate": est.value,
                         "low": est.low, "high": est.high, "truth": float("nan"), "covered": None,
                         "ess": est.ess, "max_weight": est.max_weight, "mean_weight": est.mean_weight})
    return pd.DataFrame(rows)


def disagreements(table: pd.DataFrame) -> list[str]:
    """Pairs of estimators whose intervals for the same policy do not overlap."""
    flags = []
    for policy, group in table.groupby("policy", sort=False):
        rows = group.to_dict("records")
        for i, a in enumerate(rows):
            for b in rows[i + 1:]:
                if a["high"] < b["low"] or b["high"] < a["low"]:
                    flags.append(f"{policy}: {a['estimator']} [{a['low']:.4g}, {a['high']:.4g}] and "
                                 f"{b['estimator']} [{b['low']:.4g}, {b['high']:.4g}] disagree beyond "
                                 "their intervals")
    return flags
