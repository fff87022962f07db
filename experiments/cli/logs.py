"""``slatewise logs``: import, describe, validate."""

from __future__ import annotations

from pathlib import Path

import click

from experiments.cli.output import emit_json, json_option
from simulator.logs import (
    LogFormatError,
    LogValidationError,
    describe,
    import_obd,
    load_parquet,
    save_parquet,
)


@click.group("logs")
def logs_group() -> None:
    """Read, check and convert decision logs."""


@logs_group.command("import-obd")
@click.argument("data_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--policy", type=click.Choice(["random", "bts"]), default="random", show_default=True,
              help="Logging policy folder to read.")
@click.option("--campaign", default="all", show_default=True, help="Campaign: all, men or women.")
@click.option("--affinity/--no-affinity", default=False, show_default=True,
              help="Append the user-item affinity columns to the context.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Parquet file to write.")
@json_option
def import_obd_cmd(data_dir: Path, policy: str, campaign: str, affinity: bool, output: Path,
                   as_json: bool) -> None:
    """Import an Open Bandit Dataset campaign (ZOZO, Inc., CC BY 4.0) into a log file."""
    try:
        log = import_obd(data_dir, policy=policy, campaign=campaign, include_affinity=affinity)
    except (LogFormatError, LogValidationError) as err:
        raise click.ClickException(str(err)) from None
    save_parquet(log, output)
    summary = {"output": str(output), "rows": log.n_rounds, "items": log.n_items,
               "context_dim": log.dim_context, "policy": policy, "campaign": campaign}
    if as_json:
        emit_json(summary)
    else:
        click.echo(f"wrote {log.n_rounds:,} decisions ({log.n_items} items, d={log.dim_context}) "
                   f"to {output}")


@logs_group.command("describe")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@json_option
def describe_cmd(file: Path, as_json: bool) -> None:
    """Summarise a log: rows, sessions, reward rate by position, propensities, time span."""
    try:
        summary = describe(load_parquet(file))
    except (LogFormatError, LogValidationError, FileNotFoundError) as err:
        raise click.ClickException(str(err)) from None
    if as_json:
        emit_json(summary.to_json() | {"file": str(file)})
    else:
        click.echo(summary.to_text())


@logs_group.command("validate")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@json_option
def validate_cmd(file: Path, as_json: bool) -> None:
    """Check a log file; exit 0 when valid, 1 with the list of problems when not."""
    try:
        log = load_parquet(file)
    except LogValidationError as err:
        problems = [str(p) for p in err.problems]
    except (LogFormatError, FileNotFoundError) as err:
        problems = [str(err)]
    else:
        problems = []
    if as_json:
        emit_json({"file": str(file), "valid": not problems, "problems": problems})
    elif problems:
        click.echo(f"{file}: {len(problems)} problem(s)", err=True)
        for p in problems:
            click.echo(f"  - {p}", err=True)
    else:
        click.echo(f"{file}: valid ({log.n_rounds:,} decisions, k={log.k}, "
                   f"{log.n_items} items)")
    if problems:
        raise SystemExit(1)


@logs_group.command("export-serving")
@click.argument("db", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Parquet file to write.")
@click.option("--include-pending/--final-only", default=False, show_default=True,
              help="Also export decisions whose reward window is still open (reward 0 so far).")
@json_option
def export_serving_cmd(db: Path, output: Path, include_pending: bool, as_json: bool) -> None:
    """Export a serving event store (SQLite) as a log file, to replay and evaluate what was served."""
    from serving.export import export_log
    from simulator.errors import ConfigError

    try:
        log = export_log(db, include_pending=include_pending)
    except (ConfigError, LogValidationError) as err:
        raise click.ClickException(str(err)) from None
    save_parquet(log, output)
    summary = {"output": str(output), "rows": log.n_rounds, "items": log.n_items, "k": log.k,
               "context_dim": log.dim_context,
               "rewarded_share": float((log.reward.sum(axis=1) > 0).mean()) if log.n_rounds else None}
    if as_json:
        emit_json(summary)
    else:
        click.echo(f"wrote {log.n_rounds:,} decisions (k={log.k}, d={log.dim_context}) to {output}")
