"""Traffic splits of experiments: the configured first split, changes, and a per-process cache."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping

from serving.assignment import initial_table, rebalance
from serving.config import ABExperimentConfig
from serving.errors import InvalidField
from serving.store import EventStore, TrafficSplit


def ensure_initial(store: EventStore, exp: ABExperimentConfig) -> TrafficSplit:
    """The split in force, writing the configured one when there is none.

    The configured split is version 1. When the store's split names other arms than
    the configuration (arms were added, removed or reordered), the configured split
    is written as the next version, with that reason: bucket tables index arms by
    their position, so an old table cannot carry over.
    """
    for _ in range(20):
        split = store.traffic(exp.name)
        names = [arm.name for arm in exp.arms]
        if split is not None and list(split.weights) == names:
            return split
        weights = {arm.name: float(arm.weight) for arm in exp.arms}
        version = 1 if split is None else split.version + 1
        reason = "configured split" if split is None else \
            f"arms changed in the configuration from {list(split.weights)} to {names}; configured split"
        store.add_traffic(TrafficSplit(experiment=exp.name, version=version, ts=time.time(),
                                       weights=weights, buckets=initial_table(list(weights.values()),
                                                                              exp.salt),
                                       reason=reason, actor="config"),
                          expected_version=version - 1)
    raise RuntimeError(f"could not write the configured split of {exp.name!r}: too many concurrent writers")


def check_weights(exp: ABExperimentConfig, weights: Mapping[str, object]) -> dict[str, float]:
    """Validate new shares: known arms, numbers in [0, 1] summing to 1 (missing arms get 0).

    Raises:
        InvalidField: naming ``weights`` or ``weights.<arm>``.
    """
    names = [arm.name for arm in exp.arms]
    unknown = sorted(set(weights) - set(names))
    if unknown:
        raise InvalidField("weights", f"arms among {names}", f"unknown arms {unknown}")
    out: dict[str, float] = {}
    for name in names:
        value = weights.get(name, 0.0)
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            raise InvalidField(f"weights.{name}", "a share in [0, 1]", repr(value))
        out[name] = float(value)
    total = sum(out.values())
    if abs(total - 1.0) > 1e-6:
        raise InvalidField("weights", "shares summing to 1", f"a sum of {total:g}",
                           "Give every arm's share; missing arms count as 0.")
    return out


def same_weights(a: Mapping[str, float], b: Mapping[str, float]) -> bool:
    """Whether two splits give every arm the same share (to within 1e-9)."""
    return all(abs(a.get(arm, 0.0) - b.get(arm, 0.0)) <= 1e-9 for arm in set(a) | set(b))


def change_split(store: EventStore, exp: ABExperimentConfig, weights: Mapping[str, float], reason: str,
                 actor: str) -> TrafficSplit:
    """Write a new split moving the fewest users, retrying if another writer raced us.

    A split with the shares already in force is not written: the split in force is
    returned unchanged, so the history holds changes only.
    """
    for _ in range(20):
        current = ensure_initial(store, exp)
        if same_weights(current.weights, weights):
            return current
        ordered = [float(weights.get(arm.name, 0.0)) for arm in exp.arms]
        table = rebalance(current.buckets, ordered, exp.salt)
        new = TrafficSplit(experiment=exp.name, version=current.version + 1, ts=time.time(),
                           weights={arm.name: w for arm, w in zip(exp.arms, ordered, strict=True)},
                           buckets=table, reason=reason, actor=actor)
        if store.add_traffic(new, expected_version=current.version):
            return new
    raise RuntimeError(f"could not change the split of {exp.name!r}: too many concurrent writers")


class TrafficCache:
    """The split in force per experiment, re-read from the store at most every ``interval`` s."""

    def __init__(self, store: EventStore, experiments: tuple[ABExperimentConfig, ...],
                 interval: float) -> None:
        self.store = store
        self.interval = interval
        self._splits = {exp.name: ensure_initial(store, exp) for exp in experiments}
        self._checked = dict.fromkeys(self._splits, time.monotonic())
        self._lock = threading.Lock()

    def get(self, experiment: str) -> TrafficSplit:
        """The split in force (possibly ``interval`` seconds stale)."""
        now = time.monotonic()
        if now - self._checked[experiment] >= self.interval:
            self.refresh(experiment)
        return self._splits[experiment]

    def refresh(self, experiment: str) -> TrafficSplit:
        """Re-read the split from the store now."""
        with self._lock:
            self._checked[experiment] = time.monotonic()
            if self.store.traffic_version(experiment) != self._splits[experiment].version:
                split = self.store.traffic(experiment)
                if split is not None:
                    self._splits[experiment] = split
            return self._splits[experiment]

