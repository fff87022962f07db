"""Train a PPO slate policy on the session environment, with evaluation against the bandits.

:func:`train` writes into ``out``:

* ``config.json`` — the config the run used;
* ``checkpoints/step_<N>.zip`` (SB3's ``PPO.save``: weights and optimizer) with
  ``step_<N>.json`` and the bandits' states ``step_<N>.<bandit>.npz`` — what
  ``resume=True`` restarts from;
* ``learning_curves.csv`` and ``learning_curves.png`` — reward per session on
  the held-out seeds, for PPO and for each bandit trained online for the same
  number of environment steps, at every evaluation;
* ``policy.npz`` (the common policy format, ``SlatePolicy.load`` after
  ``import bandits.ppo``) and ``model.zip`` + ``model.json`` (SB3's format plus
  our metadata, :meth:`bandits.ppo.PPOSlatePolicy.load_sb3`);
* ``summary.json`` — the final comparison (also returned).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch as th
from stable_baselines3 import PPO
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import Logger

from bandits import SlatePolicy
from bandits.ppo import PLSlateActorCritic, PPOSlatePolicy, network_kwargs
from experiments.agents import WorldAgent
from experiments.plots import learning_curves
from experiments.ppo.config import TrainConfig
from experiments.ppo.envs import anchor_relation, item_features, make_vec_env, make_world
from experiments.ppo.evaluate import OnlineBandit, session_values, t_interval
from simulator.envs import WorldLike
from simulator.envs.session import context_stats
from simulator.errors import TrainingError

logger = logging.getLogger(__name__)

GOAL_RATIO = 1.10
#: PPO's row in the learning curves and the summary (every other row is a bandit).
PPO_LABEL = "ppo"
CURVE_COLUMNS = ["step", "policy", "seed", "reward_per_session", "revenue_per_session", "steps_per_session"]


def check_fits(config: TrainConfig, world: WorldLike) -> None:
    """Raise :class:`TrainingError` when the PPO batch sizes do not divide the rollout."""
    problem = config.ppo.batch_problem()
    if problem is not None:
        raise TrainingError(f"`ppo.batch_size` {problem}.")
    if int(world.n_items) < int(world.k):
        raise TrainingError(f"the world has n_items = {world.n_items} < k = {world.k}.")
    if config.ppo.anchor_relation and anchor_relation(world) is None:
        raise TrainingError(f"`ppo.anchor_relation = true` needs a world whose context holds the anchor's "
                            f"category and log price (world.kind = \"default\"), found world.kind = "
                            f"{config.world.kind!r}; set ppo.anchor_relation = false.")


def ppo_policy(model: BaseAlgorithm, world: WorldLike, config: TrainConfig,
               temperature: float | None = None) -> PPOSlatePolicy:
    """The slate policy of a PPO model's current weights."""
    policy = PPOSlatePolicy(int(world.n_items), int(world.k), int(world.dim_context),
                            net_arch=config.ppo.net_arch, activation=config.ppo.activation,
                            temperature=config.eval.temperature if temperature is None else temperature,
                            n_item_features=(item_features(world, config.ppo.price_knots).shape[1]
                                             if config.ppo.item_features else 0),
                            free_item_scores=config.ppo.free_item_scores,
                            anchor_relation=anchor_relation(world) if config.ppo.anchor_relation else None,
                            seed=config.ppo.seed)
    policy.load_network_state(model.policy.state_dict())
    return policy


