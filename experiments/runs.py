"""The three entry points behind the CLI: simulate, compare and the demo, each writing a report."""

from __future__ import annotations

import logging
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from experiments import plots
from experiments.config import ExperimentConfig
from experiments.engine import Engine, LocalEngine
from experiments.report import Report, format_interval
from experiments.simulate import (
    metrics_frame,
    run_all,
    share_table,
    value_table,
    write_metrics,
)

if TYPE_CHECKING:
    from experiments.compare import Comparison

logger = logging.getLogger(__name__)
DEMO_CONFIG = Path(__file__).parent / "configs" / "demo.toml"


def _config_json(config: ExperimentConfig) -> dict[str, Any]:
    return asdict(config)


def training_text(config: ExperimentConfig, spec: Any, *, compare: bool = False) -> str:
    """How one policy entry was trained, in words (the same budget in the online and the OPE runs)."""
    if not spec.trainer.online:
        params = ", ".join(f"{k} = {v:,}" if isinstance(v, int) else f"{k} = {v}"
                           for k, v in spec.params.items())
        return (f"pre-trained by PPO (stable-baselines3) on whole sessions before the run ({params}), then "
                "frozen: it does not learn during the run, so its learning curve is flat")
    sessions = config.compare.train_sessions if compare else config.simulate.sessions
    return f"learns online: {sessions:,} sessions, {config.simulate.batch_sessions} at a time"


def _training_section(report: Report, config: ExperimentConfig, simulate: bool, compare: bool) -> list[str]:
    sec = report.section("How each policy was trained")
    rows = [{"policy": spec.label, "online table": training_text(config, spec) if simulate else "—",
             "off-policy table": training_text(config, spec, compare=True) if compare else "—"}
            for spec in config.policies]
    same = config.compare.train_sessions == config.simulate.sessions
    if simulate and compare:
        sec.text.append("Both tables use the same training budget." if same else
                        f"The budgets differ: bandits learn for {config.simulate.sessions:,} sessions in "
                        f"the online table but {config.compare.train_sessions:,} before the off-policy "
                        "comparison.")
    if config.compare.estimand == "session":
        sec.text.append(
            "Both tables report reward per session: the online table of each policy's own held-out "
            "sessions (Monte Carlo); the off-policy table estimates it from the logging policy's whole "
            "sessions (estimand: per session).")
    else:
        sec.text.append(
            "Units differ by design: the online table reports reward per session and per decision of each "
            "policy's own sessions (Monte Carlo); the off-policy table reports reward per decision on the "
            "logging policy's decisions (estimand: per decision), which is what a per-decision estimator "
            "estimates; the config key compare.estimand = \"session\" estimates the value per session "
            "instead.")
    sec.tables.append(("Training budget per table", pd.DataFrame(rows)))
    return [f"{r['policy']}: {r['online table'] if simulate else r['off-policy table']}" for r in rows]


#: The world's own heuristics, shown as oracle references: they read the world's truth.
ORACLES = {"greedy (oracle)": "greedy", "patient (oracle)": "patient"}


