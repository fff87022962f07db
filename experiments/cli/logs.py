"""``slatewise logs``: import (a shop's own columns, or the Open Bandit Dataset), describe, validate."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
from tqdm import tqdm

from experiments.cli.output import Stages, emit_json, json_option, show_progress
from simulator.errors import ConfigError, DataImportError
from simulator.logs import (
    LogFormatError,
    LogValidationError,
    describe,
    import_obd,
    load_parquet,
    save_parquet,
)
from simulator.logs.catalog import load_catalog
from simulator.logs.generic import LogImport, import_logs
from simulator.logs.io import write_table_atomic
from simulator.logs.mapping import LAYOUTS, REWARDS, LogMapping
from simulator.logs.tables import file_kind


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
    with Stages(["read and check", "write"], show_progress(as_json), desc="import-obd") as stage:
        stage.next()
        try:
            log = import_obd(data_dir, policy=policy, campaign=campaign, include_affinity=affinity)
        except (LogFormatError, LogValidationError) as err:
            raise click.ClickException(str(err)) from None
        stage.next()
        save_parquet(log, output)
    summary = {"output": str(output), "rows": log.n_rounds, "items": log.n_items,
               "context_dim": log.dim_context, "policy": policy, "campaign": campaign}
    if as_json:
        emit_json(summary)
    else:
        click.echo(f"wrote {log.n_rounds:,} decisions ({log.n_items} items, d={log.dim_context}) "
                   f"to {output}")


class _ProgressBar:
    """A tqdm bar on stderr per import stage (read, check, pscore, build); silent when disabled."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bar: Any = None
        self.stage = ""

    def __call__(self, stage: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        if stage != self.stage or self.bar is None:
            self.close()
            self.bar = tqdm(total=total, desc=stage, unit="step", leave=False, file=sys.stderr)
            self.stage = stage
        self.bar.n = done
        self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _rejected_path(output: Path, source: Path) -> Path:
    suffix = ".csv" if file_kind(source) == "csv" else ".parquet"
    return output.with_name(output.name.removesuffix(output.suffix) + ".rejected" + suffix)


def import_summary(result: LogImport, source: Path, output: Path, rejected: Path | None) -> dict[str, Any]:
    """The JSON document of ``logs import``."""
    log = result.log
    return {
        "input": str(source), "output": str(output), "layout": result.layout, "k": log.k,
        "rows_read": result.n_rows, "rows_kept": result.n_rows_kept, "rows_rejected": result.n_rows_rejected,
        "events": result.n_events, "slates": log.n_rounds, "sessions": len(set(log.session_id.tolist())),
        "items": log.n_items, "context_dim": log.dim_context, "reward": log.metadata.reward_type,
        "pscore_source": log.metadata.pscore_source,
        "rejected_file": None if rejected is None else str(rejected),
        "errors": [{"kind": e.kind, "column": e.column, "rows": e.count, "events": e.events,
                    "first_row": e.row,
                    "first_line": e.line, "expected": e.expected, "found": e.found} for e in result.errors],
        "pscore_model": log.metadata.source.partition("propensities estimated: ")[2] or None,
    }


@logs_group.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--catalog", "catalog_file", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Catalog file (from `slatewise catalog import`) the logged item ids belong to.")
@click.option("--map", "map_spec", default=None,
              help="Columns: role=column,... with roles event, session, user, item, position, click, "
                   "purchase, revenue, pscore, pscore_item, timestamp, context (context=a,b,c).")