class _Run:
    """Everything one training run holds between callbacks."""

    def __init__(self, config: TrainConfig, out: Path, world: WorldLike) -> None:
        self.config = config
        self.out = out
        self.world = world
        self.ckpt_dir = out / "checkpoints"
        self.rows: list[dict[str, Any]] = []
        self.bandits = [OnlineBandit(name, world, config.eval.bandit_num_envs, config.world.reward,
                                     seed=config.ppo.seed + 1 + i,
                                     params=config.eval.bandit_params.get(name))
                        for i, name in enumerate(config.eval.bandits)]
        self.last_eval = -1
        #: wall-clock seconds spent evaluating, training the bandits and checkpointing.
        self.side_seconds = 0.0

    def evaluate(self, model: BaseAlgorithm, steps: int) -> dict[str, list[float]]:
        """Evaluate PPO and every bandit (advanced to ``steps``) on the held-out seeds."""
        began = time.perf_counter()
        cfg = self.config
        policies: dict[str, SlatePolicy | WorldAgent] = {PPO_LABEL: ppo_policy(model, self.world, cfg)}
        for bandit in self.bandits:
            bandit.advance(steps - bandit.steps)
            policies[bandit.name] = bandit.frozen()
        per_seed: dict[str, list[float]] = {}
        for name, policy in policies.items():
            per_seed[name] = []
            for seed in cfg.eval.seeds:
                values = session_values(policy, self.world, cfg.eval.n_sessions, seed, cfg.world.reward)
                per_seed[name].append(float(values.reward.mean()))
                self.rows.append({"step": steps, "policy": name, "seed": seed,
                                  "reward_per_session": float(values.reward.mean()),
                                  "revenue_per_session": float(values.revenue.mean()),
                                  "steps_per_session": float(values.steps.mean())})
        self.last_eval = steps
        self.write_curves()
        self.side_seconds += time.perf_counter() - began
        logger.info("step %d: %s", steps, {k: round(float(np.mean(v)), 4) for k, v in per_seed.items()})
        return per_seed

    def write_curves(self) -> None:
        """``learning_curves.csv`` and ``.png`` from every evaluation so far."""
        frame = pd.DataFrame(self.rows, columns=CURVE_COLUMNS)
        frame.to_csv(self.out / "learning_curves.csv", index=False)
        if frame.empty:
            return
        fig = learning_curves(frame, metrics=("reward_per_session",))
        fig.savefig(self.out / "learning_curves.png", dpi=100)
        import matplotlib.pyplot as plt

        plt.close(fig)

    def checkpoint(self, model: BaseAlgorithm, steps: int) -> Path:
        """Save the model (with optimizer), the bandits and the curves; prune old checkpoints."""
        began = time.perf_counter()
        self.ckpt_dir.mkdir(parents=True, exist_ok=True)
        stem = f"step_{steps:012d}"
        model.save(self.ckpt_dir / f"{stem}.zip")
        bandit_files = {}
        for bandit in self.bandits:
            path = bandit.policy.save(self.ckpt_dir / f"{stem}.{bandit.name}.npz")
            bandit_files[bandit.name] = {"file": path.name, "steps": bandit.steps}
        meta = {"steps": steps, "model": f"{stem}.zip", "bandits": bandit_files,
                "config": self.config.to_json()}
        (self.ckpt_dir / f"{stem}.json").write_text(json.dumps(meta, indent=2))
        self.write_curves()
        for old in sorted(self.ckpt_dir.glob("step_*.json"))[:-self.config.checkpoint.keep]:
            for f in self.ckpt_dir.glob(f"{old.stem}.*"):
                f.unlink()
        self.side_seconds += time.perf_counter() - began
        return self.ckpt_dir / f"{stem}.zip"

    def restore(self, model: PPO) -> int:
        """Load the latest checkpoint into ``model`` and the bandits; return its step count."""
        metas = sorted(self.ckpt_dir.glob("step_*.json"))
        if not metas:
            raise TrainingError(f"nothing to resume: no checkpoint in {self.ckpt_dir}; run without --resume.")
        meta = json.loads(metas[-1].read_text())
        now = self.config.to_json()
        changed = [f"{table}.{key}" for table in ("world", "ppo") for key in now[table]
                   if key != "total_steps" and meta["config"][table].get(key) != now[table][key]]
        if changed:
            raise TrainingError(f"{metas[-1]} was written with a different config ({', '.join(changed)} "
                                "changed; only ppo.total_steps and [eval] may change); resume with the "
                                "config of that run or start a new --out directory.")
        model.set_parameters(str(self.ckpt_dir / meta["model"]), exact_match=True, device="cpu")
        model.num_timesteps = int(meta["steps"])
        for bandit in self.bandits:
            saved = meta["bandits"].get(bandit.name)
            if saved is None:
                bandit.advance(int(meta["steps"]))
                continue
            bandit.policy = SlatePolicy.load(self.ckpt_dir / saved["file"])
            bandit.steps = int(saved["steps"])
        curves = self.out / "learning_curves.csv"
        if curves.is_file():
            frame = pd.read_csv(curves)
            self.rows = [{str(key): value for key, value in r.items()} for r in frame.to_dict("records")
                         if int(r["step"]) <= int(meta["steps"])]
        self.last_eval = max((int(r["step"]) for r in self.rows), default=-1)
        return int(meta["steps"])


