"""``slatewise world``: generate logs from the ground-truth shop, calibrate a shop to a real log."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import numpy as np

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
    cross_check,
    generate_log,
    load_world,
    make_logging_policy,
    policy_value,
    save_world,
)
from simulator.world.generate import policy_name
from simulator.world.truth import ValueEstimate


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
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the held-out split and the check simulation.")
@click.option("--simulated", type=click.IntRange(min=1000), default=300_000, show_default=True,
              help="Impressions simulated for the calibration table.")
@click.option("--top-items", type=click.IntRange(min=0), default=10, show_default=True,
              help="Most-shown items listed in the table.")
@click.option("--holdout", type=float, default=0.2, show_default=True,
              help="Share of sessions held out of the fit and scored by log loss against a constant "
                   "and a per-position click rate, in [0, 1); 0 skips the check. The saved world is "
                   "fitted on the other sessions.")
@click.option("--check", "checks", type=click.Path(dir_okay=False, path_type=Path), multiple=True,
              help="Another logger's click log (Parquet) of the same catalog to check the world on; "
                   "repeatable.")
@json_option
def calibrate_cmd(data: Path, output: Path, seed: int, simulated: int, top_items: int, holdout: float,
                  checks: tuple[Path, ...], as_json: bool) -> None:
    """Fit a world to the click log DATA (Parquet), save it and print the calibration table."""
    if not 0 <= holdout < 1:
        raise click.BadParameter(f"must lie in [0, 1), found {holdout}; pass a share of sessions such "
                                 f"as 0.2, or 0 to skip the held-out check.", param_hint="--holdout")
    try:
        log = load_parquet(data)
        cal = calibrate(log, n_simulated=simulated, seed=seed, top_items=top_items, holdout=holdout)
    except (LogFormatError, LogValidationError, WorldError, FileNotFoundError) as err:
        raise click.ClickException(str(err)) from None
    crossed = []
    for path in checks:
        try:
            crossed.append(cross_check(cal, load_parquet(path), name=str(path)))
        except (LogFormatError, LogValidationError, WorldError, FileNotFoundError) as err:
            raise click.ClickException(f"--check {path}: {err}; pass a click log of the catalog "
                                       f"{data} was logged on.") from None
    save_world(cal.world, output)
    if as_json:
        emit_json({"output": str(output), "n_items": cal.world.n_items, "k": cal.world.k,
                   "position_bias": cal.world.position_bias.tolist(), **cal.to_json(),
                   "checks": [c.to_json() for c in crossed]})
        return
    click.echo(cal.to_text())
    for c in crossed:
        click.echo(c.to_text())
    click.echo(f"wrote the fitted world ({cal.world.n_items} items, k={cal.world.k}) to {output}")
    scored = ([("held-out", cal.held_out)] if cal.held_out is not None else []) + \
        [(f"--check {c.name}", c.log_loss) for c in crossed]
    for label, loss in scored:
        if not loss.supported:
            click.echo(f"warning: {label}: {loss.verdict}", err=True)


@dataclass(frozen=True, slots=True)
class PolicyTruth:
    """A policy's true value in a world.

    Attributes:
        policy: what was evaluated (a file or a built-in name).
        world: ``default`` or the world file.
        sessions: sessions run.
        per_session: expected total reward of a session (Monte Carlo over sessions).
        per_decision: expected reward per decision (each decision's exact conditional
            expectation given its slate, averaged over the decisions made; Monte Carlo).
        first_decision: expected reward of a fresh session's first decision (exact when the
            world's first states can be enumerated and the policy gives its distribution).
        session_length: decisions per session.
        context_columns: the policy reads the first this many of the world's context columns.
    """

    policy: str
    world: str
    sessions: int
    per_session: ValueEstimate
    per_decision: ValueEstimate
    first_decision: ValueEstimate
    session_length: ValueEstimate
    context_columns: int

    def to_json(self) -> dict[str, Any]:
        """Plain JSON."""
        return {"policy": self.policy, "world": self.world, "sessions": self.sessions,
                "context_columns": self.context_columns, "per_session": self.per_session.to_json(),
                "per_decision": self.per_decision.to_json(),
                "first_decision": self.first_decision.to_json(),
                "session_length": self.session_length.to_json()}


def load_eval_world(spec: str, world_seed: int = 0) -> World:
    """``default`` (``World.default(world_seed)``) or a world file written by ``world calibrate``."""
    if spec == "default":
        return World.default(seed=world_seed)
    path = Path(spec)
    if not path.is_file():
        raise WorldError(f"--world {spec}: no such world file; pass `default` or a world JSON written by "
                         "`slatewise world calibrate LOG -o world.json`.")
    return load_world(path)


def policy_agent(policy: SlatePolicy, world: World) -> tuple[Any, Any, int]:
    """``(agent, world, context columns)`` to run a policy file in ``world``; a PolicyError names a mismatch.

    A policy learned on a log of fewer context columns than the world shows (a world
    calibrated on that log adds the anchor's) reads the world's first columns.
    """
    from experiments.agents import WorldAgent, anchor_context
    from experiments.cli.learn import LogContextWorld

    anchored = anchor_context(type(policy))
    d_world = world.dim_context + (1 if anchored else 0)
    if policy.n_items != world.n_items or policy.k != world.k:
        raise PolicyError(f"the policy is for n_items={policy.n_items}, k={policy.k}; the world has "
                          f"n_items={world.n_items}, k={world.k}: evaluate it in a world of its catalog.")
    if policy.dim_context > d_world:
        raise PolicyError(f"the policy reads d={policy.dim_context} context columns; the world gives "
                          f"{d_world}: evaluate it in a world of its context.")
    run_world: Any = world
    columns = policy.dim_context or d_world
    if not anchored and 0 < policy.dim_context < world.dim_context:
        run_world = LogContextWorld(world, policy.dim_context)
    agent = WorldAgent(policy, anchored)
    return (agent.sampler() if hasattr(policy, "sample_slates") else agent), run_world, columns


def policy_truth(world: World, policy: SlatePolicy | WorldPolicy, *, n_sessions: int, seed: int = 0,
                 label: str = "", world_label: str = "default") -> PolicyTruth:
    """The true value of ``policy`` in ``world`` (see :class:`PolicyTruth`)."""
    from simulator.rollout import Step, rollout
    from simulator.world.truth import first_decision_value, initial_states

    if isinstance(policy, WorldPolicy):
        agent, run_world, columns = policy, world, world.dim_context
    else:
        agent, run_world, columns = policy_agent(policy, world)
    values: list[Any] = []
    first: list[Any] = []
    lengths: list[Any] = []

    def record(step: Step) -> None:
        v = np.asarray(world.expected_reward(step.state, step.decision.slate), dtype=np.float64)
        values.append(v)
        first.append(v[np.asarray(step.state.step) == 0])
        lengths.append(step.session)

    totals = rollout(run_world, agent, n_sessions, np.random.default_rng(seed), on_step=record)
    counts = np.bincount(np.concatenate(lengths), minlength=n_sessions).astype(np.float64)
    exact_first = None
    enumerable = initial_states(world) is not None and (
        isinstance(policy, WorldPolicy) or (run_world is world and not getattr(agent, "anchored", False)))
    if enumerable and world.n_items <= 100:
        exact_first = first_decision_value(world, policy, seed=seed)
    return PolicyTruth(label, world_label, n_sessions, ValueEstimate.from_samples(totals),
                       ValueEstimate.from_samples(np.concatenate(values)),
                       exact_first if exact_first is not None and exact_first.exact
                       else ValueEstimate.from_samples(np.concatenate(first)),
                       ValueEstimate.from_samples(counts), columns)


@world_group.command("evaluate")
@click.argument("policy_spec", metavar="POLICY")
@click.option("--world", "world_spec", default="default", show_default=True,
              help="`default` (the default world) or a world JSON (`world calibrate -o`).")
@click.option("--world-seed", type=int, default=0, show_default=True, help="Seed of the default world.")
@click.option("--sessions", type=click.IntRange(min=2), default=10_000, show_default=True,
              help="Sessions of the Monte Carlo run.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of shoppers and responses.")
@json_option
def evaluate_cmd(policy_spec: str, world_spec: str, world_seed: int, sessions: int, seed: int,
                 as_json: bool) -> None:
    """The true value of POLICY in a world.

    POLICY is a saved policy .npz (from `learn`, `train-ppo`, serving) or a built-in
    policy name (uniform, greedy, patient, softmax, epsilon_greedy).
    """
    try:
        world = load_eval_world(world_spec, world_seed)
        policy: SlatePolicy | WorldPolicy
        if policy_spec in LOGGING_POLICIES:
            policy = make_logging_policy(policy_spec)
        elif Path(policy_spec).is_file():
            policy = SlatePolicy.load(policy_spec)
        else:
            raise click.BadParameter(f"{policy_spec}: no such policy file, nor a built-in policy "
                                     f"({', '.join(sorted(LOGGING_POLICIES))})", param_hint="POLICY")
        truth = policy_truth(world, policy, n_sessions=sessions, seed=seed, label=policy_spec,
                             world_label=world_spec)
    except (WorldError, PolicyError) as err:
        raise click.ClickException(str(err)) from None
    if as_json:
        emit_json(truth.to_json())
        return
    click.echo(f"true value of {policy_spec} in the {world_spec} world ({world.reward_type}, "
               f"{sessions:,} sessions, 95% intervals; Monte Carlo unless marked exact):")
    for name in ("per_session", "per_decision", "first_decision", "session_length"):
        click.echo(_estimate_text(name, getattr(truth, name)))
    if truth.context_columns < world.dim_context:
        click.echo(f"the policy reads the first {truth.context_columns} of the world's "
                   f"{world.dim_context} context columns")
