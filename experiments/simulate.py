"""Online simulation: each policy x seed learns in the world; per-round metrics and held-out values.

A task (one policy, one seed) runs ``sessions`` shopping sessions in rounds of
``batch_sessions`` sessions stepped together; after every step the policy
learns from the per-slot rewards. Every round adds one row of metrics. After
training, the frozen policy runs ``eval_sessions`` fresh sessions without
learning: that is its value per session (Monte Carlo against the world's
truth). Tasks run in parallel over processes; each is seeded only by its own
(policy, seed), so results do not depend on the parallelism.
"""

from __future__ import annotations

import inspect
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from bandits import Feedback, SlatePolicy, make_policy, registered_policies
from experiments.config import DataSpec, ExperimentConfig, PolicySpec
from experiments.engine import Engine, LocalEngine
from simulator.world import SessionState, StepOutcome, World, WorldConfig

FloatArray = npt.NDArray[np.float64]
logger = logging.getLogger(__name__)
EVAL_SESSIONS = 300


def build_world(data: DataSpec) -> World:
    """The world an experiment runs in, with the configured reward."""
    if data.source == "world":
        config = WorldConfig.from_toml(data.world_config) if data.world_config else WorldConfig()
        world = World(config, data.world_seed)
    elif data.source == "calibrated":
        from simulator.world.calibrate import load_world

        assert data.path is not None  # checked by the config
        world = load_world(data.path)
    else:
        raise ValueError(f"`data.source` = {data.source!r} has no world to simulate in; "
                         "simulate needs a world or a calibrated world.")
    return world.with_config(reward_type=data.reward) if world.reward_type != data.reward else world


@dataclass(slots=True)
class WorldAgent:
    """A policy placed in a world: builds its context (the anchor appended when it needs one)."""

    policy: SlatePolicy
    anchored: bool

    def context(self, world: World, state: SessionState) -> FloatArray:
        """Shape (n, d) or (n, d + 1): the world's context, plus the anchor item for anchored policies."""
        ctx = world.context(state)
        if self.anchored:
            ctx = np.hstack([ctx, state.anchor[:, None].astype(np.float64)])
        return ctx


def build_agent(spec: PolicySpec, world: World, seed: int) -> WorldAgent:
    """Construct ``spec``'s policy for ``world``, filling what the world knows."""
    cls = registered_policies()[spec.name]
    accepted = inspect.signature(cls.__init__).parameters
    anchored = "anchor_column" in accepted
    d = world.dim_context + (1 if anchored else 0)
    params: dict[str, Any] = {"n_items": world.n_items, "k": world.k, "dim_context": d, "seed": seed}
    catalog = world.catalog
    fill = {"anchor_column": world.dim_context, "item_features": catalog.features,
            "price": catalog.price, "category": catalog.category,
            "examination": tuple(float(x) for x in world.position_bias)}
    for key, value in fill.items():
        if key in accepted and key not in spec.params and (
                accepted[key].default is inspect.Parameter.empty or key in ("anchor_column", "examination")):
            params[key] = value
    params.update(spec.params)
    return WorldAgent(make_policy(spec.name, **params), anchored)


def slot_reward(world: World, out: StepOutcome) -> FloatArray:
    """Per-slot reward (n, k) of the world's reward type."""
    rt = world.reward_type
    return out.click if rt == "click" else out.purchase if rt == "purchase" else out.revenue


def run_round(world: World, agent: WorldAgent, n_sessions: int, rng: np.random.Generator, *,
              learn: bool) -> dict[str, float]:
    """Run ``n_sessions`` sessions to their end; learn after every step when ``learn``."""
    state = world.new_sessions(n_sessions, rng)
    m = dict.fromkeys(("decisions", "reward", "expected", "best", "clicks", "purchases", "revenue",
                       "cross_clicks", "up_clicks", "cross_revenue", "up_revenue",
                       "cross_shown", "up_shown"), 0.0)
    m["sessions"] = float(n_sessions)
    for j in range(world.k):
        m[f"clicks_slot{j}"] = 0.0
    while state.n:
        ctx = agent.context(world, state)
        d = agent.policy.select(ctx, eligible=world.eligible(state), required=world.required(state))
        slate = d.slate
        m["expected"] += float(world.expected_reward(state, slate).sum())
        m["best"] += float(world.best_slate(state)[1].sum())
        cross = np.take_along_axis(world.cross_sell(state), slate, axis=1)
        up = np.take_along_axis(world.up_sell(state), slate, axis=1)
        out = world.step(state, slate, rng)
        reward = slot_reward(world, out)
        m["decisions"] += state.n
        m["reward"] += float(out.reward.sum())
        m["clicks"] += float(out.click.sum())
        m["purchases"] += float(out.purchase.sum())
        m["revenue"] += float(out.revenue.sum())
        m["cross_clicks"] += float((out.click * cross).sum())
        m["up_clicks"] += float((out.click * up).sum())
        m["cross_revenue"] += float((out.revenue * cross).sum())
        m["up_revenue"] += float((out.revenue * up).sum())
        m["cross_shown"] += float(cross.sum())
        for j, clicks in enumerate(out.click.sum(axis=0)):
            m[f"clicks_slot{j}"] += float(clicks)
        m["up_shown"] += float(up.sum())
        if learn:
            agent.policy.update(Feedback(ctx, slate, reward))
        state = out.state.take(out.state.alive)
    return m


