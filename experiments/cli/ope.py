"""``slatewise ope``: score a policy on logs it never ran on, and the Open Bandit Dataset benchmark."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import numpy as np

from bandits.policy import Feedback, SlatePolicy, make_policy, registered_policies
from experiments.cli.output import Stages, emit_json, json_option, progress_iter, show_progress
from simulator.errors import PolicyError
from simulator.logs import LogFormatError, LogValidationError, SlateLog, load_parquet


class _DefaultGroup(click.Group):
    """A group whose first argument is a log file unless it names a subcommand."""

    default_command = "estimate"

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = [self.default_command, *args]
        return super().parse_args(ctx, args)


def parse_policy_spec(spec: str, log: SlateLog) -> SlatePolicy:
    """A policy from ``NAME[:param=value,...]`` or a saved ``.npz`` file, sized for ``log``.

    Values are read as JSON when they parse (numbers, lists, booleans), else as strings.
    """
    path = Path(spec)
    if spec.endswith(".npz"):
        if not path.is_file():
            raise click.BadParameter(f"{spec}: no such policy file", param_hint="--policy")
        policy = SlatePolicy.load(path)
        if policy.n_items != log.n_items:
            raise click.BadParameter(f"policy {spec} knows {policy.n_items} items but the log has "
                                     f"{log.n_items}; evaluate it on a log of the same catalog.",
                                     param_hint="--policy")
        return policy
    name, _, rest = spec.partition(":")
    params: dict[str, Any] = {}
    for part in filter(None, rest.split(",")):
        key, eq, raw = part.partition("=")
        if not eq or not key:
            raise click.BadParameter(f"{part!r} in {spec!r} is not key=value; write e.g. "
                                     "'epsilon_greedy:epsilon=0.1'", param_hint="--policy")
        try:
            params[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            params[key.strip()] = raw
    if name not in registered_policies():
        raise click.BadParameter(f"unknown policy {name!r}; choose one of {sorted(registered_policies())} "
                                 "or give a saved .npz policy file", param_hint="--policy")
    try:
        return make_policy(name, n_items=log.n_items, k=log.n_positions, dim_context=log.dim_context,
                           **params)
    except (TypeError, ValueError) as err:
        raise click.BadParameter(f"{spec}: {err}", param_hint="--policy") from None


def _estimate_table(rows: list[dict[str, Any]], truth: float | None = None) -> str:
    head = (f"{'estimator':<12} {'estimate':>10} {'low':>10} {'high':>10} {'ESS':>9} {'max w':>8} "
            f"{'mean w':>7}")
    if truth is not None:
        head += f" {'rel.err':>8} {'covers':>6}"
    lines = [head, "-" * len(head)]
    notes = []
    for r in rows:
        line = (f"{r['estimator']:<12} {r['value']:>10.5f} {r['low']:>10.5f} {r['high']:>10.5f} "
                f"{r['ess']:>9.0f} {r['max_weight']:>8.2f} {r['mean_weight']:>7.3f}")
        if truth is not None:
            line += f" {r['relative_error']:>8.1%} {'yes' if r['covers_truth'] else 'NO':>6}"
        lines.append(line)
        notes += [f"{r['estimator']}: {w}" for w in r.get("warnings", ())]
    if notes:
        lines += ["", "warnings:", *(f"  {n}" for n in notes)]
    return "\n".join(lines)


def _estimator_list(estimators: str | None) -> list[str] | None:
    if estimators is None:
        return None
    from bandits.ope import ESTIMATORS

    names = [e.strip() for e in estimators.split(",") if e.strip()]
    unknown = [e for e in names if e not in ESTIMATORS]
    if unknown:
        raise click.BadParameter(f"unknown estimator(s) {unknown}; choose from {sorted(ESTIMATORS)}",
                                 param_hint="--estimators")
    return names


@click.group("ope", cls=_DefaultGroup, invoke_without_command=False)
def ope_group() -> None:
    """Off-policy evaluation: `slatewise ope LOG.parquet --policy SPEC`, or `ope obd-benchmark DIR`."""


def _estimate_partitioned(folder: Path, specs: tuple[str, ...], n_bootstrap: int, level: float, seed: int,
                          engine: str, address: str | None, as_json: bool) -> None:
    from bandits.ope import OPEError
    from bandits.ope.partitioned import PolicyDist, estimate_partitioned, list_partitions, ray_data_map

    try:
        files = list_partitions(folder)
        first = load_parquet(files[0])
    except (OPEError, LogFormatError, LogValidationError) as err:
        raise click.ClickException(str(err)) from None
    policies = [parse_policy_spec(spec, first) for spec in specs]
    runner = None
    if engine == "ray":
        from simulator.cluster import init_ray
        from simulator.errors import EngineError

        try:
            init_ray(address)
        except EngineError as err:
            raise click.ClickException(str(err)) from None
        runner = ray_data_map
    entries: list[dict[str, Any]] = []
    for spec, policy in zip(specs, policies, strict=True):
        try:
            results = estimate_partitioned(files, PolicyDist(policy), n_bootstrap=max(n_bootstrap, 2),
                                           level=level, seed=seed, engine=runner)
        except (OPEError, PolicyError, LogFormatError, LogValidationError) as err:
            raise click.ClickException(f"{spec}: {err}") from None
        rows = [r.to_dict() for r in results]
        entries.append({"policy": spec, "n_rounds": results[0].n, "estimates": rows})
    if as_json:
        emit_json({"log": str(folder), "estimand": "decision", "partitions": len(files), "engine": engine,
                   "n_rounds": entries[0]["n_rounds"], "level": level, "policies": entries})
        return
    for i, entry in enumerate(entries):
        if i:
            click.echo()
        click.echo(f"{entry['policy']} on {len(files)} partitions of {folder} ({entry['n_rounds']:,} "
                   f"decisions, engine {engine}, {level:.0%} intervals, value per decision)\n")
        click.echo(_estimate_table([r | {"warnings": []} for r in entry["estimates"]]))


@ope_group.command("estimate")
@click.argument("log_file", type=click.Path(path_type=Path))
@click.option("--policy", "specs", required=True, multiple=True,
              help="NAME[:param=value,...] of a registered policy, or a saved policy .npz file; repeat the "
                   "option to score several policies on the same log.")
@click.option("--estimators", default=None,
              help="Comma-separated estimator names (default: every one the log supports).")
@click.option("--train-fraction", type=click.FloatRange(0, 1, max_open=True), default=0.0,
              show_default=True,
              help="Let the policy learn from this leading share of the log and score it on the rest.")
@click.option("--n-bootstrap", type=click.IntRange(0), default=200, show_default=True,
              help="Bootstrap resamples for the intervals (0: normal intervals).")
@click.option("--level", type=click.FloatRange(0.5, 1, min_open=False, max_open=True), default=0.95,
              show_default=True, help="Confidence level of the intervals.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="For a folder of partitions: read them in this process or with Ray Data.")
@click.option("--address", default=None, help="Ray cluster address (with --engine ray); else a local Ray.")
@click.option("--estimand", type=click.Choice(["decision", "session"]), default="decision", show_default=True,
              help="Value per decision (summed over slots), or per session (summed over its decisions: "
                   "pdis, wpdis, dr, wdr, bootstrapped over sessions).")
@json_option
def estimate_cmd(log_file: Path, specs: tuple[str, ...], estimators: str | None, train_fraction: float,
                 n_bootstrap: int, level: float, seed: int, engine: str, address: str | None,
                 estimand: str, as_json: bool) -> None:
    """Estimate the value of each policy SPEC on LOG_FILE with every estimator and its interval.

    Each policy gets its own table (one JSON entry in ``policies``). Per decision
    (the default), each also gets a recommendation: the estimator to trust, or that
    the log cannot support an estimate of it. LOG_FILE may be a folder of Parquet
    partitions: then IPS, SNIPS and DR are computed from mergeable per-partition
    sums, never loading the whole log.
    """
    if len(set(specs)) != len(specs):
        dup = sorted({s for s in specs if specs.count(s) > 1})
        raise click.BadParameter(f"policy {dup[0]!r} is given twice; give each policy once",
                                 param_hint="--policy")
    if log_file.is_dir():
        if estimand != "decision":
            raise click.BadParameter("a folder of partitions is scored per decision; drop --estimand session",
                                     param_hint="--estimand")
        if estimators is not None or train_fraction > 0:
            raise click.BadParameter("a folder of partitions is scored by ips, snips and dr without "
                                     "training; drop --estimators and --train-fraction",
                                     param_hint="--estimators / --train-fraction")
        _estimate_partitioned(log_file, specs, n_bootstrap, level, seed, engine, address, as_json)
        return
    try:
        log = load_parquet(log_file)
    except (LogFormatError, LogValidationError, FileNotFoundError) as err:
        raise click.ClickException(str(err)) from None
    names = _estimator_list(estimators) if estimand == "decision" else _session_estimator_list(estimators)
    policies = [parse_policy_spec(spec, log) for spec in specs]
    test = log
    if train_fraction > 0:
        cut = round(train_fraction * log.n_rounds)
        if cut == 0 or cut == log.n_rounds:
            raise click.BadParameter(f"{train_fraction} of {log.n_rounds} rows leaves nothing to train or "
                                     "score on", param_hint="--train-fraction")
        train, test = log.take(np.arange(cut)), log.take(np.arange(cut, log.n_rounds))
        for policy in policies:
            policy.update(Feedback.from_log(train))
    trained_on = log.n_rounds - test.n_rounds
    if estimand == "session":
        _estimate_sessions(log_file, specs, policies, test, trained_on, names, n_bootstrap, level, seed,
                           as_json)
        return
    with Stages(list(specs), show_progress(as_json), desc="ope") as stage:
        entries = []
        for spec, policy in zip(specs, policies, strict=True):
            stage.next()
            entries.append(_score_policy(test, spec, policy, names, n_bootstrap=n_bootstrap, level=level,
                                         seed=seed))
    source = log.metadata.pscore_source
    if as_json:
        emit_json({"log": str(log_file), "estimand": "decision", "n_rounds": test.n_rounds,
                   "trained_on": trained_on, "level": level, "pscore_source": source,
                   "policies": entries})
        return
    for i, entry in enumerate(entries):
        if i:
            click.echo()
        click.echo(f"{entry['policy']} on {log_file} ({test.n_rounds:,} decisions, {level:.0%} intervals, "
                   "value per decision)\n")
        click.echo(_estimate_table(entry["estimates"]))
        click.echo("\n" + _recommendation_text(entry["recommendation"]))
    if source == "estimated":
        click.echo("\npropensities: estimated from the log itself (not logged); every estimate above "
                   "inherits that model's error.")


def _score_policy(log: SlateLog, spec: str, policy: SlatePolicy, names: list[str] | None, *,
                  n_bootstrap: int, level: float, seed: int) -> dict[str, Any]:
    """One policy's JSON entry: its estimates and the recommendation (slate inputs derived from its dist)."""
    from bandits.ope import OPEError, estimate_all, recommend

    try:
        dist = policy.action_dist(log.context)
        results = estimate_all(log, dist, estimators=names, n_bootstrap=n_bootstrap, level=level, seed=seed,
                               interval="bootstrap" if n_bootstrap > 0 else "normal",
                               derive_slate_inputs=True)
        rec = recommend(log, dist, results, policy=spec)
    except (OPEError, PolicyError) as err:
        raise click.ClickException(f"{spec}: {err}") from None
    return {"policy": spec, "estimates": [r.to_dict() for r in results], "recommendation": rec.to_dict()}


