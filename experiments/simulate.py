"""Online simulation: each policy x seed learns in the world; per-round metrics and held-out values.

A task (one policy, one seed) runs ``sessions`` shopping sessions in rounds of
``batch_sessions`` sessions stepped together; after every step a policy that
learns online learns from the per-slot rewards (a policy its trainer trains
before the run, such as PPO, plays them frozen). Every round adds one row of
metrics. After
training, the frozen policy runs ``eval_sessions`` fresh sessions without
learning: that is its value per session (Monte Carlo against the world's
truth). Tasks run in parallel over processes; each is seeded only by its own
(policy, seed), so results do not depend on the parallelism.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

from experiments.agents import WorldAgent
from experiments.config import ExperimentConfig, PolicySpec
from experiments.engine import Engine, LocalEngine
from experiments.online import run_round
from experiments.worlds import build_world
from simulator.rollout import Step, rollout
from simulator.world import World

FloatArray = npt.NDArray[np.float64]
logger = logging.getLogger(__name__)
EVAL_SESSIONS = 300


@dataclass(frozen=True, slots=True)
class TaskResult:
    """What one policy x seed run produced.

    ``eval_rewards`` and ``eval_decisions``: shape (EVAL_SESSIONS,), each held-out session's
    total reward and number of decisions (slates shown).
    """

    label: str
    seed: int
    rounds: pd.DataFrame
    eval_rewards: FloatArray
    eval_decisions: FloatArray


def play(config: ExperimentConfig, spec: PolicySpec, agent: WorldAgent, world: World,
         seed: int) -> TaskResult:
    """The run of one built agent: ``simulate.sessions`` sessions in rounds, then the held-out sessions.

    The agent learns during the rounds when its spec's trainer says it learns online;
    otherwise (trained before the run) it plays them frozen.
    """
    learn = spec.trainer.online
    rng = np.random.default_rng([seed, 1])
    rows = []
    done = 0
    r = 0
    while done < config.simulate.sessions:
        b = min(config.simulate.batch_sessions, config.simulate.sessions - done)
        row: dict[str, float | int] = dict(run_round(world, agent, b, rng, learn=learn))
        done += b
        row |= {"round": r, "sessions_seen": done}
        rows.append(row)
        r += 1
    held_out = np.random.default_rng([seed, 2])
    decisions = np.zeros(EVAL_SESSIONS)

    def count(step: Step) -> None:
        decisions[step.session] += 1

    eval_rewards = rollout(world, agent, EVAL_SESSIONS, held_out, on_step=count)
    frame = pd.DataFrame(rows)
    frame.insert(0, "seed", seed)
    frame.insert(0, "policy", spec.label)
    return TaskResult(spec.label, seed, frame, eval_rewards, decisions)


def run_task(config: ExperimentConfig, policy_index: int, seed: int) -> TaskResult:
    """Build (and, for a policy trained before the run, train) one policy with one seed, then play it.

    A bandit learns online during the run's sessions; a ``ppo`` entry is trained
    first by its trainer and plays the run's sessions frozen. Either way it is
    then evaluated frozen on held-out sessions.
    """
    spec = config.policies[policy_index]
    world = build_world(config.data)
    agent = spec.trainer.build(spec.params, world, seed)
    return play(config, spec, agent, world, seed)


def _run_task_args(args: tuple[ExperimentConfig, int, int]) -> TaskResult:
    return run_task(*args)


def run_all(config: ExperimentConfig, *, workers: int | None = None, progress: bool = True,
            engine: Engine | None = None) -> list[TaskResult]:
    """Every policy x seed on ``engine`` (default: local processes, ``workers`` of them).

    Results come back in config order (policy, then seed) whatever the engine or parallelism.
    """
    tasks = [(config, i, s) for i in range(len(config.policies)) for s in config.seeds]
    engine = engine or LocalEngine(workers or config.workers or None)
    return engine.map(_run_task_args, tasks, desc="simulate", progress=progress)


def metrics_frame(results: list[TaskResult]) -> pd.DataFrame:
    """All rounds of all runs, with running per-session reward, cumulative and per-round regret."""
    frame = pd.concat([r.rounds for r in results], ignore_index=True)
    g = frame.groupby(["policy", "seed"], sort=False)
    frame["reward_per_session"] = g["reward"].cumsum() / g["sessions"].cumsum()
    frame["regret"] = (g["best"].cumsum() - g["expected"].cumsum())
    frame["regret_per_decision"] = frame["regret"] / g["decisions"].cumsum()
    frame["sessions_seen"] = g["sessions"].cumsum()
    # This round's mean regret per decision: falls as a policy learns, comparable across
    # policies whose sessions last a different number of steps.
    regret = frame["best"] - frame["expected"]
    frame["round_regret_per_decision"] = regret / frame["decisions"].clip(lower=1)
    return frame


def value_table(results: list[TaskResult], level: float = 0.95) -> pd.DataFrame:
    """Held-out reward per session and per decision of each policy, with 95% intervals.

    Per session: mean, standard error and normal-approximation interval over all
    held-out sessions of all seeds. Per decision: total reward over total
    decisions (a ratio estimate; its standard error by the delta method over sessions).
    """
    from scipy import stats

    z = float(stats.norm.ppf(0.5 + level / 2))
    rows = []
    labels = list(dict.fromkeys(r.label for r in results))
    for label in labels:
        samples = np.concatenate([r.eval_rewards for r in results if r.label == label])
        lengths = np.concatenate([r.eval_decisions for r in results if r.label == label])
        se = float(samples.std(ddof=1) / np.sqrt(samples.size))
        mean = float(samples.mean())
        per_decision = float(samples.sum() / lengths.sum())
        resid = (samples - per_decision * lengths) / lengths.mean()
        se_d = float(resid.std(ddof=1) / np.sqrt(samples.size))
        rows.append({"policy": label, "value": mean, "stderr": se, "low": mean - z * se,
                     "high": mean + z * se, "per_decision": per_decision, "per_decision_stderr": se_d,
                     "per_decision_low": per_decision - z * se_d,
                     "per_decision_high": per_decision + z * se_d,
                     "decisions_per_session": float(lengths.mean()), "sessions": int(samples.size)})
    return pd.DataFrame(rows)


def share_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Cross-sell and up-sell share of clicks and revenue per policy over the whole run."""
    tot = frame.groupby("policy", sort=False)[["clicks", "revenue", "cross_clicks", "up_clicks",
                                               "cross_revenue", "up_revenue"]].sum()
    def share(part: str, whole: str) -> FloatArray:
        ratio = tot[part].to_numpy() / np.maximum(tot[whole].to_numpy(), 1e-300)
        return np.where(tot[whole].to_numpy() > 0, ratio, 0.0)

    out = pd.DataFrame({
        "policy": tot.index,
        "cross_sell_clicks": share("cross_clicks", "clicks"),
        "up_sell_clicks": share("up_clicks", "clicks"),
        "cross_sell_revenue": share("cross_revenue", "revenue"),
        "up_sell_revenue": share("up_revenue", "revenue"),
    })
    return out.reset_index(drop=True)


def write_metrics(frame: pd.DataFrame, out_dir: Path) -> Path:
    """Per-round metrics to ``out_dir/metrics.parquet`` (atomically)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / "metrics.parquet"
    tmp = out_dir / ".metrics.parquet.tmp"
    frame.to_parquet(tmp, index=False)
    os.replace(tmp, target)
    return target
