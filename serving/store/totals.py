"""Running totals of the experiments, advanced from cursors so their cost does not grow with history.

:class:`Totals` holds, per experiment, mergeable sums of every arm's *final*
outcomes (a reward arrived, or the decision's reward window closed without one:
reward 0; a decision still inside its window is pending and counted nowhere but
in ``decisions``), decisions and first-seen users per traffic version and arm, and
the running maximum of each treatment's mSPRT statistic; plus the three cursors
it was advanced to. :class:`OutcomeBatch` is what happened since those cursors.
The store reads the batch and writes the folded totals in one transaction
(:meth:`serving.store.base.EventStore.advance_totals`); the folding itself is
statistics (:func:`serving.stats.fold_totals`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from serving.store.records import BoolArray, FloatArray


@dataclass(frozen=True, slots=True)
class ArmTotals:
    """Mergeable sums of one arm's final outcomes (total reward of each decision).

    Attributes:
        n_final: outcomes counted.
        n_rewarded: of them, decisions whose reward arrived.
        reward_sum: sum of the rewards.
        reward_sq: sum of the squared rewards.
    """

    n_final: int = 0
    n_rewarded: int = 0
    reward_sum: float = 0.0
    reward_sq: float = 0.0

    def merge(self, other: ArmTotals) -> ArmTotals:
        """The totals of both sets of outcomes."""
        return ArmTotals(self.n_final + other.n_final, self.n_rewarded + other.n_rewarded,
                         self.reward_sum + other.reward_sum, self.reward_sq + other.reward_sq)


@dataclass(frozen=True, slots=True)
class SplitCounts:
    """Decisions and newly seen users of one arm under one traffic version.

    Attributes:
        decisions: decisions served.
        users: users whose first decision in the experiment this was.
    """

    decisions: int = 0
    users: int = 0

    def merge(self, other: SplitCounts) -> SplitCounts:
        """The counts of both."""
        return SplitCounts(self.decisions + other.decisions, self.users + other.users)


@dataclass(frozen=True, slots=True)
class ExperimentTotals:
    """The running totals of one experiment.

    Attributes:
        arms: arm name -> sums of its final outcomes.
        splits: traffic version -> arm name -> decisions and first-seen users.
        max_log_lambda: treatment arm -> running maximum over prefixes of the log mSPRT
            likelihood ratio against control (absent until 10 outcomes per arm).
        shown: arm -> (item index, slot) -> times the arm showed the item at the slot (the
            running sums behind the exposure measures, :mod:`serving.exposure`).
        item_reward: arm -> item index -> reward its slot earned, over the arm's rewards.
    """

    arms: Mapping[str, ArmTotals] = field(default_factory=dict)
    splits: Mapping[int, Mapping[str, SplitCounts]] = field(default_factory=dict)
    max_log_lambda: Mapping[str, float] = field(default_factory=dict)
    shown: Mapping[str, Mapping[tuple[int, int], int]] = field(default_factory=dict)
    item_reward: Mapping[str, Mapping[int, float]] = field(default_factory=dict)

    def arm(self, name: str) -> ArmTotals:
        """The sums of arm ``name`` (zeros when it has none)."""
        return self.arms.get(name, ArmTotals())

    def decisions(self, arm: str, version: int | None = None) -> int:
        """Decisions of ``arm``, under ``version`` or under every version."""
        versions = self.splits.values() if version is None else [self.splits.get(version, {})]
        return sum(v.get(arm, SplitCounts()).decisions for v in versions)


@dataclass(frozen=True, slots=True)
class Totals:
    """Running totals of every experiment and the cursors they were advanced to.

    Attributes:
        decision_cursor: decisions with ``event_id`` up to this are counted.
        reward_cursor: rewards with ``seq`` up to this are folded in.
        expired_cursor: decisions with ``event_id`` up to this whose window closed
            without a reward are folded in (as reward 0).
        experiments: experiment name -> its totals.
    """

    decision_cursor: int = 0
    reward_cursor: int = 0
    expired_cursor: int = 0
    experiments: Mapping[str, ExperimentTotals] = field(default_factory=dict)

    def experiment(self, name: str) -> ExperimentTotals:
        """The totals of experiment ``name`` (empty when it has none)."""
        return self.experiments.get(name, ExperimentTotals())

    def with_cursors(self, batch: OutcomeBatch) -> Totals:
        """These totals with the batch's cursors."""
        return replace(self, decision_cursor=batch.decision_cursor, reward_cursor=batch.reward_cursor,
                       expired_cursor=batch.expired_cursor)

    def to_json(self) -> str:
        """One JSON document (read back by :meth:`from_json`)."""
        return json.dumps({
            "cursors": [self.decision_cursor, self.reward_cursor, self.expired_cursor],
            "experiments": {
                name: {"arms": {a: [t.n_final, t.n_rewarded, t.reward_sum, t.reward_sq]
                                for a, t in e.arms.items()},
                       "splits": [[v, a, c.decisions, c.users] for v, arms in e.splits.items()
                                  for a, c in arms.items()],
                       "max_log_lambda": dict(e.max_log_lambda),
                       "shown": {a: [[i, j, c] for (i, j), c in sorted(cells.items())]
                                 for a, cells in e.shown.items()},
                       "item_reward": {a: [[i, r] for i, r in sorted(items.items())]
                                       for a, items in e.item_reward.items()}}
                for name, e in self.experiments.items()}})

    @staticmethod
    def from_json(text: str) -> Totals:
        """The totals :meth:`to_json` wrote."""
        data: dict[str, Any] = json.loads(text)
        experiments = {}
        for name, e in data["experiments"].items():
            splits: dict[int, dict[str, SplitCounts]] = {}
            for version, arm, decisions, users in e["splits"]:
                splits.setdefault(int(version), {})[str(arm)] = SplitCounts(int(decisions), int(users))
            experiments[name] = ExperimentTotals(
                arms={a: ArmTotals(int(t[0]), int(t[1]), float(t[2]), float(t[3]))
                      for a, t in e["arms"].items()},
                splits=splits, max_log_lambda={a: float(x) for a, x in e["max_log_lambda"].items()},
                shown={a: {(int(i), int(j)): int(c) for i, j, c in cells}
                       for a, cells in e.get("shown", {}).items()},
                item_reward={a: {int(i): float(r) for i, r in items}
                             for a, items in e.get("item_reward", {}).items()})
        decision_cursor, reward_cursor, expired_cursor = (int(c) for c in data["cursors"])
        return Totals(decision_cursor, reward_cursor, expired_cursor, experiments)


