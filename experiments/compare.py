"""Offline comparison: off-policy estimates of each policy beside the world's true value.

Each evaluated policy is first trained online for ``train_sessions`` sessions
(seed = the config's first seed) and then frozen. The comparison log is
generated under a built-in logging policy with exact propensities; for every
logged decision the truth of each evaluated policy is computed exactly from
the world's state, ``world.expected_reward_dist(state, action_dist)``. The
truth of a policy is the mean over logged decisions: the same quantity the
estimators estimate (expected slate reward per decision on the logged states).

With ``compare.estimand = "session"`` the estimand is a policy's expected total
reward of a whole session: the log keeps each decision's ``session_id`` and
``step``, the session estimators (:func:`bandits.ope.estimate_sessions`) score each
policy on it, and the truth is the policy's value per session in the world,
``simulator.world.policy_value`` over ``compare.truth_sessions`` sessions of its own
(Monte Carlo, with its standard error).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from bandits.exposure import ExposureReport, expected_exposure, position_weights, report_from_items
from bandits.ope import SESSION_ESTIMATORS, SessionEstimate, estimate_all, estimate_sessions
from bandits.ope.recommend import recommend
from bandits.policy import Feedback, make_policy
from experiments.agents import WorldAgent
from experiments.config import ExperimentConfig
from experiments.engine import Engine, LocalEngine
from experiments.online import train_online
from experiments.worlds import build_world
from simulator.logs import SlateLog, load_parquet
from simulator.rollout import Step, rollout
from simulator.world import LogRecorder, World, make_logging_policy, policy_value

FloatArray = npt.NDArray[np.float64]
logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ComparisonLog:
    """A logged sample with each evaluated policy's action distribution and exact truth.

    Attributes:
        log: the logged decisions (``n`` rows, in the order they were made: step by step).
        action_dist: per policy label, shape (n, n_items, k): its probability of each item at each slot.
        truth: per policy label, shape (n,): its exact expected reward at each logged decision.
        merit: shape (n_items,), each item's expected reward on an examined slot averaged over the
            logged decisions (0 where it was not eligible): its merit for the exposure measures.
    """

    log: SlateLog
    action_dist: dict[str, FloatArray]
    truth: dict[str, FloatArray]
    merit: FloatArray | None = None


@dataclass(frozen=True, slots=True)
class Comparison:
    """An offline comparison's estimates and how each evaluated policy would share exposure.

    Attributes:
        table: one row per (policy, estimator), as :func:`compare` returns it.
        exposure: per policy label, its expected exposure on the logged decisions (its action
            distribution times the slot weights: the world's examination probabilities, or the
            DCG discount on a log), with merit when a world knows it.
        estimand: ``"decision"`` or ``"session"``: what every estimate and truth in the table is.
        truth_sessions: per session, the Monte Carlo sessions behind each policy's truth
            (0 per decision, whose truth is exact on the logged decisions).
    """

    table: pd.DataFrame
    exposure: dict[str, ExposureReport]
    estimand: str = "decision"
    truth_sessions: int = 0


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
        self.merit = np.zeros(world.n_items)
        self.n_decisions = 0

    def __call__(self, step: Step) -> None:
        """Record the step's log rows, and each agent's distribution and truth on its states."""
        world, state = self.world, step.state
        eligible, required = world.eligible(state), world.required(state)
        for label, agent in self.agents.items():
            dist = agent.policy.action_dist(agent.context(world, state), eligible=eligible, required=required)
            self.dists[label].append(dist)
            self.truths[label].append(world.expected_reward_dist(state, dist))
        self.merit += np.where(eligible, world.item_value(state), 0.0).sum(axis=0)
        self.n_decisions += state.n
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
                         {k: np.concatenate(v) for k, v in recorder.truths.items()},
                         recorder.merit / max(recorder.n_decisions, 1))


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
    """The estimates table of :func:`compare_with_exposure`."""
    return compare_with_exposure(config, n_bootstrap=n_bootstrap, engine=engine, progress=progress).table


def compare_with_exposure(config: ExperimentConfig, *, n_bootstrap: int = 200, engine: Engine | None = None,
                          progress: bool = False) -> Comparison:
    """Off-policy estimate, interval and truth of each policy by each configured estimator.

    Returns:
        The estimates and each policy's expected exposure (:class:`Comparison`); the table has
        one row per (policy, estimator): ``estimate``, ``low``, ``high``, ``truth``,
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
    weights = np.asarray(world.position_bias, dtype=np.float64)
    exposure = {label: report_from_items(expected_exposure(sample.action_dist[label], weights),
                                         world.catalog.category, weights, sample.log.n_rounds,
                                         merit=sample.merit) for label in agents}
    if config.compare.estimand == "session":
        rows = _session_rows(config, world, agents, sample, n_bootstrap)
        return Comparison(pd.DataFrame(rows), exposure, "session", config.compare.truth_sessions)
    rows = []
    for label in agents:
        truth = float(sample.truth[label].mean())
        results = estimate_all(sample.log, sample.action_dist[label],
                               estimators=config.compare.estimators, n_bootstrap=n_bootstrap,
                               seed=config.seeds[0], derive_slate_inputs=True)
        rows += _rows(label, sample.log, sample.action_dist[label], results, truth)
    return Comparison(pd.DataFrame(rows), exposure)