@click.option("--mapping", "mapping_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="TOML file with the same roles (and options), at the top level or under [logs].")
@click.option("--position-base", type=click.IntRange(0, 1), default=None,
              help="Number of the first slot in the position column: 0 (default) or 1.")
@click.option("--layout", type=click.Choice(LAYOUTS), default=None,
              help="item: one row per shown item; slate: one row per slate with list columns; "
                   "auto (default): slate when the item column is a list column.")
@click.option("--list-sep", default=None, help="Separator of list cells in a CSV slate layout (default |).")
@click.option("--k", type=click.IntRange(min=1), default=None,
              help="Slots per slate (default: the most common number of items per event).")
@click.option("--reward", type=click.Choice(REWARDS), default=None,
              help="Outcome used as the reward (default: the first mapped of click, purchase, revenue).")
@click.option("--logging-policy", default=None, help="A name for the system that chose the logged slates.")
@click.option("--estimate-pscore", is_flag=True,
              help="The log has no propensities: fit them (cross-fitted, calibrated classifiers) and "
                   "mark the log as estimated.")
@click.option("--on-error", type=click.Choice(["raise", "skip"]), default="raise", show_default=True,
              help="raise: any bad row stops the import; skip: keep the good slates, write the rejected "
                   "rows with their reasons.")
@click.option("--rejected", "rejected_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="File of rejected rows with --on-error skip (default: OUTPUT with .rejected.csv).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the propensity model's folds.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Log file to write (Parquet).")
@json_option
def import_cmd(file: Path, catalog_file: Path, map_spec: str | None, mapping_file: Path | None,
               position_base: int | None, layout: str | None, list_sep: str | None, k: int | None,
               reward: str | None, logging_policy: str | None, estimate_pscore: bool, on_error: str,
               rejected_file: Path | None, seed: int, output: Path, as_json: bool) -> None:
    """Import a shop's impression log with its own column names (CSV or Parquet) into a log file.

    Rows are grouped into slates by the event column; every bad row is counted
    under a named kind with its first row, and a slate with a bad row is
    rejected whole.
    """
    if (map_spec is None) == (mapping_file is None):
        raise click.UsageError("give the columns either with --map role=column,... or with --mapping "
                               "FILE.toml.")
    options = {"position_base": position_base, "layout": layout, "list_sep": list_sep, "k": k,
               "reward": reward, "logging_policy": logging_policy}
    bar = _ProgressBar(enabled=show_progress(as_json))
    try:
        mapping = LogMapping.parse(map_spec, **options) if map_spec is not None \
            else LogMapping.from_toml(mapping_file, **options)  # type: ignore[arg-type]
        catalog = load_catalog(catalog_file)
        result = import_logs(file, catalog, mapping, on_error=on_error, estimate_pscore=estimate_pscore,
                             seed=seed, progress=bar)
    except (ConfigError, DataImportError, LogFormatError, LogValidationError, FileNotFoundError) as err:
        raise click.ClickException(str(err)) from None
    finally:
        bar.close()
    save_parquet(result.log, output)
    rejected = None
    if result.n_rows_rejected:
        rejected = rejected_file or _rejected_path(output, file)
        write_table_atomic(result.rejected, rejected, fmt="csv" if rejected.suffix == ".csv" else "parquet")
    summary = import_summary(result, file, output, rejected)
    if as_json:
        emit_json(summary)
        return
    click.echo(f"read {result.n_rows:,} rows ({result.n_events:,} events, {result.layout} layout, "
               f"k = {result.log.k}) from {file}")
    if result.errors:
        click.echo(f"rejected {result.n_rows_rejected:,} rows ({result.n_events - result.log.n_rounds:,} "
                   f"events) -> {rejected}")
        for problem in result.errors:
            click.echo(f"  - {problem}")
    click.echo(f"kept {result.log.n_rounds:,} slates ({result.n_rows_kept:,} rows) in "
               f"{summary['sessions']:,} sessions; reward: {summary['reward']}")
    if summary["pscore_model"]:
        click.echo(f"propensities: estimated by {summary['pscore_model']}")
    else:
        click.echo("propensities: logged")
    click.echo(f"wrote {output}")


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
@click.argument("db", metavar="STORE")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Parquet file to write.")
@click.option("--include-pending/--final-only", default=False, show_default=True,
              help="Also export decisions whose reward window is still open (reward 0 so far).")
@click.option("--drop-user", is_flag=True, default=False,
              help="Leave shoppers out: each decision becomes its own session (by default the session "
                   "is a hash of the stored user pseudonym; raw ids are never stored).")
@click.option("--drop-context", default="", metavar="COL,COL",
              help="Context columns to leave out of the log, by name (x0, x1, ... for unnamed contexts).")
@json_option
def export_serving_cmd(db: str, output: Path, include_pending: bool, drop_user: bool, drop_context: str,
                       as_json: bool) -> None:
    """Export a serving event store as a log file, to replay and evaluate what was served.

    STORE is the SQLite file (serving.db_path) or the PostgreSQL URL (serving.store,
    postgresql://user:password@host:port/db) of the service.
    """
    from serving.export import export_log
    from simulator.errors import ConfigError

    try:
        log = export_log(db, include_pending=include_pending, drop_user=drop_user,
                         drop_context=[c.strip() for c in drop_context.split(",") if c.strip()])
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