class _Callback(BaseCallback):
    """Progress, periodic evaluation and checkpoints, driven by SB3's step count."""

    def __init__(self, run: _Run, start: int, progress: Callable[[int], None] | None) -> None:
        super().__init__()
        self.run = run
        self.progress = progress
        self.reported = start
        every_eval = run.config.eval.every_steps
        every_ckpt = run.config.checkpoint.every_steps
        self.next_eval = (start // every_eval + 1) * every_eval if every_eval else None
        self.next_ckpt = (start // every_ckpt + 1) * every_ckpt if every_ckpt else None

    def _on_step(self) -> bool:
        steps = int(self.num_timesteps)
        if self.progress is not None and steps > self.reported:
            self.progress(steps - self.reported)
        self.reported = steps
        if self.next_eval is not None and steps >= self.next_eval:
            self.run.evaluate(self.model, steps)
            every = self.run.config.eval.every_steps
            self.next_eval = (steps // every + 1) * every
        if self.next_ckpt is not None and steps >= self.next_ckpt:
            self.run.checkpoint(self.model, steps)
            every = self.run.config.checkpoint.every_steps
            self.next_ckpt = (steps // every + 1) * every
        return True


def build_model(config: TrainConfig, world: WorldLike, seed_offset: int = 0) -> PPO:
    """A fresh SB3 PPO with the Plackett-Luce slate network on the configured sessions."""
    p = config.ppo
    mean, std = context_stats(world)
    venv = make_vec_env(world, p.num_envs, config.world.reward, seed=p.seed + seed_offset,
                        reward_scale=p.reward_scale)
    kwargs = network_kwargs(p.net_arch, p.activation) | {"context_mean": mean.tolist(),
                                                         "context_std": std.tolist(),
                                                         "free_item_scores": p.free_item_scores}
    if p.item_features:
        kwargs["item_features"] = item_features(world, p.price_knots).tolist()
    if p.anchor_relation:
        kwargs["anchor_relation"] = anchor_relation(world)
    model = PPO(PLSlateActorCritic, venv, learning_rate=p.learning_rate, n_steps=p.n_steps,
                batch_size=p.batch_size, n_epochs=p.n_epochs, gamma=p.gamma, gae_lambda=p.gae_lambda,
                clip_range=p.clip_range, ent_coef=p.ent_coef, vf_coef=p.vf_coef,
                max_grad_norm=p.max_grad_norm, policy_kwargs=kwargs, seed=p.seed, device="cpu", verbose=0)
    # Our own logger without outputs: SB3's default creates an empty SB3-<date> folder in /tmp per run.
    model.set_logger(Logger(folder=None, output_formats=[]))
    return model


def train_frozen(config: TrainConfig, world: WorldLike) -> PPOSlatePolicy:
    """PPO trained on ``world`` for ``ppo.total_steps`` steps, returned as its (frozen) slate policy.

    What an experiment's ``ppo`` entry runs before it plays (no evaluation, no
    checkpoints, nothing written); torch uses ``ppo.threads`` threads and is seeded
    with ``ppo.seed``.

    Raises:
        TrainingError: the config does not fit the world (see :func:`check_fits`).
    """
    check_fits(config, world)
    th.set_num_threads(config.ppo.threads)
    th.manual_seed(config.ppo.seed)
    model = build_model(config, world)
    model.learn(config.ppo.total_steps)
    return ppo_policy(model, world, config)


def train(config: TrainConfig, out: str | Path, *, resume: bool = False,
          progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Train, evaluate against the bandits, and write everything into ``out``.

    Args:
        config: the validated config.
        out: output directory (created).
        resume: continue from the latest checkpoint in ``out/checkpoints``.
        progress: called with the number of new environment steps as training advances.

    Returns:
        The final comparison (also written to ``out/summary.json``).

    Raises:
        TrainingError: a config that does not fit, or ``resume`` without a checkpoint.
    """
    target = Path(out)
    target.mkdir(parents=True, exist_ok=True)
    th.set_num_threads(config.ppo.threads)
    world = make_world(config.world)
    check_fits(config, world)
    run = _Run(config, target, world)
    model = build_model(config, world)
    start = run.restore(model) if resume else 0
    if resume:
        # Fresh sessions after a restart; the run is not bit-identical to an uninterrupted one.
        model.set_env(make_vec_env(world, config.ppo.num_envs, config.world.reward,
                                   seed=config.ppo.seed + start, reward_scale=config.ppo.reward_scale))
        model._last_obs = None
    (target / "config.json").write_text(json.dumps(config.to_json(), indent=2))
    if progress is not None and start:
        progress(start)
    began = time.perf_counter()
    remaining = config.ppo.total_steps - start
    if remaining > 0:
        model.learn(remaining, callback=_Callback(run, start, progress), reset_num_timesteps=not resume)
    seconds = time.perf_counter() - began - run.side_seconds
    steps = int(model.num_timesteps)
    per_seed = run.evaluate(model, steps) if run.last_eval != steps else _last(run, steps)
    if steps != start or not list(run.ckpt_dir.glob("step_*.json")):
        run.checkpoint(model, steps)
    final = ppo_policy(model, world, config)
    final.save(target / "policy.npz")
    final.save_sb3(target / "model.zip")
    summary = summarize(config, per_seed, steps, seconds)
    (target / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def _last(run: _Run, steps: int) -> dict[str, list[float]]:
    per_seed: dict[str, list[float]] = {}
    for row in run.rows:
        if int(row["step"]) == steps:
            per_seed.setdefault(str(row["policy"]), []).append(float(row["reward_per_session"]))
    return per_seed


def summarize(config: TrainConfig, per_seed: dict[str, list[float]], steps: int,
              seconds: float) -> dict[str, Any]:
    """The final comparison: each policy's reward per session over seeds, PPO / best bandit."""
    values = {name: t_interval(np.asarray(v)) for name, v in per_seed.items()}
    bandits = [name for name in per_seed if name != PPO_LABEL]
    summary: dict[str, Any] = {
        "world": config.world.kind, "world_seed": config.world.seed, "reward": config.world.reward,
        # train_seconds is PPO alone: evaluation, the bandits and checkpoints are excluded.
        "steps": steps, "train_seconds": round(seconds, 1), "eval_seeds": list(config.eval.seeds),
        "n_sessions": config.eval.n_sessions,
        "reward_per_session": {name: iv.to_json() | {"per_seed": per_seed[name]}
                               for name, iv in values.items()},
        "goal_ratio": GOAL_RATIO,
    }
    if bandits and PPO_LABEL in per_seed:
        best = max(bandits, key=lambda name: values[name].mean)
        ppo = np.asarray(per_seed[PPO_LABEL])
        other = np.asarray(per_seed[best])
        ratio = t_interval(ppo / np.where(other > 0, other, np.nan)) if (other > 0).all() else None
        summary["best_bandit"] = best
        summary["ratio_to_best_bandit"] = None if ratio is None else ratio.to_json()
        summary["meets_goal"] = bool(ratio is not None and ratio.low >= GOAL_RATIO)
    return summary