def _recommendation_text(rec: dict[str, Any]) -> str:
    head = (f"recommended: {rec['estimator']} = {rec['value']:.5g} [{rec['low']:.5g}, {rec['high']:.5g}]"
            if rec["supported"] else f"recommended: none: {rec['verdict']}")
    return "\n".join([head, *(f"  - {r}" for r in rec["reasons"])])


def _session_estimator_list(estimators: str | None) -> list[str] | None:
    from bandits.ope import SESSION_ESTIMATORS

    if estimators is None:
        return None
    names = [e.strip() for e in estimators.split(",") if e.strip()]
    unknown = [e for e in names if e not in SESSION_ESTIMATORS]
    if unknown:
        raise click.BadParameter(f"unknown session estimator(s) {unknown}; with --estimand session choose "
                                 f"from {list(SESSION_ESTIMATORS)}", param_hint="--estimators")
    return names


def _estimate_sessions(log_file: Path, specs: tuple[str, ...], policies: list[SlatePolicy], test: SlateLog,
                       trained_on: int, names: list[str] | None, n_bootstrap: int, level: float, seed: int,
                       as_json: bool) -> None:
    from bandits.ope import OPEError
    from experiments.compare import score_sessions

    entries = []
    with Stages(list(specs), show_progress(as_json), desc="ope") as stage:
        for spec, policy in zip(specs, policies, strict=True):
            stage.next()
            try:
                dist = policy.action_dist(test.context)
                results = score_sessions(test, dist, names, n_bootstrap=n_bootstrap, level=level, seed=seed)
            except (OPEError, PolicyError) as err:
                raise click.ClickException(f"{spec}: {err}") from None
            entries.append((spec, results))
    n_sessions = entries[0][1][0].n_sessions
    if as_json:
        emit_json({"log": str(log_file), "estimand": "session", "n_rounds": test.n_rounds,
                   "n_sessions": n_sessions, "trained_on": trained_on, "level": level,
                   "policies": [{"policy": spec, "estimates": [r.to_dict() for r in results]}
                                for spec, results in entries]})
        return
    for i, (spec, results) in enumerate(entries):
        if i:
            click.echo()
        click.echo(f"{spec} on {log_file} ({n_sessions:,} sessions, {test.n_rounds:,} decisions, "
                   f"{level:.0%} intervals, value per session)\n")
        head = (f"{'estimator':<10} {'estimate':>12} {'low':>12} {'high':>12} {'ESS first':>10} "
                f"{'ESS last':>9}")
        click.echo(head + "\n" + "-" * len(head))
        for r in results:
            shown = (f"{r.value:>12.5f} {r.low:>12.5f} {r.high:>12.5f}" if r.supported
                     else f"{'not supported':>38}")
            click.echo(f"{r.estimator:<10} {shown} {r.ess_first:>10.1f} {r.ess_last:>9.1f}")
        if results[0].warnings:
            click.echo("\nwarnings:\n" + "\n".join(f"  {w}" for w in results[0].warnings))


