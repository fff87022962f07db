"""``slatewise train-ppo``: train a PPO slate policy and compare it with the bandits."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import click
from tqdm import tqdm

from experiments.cli.output import emit_json, json_option
from simulator.errors import ConfigError

if TYPE_CHECKING:
    from experiments.ppo.config import TrainConfig


def _override(config: TrainConfig, total_steps: int | None, seeds: str | None,
              train_seed: int | None) -> TrainConfig:
    """The config with the command line's overrides, checked as the config file is."""
    ppo, evalc = config.ppo, config.eval
    if total_steps is not None:
        ppo = replace(ppo, total_steps=total_steps)
    if train_seed is not None:
        ppo = replace(ppo, seed=train_seed)
    if seeds is not None:
        try:
            values = tuple(int(v) for v in seeds.split(",") if v.strip())
        except ValueError:
            values = ()
        if not values or min(values) < 0:
            raise click.BadParameter(f"expected comma-separated integers >= 0, found {seeds!r}",
                                     param_hint="--seeds")
        evalc = replace(evalc, seeds=values)
    if ppo.seed in evalc.seeds:
        raise click.BadParameter(f"the training seed {ppo.seed} is among the held-out evaluation seeds "
                                 f"{list(evalc.seeds)}; pick other --seeds or --seed", param_hint="--seeds")
    return replace(config, ppo=ppo, eval=evalc)


@click.command("train-ppo")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="TOML config, e.g. experiments/configs/ppo_session.toml.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Directory for checkpoints, learning curves, the policy and summary.json.")
@click.option("--resume", is_flag=True, help="Continue from the latest checkpoint in OUT/checkpoints.")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Show a progress bar.")
@click.option("--total-steps", type=click.IntRange(min=1), default=None,
              help="Environment steps to train for (overrides ppo.total_steps).")
@click.option("--seeds", default=None,
              help="Comma-separated held-out evaluation seeds (overrides eval.seeds), e.g. 101,102,103.")
@click.option("--seed", "train_seed", type=click.IntRange(min=0), default=None,
              help="Training seed (overrides ppo.seed); must not be among the evaluation seeds.")
@json_option
def train_ppo_cmd(config_path: Path, out: Path, resume: bool, progress: bool, total_steps: int | None,
                  seeds: str | None, train_seed: int | None, as_json: bool) -> None:
    """Train PPO on the session environment; evaluate it against bandits on held-out seeds."""
    from experiments.ppo.config import load_train_config
    from experiments.ppo.train import train
    from simulator.errors import TrainingError

    try:
        config = load_train_config(config_path)
    except ConfigError as err:
        raise click.ClickException(str(err)) from None
    config = _override(config, total_steps, seeds, train_seed)
    bar = tqdm(total=config.ppo.total_steps, unit="step", unit_scale=True, desc="train-ppo",
               disable=not progress, dynamic_ncols=True)
    def advance(steps: int) -> None:
        bar.update(steps)

    try:
        summary = train(config, out, resume=resume, progress=advance)
    except TrainingError as err:
        raise click.ClickException(str(err)) from None
    finally:
        bar.close()
    if as_json:
        emit_json(summary | {"out": str(out)})
        return
    click.echo(f"trained {summary['steps']:,} steps in {summary['train_seconds']:.0f} s; "
               f"{summary['reward']} per session on {len(summary['eval_seeds'])} held-out seeds "
               f"({summary['n_sessions']:,} sessions each), mean [95% interval]:")
    for name, value in summary["reward_per_session"].items():
        click.echo(f"  {name:<22} {value['mean']:10.4f}  [{value['low']:.4f}, {value['high']:.4f}]")
    ratio = summary.get("ratio_to_best_bandit")
    if ratio is not None:
        verdict = "meets" if summary["meets_goal"] else "does not meet"
        click.echo(f"PPO / best bandit ({summary['best_bandit']}): {ratio['mean']:.3f} "
                   f"[{ratio['low']:.3f}, {ratio['high']:.3f}] — {verdict} the "
                   f"{summary['goal_ratio']:.2f}x goal (lower end of the interval)")
    click.echo(f"wrote {out}/policy.npz, model.zip, learning_curves.csv/png, summary.json")
