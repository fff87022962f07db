"""A summary of a log a person reads before trusting it."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats

from simulator.logs.schema import FloatArray, SlateLog


@dataclass(frozen=True, slots=True)
class RateInterval:
    """A mean reward with its 95% interval over ``n`` observations."""

    rate: float
    low: float
    high: float
    n: int


def rate_interval(values: FloatArray, level: float = 0.95) -> RateInterval:
    """Mean of ``values`` (n,) with a ``level`` interval.

    Binary values (clicks) get the Wilson score interval, which stays inside
    [0, 1] and behaves at click rates near 0; other rewards get the normal
    approximation with the sample standard deviation.
    """
    n = int(values.shape[0])
    if n == 0:
        return RateInterval(float("nan"), float("nan"), float("nan"), 0)
    z = float(stats.norm.ppf(0.5 + level / 2.0))
    mean = float(values.mean())
    if np.isin(values, (0.0, 1.0)).all():
        denom = 1.0 + z * z / n
        centre = (mean + z * z / (2 * n)) / denom
        half = z * np.sqrt(mean * (1 - mean) / n + z * z / (4 * n * n)) / denom
        return RateInterval(mean, float(centre - half), float(centre + half), n)
    half = z * float(values.std(ddof=1)) / np.sqrt(n) if n > 1 else float("inf")
    return RateInterval(mean, mean - half, mean + half, n)


@dataclass(frozen=True, slots=True)
class LogSummary:
    """What :func:`describe` reports."""

    n_rounds: int
    n_sessions: int
    n_items: int
    n_items_shown: int
    k: int
    n_positions: int
    dim_context: int
    logging_policy: str
    reward_type: str
    reward_rate: RateInterval
    reward_rate_by_position: tuple[RateInterval, ...]
    pscore_source: str
    pscore_min: float
    pscore_mean: float
    pscore_max: float
    ess_uniform: float
    time_start: str | None
    time_end: str | None

    def to_json(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return asdict(self)

    def to_text(self) -> str:
        """A table a person reads."""

        def fmt(r: RateInterval) -> str:
            return f"{r.rate:.5f}  [{r.low:.5f}, {r.high:.5f}]  n={r.n:,}"

        lines = [
            f"rows            {self.n_rounds:,}",
            f"sessions        {self.n_sessions:,}",
            f"items           {self.n_items_shown:,} shown of {self.n_items:,} in the catalog",
            f"slate           k={self.k}, positions={self.n_positions}, context d={self.dim_context}",
            f"logging policy  {self.logging_policy} (reward: {self.reward_type})",
            f"{self.reward_type} rate      {fmt(self.reward_rate)}",
        ]
        for j, r in enumerate(self.reward_rate_by_position):
            lines.append(f"  position {j}    {fmt(r)}")
        lines += [
            f"pscore          min {self.pscore_min:.6g}  mean {self.pscore_mean:.6g}  "
            f"max {self.pscore_max:.6g}  ({self.pscore_source})",
            f"ESS (uniform)   {self.ess_uniform:,.1f} of {self.n_rounds:,} rows",
            f"time span       {self.time_start or '-'} .. {self.time_end or '-'}",
        ]
        return "\n".join(lines)


def describe(log: SlateLog) -> LogSummary:
    """Summarise a log for a person about to trust it.

    Rows, sessions, items, reward rate overall and by position (95% intervals),
    pscore range and source (logged or estimated), the effective sample size of
    weights toward the uniform policy and the time span.

    "By position" is by slot ``j`` of the slate for slate logs and by the
    ``position`` column for one-row-per-position logs.
    """
    reward = np.asarray(log.reward, dtype=np.float64)
    if log.position is not None:
        values = reward[:, 0]
        by_position = tuple(rate_interval(values[log.position == j])
                            for j in range(log.n_positions))
        overall = rate_interval(reward.reshape(-1))
    else:
        by_position = tuple(rate_interval(reward[:, j]) for j in range(log.k))
        overall = rate_interval(reward.reshape(-1))
    # The uniform policy's slate probability is the same for every row, so the
    # weights are proportional to 1 / pscore and the ESS does not depend on it.
    inv = 1.0 / log.pscore
    ess = float(inv.sum() ** 2 / (inv**2).sum()) if log.n_rounds else 0.0
    start: str | None = None
    end: str | None = None
    if log.timestamp is not None and log.n_rounds:
        start = str(np.datetime_as_string(log.timestamp.min(), unit="s")) + "Z"
        end = str(np.datetime_as_string(log.timestamp.max(), unit="s")) + "Z"
    n = log.n_rounds
    return LogSummary(
        n_rounds=n,
        n_sessions=int(np.unique(log.session_id).size),
        n_items=log.n_items,
        n_items_shown=int(np.unique(log.slate).size),
        k=log.k,
        n_positions=log.n_positions,
        dim_context=log.dim_context,
        logging_policy=log.metadata.logging_policy,
        reward_type=log.metadata.reward_type,
        reward_rate=overall,
        reward_rate_by_position=by_position,
        pscore_source=log.metadata.pscore_source,
        pscore_min=float(log.pscore.min()) if n else float("nan"),
        pscore_mean=float(log.pscore.mean()) if n else float("nan"),
        pscore_max=float(log.pscore.max()) if n else float("nan"),
        ess_uniform=ess,
        time_start=start,
        time_end=end,
    )
