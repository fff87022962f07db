"""The experiment report document: the one source of ``GET /v1/experiments/<name>`` and the dashboard.

:func:`experiment_document` builds the JSON document from the store's running
totals (:func:`serving.rollout.evaluate`), a page of the traffic history, the
guardrails the rollout rules check, the last off-policy check of each arm with a
pre-traffic bar and, on request, the statistics over time from the store's
bounded series of running sums (:meth:`serving.store.EventStore.series`), ending
with the live point of the report itself. Nothing here reads decision rows, so
the document costs the same at 10^3 or 10^7 decisions. The dashboard
(:mod:`serving.blueprints.dashboard`) renders this document and nothing else.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from serving import rollout
from serving.config import ABExperimentConfig
from serving.exposure import arm_exposure
from serving.stats import ArmSummary, pvalue_of, summarize
from serving.store.schema import SERIES_CAP
from serving.store.totals import ArmTotals

if TYPE_CHECKING:
    from serving.service import Service

#: traffic changes drawn as markers on the plots over time (newest first)
MARKED_CHANGES = 100


def num(x: float | None) -> float | None:
    """``x`` as a JSON number, or None for None, NaN and infinities."""
    return None if x is None or not math.isfinite(x) else float(x)


def experiment_document(svc: Service, exp: ABExperimentConfig, history_limit: int,
                        history_before: int | None, *, series: bool = False) -> dict[str, Any]:
    """The JSON document of ``GET /v1/experiments/<name>``.

    Args:
        svc: the service.
        exp: the experiment.
        history_limit: traffic changes in the page, newest first.
        history_before: only versions below this (None: from the newest).
        series: also give the statistics over time (member ``series``).
    """
    report = rollout.evaluate(svc.store, exp, svc.cfg.experiments, svc.clock() - svc.cfg.reward_window_s)
    page = svc.store.traffic_history(exp.name, history_before, history_limit + 1)
    shown = page[:history_limit]
    answer = report.to_json(shown, shown[-1].version if len(page) > len(shown) else None)
    versions = svc.hub.versions()
    for arm in answer["arms"]:
        arm["policy_version"] = versions.get((exp.name, arm["name"]))
        arm["users"] = answer["srm"]["users"][arm["name"]]
    answer["ramp"] = {"stages": list(exp.ramp), "min_decisions_per_stage": exp.min_decisions_per_stage,
                      "non_inferiority_margin": exp.non_inferiority_margin, "alpha": exp.alpha,
                      "srm_alpha": exp.srm_alpha, "auto": exp.auto}
    answer["guardrails"] = guardrails(exp, report)
    answer["off_policy"] = off_policy(svc, exp)
    answer["statistics_window"] = statistics_window(svc.cfg.retention_days, svc.cfg.retention_mode)
    answer["exposure"] = arm_exposure(svc.store.totals().experiment(exp.name), [a.name for a in exp.arms],
                                      np.asarray(svc.shape.catalog.category), svc.shape.k)
    if series:
        answer["series"] = series_document(svc, exp, report)
    return answer


def guardrails(exp: ABExperimentConfig, report: rollout.ExperimentReport) -> list[dict[str, Any]]:
    """The checks of the rollout rules, each with its value, threshold and status.

    Statuses: ``ok``; ``breach`` (the rule rolls the arm back); ``blocks ramp`` (the
    non-inferiority bound is below ``-margin``, so the arm stays at its stage);
    ``no data`` (too few outcomes to compute the value).
    """
    checks: list[dict[str, Any]] = [{
        "check": "sample ratio (users per arm)", "arm": None, "value": num(report.srm_p),
        "rule": f"chi-squared p >= srm_alpha = {exp.srm_alpha:g}",
        "status": "ok" if report.srm_p >= exp.srm_alpha else "breach"}]
    for arm in report.arms:
        if arm.name == exp.control:
            continue
        worse = arm.msprt_p is not None and arm.msprt_p < exp.alpha and arm.diff < 0
        checks.append({"check": "not worse than control (mSPRT)", "arm": arm.name, "value": num(arm.msprt_p),
                       "rule": f"not (p < alpha = {exp.alpha:g} with a negative difference)",
                       "status": "breach" if worse else "ok" if math.isfinite(arm.diff) else "no data"})
        low = arm.diff_low
        checks.append({"check": "non-inferiority (difference lower bound)", "arm": arm.name,
                       "value": num(low), "rule": f">= -{exp.non_inferiority_margin:g} to ramp",
                       "status": "no data" if not math.isfinite(low) else
                       "ok" if low >= -exp.non_inferiority_margin else "blocks ramp"})
    return checks


def off_policy(svc: Service, exp: ABExperimentConfig) -> list[dict[str, Any]]:
    """Each arm with a pre-traffic bar, with its last off-policy check (None before the first)."""
    checks = {c.arm: c for c in svc.store.ope_checks(exp.name)}
    out = []
    for arm in exp.arms:
        if arm.ope_bar is None:
            continue
        c = checks.get(arm.name)
        out.append({"arm": arm.name, "bar": arm.ope_bar, "check": None if c is None else {
            "time": c.ts, "value": num(c.value), "low": num(c.low), "high": num(c.high), "n": c.n,
            "passed": c.passed}})
    return out


def _point(ts: float, version: int, summaries: dict[str, ArmSummary],
           pvalues: dict[str, float | None]) -> dict[str, Any]:
    return {"time": ts, "traffic_version": version,
            "arms": {a: {"decisions": s.n_decisions, "final": s.n_final, "mean": num(s.mean),
                         "low": num(s.low), "high": num(s.high)} for a, s in summaries.items()},
            "msprt_p": {a: num(p) for a, p in pvalues.items()}}


def series_document(svc: Service, exp: ABExperimentConfig,
                    report: rollout.ExperimentReport) -> dict[str, Any]:
    """The statistics over time: the stored points, then the live point of ``report``.

    Each point gives every arm's cumulative decisions, final outcomes and mean reward
    per final decision with its ``1 - alpha`` interval, and each treatment's
    always-valid p-value, computed by the same functions as the report.
    """
    treatments = [a.name for a in exp.arms if a.name != exp.control]
    points = []
    for p in svc.store.series(exp.name):
        summaries = {a.name: summarize(p.arms.get(a.name, ArmTotals()),
                                       p.decisions.get(a.name, 0), exp.alpha) for a in exp.arms}
        points.append(_point(p.ts, p.traffic_version, summaries,
                             {a: pvalue_of(p.max_log_lambda.get(a, float("-inf"))) for a in treatments}))
    live = {a.name: a.summary for a in report.arms}
    points.append(_point(svc.clock(), report.split.version, live,
                         {a.name: a.msprt_p for a in report.arms if a.name != exp.control}))
    changes = svc.store.traffic_history(exp.name, None, MARKED_CHANGES)[::-1]
    return {"interval_s": svc.cfg.series_interval_s, "cap": SERIES_CAP, "alpha": exp.alpha,
            "points": points,
            "changes": [{"version": c.version, "time": c.ts, "weights": c.weights, "actor": c.actor}
                        for c in changes]}


def statistics_window(retention_days: float, mode: str) -> dict[str, Any]:
    """Over which decisions the experiment statistics are computed, in words and numbers."""
    if not retention_days:
        words = "every decision since the experiment started (nothing is removed: serving.retention_days = 0)"
    else:
        kept = "deleted" if mode == "delete" else "kept without their contexts"
        words = (f"every decision since the experiment started: the running sums count each decision once "
                 f"it is final, and rows older than {retention_days:g} days are then {kept}; the "
                 "off-policy checks and exports see only the retained rows")
    return {"from": "experiment start", "retention_days": retention_days, "retention_mode": mode,
            "description": words}