def oracle_values(config: ExperimentConfig, n_sessions: int) -> dict[str, Any]:
    """Per-session and per-decision value of the world's greedy and patient heuristics.

    Both read the world's truth, so they are references, not contenders.
    """
    from experiments.worlds import build_world
    from simulator.world import make_logging_policy, policy_value

    world = build_world(config.data)
    out = {}
    for label, name in ORACLES.items():
        v = policy_value(world, make_logging_policy(name), n_sessions, seed=config.seeds[0] + 7)
        out[label] = {"value": v.per_session.value, "low": v.per_session.ci_low,
                      "high": v.per_session.ci_high, "per_decision": v.per_decision.value,
                      "per_decision_low": v.per_decision.ci_low,
                      "per_decision_high": v.per_decision.ci_high, "uses_truth": True, "sessions": n_sessions}
    return out


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
    sec = report.section(f"Online learning: {reward} per session and per decision")
    sec.text.append(
        f"Each bandit learned online for {config.simulate.sessions:,} sessions "
        f"({config.simulate.batch_sessions} at a time) with seeds {list(config.seeds)}; a pre-trained "
        f"policy (PPO) played them frozen. Then every policy ran "
        f"{int(values['sessions'].iloc[0] // len(config.seeds)):,} held-out sessions per seed without "
        "learning. The held-out mean is the policy's true value (Monte Carlo against the world), per "
        "session and per decision (one decision = one slate shown), each with its 95% interval.")
    labels = {spec.label: spec for spec in config.policies}
    table = pd.DataFrame({
        "policy": values["policy"],
        "training": [training_text(config, labels[p]).split(":")[0] for p in values["policy"]],
        f"{reward} per session (95% interval)": [format_interval(r["value"], r["low"], r["high"])
                                                  for r in values.to_dict("records")],
        f"{reward} per decision (95% interval)": [
            format_interval(r["per_decision"], r["per_decision_low"], r["per_decision_high"])
            for r in values.to_dict("records")],
        "decisions per session": values["decisions_per_session"].round(2),
        "held-out sessions": values["sessions"],
    })
    oracles = oracle_values(config, int(values["sessions"].iloc[0]))
    patient = oracles["patient (oracle)"]["value"]
    table[f"share of patient (oracle) {reward}"] = [f"{v / patient:.2f}" for v in values["value"]]
    sec.tables.append(("Held-out value per session and per decision", table))
    refs = list(oracles.values())
    sec.tables.append(("Oracle reference policies: the world's own heuristics, which read the world's truth "
                       "(item values, price jumps); no policy learned from data can see it", pd.DataFrame({
                           "policy": list(oracles),
                           f"{reward} per session (95% interval)": [
                               format_interval(o["value"], o["low"], o["high"]) for o in refs],
                           f"{reward} per decision (95% interval)": [
                               format_interval(o["per_decision"], o["per_decision_low"],
                                               o["per_decision_high"]) for o in refs]})))
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
    frozen = [spec.label for spec in config.policies if not spec.trainer.online]
    if frozen:
        sec.notes.append(f"{', '.join(frozen)}: trained before the run and frozen during it, so its "
                         "learning curve is flat; see 'How each policy was trained'.")
    sec2 = report.section("Cross-sell and up-sell")
    sec2.tables.append(("Share of clicks and revenue", share))
    sec2.figures.append(("shares", "Cross-sell and up-sell share of clicks and revenue", plots.shares(share)))
    sec2.figures.append(("positions", "Click rate by position (95% interval)",
                         plots.rate_by_position(_position_rates(frame))))
    fairness = _simulate_exposure(report, config, results, values)
    best = values.iloc[int(np.argmax(values["value"].to_numpy()))]
    return {
        "exposure": fairness,
        "seconds": round(time.perf_counter() - start, 2),
        "metrics": str(out_dir / "metrics.parquet"),
        "best_policy": str(best["policy"]),
        "unit": f"{reward} per session (value, low, high) and per decision (per_decision...)",
        "policies": {str(r["policy"]): {"value": r["value"], "low": r["low"], "high": r["high"],
                                        "stderr": r["stderr"], "sessions": int(r["sessions"]),
                                        "per_decision": r["per_decision"],
                                        "per_decision_low": r["per_decision_low"],
                                        "per_decision_high": r["per_decision_high"],
                                        "decisions_per_session": r["decisions_per_session"],
                                        "training": training_text(config, labels[str(r["policy"])]),
                                        "truth_kind": "held-out Monte Carlo in the world"}
                     for r in values.to_dict("records")},
        "shares": share.to_dict("records"),
        "oracles": oracles,
        "ratio_to_patient": {str(r["policy"]): r["value"] / patient for r in values.to_dict("records")},
    }


def _simulate_exposure(report: Report, config: ExperimentConfig, results: list[Any],
                       values: pd.DataFrame) -> dict[str, Any]:
    """The exposure section of an online simulation (:mod:`experiments.fairness`); its summary."""
    from experiments.fairness import exposure_of_results, exposure_section, run_values
    from experiments.worlds import build_world

    world = build_world(config.data)
    during = exposure_of_results(results, world.catalog.category, world.position_bias, held_out=False)
    held = exposure_of_results(results, world.catalog.category, world.position_bias, held_out=True)
    if not during:
        return {}
    return exposure_section(report, during, held, run_values(results), config.data.reward)


def _ope_display(table: pd.DataFrame, has_truth: bool, unit: str) -> pd.DataFrame:
    """The table a person reads: formatted intervals, ESS of N, the recommendation, warning counts."""
    recs = table.to_dict("records")
    out = pd.DataFrame({
        "policy": table["policy"], "estimator": table["estimator"],
        f"estimate, {unit} (95% interval)": [format_interval(r["estimate"], r["low"], r["high"])
                                             for r in recs],
    })
    if has_truth:
        out[f"truth, {unit}"] = [format_interval(r["truth"], r["low"], r["high"]).split(" [")[0]
                                 for r in recs]
        out["covered"] = ["yes" if r["covered"] else "NO" for r in recs]
    out["ESS (of weights)"] = [f"{r['ess']:,.0f} of {r['n_weights']:,}" if r["ess"] == r["ess"] else "–"
                               for r in recs]
    out["recommended"] = ["yes" if r["recommended"] else "" for r in recs]
    out["warnings"] = [len(r["warnings"]) for r in recs]
    return out