def evaluate(world: World, agent: WorldAgent, n_sessions: int, rng: np.random.Generator) -> FloatArray:
    """Reward of each of ``n_sessions`` held-out sessions under the frozen policy, shape (n_sessions,)."""
    state = world.new_sessions(n_sessions, rng)
    index = np.arange(n_sessions)
    total = np.zeros(n_sessions)
    while state.n:
        ctx = agent.context(world, state)
        d = agent.policy.select(ctx, eligible=world.eligible(state), required=world.required(state))
        out = world.step(state, d.slate, rng)
        total[index] += out.reward
        keep = out.state.alive
        state, index = out.state.take(keep), index[keep]
    return total


@dataclass(frozen=True, slots=True)
class TaskResult:
    """What one policy x seed run produced."""

    label: str
    seed: int
    rounds: pd.DataFrame
    eval_rewards: FloatArray


def train_ppo_agent(world: World, params: dict[str, Any], seed: int) -> WorldAgent:
    """A PPO slate policy trained by stable-baselines3 on ``world``'s sessions for ``train_steps`` steps.

    Training happens before the run (PPO learns from whole sessions, not per decision);
    the policy then plays the run's sessions frozen, like every policy's held-out part.
    """
    import torch

    from experiments.ppo.config import parse_config as ppo_config
    from experiments.ppo.envs import anchor_relation
    from experiments.ppo.train import build_model, ppo_policy

    steps = int(params.get("train_steps", 100_000))
    num_envs = int(params.get("num_envs", 64))
    lr = float(params.get("learning_rate", 1e-3))
    raw = {"world": {"kind": "default", "seed": int(world.seed or 0), "reward": world.reward_type},
           "ppo": {"total_steps": steps, "num_envs": num_envs, "n_steps": 32,
                   "batch_size": min(2048, num_envs * 32), "learning_rate": lr,
                   "net_arch": list(params.get("net_arch", [128, 128])), "seed": seed, "threads": 1,
                   # items scored through their features and their relation to the anchor
                   # (docs/ppo.md): what lets PPO learn the session trade-off in few steps
                   "item_features": True, "anchor_relation": anchor_relation(world) is not None,
                   "reward_scale": 0.01 if world.reward_type == "revenue" else 1.0},
           "eval": {"seeds": [seed + 10_000], "bandits": ["uniform"],
                    "temperature": float(params.get("temperature", 0.25))}}
    cfg = ppo_config(raw, source="policies.ppo.params")
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    model = build_model(cfg, world)
    model.learn(steps)
    return WorldAgent(ppo_policy(model, world, cfg), anchored=False)


def run_task(config: ExperimentConfig, policy_index: int, seed: int) -> TaskResult:
    """Train one policy with one seed, then evaluate it frozen on held-out sessions.

    Bandits learn online during the run's sessions; a ``ppo`` entry is trained first
    (:func:`train_ppo_agent`) and plays the run's sessions frozen.
    """
    spec = config.policies[policy_index]
    world = build_world(config.data)
    learns_online = spec.name != "ppo"
    agent = build_agent(spec, world, seed) if learns_online else train_ppo_agent(world, spec.params, seed)
    rng = np.random.default_rng([seed, 1])
    rows = []
    done = 0
    r = 0
    while done < config.simulate.sessions:
        b = min(config.simulate.batch_sessions, config.simulate.sessions - done)
        row = run_round(world, agent, b, rng, learn=learns_online)
        done += b
        row |= {"round": r, "sessions_seen": done}
        rows.append(row)
        r += 1
    held_out = np.random.default_rng([seed, 2])
    eval_rewards = evaluate(world, agent, EVAL_SESSIONS, held_out)
    frame = pd.DataFrame(rows)
    frame.insert(0, "seed", seed)
    frame.insert(0, "policy", spec.label)
    return TaskResult(spec.label, seed, frame, eval_rewards)


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
    """Held-out reward per session of each policy, with a 95% interval.

    Mean, standard error and normal-approximation interval over all held-out
    sessions of all seeds.
    """
    from scipy import stats

    z = float(stats.norm.ppf(0.5 + level / 2))
    rows = []
    labels = list(dict.fromkeys(r.label for r in results))
    for label in labels:
        samples = np.concatenate([r.eval_rewards for r in results if r.label == label])
        se = float(samples.std(ddof=1) / np.sqrt(samples.size))
        mean = float(samples.mean())
        rows.append({"policy": label, "value": mean, "stderr": se, "low": mean - z * se,
                     "high": mean + z * se, "sessions": int(samples.size)})
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
