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

from bandits.ope import estimate_all
from bandits.ope.recommend import recommend
from bandits.policy import Feedback, make_policy
from experiments.agents import WorldAgent
from experiments.config import ExperimentConfig
from experiments.engine import Engine, LocalEngine
from experiments.online import train_online
from experiments.worlds import build_world
from simulator.logs import SlateLog, load_parquet
from simulator.rollout import Step, rollout
from simulator.world import LogRecorder, World, make_logging_policy

FloatArray = npt.NDArray[np.float64]
logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ComparisonLog:
    """A logged sample with each evaluated policy's action distribution and exact truth.

    Attributes:
        log: the logged decisions (``n`` rows, in the order they were made: step by step).
        action_dist: per policy label, shape (n, n_items, k): its probability of each item at each slot.
        truth: per policy label, shape (n,): its exact expected reward at each logged decision.
    """

    log: SlateLog
    action_dist: dict[str, FloatArray]
    truth: dict[str, FloatArray]


class TruthRecorder(LogRecorder):
    """A log recorder that also keeps, per decision, each agent's action distribution and exact truth.

    Args:
        world: the world the log is written in.
        agents: the evaluated agents by label (frozen: only ``action_dist`` is called).
    """

    def __init__(self, world: World, agents: dict[str, WorldAgent]) -> None:
        super().__init__(world)
        self.agents = agents
        self.dists: dict[str, list[FloatArray]] = {label: [] for label in agents}
        self.truths: dict[str, list[FloatArray]] = {label: [] for label in agents}

    def __call__(self, step: Step) -> None:
        """Record the step's log rows, and each agent's distribution and truth on its states."""
        world, state = self.world, step.state
        eligible, required = world.eligible(state), world.required(state)
        for label, agent in self.agents.items():
            dist = agent.policy.action_dist(agent.context(world, state), eligible=eligible, required=required)
            self.dists[label].append(dist)
            self.truths[label].append(world.expected_reward_dist(state, dist))
        super().__call__(step)


def log_with_truth(world: World, agents: dict[str, WorldAgent], logging_policy: str,
                   n_sessions: int, seed: int) -> ComparisonLog:
    """Log ``n_sessions`` sessions under the built-in ``logging_policy``, with per-decision truth.

    Per decision it records each agent's action distribution (n, n_items, k) and
    its exact expected reward (n,).
    """
    logger_policy = make_logging_policy(logging_policy)
    recorder = TruthRecorder(world, agents)
    rollout(world, logger_policy, n_sessions, np.random.default_rng([seed, 3]), on_step=recorder)
    log = recorder.to_log(logger_policy.describe(), by_session=False)
    return ComparisonLog(log, {k: np.concatenate(v) for k, v in recorder.dists.items()},
                         {k: np.concatenate(v) for k, v in recorder.truths.items()})


def _train_one(task: tuple[ExperimentConfig, int]) -> WorldAgent:
    config, i = task
    world = build_world(config.data)
    seed = config.seeds[0]
    spec = config.policies[i]
    agent = spec.trainer.build(spec.params, world, seed)
    if spec.trainer.online:
        train_online(world, agent, config.compare.train_sessions, config.simulate.batch_sessions,
                     np.random.default_rng([seed, 4]))
    return agent


def train_agents(config: ExperimentConfig, engine: Engine | None = None, *,
                 progress: bool = False) -> dict[str, WorldAgent]:
    """Every configured policy, trained, then frozen.

    A policy that learns online does so for ``compare.train_sessions`` sessions; one
    trained before the run (``ppo``) comes trained from its trainer.
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
        ``covered`` (truth inside the interval), ``ess`` (of ``n_weights``), ``max_weight``,
        ``mean_weight``, ``warnings`` (list of str), and the policy's ``recommendation``,
        ``recommended`` (this estimator is the one to trust) and ``reasons``
        (:func:`bandits.ope.recommend.recommend`, from the log alone).
    """
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
        rows += _rows(label, sample.log, sample.action_dist[label], results, truth)
    return pd.DataFrame(rows)


def _rows(label: str, log: SlateLog, dist: FloatArray, results: list[Any],
          truth: float) -> list[dict[str, Any]]:
    """One table row per estimate of policy ``label``, with its warnings and the log's recommendation.

    Every row of the policy carries the same ``recommendation`` (the verdict: ``use dr`` or
    "this log cannot support ...") and ``reasons``; ``recommended`` marks the chosen estimator.
    """
    rec = recommend(log, dist, results, policy=label)
    known = truth == truth
    return [{"policy": label, "estimator": est.estimator, "estimate": est.value, "low": est.low,
             "high": est.high, "truth": truth,
             "covered": bool(est.low <= truth <= est.high) if known else None,
             "ess": est.ess, "n_weights": rec.diagnostics.n_weights, "max_weight": est.max_weight,
             "mean_weight": est.mean_weight, "warnings": list(est.warnings),
             "recommendation": rec.verdict, "recommended": est.estimator == rec.estimator,
             "reasons": list(rec.reasons)}
            for est in results]


def compare_on_log(config: ExperimentConfig, *, n_bootstrap: int = 200) -> pd.DataFrame:
    """Offline comparison on a log file: learn on its first half, estimate on the second; no truth.

    Policies are built for the log's catalog (``k`` = the log's slots on the page)
    and learn from the first half of the rows in log order; ``truth`` is NaN.
    """
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
        results = estimate_all(test, dist, estimators=config.compare.estimators, n_bootstrap=n_bootstrap,
                               seed=config.seeds[0])
        rows += _rows(spec.label, test, dist, results, float("nan"))
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
