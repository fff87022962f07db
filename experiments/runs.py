"""The three entry points behind the CLI: simulate, compare and the demo, each writing a report."""

from __future__ import annotations

import logging
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from experiments import plots
from experiments.config import ExperimentConfig
from experiments.engine import Engine, LocalEngine
from experiments.report import Report
from experiments.simulate import (
    metrics_frame,
    run_all,
    share_table,
    value_table,
    write_metrics,
)

logger = logging.getLogger(__name__)
DEMO_CONFIG = Path(__file__).parent / "configs" / "demo.toml"


def _config_json(config: ExperimentConfig) -> dict[str, Any]:
    return asdict(config)


def _position_rates(frame: pd.DataFrame) -> pd.DataFrame:
    """Click rate by slot per policy, with a normal-approximation 95% interval."""
    slots = sorted(c for c in frame.columns if c.startswith("clicks_slot"))
    tot = frame.groupby("policy", sort=False)[[*slots, "decisions"]].sum()
    rows = []
    for policy, row in tot.iterrows():
        n = float(row["decisions"])
        for j, col in enumerate(slots):
            p = float(row[col]) / n
            half = 1.96 * np.sqrt(max(p * (1 - p), 0.0) / n)
            rows.append({"series": policy, "position": j, "rate": p, "low": p - half, "high": p + half})
    return pd.DataFrame(rows)


def simulate_section(report: Report, config: ExperimentConfig, out_dir: Path, *, engine: Engine,
                     progress: bool) -> dict[str, Any]:
    """Run the online simulation, write metrics.parquet, add its section; return its summary."""
    start = time.perf_counter()
    results = run_all(config, engine=engine, progress=progress)
    frame = metrics_frame(results)
    write_metrics(frame, out_dir)
    values = value_table(results)
    share = share_table(frame)
    reward = config.data.reward
    sec = report.section(f"Online learning: {reward} per session")
    sec.text.append(
        f"Each policy learned online for {config.simulate.sessions:,} sessions "
        f"({config.simulate.batch_sessions} at a time) with seeds {list(config.seeds)}, then ran "
        f"{int(values['sessions'].iloc[0] // len(config.seeds)):,} held-out sessions per seed without "
        "learning. The held-out mean is the policy's true value per session (Monte Carlo against the "
        "world), with its 95% interval.")
    table = values.rename(columns={"value": f"{reward} per session"})
    sec.tables.append(("Held-out value per session (95% interval)", table))
    curves = frame[["policy", "seed", "sessions_seen", "reward_per_session", "round_regret_per_decision"]]
    running = f"running {reward} per session"
    curves = curves.rename(columns={"sessions_seen": "step", "reward_per_session": running,
                                    "round_regret_per_decision": "regret per decision"})
    sec.figures.append(("learning_curves", f"Running {reward} per session, and each round's regret per "
                        "decision (exact: the best slate's expected reward minus the chosen slate's), "
                        "mean over seeds with 95% band",
                        plots.learning_curves(curves, (running, "regret per decision"),
                                              xlabel="sessions seen")))
    sec.figures.append(("values", f"Held-out {reward} per session with 95% intervals",
                        plots.value_intervals(values, xlabel=f"{reward} per session")))
    sec2 = report.section("Cross-sell and up-sell")
    sec2.tables.append(("Share of clicks and revenue", share))
    sec2.figures.append(("shares", "Cross-sell and up-sell share of clicks and revenue", plots.shares(share)))
    sec2.figures.append(("positions", "Click rate by position (95% interval)",
                         plots.rate_by_position(_position_rates(frame))))
    best = values.iloc[int(np.argmax(values["value"].to_numpy()))]
    return {
        "seconds": round(time.perf_counter() - start, 2),
        "metrics": str(out_dir / "metrics.parquet"),
        "best_policy": str(best["policy"]),
        "policies": {str(r["policy"]): {"value": r["value"], "low": r["low"], "high": r["high"],
                                        "stderr": r["stderr"], "sessions": int(r["sessions"]),
                                        "truth_kind": "held-out Monte Carlo in the world"}
                     for r in values.to_dict("records")},
        "shares": share.to_dict("records"),
    }


def compare_section(report: Report, config: ExperimentConfig, *, engine: Engine | None = None,
                    progress: bool = False) -> dict[str, Any]:
    """Run the off-policy comparison and add its section; return its summary."""
    from experiments.compare import compare, disagreements

    start = time.perf_counter()
    table = compare(config, engine=engine, progress=progress)
    flags = disagreements(table)
    has_truth = bool(table["truth"].notna().any())
    if has_truth:
        sec = report.section("Off-policy evaluation against the truth")
        sec.text.append(
            f"A log of {config.compare.log_sessions:,} sessions was collected under the "
            f"`{config.compare.logging_policy}` logging policy with exact propensities. Each policy "
            f"(trained online for {config.compare.train_sessions:,} sessions, then frozen) is estimated "
            "off-policy on it, and the truth is the exact expected reward per logged decision.")
        sec.tables.append(("Estimate, 95% interval and truth", table))
        sec.figures.append(("ope_vs_truth", "Off-policy estimates against the truth",
                            plots.estimate_vs_truth(table)))
    else:
        sec = report.section("Off-policy evaluation on the log")
        sec.text.append(
            f"Each policy learned from the first half of `{config.data.path}` and is estimated off-policy "
            "on the second half. A log from outside a world has no known truth: read the intervals, "
            "and where estimators disagree beyond them, trust none of them.")
        sec.tables.append(("Estimate and 95% interval", table.drop(columns=["truth", "covered"])))
        for estimator, group in table.groupby("estimator", sort=False):
            frame = group.rename(columns={"estimate": "value"})[["policy", "value", "low", "high"]]
            sec.figures.append((f"ope_{estimator}", f"Value per policy by {estimator}",
                                plots.value_intervals(frame, xlabel=f"{estimator} estimate per decision")))
    sec.notes += flags
    out: dict[str, Any] = {"seconds": round(time.perf_counter() - start, 2), "disagreements": flags,
                           "policies": {}}
    for policy, group in table.groupby("policy", sort=False):
        out["policies"][str(policy)] = {
            "truth": float(group["truth"].iloc[0]) if has_truth else None,
            "estimates": {str(r["estimator"]): {k: r[k] for k in ("estimate", "low", "high", "covered",
                                                                   "ess", "max_weight", "mean_weight")}
                          for r in group.to_dict("records")},
        }
    return out


def run(config: ExperimentConfig, out_dir: str | Path, *, simulate: bool = True, compare: bool = True,
        workers: int | None = None, progress: bool = True, title: str | None = None,
        engine: Engine | None = None) -> dict[str, Any]:
    """Run the requested parts and write ``report.html``, ``report.md``, ``summary.json``.

    ``engine`` runs the independent policy x seed runs (default: local processes).
    """
    engine = engine or LocalEngine(workers or config.workers or None)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    report = Report(title or f"slatewise — {config.name}")
    summary: dict[str, Any] = {"experiment": config.name, "config": _config_json(config)}
    if simulate:
        summary["simulate"] = simulate_section(report, config, out, engine=engine, progress=progress)
    if compare:
        summary["compare"] = compare_section(report, config, engine=engine, progress=progress)
    report.summary = summary
    paths = report.write(out)
    summary["files"] = {k: str(v) for k, v in paths.items()}
    return summary
