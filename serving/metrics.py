"""Prometheus text-format metrics of one worker process.

Request counts, latencies and errors are counted per process (each sample
carries a ``pid`` label, so a scrape shows which worker answered); decisions
per arm come from the store and so cover every worker.
"""

from __future__ import annotations

import os
import threading
from collections import defaultdict

LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


class Metrics:
    """Thread-safe counters and latency histograms."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, str, int], int] = defaultdict(int)
        self.errors: dict[tuple[str, str], int] = defaultdict(int)
        self.latency_counts: dict[str, list[int]] = {}
        self.latency_sum: dict[str, float] = defaultdict(float)
        self.decisions: dict[tuple[str, str], int] = defaultdict(int)

    def observe(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        """Count one answered request and its latency."""
        with self._lock:
            self.requests[(endpoint, method, status)] += 1
            counts = self.latency_counts.setdefault(endpoint, [0] * (len(LATENCY_BUCKETS_S) + 1))
            for i, bound in enumerate(LATENCY_BUCKETS_S):
                if seconds <= bound:
                    counts[i] += 1
                    break
            else:
                counts[-1] += 1
            self.latency_sum[endpoint] += seconds

    def error(self, endpoint: str, code: str) -> None:
        """Count one error answer by its error code."""
        with self._lock:
            self.errors[(endpoint, code)] += 1

    def decision(self, experiment: str, arm: str) -> None:
        """Count one decision served by this process."""
        with self._lock:
            self.decisions[(experiment, arm)] += 1

    def render(self, stored: dict[tuple[str, str], int]) -> str:
        """The metrics in Prometheus text format 0.0.4.

        Args:
            stored: decisions per (experiment, arm) in the store (all workers).
        """
        pid = os.getpid()
        out = ["# HELP slatewise_requests_total HTTP requests answered by this worker.",
               "# TYPE slatewise_requests_total counter"]
        with self._lock:
            for (endpoint, method, status), n in sorted(self.requests.items()):
                out.append(f'slatewise_requests_total{{pid="{pid}",endpoint="{endpoint}",'
                           f'method="{method}",status="{status}"}} {n}')
            out += ["# HELP slatewise_request_latency_seconds Time to answer a request.",
                    "# TYPE slatewise_request_latency_seconds histogram"]
            for endpoint, counts in sorted(self.latency_counts.items()):
                running = 0
                for bound, n in zip((*LATENCY_BUCKETS_S, float("inf")), counts, strict=True):
                    running += n
                    le = "+Inf" if bound == float("inf") else repr(bound)
                    out.append(f'slatewise_request_latency_seconds_bucket{{pid="{pid}",'
                               f'endpoint="{endpoint}",le="{le}"}} {running}')
                out.append(f'slatewise_request_latency_seconds_sum{{pid="{pid}",endpoint="{endpoint}"}} '
                           f"{self.latency_sum[endpoint]:.6f}")
                out.append(f'slatewise_request_latency_seconds_count{{pid="{pid}",endpoint="{endpoint}"}} '
                           f"{running}")
            out += ["# HELP slatewise_errors_total Error answers by error code.",
                    "# TYPE slatewise_errors_total counter"]
            for (endpoint, code), n in sorted(self.errors.items()):
                out.append(f'slatewise_errors_total{{pid="{pid}",endpoint="{endpoint}",code="{code}"}} {n}')
            out += ["# HELP slatewise_worker_decisions_total Decisions served by this worker.",
                    "# TYPE slatewise_worker_decisions_total counter"]
            for (exp, arm), n in sorted(self.decisions.items()):
                out.append(f'slatewise_worker_decisions_total{{pid="{pid}",experiment="{exp}",'
                           f'arm="{arm}"}} {n}')
        out += ["# HELP slatewise_decisions_stored Decisions in the store per arm (all workers).",
                "# TYPE slatewise_decisions_stored gauge"]
        for (exp, arm), n in sorted(stored.items()):
            out.append(f'slatewise_decisions_stored{{experiment="{exp}",arm="{arm}"}} {n}')
        return "\n".join(out) + "\n"