def _recommendations(table: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for policy, group in table.groupby("policy", sort=False):
        first = group.iloc[0]
        rows.append({"policy": policy, "recommendation": first["recommendation"],
                     "why": "; ".join(first["reasons"])})
    return pd.DataFrame(rows)


def compare_section(report: Report, config: ExperimentConfig, *, engine: Engine | None = None,
                    progress: bool = False) -> dict[str, Any]:
    """Run the off-policy comparison and add its section; return its summary.

    Every estimate's warnings (ESS, weights, clipping to the reward's range) and each
    policy's recommendation appear in the section and in the summary.
    """
    from experiments.compare import compare_with_exposure, disagreements

    start = time.perf_counter()
    comparison = compare_with_exposure(config, engine=engine, progress=progress)
    table = comparison.table
    flags = disagreements(table)
    if comparison.estimand == "session":
        return _session_compare_section(report, config, comparison, flags, start)
    has_truth = bool(table["truth"].notna().any())
    unit = f"{config.data.reward} per decision"
    if has_truth:
        sec = report.section(f"Off-policy evaluation against the truth (estimand: per decision, {unit})")
        sec.text.append(
            f"A log of {config.compare.log_sessions:,} sessions was collected under the "
            f"`{config.compare.logging_policy}` logging policy with exact propensities. Each policy "
            f"(trained as 'How each policy was trained' says, then frozen) is estimated off-policy on "
            f"it, in {unit}: the expected reward of one slate summed over its slots, on the logged "
            "decisions. The truth is that exact expectation from the world.")
        sec.tables.append(("Which estimate to trust (from the log alone, no truth)", _recommendations(table)))
        sec.tables.append((f"Estimate, 95% interval and truth ({unit})", _ope_display(table, True, unit)))
        sec.figures.append(("ope_vs_truth", "Off-policy estimates against the truth, one panel per "
                            "estimator; the axes span the truths, estimates beyond them are drawn "
                            "at the edge as triangles", plots.estimate_vs_truth(table)))
    else:
        sec = report.section(f"Off-policy evaluation on the log (estimand: per decision, {unit})")
        sec.text.append(
            f"Each policy learned from the first half of `{config.data.path}` and is estimated off-policy "
            "on the second half. A log from outside a world has no known truth: read the intervals and "
            "the recommendation.")
        sec.tables.append(("Which estimate to trust (from the log alone)", _recommendations(table)))
        sec.tables.append((f"Estimate and 95% interval ({unit})", _ope_display(table, False, unit)))
        for estimator, group in table.groupby("estimator", sort=False):
            frame = group.rename(columns={"estimate": "value"})[["policy", "value", "low", "high"]]
            sec.figures.append((f"ope_{estimator}", f"Value per policy by {estimator}",
                                plots.value_intervals(frame, xlabel=f"{estimator} estimate, {unit}")))
    sec.warnings += [f"{r['policy']} / {r['estimator']}: {w}" for r in table.to_dict("records")
                     for w in r["warnings"]]
    sec.warnings += flags
    out: dict[str, Any] = {"seconds": round(time.perf_counter() - start, 2), "estimand": "decision",
                           "disagreements": flags, "unit": unit, "policies": {}}
    keys = ("estimate", "low", "high", "covered", "ess", "n_weights", "max_weight", "mean_weight", "warnings",
            "recommended")
    for policy, group in table.groupby("policy", sort=False):
        first = group.iloc[0]
        out["policies"][str(policy)] = {
            "truth": float(first["truth"]) if has_truth else None,
            "recommendation": {"verdict": first["recommendation"], "reasons": list(first["reasons"]),
                               "estimator": next((r["estimator"] for r in group.to_dict("records")
                                                  if r["recommended"]), None)},
            "estimates": {str(r["estimator"]): {k: r[k] for k in keys} for r in group.to_dict("records")},
        }
    out["warnings"] = list(sec.warnings)
    out["exposure"] = _compare_exposure(report, comparison.exposure, has_truth)
    return out


def _session_display(table: pd.DataFrame, unit: str) -> pd.DataFrame:
    """The per-session table a person reads: intervals, truth with its standard error, coverage, ESS."""
    recs = table.to_dict("records")
    return pd.DataFrame({
        "policy": table["policy"], "estimator": table["estimator"],
        f"estimate, {unit} (95% interval)": [format_interval(r["estimate"], r["low"], r["high"])
                                             if r["supported"] else "not supported" for r in recs],
        f"truth, {unit} (± standard error)": [f"{r['truth']:.4g} ± {r['truth_stderr']:.2g}" for r in recs],
        "covered": ["yes" if r["covered"] else "NO" if r["covered"] is False else "–" for r in recs],
        "ESS first / whole session (of sessions)": [
            f"{r['ess_first']:,.0f} / {r['ess_last']:,.0f} of {r['n_sessions']:,}" for r in recs],
        "mean session weight": [f"{r['mean_weight']:.3f}" for r in recs],
        "warnings": [len(r["warnings"]) for r in recs],
    })


def _session_compare_section(report: Report, config: ExperimentConfig, comparison: Comparison,
                             flags: list[str], start: float) -> dict[str, Any]:
    """The off-policy section per session (``compare.estimand = "session"``); its summary."""
    table = comparison.table
    unit = f"{config.data.reward} per session"
    sec = report.section(f"Off-policy evaluation against the truth (estimand: per session, {unit})")
    sec.text.append(
        f"A log of {config.compare.log_sessions:,} whole sessions was collected under the "
        f"`{config.compare.logging_policy}` logging policy with exact propensities. Each policy "
        "(trained as 'How each policy was trained' says, then frozen) is estimated off-policy on it, in "
        f"{unit}: the expected total reward of a shopper's whole session, where each decision changes "
        "what the shopper does next. The estimators weight each decision by the product of the "
        "whole-slate ratios of its session so far, with intervals from a bootstrap over sessions. The "
        f"truth is the policy's value per session in the world: the mean of {comparison.truth_sessions:,} "
        "sessions it plays itself (Monte Carlo), with its standard error.")
    sec.tables.append((f"Estimate, 95% interval and truth ({unit})", _session_display(table, unit)))
    sec.figures.append(("ope_vs_truth", "Off-policy estimates per session against the truth, one panel per "
                        "estimator; the axes span the truths, estimates beyond them are drawn at the edge "
                        "as triangles", plots.estimate_vs_truth(table)))
    seen: set[tuple[str, str]] = set()
    for r in table.to_dict("records"):
        for w in r["warnings"]:
            if (r["policy"], w) not in seen:
                seen.add((r["policy"], w))
                sec.warnings.append(f"{r['policy']}: {w}")
    sec.warnings += flags
    out: dict[str, Any] = {"seconds": round(time.perf_counter() - start, 2), "estimand": "session",
                           "disagreements": flags, "unit": unit,
                           "truth_kind": "Monte Carlo value per session (simulator.world.policy_value)",
                           "truth_sessions": comparison.truth_sessions, "policies": {}}
    keys = ("estimate", "low", "high", "stderr", "covered", "ess_first", "ess_last", "mean_weight",
            "supported", "n_sessions", "warnings")
    for policy, group in table.groupby("policy", sort=False):
        first = group.iloc[0]
        out["policies"][str(policy)] = {
            "truth": float(first["truth"]), "truth_stderr": float(first["truth_stderr"]),
            "estimates": {str(r["estimator"]): {k: r[k] for k in keys} for r in group.to_dict("records")},
        }
    out["warnings"] = list(sec.warnings)
    out["exposure"] = _compare_exposure(report, comparison.exposure, True)
    return out


def _compare_exposure(report: Report, exposure: dict[str, Any], has_truth: bool) -> dict[str, Any]:
    """The offline comparison's exposure section: each policy's expected exposure on the log."""
    from experiments.fairness import group_table, overview_table

    if not exposure:
        return {}
    sec = report.section("Fairness of exposure on the logged decisions (expected)")
    first = next(iter(exposure.values()))
    weights = ", ".join(f"{w:.2f}" for w in first.weights)
    sec.text.append(
        "How each evaluated policy would share exposure on the logged decisions, in expectation: an "
        "item's exposure is its probability at each slot (the policy's action distribution) times the "
        f"slot weight ({weights}: " + ("the world's examination probabilities" if has_truth else
                                        "the DCG discount, since a log does not know examination") +
        "), averaged over the decisions; groups are the catalog's categories. 'Never shown' counts items "
        "with zero probability everywhere." + (" Exposure / merit divides a group's exposure share by its "
                                               "share of the eligible items' expected reward." if has_truth
                                               else ""))
    sec.tables.append(("Expected exposure per policy", overview_table(exposure)))
    sec.tables.append(("Expected exposure share per group", group_table(exposure)))
    return {"kind": "expected, from the action distributions on the logged decisions",
            "slot_weights": [float(w) for w in first.weights], "group_by": "category",
            "policies": {label: rep.to_json() for label, rep in exposure.items()}}


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
    summary["training"] = _training_section(report, config, simulate, compare)
    if simulate:
        summary["simulate"] = simulate_section(report, config, out, engine=engine, progress=progress)
    if compare:
        summary["compare"] = compare_section(report, config, engine=engine, progress=progress)
    report.summary = summary
    paths = report.write(out)
    summary["files"] = {k: str(v) for k, v in paths.items()}
    return summary
