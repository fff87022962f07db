"""``slatewise world``: generate logs from the ground-truth shop, calibrate a shop to a real log."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from bandits.policy import SlatePolicy, registered_policies
from experiments.cli.output import Stages, emit_json, json_option, show_progress
from simulator.errors import PolicyError
from simulator.logs import LogFormatError, LogValidationError, load_parquet, save_parquet
from simulator.world import (
    LOGGING_POLICIES,
    SCORES,
    World,
    WorldConfig,
    WorldError,
    WorldPolicy,
    calibrate,
    generate_log,
    make_logging_policy,
    policy_value,
    save_world,
)
from simulator.world.generate import policy_name


@click.group("world")
def world_group() -> None:
    """The ground-truth shop: generate logs with exact propensities, calibrate to real logs."""


def _estimate_text(name: str, est: Any) -> str:
    if est.exact:
        return f"  {name:<15}{est.value:>12.4f}  (exact)"
    return f"  {name:<15}{est.value:>12.4f}  [{est.ci_low:.4f}, {est.ci_high:.4f}]  (n={est.n:,})"


def _policy(name: str, params: dict[str, Any], world: World, seed: int) -> WorldPolicy | SlatePolicy:
    """A built-in logging policy, or a registered bandits policy sized for ``world``."""
    if name in LOGGING_POLICIES:
        return make_logging_policy(name, **params)
    registry = registered_policies()
    if name not in registry:
        raise click.BadParameter(f"unknown policy {name!r}; choose a built-in "
                                 f"({', '.join(sorted(LOGGING_POLICIES))}) or a bandits policy "
                                 f"({', '.join(sorted(registry))}).", param_hint="--policy")
    if params:
        raise click.BadParameter(f"--epsilon, --temperature and --score apply to built-in policies, "
                                 f"not to {name!r}.", param_hint="--policy")
    return registry[name].example(world.n_items, world.k, world.dim_context, seed=seed)


@world_group.command("generate")
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="World config TOML (keys of WorldConfig, top level or under [world]); "
                   "default: the default world.")
@click.option("--sessions", type=click.IntRange(min=1), required=True, help="Sessions to log.")
@click.option("--policy", default="uniform", show_default=True,
              help=f"Logging policy: a built-in ({', '.join(sorted(LOGGING_POLICIES))}) or a registered "
                   "bandits policy (built with its example settings and --seed).")
@click.option("--epsilon", type=click.FloatRange(0.0, 1.0), default=None,
              help="Exploration of epsilon_greedy (default 0.1).")
@click.option("--temperature", type=click.FloatRange(min=0.0, min_open=True), default=None,
              help="Temperature of softmax (default 0.1, relative to each row's best score).")
@click.option("--score", type=click.Choice(sorted(SCORES)), default=None,
              help="Score of epsilon_greedy, greedy and softmax (default value).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of shoppers and responses.")
@click.option("--world-seed", type=int, default=0, show_default=True,
              help="Seed of the catalog and segments.")
@click.option("--truth-sessions", type=click.IntRange(min=2), default=10_000, show_default=True,
              help="Sessions of the Monte Carlo run behind the policy's true value.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Parquet file to write.")
@json_option
def generate_cmd(config_file: Path | None, sessions: int, policy: str, epsilon: float | None,
                 temperature: float | None, score: str | None, seed: int, world_seed: int,
                 truth_sessions: int, output: Path, as_json: bool) -> None:
    """Log SESSIONS sessions of the world under a policy and print the policy's true value."""
    params: dict[str, Any] = {}
    if epsilon is not None:
        params["epsilon"] = epsilon
    if temperature is not None:
        params["temperature"] = temperature
    if score is not None:
        params["score"] = score
    with Stages(["build the world", "log sessions", "true value", "write"], show_progress(as_json),
                desc="world generate") as stage:
        try:
            stage.next()
            config = WorldConfig() if config_file is None else WorldConfig.from_toml(config_file)
            world = World(config, world_seed)
            logger_policy = _policy(policy, params, world, seed)
            stage.next()
            log = generate_log(world, logger_policy, sessions, seed=seed)
            stage.next()
            truth = policy_value(world, logger_policy, truth_sessions, seed=seed + 1,
                                 n_first_states=min(20_000, 2 * truth_sessions))
        except (WorldError, LogValidationError, PolicyError) as err:
            raise click.ClickException(str(err)) from None
        stage.next()
        save_parquet(log, output)
    summary = {"output": str(output), "sessions": sessions, "decisions": log.n_rounds,
               "n_items": world.n_items, "k": world.k, "context_dim": world.dim_context,
               "reward_type": world.reward_type, "policy": policy_name(logger_policy),
               "logged_reward_per_decision": float(log.reward.sum(axis=1).mean()),
               "logged_reward_per_session": float(log.reward.sum() / sessions),
               "true_value": truth.to_json()}
    if as_json:
        emit_json(summary)
        return
    click.echo(f"wrote {log.n_rounds:,} decisions from {sessions:,} sessions "
               f"({world.n_items} items, k={world.k}, d={world.dim_context}) to {output}")
    click.echo(f"true value of {policy_name(logger_policy)} ({world.reward_type}, 95% intervals):")
    for name in ("first_decision", "per_decision", "per_session", "session_length"):
        click.echo(_estimate_text(name, getattr(truth, name)))


@world_group.command("calibrate")
@click.argument("data", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="World JSON file to write.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the check simulation.")
@click.option("--simulated", type=click.IntRange(min=1000), default=300_000, show_default=True,
              help="Impressions simulated for the calibration table.")
@click.option("--top-items", type=click.IntRange(min=0), default=10, show_default=True,
              help="Most-shown items listed in the table.")
@json_option
def calibrate_cmd(data: Path, output: Path, seed: int, simulated: int, top_items: int,
                  as_json: bool) -> None:
    """Fit a world to the click log DATA (Parquet), save it and print the calibration table."""
    try:
        log = load_parquet(data)
        cal = calibrate(log, n_simulated=simulated, seed=seed, top_items=top_items)
    except (LogFormatError, LogValidationError, WorldError, FileNotFoundError) as err:
        raise click.ClickException(str(err)) from None
    save_world(cal.world, output)
    if as_json:
        emit_json({"output": str(output), "n_items": cal.world.n_items, "k": cal.world.k,
                   "position_bias": cal.world.position_bias.tolist(), **cal.to_json()})
        return
    click.echo(cal.to_text())
    click.echo(f"wrote the fitted world ({cal.world.n_items} items, k={cal.world.k}) to {output}")
