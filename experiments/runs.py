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


def simulate_section(report: Report, config: ExperimentConfig, out_dir: Path, *, workers: int | None,
                     progress: bool) -> dict[str, Any]:
    """Run the online simulation, write metrics.parquet, add its section; return its summary."""
    start = time.perf_counter()
    results = run_all(config, workers=workers, progress=progress)
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
    curves = frame[["policy", "seed", "round", "reward_per_session", "regret"]].rename(
        columns={"round": "step", "reward_per_session": "reward"})
    sec.figures.append(("learning_curves", f"Running {reward} per session and cumulative regret "
                        "(exact, against the best slate at each step), mean over seeds with 95% band",
                        plots.learning_curves(curves)))
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


def compare_section(report: Report, config: ExperimentConfig) -> dict[str, Any]:
    """Run the off-policy comparison and add its section; return its summary."""
    from experiments.compare import compare, disagreements

    start = time.perf_counter()
    table = compare(config)
    flags = disagreements(table)
    sec = report.section("Off-policy evaluation against the truth")
    sec.text.append(
        f"A log of {config.compare.log_sessions:,} sessions was collected under the "
        f"`{config.compare.logging_policy}` logging policy with exact propensities. Each policy "
        f"(trained online for {config.compare.train_sessions:,} sessions, then frozen) is estimated "
        "off-policy on it, and the truth is the exact expected reward per logged decision.")
    sec.notes += flags
    sec.tables.append(("Estimate, 95% interval and truth", table))
    sec.figures.append(("ope_vs_truth", "Off-policy estimates against the truth",
                        plots.estimate_vs_truth(table)))
    out: dict[str, Any] = {"seconds": round(time.perf_counter() - start, 2), "disagreements": flags,
                           "policies": {}}
    for policy, group in table.groupby("policy", sort=False):
        out["policies"][str(policy)] = {
            "truth": float(group["truth"].iloc[0]),
            "estimates": {str(r["estimator"]): {k: r[k] for k in ("estimate", "low", "high", "covered",
                                                                   "ess", "max_weight", "mean_weight")}
                          for r in group.to_dict("records")},
        }
    return out


def run(config: ExperimentConfig, out_dir: str | Path, *, simulate: bool = True, compare: bool = True,
        workers: int | None = None, progress: bool = True, title: str | None = None) -> dict[str, Any]:
    """Run the requested parts and write ``report.html``, ``report.md``, ``summary.json``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    report = Report(title or f"slatewise — {config.name}")
    summary: dict[str, Any] = {"experiment": config.name, "config": _config_json(config)}
    if simulate:
        summary["simulate"] = simulate_section(report, config, out, workers=workers, progress=progress)
    if compare:
        summary["compare"] = compare_section(report, config)
    report.summary = summary
    paths = report.write(out)
    summary["files"] = {k: str(v) for k, v in paths.items()}
    return summary
