"""A running ratio estimate with a normal-approximation confidence interval.

Both replay estimators are ratios of per-event sums, ``V = sum(a) / sum(b)``:

* unbiased replay (Li et al., WSDM 2011): ``a`` = reward on matched impressions,
  ``b`` = number of matched impressions, so ``V`` is the mean reward where the
  agent agreed with the log;
* inverse-propensity weighting: ``a`` = reward on matched impressions divided by
  their propensity, ``b`` = number of impressions, so ``V`` is the IPS mean.

The standard error is the delta-method one for a ratio of sums over
independent events, ``sqrt(m / (m - 1) * sum((a - V b)^2)) / sum(b)``, with
``m`` the number of events with ``b > 0``; for ``b`` in {0, 1} it is the usual
standard error of a mean.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist


@dataclass(frozen=True, slots=True)
class ReplayEstimate:
    """The running estimate of a replay environment.

    Attributes:
        method: ``replay`` or ``ips``.
        value: estimated reward per impression (per slate when slates are matched
            whole); NaN while no event has counted.
        stderr: its standard error; NaN with fewer than two events.
        ci_low: lower end of the ``1 - alpha`` normal interval.
        ci_high: upper end of the interval.
        alpha: one minus the interval's coverage.
        n_events: logged decisions stepped through.
        n_used: decisions where the agent's slate matched the log (they count).
        n_impressions: impressions in the denominator (matched ones for replay).
    """

    method: str
    value: float
    stderr: float
    ci_low: float
    ci_high: float
    alpha: float
    n_events: int
    n_used: int
    n_impressions: float

    def to_json(self) -> dict[str, float | int | str | None]:
        """Plain-JSON form (NaN becomes ``None``)."""

        def num(x: float) -> float | None:
            return None if math.isnan(x) else x

        return {"method": self.method, "value": num(self.value), "stderr": num(self.stderr),
                "ci_low": num(self.ci_low), "ci_high": num(self.ci_high), "alpha": self.alpha,
                "n_events": self.n_events, "n_used": self.n_used,
                "n_impressions": self.n_impressions}


class RunningRatio:
    """Accumulate ``(a, b)`` per event and give ``sum(a) / sum(b)`` with an interval.

    Args:
        method: name carried into the estimate.
        alpha: one minus the interval's coverage, in (0, 1).
    """

    def __init__(self, method: str, alpha: float = 0.05) -> None:
        if not 0.0 < alpha < 1.0:
            raise ValueError(f"`alpha` must lie in (0, 1), found {alpha}; 0.05 gives a 95% interval.")
        self.method = method
        self.alpha = alpha
        self._z = NormalDist().inv_cdf(1.0 - alpha / 2.0)
        self.clear()

    def clear(self) -> None:
        """Forget every event."""
        self._sa = self._sb = self._saa = self._sab = self._sbb = 0.0
        self._n_events = 0
        self._n_used = 0
        self._n_pos = 0

    def add(self, a: float, b: float, used: bool) -> None:
        """Record one event's numerator ``a``, denominator ``b`` and whether it counted."""
        self._sa += a
        self._sb += b
        self._saa += a * a
        self._sab += a * b
        self._sbb += b * b
        self._n_events += 1
        self._n_used += used
        self._n_pos += b > 0.0

    def info(self) -> dict[str, float | int | None]:
        """The estimate as info-dict entries, None where undefined (cheap: called every step)."""
        value = stderr = low = high = None
        if self._sb > 0:
            value = self._sa / self._sb
            m = self._n_pos
            if m >= 2:
                resid = self._saa - 2.0 * value * self._sab + value * value * self._sbb
                stderr = math.sqrt(max(resid, 0.0) * m / (m - 1)) / self._sb
                low, high = value - self._z * stderr, value + self._z * stderr
        return {"estimate": value, "stderr": stderr, "ci_low": low, "ci_high": high,
                "n_events": self._n_events, "n_used": self._n_used}

    def estimate(self) -> ReplayEstimate:
        """The estimate so far."""
        nan = math.nan
        value = self._sa / self._sb if self._sb > 0 else nan
        stderr = nan
        m = self._n_pos
        if m >= 2:
            resid = self._saa - 2.0 * value * self._sab + value * value * self._sbb
            stderr = math.sqrt(max(resid, 0.0) * m / (m - 1)) / self._sb
        half = self._z * stderr
        return ReplayEstimate(method=self.method, value=value, stderr=stderr, ci_low=value - half,
                              ci_high=value + half, alpha=self.alpha, n_events=self._n_events,
                              n_used=self._n_used, n_impressions=self._sb)