def score_sessions(log: SlateLog, action_dist: FloatArray, estimators: Sequence[str] | None = None, *,
                   n_bootstrap: int = 200, level: float = 0.95, seed: int = 0) -> list[SessionEstimate]:
    """Each session estimator's estimate of the policy whose slot marginals on ``log`` are ``action_dist``.

    ``estimators`` default to every one of ``bandits.ope.SESSION_ESTIMATORS``; the bootstrap
    over sessions takes at least 2 replicates.
    """
    return estimate_sessions(log, action_dist, estimators=tuple(estimators or SESSION_ESTIMATORS),
                             n_bootstrap=max(n_bootstrap, 2), level=level, seed=seed)


def _session_rows(config: ExperimentConfig, world: World, agents: dict[str, WorldAgent],
                  sample: ComparisonLog, n_bootstrap: int) -> list[dict[str, Any]]:
    """Per-session estimates of each agent on ``sample``'s log beside its Monte Carlo value per session.

    Table rows: ``estimate``, ``low``, ``high``, ``stderr``, ``truth``, ``truth_stderr``,
    ``covered`` (None when the estimate is not supported), ``ess_first``, ``ess_last``,
    ``mean_weight``, ``supported``, ``n_sessions``, ``warnings``.
    """
    rows: list[dict[str, Any]] = []
    n_truth = config.compare.truth_sessions
    for i, (label, agent) in enumerate(agents.items()):
        truth = policy_value(world, agent.sampler(), n_truth, seed=config.seeds[0] + 11 + i).per_session
        results = score_sessions(sample.log, sample.action_dist[label], config.compare.estimators,
                                 n_bootstrap=n_bootstrap, seed=config.seeds[0])
        rows += [{"policy": label, "estimator": est.estimator, "estimate": est.value, "low": est.low,
                  "high": est.high, "stderr": est.stderr, "truth": truth.value, "truth_stderr": truth.stderr,
                  "covered": bool(est.low <= truth.value <= est.high) if est.supported else None,
                  "ess_first": est.ess_first, "ess_last": est.ess_last, "mean_weight": est.mean_weight,
                  "supported": est.supported, "n_sessions": est.n_sessions, "warnings": list(est.warnings)}
                 for est in results]
    return rows


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


def compare_on_log(config: ExperimentConfig, *, n_bootstrap: int = 200) -> Comparison:
    """Offline comparison on a log file: learn on its first half, estimate on the second; no truth.

    Policies are built for the log's catalog (``k`` = the log's slots on the page)
    and learn from the first half of the rows in log order; ``truth`` is NaN. Expected
    exposure uses the DCG discount (a log does not know its slots' examination) and the
    catalog's categories, without merit.
    """
    assert config.data.path is not None  # checked by the config
    log = load_parquet(config.data.path)
    if log.n_rounds < 4:
        raise ValueError(f"data.path {config.data.path} holds {log.n_rounds} decisions; compare needs a "
                         "log with at least 4 (half to learn on, half to estimate on).")
    cut = log.n_rounds // 2
    train, test = log.take(np.arange(cut)), log.take(np.arange(cut, log.n_rounds))
    rows = []
    exposure = {}
    weights = position_weights(log.n_positions)
    for spec in config.policies:
        params: dict[str, Any] = {"n_items": log.n_items, "k": log.n_positions,
                                  "dim_context": log.dim_context, "seed": config.seeds[0]}
        policy = make_policy(spec.name, **(params | spec.params))
        policy.update(Feedback.from_log(train))
        dist = policy.action_dist(test.context)
        results = estimate_all(test, dist, estimators=config.compare.estimators, n_bootstrap=n_bootstrap,
                               seed=config.seeds[0], derive_slate_inputs=True)
        rows += _rows(spec.label, test, dist, results, float("nan"))
        exposure[spec.label] = report_from_items(expected_exposure(dist, weights), log.catalog.category,
                                                 weights, test.n_rounds)
    return Comparison(pd.DataFrame(rows), exposure)


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
