"""Rollout decisions: ramp a treatment while it holds up, ship it, or roll it back with a reason.

For each treatment arm with traffic, in this order:

1. **roll back** when the sample ratio is off (chi-squared p of users per arm below
   ``srm_alpha``), or the always-valid mSPRT finds the treatment worse than control
   (p below ``alpha``);
2. **ship** when it is at the last ramp stage (or above), does not have all traffic
   yet, and the mSPRT finds it better;
3. **ramp** to the next stage when it has ``min_decisions_per_stage`` decisions at the
   current split and the lower bound of (treatment - control) reward per decision is
   at least ``-non_inferiority_margin`` (guardrails hold, lower bound not below control);
4. otherwise **continue**.

With ``auto = true`` the learner applies ramp, ship and roll-back decisions by
itself; every change is a new traffic version carrying its reason, and a
decision never proposes the split already in force. The statistics come from
the store's running totals (:meth:`serving.store.EventStore.advance_totals`), so
an evaluation costs the rows added since the last one, not the history.

Off-policy bar: an arm configured with ``ope_bar`` gets traffic only after the
lower bound of its off-policy value on the experiment's recent decisions
(item-position IPS: ``sum_j r_j * pi_j(a_j | x) / pscore_item_j`` per decision,
with a normal interval) reaches the bar. The estimate assumes each slot's reward
depends on the item shown there, and it ignores request filters
(``candidates``/``exclude``) that are not stored.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from bandits import SlatePolicy
from serving.config import ABExperimentConfig
from serving.errors import Conflict
from serving.stats import (
    ArmSummary,
    FoldRule,
    diff_interval,
    fold_totals,
    pvalue_of,
    srm_pvalue,
    summarize,
    users_per_arm,
)
from serving.store import EventStore, OffPolicyCheck, OutcomeBatch, Totals, TrafficChange, TrafficSplit
from serving.traffic import change_split, ensure_initial, same_weights

#: rows read per transaction when the totals catch up
TOTALS_BATCH = 50_000

CONTINUE, RAMP, SHIP, ROLL_BACK = "continue", "ramp", "ship", "roll back"


@dataclass(frozen=True, slots=True)
class ArmReport:
    """Statistics of one arm.

    Attributes:
        name: arm name.
        policy: registered policy name.
        weight: current traffic share.
        summary: decisions, rewards and mean reward per decision with its interval.
        at_current_split: decisions served under the split in force.
        diff: treatment - control mean (NaN for control).
        diff_low: lower end of the difference's interval.
        diff_high: upper end of the difference's interval.
        msprt_p: always-valid p-value against control (None for control).
    """

    name: str
    policy: str
    weight: float
    summary: ArmSummary
    at_current_split: int
    diff: float
    diff_low: float
    diff_high: float
    msprt_p: float | None


@dataclass(frozen=True, slots=True)
class RolloutDecision:
    """What to do next.

    Attributes:
        action: ``continue``, ``ramp``, ``ship`` or ``roll back``.
        arm: the treatment the action is about (None for continue).
        reason: why, with the numbers.
        weights: the split the action leads to (None for continue).
    """

    action: str
    arm: str | None
    reason: str
    weights: dict[str, float] | None


@dataclass(frozen=True, slots=True)
class ExperimentReport:
    """An experiment's state: split, per-arm statistics, tests and the decision."""

    name: str
    control: str
    split: TrafficSplit
    arms: tuple[ArmReport, ...]
    srm_p: float
    srm_users: tuple[int, ...]
    srm_expected: tuple[float, ...]
    decision: RolloutDecision

    def to_json(self, history: list[TrafficChange], history_next: int | None) -> dict[str, Any]:
        """The JSON body of ``GET /v1/experiments/<name>`` (NaN and infinities as null).

        Args:
            history: a page of the traffic history, newest first.
            history_next: the ``history_before`` of the next (older) page, or None.
        """

        def num(x: float | None) -> float | None:
            return None if x is None or not math.isfinite(x) else float(x)

        return {
            "name": self.name,
            "control": self.control,
            "traffic_version": self.split.version,
            "weights": self.split.weights,
            "arms": [{
                "name": a.name, "policy": a.policy, "weight": a.weight,
                "decisions": a.summary.n_decisions, "final": a.summary.n_final,
                "pending": a.summary.n_decisions - a.summary.n_final, "rewards": a.summary.n_rewards,
                "decisions_at_current_split": a.at_current_split,
                "mean_reward": num(a.summary.mean),
                "interval": [num(a.summary.low), num(a.summary.high)],
                "diff_vs_control": num(a.diff), "diff_interval": [num(a.diff_low), num(a.diff_high)],
                "msprt_p": num(a.msprt_p),
            } for a in self.arms],
            "srm_p": num(self.srm_p),
            "srm": {"unit": "user", "p": num(self.srm_p),
                    "method": "Pearson chi-squared of distinct users per arm (each in the arm of their "
                              "first decision) against the shares of the splits they arrived under",
                    "users": dict(zip([a.name for a in self.arms], self.srm_users, strict=True)),
                    "expected": dict(zip([a.name for a in self.arms], self.srm_expected, strict=True))},
            "outcomes": "mean_reward is reward per final decision: rewarded, or its reward window "
                        "closed (reward 0); pending decisions are not counted as zero",
            "decision": {"action": self.decision.action, "arm": self.decision.arm,
                         "reason": self.decision.reason, "weights": self.decision.weights},
            "history": [{"version": s.version, "time": s.ts, "weights": s.weights, "reason": s.reason,
                         "actor": s.actor} for s in history],
            "history_next": history_next,
        }


