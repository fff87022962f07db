"""What the event store returns: frozen records, the same whichever backend holds the events."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class NewDecision:
    """A decision to store (the store assigns its ``event_id``).

    Attributes:
        ts: UNIX time (s) when it was made.
        user_id: the shopper.
        experiment: experiment name.
        arm: arm that served it.
        policy: registered policy name of the arm.
        policy_version: version of the policy state that chose the slate.
        traffic_version: traffic split in force.
        context: shape (d,).
        slate: shape (k,), catalog indices in position order.
        pscore: probability of the whole slate.
        pscore_item: shape (k,), marginal probability of each item at its slot.
        anchor: catalog index of the anchor item, or None.
    """

    ts: float
    user_id: str
    experiment: str
    arm: str
    policy: str
    policy_version: int
    traffic_version: int
    context: FloatArray
    slate: IntArray
    pscore: float
    pscore_item: FloatArray
    anchor: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision(NewDecision):
    """One stored decision: a :class:`NewDecision` with the ``event_id`` the store gave it.

    Attributes:
        event_id: the store's id of the decision (an int64 sequence; HTTP shows a tagged token).
    """

    event_id: int


@dataclass(frozen=True, slots=True)
class NewReward:
    """The outcome of one decision, to store once.

    Attributes:
        event_id: the decision.
        ts: UNIX time (s) of arrival.
        reward: shape (k,), per-slot reward.
        purchase: shape (k,) 0/1, or None.
        revenue: shape (k,), or None.
        digest: digest of the canonical payload (an identical repeat has the same one).
        kind: ``click`` (0/1 clicks were posted) or ``reward``.
    """

    event_id: int
    ts: float
    reward: FloatArray
    purchase: FloatArray | None
    revenue: FloatArray | None
    digest: str
    kind: str = "reward"


class RewardStatus(enum.StrEnum):
    """Outcome of storing a reward."""

    STORED = "stored"
    DUPLICATE = "duplicate"  # the same payload again: nothing changes
    CONFLICT = "conflict"  # a different payload for a decision that has one: nothing changes


@dataclass(frozen=True, slots=True)
class TrafficSplit:
    """A traffic split of an experiment.

    Attributes:
        experiment: experiment name.
        version: 1 for the configured split, +1 per change.
        ts: UNIX time (s) of the change.
        weights: arm name -> share (sums to 1).
        buckets: shape (n_buckets,), arm index (config order) of each hash bucket.
        reason: why it changed.
        actor: ``config``, ``admin`` or ``rollout``.
    """

    experiment: str
    version: int
    ts: float
    weights: dict[str, float]
    buckets: npt.NDArray[np.uint8]
    reason: str
    actor: str


@dataclass(frozen=True, slots=True)
class TrafficChange:
    """One entry of an experiment's traffic history (the split without its bucket table).

    Attributes:
        version: the split's version.
        ts: UNIX time (s) of the change.
        weights: arm name -> share.
        reason: why it changed.
        actor: ``config``, ``admin`` or ``rollout``.
    """

    version: int
    ts: float
    weights: dict[str, float]
    reason: str
    actor: str


@dataclass(frozen=True, slots=True)
class FeedbackBatch:
    """Outcomes of one arm that became final since the learner's cursors.

    Attributes:
        context: shape (m, d).
        slate: shape (m, k).
        reward: shape (m, k), 0 for decisions whose window closed without a reward.
        pscore: shape (m,).
        seq: the new reward cursor (arrival order of rewards).
        event: the new cursor of decisions whose window closed.
    """

    context: FloatArray
    slate: IntArray
    reward: FloatArray
    pscore: FloatArray
    seq: int
    event: int

    @property
    def n(self) -> int:
        """Number of outcomes ``m``."""
        return int(self.slate.shape[0])


@dataclass(frozen=True, slots=True)
class LoggedDecisions:
    """Recent decisions of an experiment at full length with their rewards (for off-policy estimates).

    Attributes:
        context: shape (m, d).
        slate: shape (m, k).
        reward: shape (m, k), 0 where no reward arrived.
        pscore_item: shape (m, k).
    """

    context: FloatArray
    slate: IntArray
    reward: FloatArray
    pscore_item: FloatArray

    @property
    def n(self) -> int:
        """Number of decisions ``m``."""
        return int(self.slate.shape[0])


@dataclass(frozen=True, slots=True)
class ExportedDecisions:
    """Decisions of one slate length joined with their outcomes, in event order (for the log export).

    Attributes:
        event_id: shape (n,).
        ts: shape (n,), UNIX seconds.
        user_id: shape (n,) str.
        label: shape (n,) str, ``<experiment>/<arm>/<policy>@v<version>``.
        context: shape (n, d).
        slate: shape (n, k).
        pscore: shape (n,).
        pscore_item: shape (n, k).
        reward: shape (n, k), 0 where no reward arrived.
        purchase: shape (n, k), or None when no reward carried purchases.
        revenue: shape (n, k), or None when no reward carried revenue.
        kinds: the reward kinds present (``click``, ``reward``).
    """

    event_id: IntArray
    ts: FloatArray
    user_id: npt.NDArray[np.str_]
    label: npt.NDArray[np.str_]
    context: FloatArray
    slate: IntArray
    pscore: FloatArray
    pscore_item: FloatArray
    reward: FloatArray
    purchase: FloatArray | None
    revenue: FloatArray | None
    kinds: frozenset[str]


@dataclass(frozen=True, slots=True)
class StoreMeta:
    """What the decisions of a store index into, written once by the first service to open it.

    Attributes:
        catalog: the served catalog as JSON (``simulator.logs.io.catalog_to_json``).
        k: slate length.
        dim_context: context width ``d``.
        context_names: names of the context columns.
        reward_window_s: seconds a reward is accepted after its decision.
        event_key: hex secret that tags the event ids handed out over HTTP.
    """

    catalog: dict[str, Any]
    k: int
    dim_context: int
    context_names: tuple[str, ...]
    reward_window_s: float
    event_key: str


@dataclass(frozen=True, slots=True)
class Removal:
    """What one erasure or retention pass removed.

    Attributes:
        action: ``erase`` (one shopper), ``expire`` (retention, rows deleted) or
            ``drop_context`` (retention, contexts deleted, rows kept).
        decisions: decisions removed (or whose context was dropped).
        rewards: rewards removed.
    """

    action: str
    decisions: int
    rewards: int
