"""``slatewise simulate``, ``slatewise compare`` and ``slatewise demo``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from experiments.cli.output import emit_json, json_option, show_progress
from simulator.errors import ConfigError, EngineError

if TYPE_CHECKING:
    from experiments.config import ExperimentConfig
    from experiments.engine import Engine

_out = click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
                    help="Folder for the report, the metrics and summary.json.")
_workers = click.option("--workers", type=click.IntRange(min=1), default=None,
                        help="Processes for policy x seed runs (default: all cores).")
_engine = click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True,
                       help="Where policy x seed runs execute: this machine's processes, or Ray tasks.")
_address = click.option("--address", default=None,
                        help="Ray cluster address (with --engine ray); a local Ray starts when omitted.")
_progress = click.option("--progress/--no-progress", default=True, show_default=True,
                         help="Show a progress bar on stderr (never with --json or off a terminal).")


def _engine_for(name: str, workers: int | None, address: str | None) -> Engine:
    from experiments.engine import make_engine

    try:
        return make_engine(name, workers=workers, address=address)
    except EngineError as err:
        raise click.ClickException(str(err)) from None


def _load(path: Path) -> ExperimentConfig:
    from experiments.config import load_experiment_config

    try:
        return load_experiment_config(path)
    except ConfigError as err:
        raise click.ClickException(str(err)) from None


def _print_exposure(exposure: dict[str, Any], where: str) -> None:
    """Each policy's exposure Gini, never-shown share and exposure / merit range (when measured)."""
    if not exposure.get("policies"):
        return
    click.echo(f"\nexposure ({where}; groups: {exposure.get('group_by', 'category')})")
    click.echo(f"{'policy':<20} {'Gini':>6} {'never shown':>12} {'exposure/merit (min..max)':>27}")
    for name, e in exposure["policies"].items():
        ratios = [g["exposure_to_merit"] for g in e["groups"].values()
                  if g.get("exposure_to_merit") is not None]
        span = f"{min(ratios):.2f}..{max(ratios):.2f}" if ratios else "—"
        click.echo(f"{name:<20} {e['gini']:>6.3f} {e['never_shown_share']:>12.1%} {span:>27}")


def _print(summary: dict[str, Any], as_json: bool) -> None:
    if as_json:
        emit_json(summary)
        return
    sim = summary.get("simulate")
    if sim:
        click.echo(f"{'policy':<20} {'value/session':>14} {'95% interval':>24}")
        for name, v in sim["policies"].items():
            click.echo(f"{name:<20} {v['value']:>14.2f}   [{v['low']:>9.2f}, {v['high']:>9.2f}]")
        click.echo(f"best: {sim['best_policy']}")
        _print_exposure(sim.get("exposure", {}), "held-out sessions")
    cmp_ = summary.get("compare")
    if cmp_:
        per = "per session" if cmp_.get("estimand") == "session" else "per decision"
        click.echo(f"\noff-policy estimates, estimand: {per} ({cmp_['unit']})")
        click.echo(f"{'policy':<20} {'estimator':<12} {'estimate':>10} {'95% interval':>24} {'truth':>10}")
        for name, v in cmp_["policies"].items():
            for est, e in v["estimates"].items():
                truth = "—" if v["truth"] is None else f"{v['truth']:.3f}"
                mark = "" if e["covered"] in (True, None) else "  (misses truth)"
                click.echo(f"{name:<20} {est:<12} {e['estimate']:>10.3f}   [{e['low']:>9.3f}, "
                           f"{e['high']:>9.3f}] {truth:>10}{mark}")
        for flag in cmp_["disagreements"]:
            click.echo(f"warning: {flag}")
        _print_exposure(cmp_.get("exposure", {}), "logged decisions, expected")
    click.echo(f"\nreport: {summary['files']['html']}")


@click.command("simulate")
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@_out
@_workers
@_engine
@_address
@_progress
@json_option
def simulate_cmd(config: Path, out_dir: Path, workers: int | None, engine: str, address: str | None,
                 progress: bool, as_json: bool) -> None:
    """Each policy x seed learns online in the configured world; metrics, report, summary."""
    from experiments.runs import run

    cfg = _load(config)
    if cfg.data.source == "log":
        raise click.ClickException(f"{config}: data.source = 'log' has no world to learn online in; "
                                   "simulate needs data.source = 'world' or 'calibrated' (use "
                                   "`slatewise compare` to score policies on a log).")
    runner = _engine_for(engine, workers or cfg.workers or None, address)
    _print(run(cfg, out_dir, simulate=True, compare=False, engine=runner,
                   progress=show_progress(as_json, progress)), as_json)


@click.command("compare")
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@_out
@_workers
@_engine
@_address
@_progress
@json_option
def compare_cmd(config: Path, out_dir: Path, workers: int | None, engine: str, address: str | None,
                progress: bool, as_json: bool) -> None:
    """Off-policy estimates of each policy on a logged sample, beside the world's truth."""
    from experiments.runs import run

    cfg = _load(config)
    runner = _engine_for(engine, workers or cfg.workers or None, address)
    _print(run(cfg, out_dir, simulate=False, compare=True, engine=runner,
                   progress=show_progress(as_json, progress)), as_json)


@click.command("demo")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("demo-report"), show_default=True, help="Folder for the report.")
@_workers
@_progress
@json_option
def demo_cmd(out_dir: Path, workers: int | None, progress: bool, as_json: bool) -> None:
    """The embedded default: simulation, logging, off-policy evaluation and a report.

    Runs the default world with the main policies in a few minutes.
    """
    from experiments.runs import DEMO_CONFIG, run

    cfg = _load(DEMO_CONFIG)
    start = time.perf_counter()
    summary = run(cfg, out_dir, workers=workers, progress=show_progress(as_json, progress),
                  title="slatewise demo")
    summary["seconds"] = round(time.perf_counter() - start, 1)
    _print(summary, as_json)
    if not as_json:
        click.echo(f"took {summary['seconds']} s")