@ope_group.command("obd-benchmark")
@click.argument("data_dir", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option("--campaign", "campaigns", multiple=True, default=("men",), show_default=True,
              help="Campaign(s) to run: all, men (repeat the option for several).")
@click.option("--estimators", default=None, help="Comma-separated estimator names (default: all).")
@click.option("--n-bootstrap", type=click.IntRange(0), default=200, show_default=True)
@click.option("--n-draws", type=click.IntRange(1_000), default=100_000, show_default=True,
              help="Monte Carlo draws of bts's Beta prior for its action distribution.")
@click.option("--seed", type=int, default=0, show_default=True)
@json_option
def obd_benchmark_cmd(data_dir: Path, campaigns: tuple[str, ...], estimators: str | None, n_bootstrap: int,
                      n_draws: int, seed: int, as_json: bool) -> None:
    """Estimate the bts policy's click rate from the random logs; compare with bts's own logs.

    DATA_DIR holds random/, bts/ and bts_prior.json of the Open Bandit Dataset
    (ZOZO, Inc., CC BY 4.0).
    """
    from bandits.ope import OPEError
    from experiments.obd_benchmark import run_campaign

    names = _estimator_list(estimators)
    results = []
    for campaign in progress_iter(campaigns, show_progress(as_json), desc="obd-benchmark",
                                  unit="campaign"):
        try:
            results.append(run_campaign(data_dir, campaign, estimators=names, n_bootstrap=n_bootstrap,
                                        n_draws=n_draws, seed=seed))
        except (LogFormatError, LogValidationError, OPEError) as err:
            raise click.ClickException(str(err)) from None
    if as_json:
        emit_json({"data_dir": str(data_dir), "n_bootstrap": n_bootstrap, "n_draws": n_draws, "seed": seed,
                   "campaigns": [r.to_json() for r in results]})
        return
    for r in results:
        click.echo(f"campaign {r.campaign}: {r.n_rounds:,} random-policy rows, {r.n_items} items; "
                   f"truth (bts logs' mean click) {r.truth:.5f} ± {1.96 * r.truth_stderr:.5f}; "
                   f"benchmark {r.seconds['benchmark']:.2f} s\n")
        click.echo(_estimate_table(r.rows, truth=r.truth))
        click.echo()
