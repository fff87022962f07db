"""The Open Bandit Dataset benchmark: estimate ``bts`` from the ``random`` logs, check against ``bts``'s own.

The Open Bandit Dataset (ZOZO, Inc., CC BY 4.0; Saito et al., NeurIPS 2021
Datasets and Benchmarks) logged the same widget under a uniform-random policy
and under Bernoulli Thompson sampling (``bts``). ``bts``'s action distribution
is recomputed from its production Beta prior (``bts_prior.json``) by Monte
Carlo, every estimator scores it on the ``random`` logs, and the ``bts`` logs'
mean click is the truth the estimates are held to.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bandits.policy import make_policy
from simulator.logs import LogFormatError, SlateLog, import_obd

#: Monte Carlo draws of the Beta posterior for the ``bts`` action distribution.
DEFAULT_N_DRAWS = 100_000


@dataclass(frozen=True)
class ObdResult:
    """One campaign's benchmark: every estimator's estimate against the ``bts`` logs' mean click."""

    campaign: str
    n_rounds: int
    n_items: int
    truth: float
    truth_stderr: float
    rows: list[dict[str, Any]]
    seconds: dict[str, float]

    def to_json(self) -> dict[str, Any]:
        """Plain data for ``--json`` output."""
        return {"campaign": self.campaign, "n_rounds": self.n_rounds, "n_items": self.n_items,
                "truth": self.truth, "truth_stderr": self.truth_stderr, "estimators": self.rows,
                "seconds": self.seconds}


def read_prior(data_dir: Path, campaign: str) -> tuple[np.ndarray, np.ndarray]:
    """The production Beta prior ``(alpha, beta)`` of ``bts`` for ``campaign``, each ``(n_items,)``."""
    path = data_dir / "bts_prior.json"
    if not path.is_file():
        raise LogFormatError(f"{path}: not found; the benchmark needs the bts policy's prior "
                             "(bts_prior.json, shipped with the Open Bandit Dataset sample).")
    prior = json.loads(path.read_text())
    if campaign not in prior:
        raise LogFormatError(f"{path}: no prior for campaign {campaign!r}; it has {sorted(prior)}.")
    return (np.asarray(prior[campaign]["alpha"], dtype=np.float64),
            np.asarray(prior[campaign]["beta"], dtype=np.float64))


def bts_action_dist(log: SlateLog, alpha: np.ndarray, beta: np.ndarray, *, n_draws: int,
                    seed: int) -> np.ndarray:
    """``bts``'s probability of each item at each position, ``(n, n_items, n_positions)``.

    The policy is context-free, so one Monte Carlo estimate is shared by every row.
    """
    if alpha.shape != (log.n_items,):
        raise LogFormatError(f"bts prior has {alpha.shape[0]} items but the log has {log.n_items}; "
                             "use the prior of the same campaign.")
    policy = make_policy("bernoulli_ts", n_items=log.n_items, k=log.n_positions,
                         dim_context=log.dim_context, alpha=alpha, beta=beta, n_draws=n_draws, seed=seed)
    one = policy.action_dist(log.context[:1])
    return np.broadcast_to(one, (log.n_rounds, *one.shape[1:]))


def run_campaign(data_dir: Path, campaign: str, *, estimators: list[str] | None = None,
                 n_bootstrap: int = 200, n_draws: int = DEFAULT_N_DRAWS, level: float = 0.95,
                 seed: int = 0) -> ObdResult:
    """Estimate ``bts``'s click rate from ``campaign``'s random logs with every estimator."""
    from bandits.ope import estimate_all

    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    log = import_obd(data_dir, policy="random", campaign=campaign)
    truth_log = import_obd(data_dir, policy="bts", campaign=campaign)
    seconds["read"] = time.perf_counter() - t0
    alpha, beta = read_prior(data_dir, campaign)

    t0 = time.perf_counter()
    dist = bts_action_dist(log, alpha, beta, n_draws=n_draws, seed=seed)
    seconds["action_dist"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    results = estimate_all(log, dist, estimators=estimators, n_bootstrap=n_bootstrap, level=level,
                           seed=seed)
    seconds["estimate"] = time.perf_counter() - t0
    seconds["benchmark"] = seconds["action_dist"] + seconds["estimate"]

    clicks = truth_log.reward[:, 0]
    truth = float(clicks.mean())
    truth_stderr = float(clicks.std(ddof=1) / np.sqrt(clicks.size))
    rows = []
    for est in results:
        row = est.to_dict()
        row["truth"] = truth
        row["relative_error"] = abs(est.value - truth) / truth if truth > 0 else float("nan")
        row["covers_truth"] = bool(est.low <= truth <= est.high)
        rows.append(row)
    return ObdResult(campaign, log.n_rounds, log.n_items, truth, truth_stderr, rows, seconds)