@dataclass(frozen=True, slots=True)
class SeriesPoint:
    """One experiment's running sums at one moment: a point of the statistics over time.

    Attributes:
        ts: UNIX time the point was taken.
        traffic_version: the split in force then.
        decisions: arm name -> decisions served so far (final or pending).
        arms: arm name -> sums of its final outcomes so far.
        max_log_lambda: treatment arm -> running maximum of the log mSPRT statistic so far.
    """

    ts: float
    traffic_version: int
    decisions: Mapping[str, int]
    arms: Mapping[str, ArmTotals]
    max_log_lambda: Mapping[str, float]

    @staticmethod
    def of(ts: float, traffic_version: int, totals: ExperimentTotals) -> SeriesPoint:
        """The point of ``totals`` at ``ts``."""
        names = sorted(set(totals.arms) | {a for arms in totals.splits.values() for a in arms})
        return SeriesPoint(ts, traffic_version, {a: totals.decisions(a) for a in names},
                           {a: totals.arm(a) for a in names}, dict(totals.max_log_lambda))

    def same_sums(self, other: SeriesPoint) -> bool:
        """Whether both points hold the same counts and sums (nothing happened in between)."""
        return (self.traffic_version, self.decisions, self.arms, self.max_log_lambda) == \
            (other.traffic_version, other.decisions, other.arms, other.max_log_lambda)

    def to_json(self) -> str:
        """One JSON document (read back by :meth:`from_json`)."""
        return json.dumps({"ts": self.ts, "v": self.traffic_version, "d": dict(self.decisions),
                           "arms": {a: [t.n_final, t.n_rewarded, t.reward_sum, t.reward_sq]
                                    for a, t in self.arms.items()},
                           "lam": dict(self.max_log_lambda)})

    @staticmethod
    def from_json(text: str) -> SeriesPoint:
        """The point :meth:`to_json` wrote."""
        data: dict[str, Any] = json.loads(text)
        return SeriesPoint(float(data["ts"]), int(data["v"]), {a: int(n) for a, n in data["d"].items()},
                           {a: ArmTotals(int(t[0]), int(t[1]), float(t[2]), float(t[3]))
                            for a, t in data["arms"].items()},
                           {a: float(x) for a, x in data["lam"].items()})


@dataclass(frozen=True, slots=True)
class OutcomeBatch:
    """What happened since a :class:`Totals`' cursors.

    Attributes:
        decision_cursor: the new decision cursor.
        reward_cursor: the new reward cursor.
        expired_cursor: the new expired-decision cursor.
        counts: (experiment, traffic version, arm, decisions, first-seen users) of the
            new decisions, one entry per group.
        experiment: shape (m,) str, experiment of each newly final outcome, in the
            order they became final (rewards by arrival, then expired decisions).
        arm: shape (m,) str.
        reward: shape (m,), total reward (0 for an expired decision).
        rewarded: shape (m,), whether a reward arrived.
        more: whether a read stopped at its limit (another batch follows).
        shown: (experiment, arm, item, slot, times shown) of the new decisions, one entry per cell.
        item_reward: (experiment, arm, item, reward) of the newly arrived rewards, one entry per
            item (the reward of the slot it was shown at).
    """

    decision_cursor: int
    reward_cursor: int
    expired_cursor: int
    counts: tuple[tuple[str, int, str, int, int], ...]
    experiment: npt.NDArray[np.str_]
    arm: npt.NDArray[np.str_]
    reward: FloatArray
    rewarded: BoolArray
    more: bool = False
    shown: tuple[tuple[str, str, int, int, int], ...] = ()
    item_reward: tuple[tuple[str, str, int, float], ...] = ()