def fold_rules(experiments: tuple[ABExperimentConfig, ...]) -> dict[str, FoldRule]:
    """Each experiment's control arm and mSPRT prior, for :func:`serving.stats.fold_totals`."""
    return {e.name: FoldRule(e.control, e.msprt_tau) for e in experiments}


def advance(store: EventStore, experiments: tuple[ABExperimentConfig, ...], expired_before: float) -> Totals:
    """Bring the store's running totals up to date (the cost of what is new since the last call)."""
    rules = fold_rules(experiments)

    def fold(totals: Totals, batch: OutcomeBatch) -> Totals:
        return fold_totals(totals, batch, rules)

    return store.advance_totals(expired_before, TOTALS_BATCH, fold)


def evaluate(store: EventStore, exp: ABExperimentConfig, experiments: tuple[ABExperimentConfig, ...],
             expired_before: float) -> ExperimentReport:
    """Statistics and the rollout decision of ``exp`` from the store's running totals.

    Args:
        store: the event store.
        exp: the experiment.
        experiments: every served experiment (the totals of all are advanced together).
        expired_before: decisions made before this UNIX time have a final outcome even
            without a reward (``now - reward_window_s``).
    """
    split = ensure_initial(store, exp)
    totals = advance(store, experiments, expired_before).experiment(exp.name)
    names = [arm.name for arm in exp.arms]
    observed, expected = users_per_arm(totals, store.traffic_weights(exp.name), names)
    srm = srm_pvalue(observed, expected)
    control = summarize(totals.arm(exp.control), totals.decisions(exp.control), exp.alpha)
    reports = []
    for arm in exp.arms:
        summary = control if arm.name == exp.control else \
            summarize(totals.arm(arm.name), totals.decisions(arm.name), exp.alpha)
        if arm.name == exp.control:
            diff, low, high, p = float("nan"), float("nan"), float("nan"), None
        else:
            diff, low, high = diff_interval(summary, control, exp.alpha)
            p = pvalue_of(totals.max_log_lambda.get(arm.name, float("-inf")))
        reports.append(ArmReport(arm.name, arm.policy, split.weights.get(arm.name, 0.0), summary,
                                 totals.decisions(arm.name, split.version), diff, low, high, p))
    decision = decide(exp, split, tuple(reports), srm)
    return ExperimentReport(exp.name, exp.control, split, tuple(reports), srm, tuple(observed.tolist()),
                            tuple(expected.tolist()), decision)


def _next_stage(exp: ABExperimentConfig, weight: float) -> float | None:
    for stage in exp.ramp:
        if stage > weight + 1e-9:
            return stage
    return None


def decide(exp: ABExperimentConfig, split: TrafficSplit, arms: tuple[ArmReport, ...],
           srm_p: float) -> RolloutDecision:
    """The rollout decision for the statistics ``arms`` under ``split`` (rules in the module doc)."""
    treatments = [a for a in arms if a.name != exp.control and a.weight > 0]
    for arm in treatments:
        if srm_p < exp.srm_alpha:
            return RolloutDecision(ROLL_BACK, arm.name, f"guardrail: sample ratio mismatch "
                                   f"(chi-squared p = {srm_p:.2e} < {exp.srm_alpha})",
                                   _without(split.weights, arm.name, exp.control))
        if arm.msprt_p is not None and arm.msprt_p < exp.alpha and arm.diff < 0:
            return RolloutDecision(ROLL_BACK, arm.name, f"guardrail: {arm.name} is worse than control "
                                   f"(difference {arm.diff:+.4f} reward per decision, mSPRT p = "
                                   f"{arm.msprt_p:.2e} < {exp.alpha})",
                                   _without(split.weights, arm.name, exp.control))
    for arm in treatments:
        last = _next_stage(exp, arm.weight) is None
        if arm.weight >= 1.0 - 1e-9:  # shipped already: nothing left to move
            continue
        if last and arm.msprt_p is not None and arm.msprt_p < exp.alpha and arm.diff > 0:
            return RolloutDecision(SHIP, arm.name, f"{arm.name} beats control (difference "
                                   f"{arm.diff:+.4f}, mSPRT p = {arm.msprt_p:.2e}) at the last stage",
                                   {a.name: 1.0 if a.name == arm.name else 0.0 for a in arms})
    for arm in treatments:
        stage = _next_stage(exp, arm.weight)
        if stage is None or arm.at_current_split < exp.min_decisions_per_stage:
            continue
        if not arm.diff_low >= -exp.non_inferiority_margin:
            continue
        weights = dict(split.weights)
        weights[exp.control] = weights.get(exp.control, 0.0) - (stage - arm.weight)
        weights[arm.name] = stage
        if weights[exp.control] < -1e-9:
            continue
        weights[exp.control] = max(weights[exp.control], 0.0)
        return RolloutDecision(RAMP, arm.name, f"{arm.name} holds up after {arm.at_current_split} "
                               f"decisions (difference lower bound {arm.diff_low:+.4f} >= "
                               f"-{exp.non_inferiority_margin}); next stage {stage:g}", weights)
    waiting = ", ".join(f"{a.name}: shipped (all traffic)" if a.weight >= 1.0 - 1e-9 else
                        f"{a.name}: {a.at_current_split}/{exp.min_decisions_per_stage} decisions"
                        for a in treatments)
    return RolloutDecision(CONTINUE, None, f"collecting evidence ({waiting or 'no treatment has traffic'})",
                           None)


def _without(weights: dict[str, float], arm: str, control: str) -> dict[str, float]:
    out = dict(weights)
    out[control] = out.get(control, 0.0) + out.get(arm, 0.0)
    out[arm] = 0.0
    return out


def apply(store: EventStore, exp: ABExperimentConfig, decision: RolloutDecision,
          current: TrafficSplit) -> TrafficSplit | None:
    """Carry out a ramp, ship or roll-back decision (the reason goes with the new split).

    Returns:
        The new split, or None when there was nothing to change (a ``continue``, or
        shares already in force: no version is written then).
    """
    if decision.action == CONTINUE or decision.weights is None or same_weights(current.weights,
                                                                                decision.weights):
        return None
    split = change_split(store, exp, decision.weights, f"{decision.action}: {decision.reason}", "rollout")
    return None if split.version == current.version else split


@dataclass(frozen=True, slots=True)
class OffPolicyEstimate:
    """Item-position IPS value of a policy on logged decisions.

    Attributes:
        value: estimated reward per decision.
        low: lower end of the 95% normal interval.
        high: upper end.
        n: logged decisions used.
    """

    value: float
    low: float
    high: float
    n: int


def off_policy_estimate(store: EventStore, exp: ABExperimentConfig, policy: SlatePolicy,
                        limit: int = 5_000) -> OffPolicyEstimate:
    """Estimate ``policy``'s reward per decision on the experiment's last ``limit`` decisions."""
    logged = store.recent_decisions(exp.name, limit)
    n = logged.n
    if n == 0 or logged.slate.shape[1] != policy.k:
        return OffPolicyEstimate(float("nan"), float("-inf"), float("inf"), 0)
    from bandits.ope import estimate_from_arrays

    dist = policy.action_dist(logged.context)
    pi = np.take_along_axis(dist, logged.slate[:, None, :], axis=1)[:, 0, :]
    if n < 2:
        return OffPolicyEstimate(float("nan"), float("-inf"), float("inf"), n)
    est = estimate_from_arrays(logged.reward, logged.pscore_item, pi, estimator="ips", level=0.95)
    return OffPolicyEstimate(est.value, est.low, est.high, n)


def check_ope_bar(store: EventStore, exp: ABExperimentConfig, old: dict[str, float], new: dict[str, float],
                  policies: dict[str, SlatePolicy], now: float) -> dict[str, OffPolicyEstimate]:
    """Refuse traffic to an arm that had none until its off-policy lower bound clears its bar.

    Every check is recorded in the store (:meth:`serving.store.EventStore.add_ope_check`,
    at UNIX time ``now``), cleared or not, for the experiment report.

    Raises:
        Conflict: naming ``weights.<arm>``, with the estimate and the bar.
    """
    checked = {}
    for arm in exp.arms:
        if arm.ope_bar is None or old.get(arm.name, 0.0) > 0 or new.get(arm.name, 0.0) <= 0:
            continue
        est = off_policy_estimate(store, exp, policies[arm.name])
        checked[arm.name] = est
        store.add_ope_check(OffPolicyCheck(exp.name, arm.name, now, est.value, est.low, est.high, est.n,
                                           arm.ope_bar, bool(est.low >= arm.ope_bar)))
        if not est.low >= arm.ope_bar:
            raise Conflict(f"`weights.{arm.name}`: the off-policy estimate of {arm.name} on the last "
                           f"{est.n} decisions is {est.value:.4f} (95% lower bound {est.low:.4f}); "
                           f"it must reach ope_bar = {arm.ope_bar} before the arm gets traffic.",
                           field=f"weights.{arm.name}")
    return checked
