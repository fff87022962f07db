"""Off-policy estimates over a partitioned log, from mergeable per-partition statistics.

A log too big for memory is a folder of Parquet partitions. Each partition is
read alone and reduced to sums — the estimators' numerator and denominator
sums, importance-weight sums, the reward model's Gram matrix, and bootstrap
replicate sums from Poisson counts seeded by ``(seed, partition, block)`` — and
sums merge by addition. So the estimate and its bootstrap interval do not
depend on where partitions are read (this process, or Ray tasks on a
cluster), and the driver holds only the sums.

Two passes: the first merges every partition's ridge sufficient statistics
(``X^T X``, ``X^T y``); the reward model that scores partition ``p`` is fitted
on all the *other* partitions (cross-fitting with partitions as folds). The
second pass computes IPS, SNIPS and DR sums with that model.

The same functions run in memory (``engine=None``): split a log into
partitions with :func:`split_log` and the result is the same to floating-point
precision.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from bandits.ope._data import FloatArray, prepare
from bandits.ope.estimators import ESTIMATORS, Context
from bandits.ope.intervals import bootstrap_sums, percentile_interval
from bandits.ope.reward_model import Fitted, Predictions, RidgeRewardModel, design
from simulator.errors import OPEError
from simulator.logs import SlateLog, load_parquet

PARTITIONED_ESTIMATORS = ("ips", "snips", "dr")
#: Rows processed at once inside a partition (bounds the (rows, n_items, k) action distribution).
BLOCK_ROWS = 20_000

Source = SlateLog | str | os.PathLike[str]
PolicyFn = Callable[[SlateLog], FloatArray]


def list_partitions(folder: str | os.PathLike[str]) -> list[Path]:
    """The ``*.parquet`` files of ``folder``, sorted by name (the partition order)."""
    root = Path(folder)
    if not root.is_dir():
        raise OPEError(f"{root}: not a folder of Parquet partitions.")
    files = sorted(root.glob("*.parquet"))
    if not files:
        raise OPEError(f"{root}: no *.parquet partitions found.")
    return files


def split_log(log: SlateLog, n_partitions: int) -> list[SlateLog]:
    """``log`` cut into ``n_partitions`` consecutive partitions (the in-memory twin of a folder)."""
    bounds = np.linspace(0, log.n_rounds, n_partitions + 1).astype(int)
    return [log.take(np.arange(a, b)) for a, b in itertools.pairwise(bounds)]


def _load(source: Source) -> SlateLog:
    return source if isinstance(source, SlateLog) else load_parquet(source)


def _blocks(log: SlateLog) -> list[SlateLog]:
    if log.n_rounds <= BLOCK_ROWS:
        return [log]
    starts = range(0, log.n_rounds, BLOCK_ROWS)
    return [log.take(np.arange(s, min(s + BLOCK_ROWS, log.n_rounds))) for s in starts]


@dataclass(frozen=True, slots=True)
class GramStats:
    """Ridge sufficient statistics of one partition: ``X^T X (p, p)``, ``X^T y (p,)``."""

    gram: FloatArray
    xty: FloatArray


def gram_stats(source: Source, policy_fn: PolicyFn) -> GramStats:
    """Pass 1 over one partition."""
    del policy_fn  # the model does not depend on the evaluated policy
    gram: FloatArray | None = None
    xty: FloatArray | None = None
    for block in _blocks(_load(source)):
        slot = (block.position[:, None] if block.position is not None
                else np.broadcast_to(np.arange(block.k), block.slate.shape))
        X = design(np.asarray(block.context, dtype=np.float64), block.slate, slot, block.n_items,
                   block.n_positions)
        g = (X.T @ X).toarray()
        v = np.asarray(X.T @ block.reward.ravel(), dtype=np.float64)
        gram = g if gram is None else gram + g
        xty = v if xty is None else xty + v
    assert gram is not None
    assert xty is not None
    return GramStats(gram, xty)


@dataclass(frozen=True, slots=True)
class EstimateStats:
    """Pass 2 over one partition: sums that merge by addition (``max_weight`` by max)."""

    n: int
    num: FloatArray          # (E, J) numerator sums per estimator and slot
    den: FloatArray          # (E, J) denominator sums (NaN: divide by rows)
    boot: FloatArray         # (B, E * 2J + 1) replicate sums, last column the count
    w_sum: float
    w_sq: float
    w_count: int
    max_weight: float

    def merge(self, other: EstimateStats) -> EstimateStats:
        """The statistics of both partitions together."""
        return EstimateStats(self.n + other.n, self.num + other.num, self.den + other.den,
                             self.boot + other.boot, self.w_sum + other.w_sum, self.w_sq + other.w_sq,
                             self.w_count + other.w_count, max(self.max_weight, other.max_weight))


def estimate_stats(source: Source, policy_fn: PolicyFn, beta: FloatArray, n_bootstrap: int,
                   seed: tuple[int, int]) -> EstimateStats:
    """Pass 2 over one partition with the reward model ``beta`` fitted on the other partitions."""
    with threadpool_limits(limits=1):  # the same float32 sums in every process, whatever its BLAS threads
        return _estimate_stats(source, policy_fn, beta, n_bootstrap, seed)


def _estimate_stats(source: Source, policy_fn: PolicyFn, beta: FloatArray, n_bootstrap: int,
                    seed: tuple[int, int]) -> EstimateStats:
    out: EstimateStats | None = None
    for b, block in enumerate(_blocks(_load(source))):
        data = prepare(block, policy_fn(block))
        fitted = Fitted(beta, data.context.shape[1], data.n_items)
        model = RidgeRewardModel()
        q_logged, q_policy = model.predict(fitted, data, np.arange(data.n))
        pred = Predictions(q_logged, q_policy, np.ones(q_logged.shape), None)
        ctx = Context(data, pred, None, 0)
        parts = [ESTIMATORS[name].fn(ctx).terms.parts[0] for name in PARTITIONED_ESTIMATORS]
        k = data.k
        cols, num, den = [], [], []
        for p in parts:
            d = p.den if p.den is not None else np.zeros_like(p.num)
            cols += [p.num, d]
            num.append(p.num.sum(axis=0))
            den.append(p.den.sum(axis=0) if p.den is not None else np.full(k, np.nan))
        boot = bootstrap_sums(np.hstack(cols), n_bootstrap, seed=[*seed, b], threads=1)
        w = data.weight
        stats = EstimateStats(data.n, np.array(num), np.array(den), boot, float(w.sum()), float((w**2).sum()),
                              int(w.size), float(w.max()))
        out = stats if out is None else out.merge(stats)
    assert out is not None
    return out


def _map(fn: Callable[..., Any], sources: Sequence[Any], args: tuple[Any, ...], engine: Any) -> list[Any]:
    if engine is None:
        return [fn(s, *args) for s in sources]
    return list(engine(fn, sources, args))


def ray_data_map(fn: Callable[..., Any], sources: Sequence[Any], args: tuple[Any, ...]) -> list[Any]:
    """Run ``fn(source, *args)`` for every partition with Ray Data, one task per partition, in order."""
    from simulator.cluster import import_ray

    ray = import_ray()
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    ray.data.DataContext.get_current().enable_progress_bars = False
    ds = ray.data.from_items([{"i": i, "source": s} for i, s in enumerate(sources)],
                             override_num_blocks=len(sources))
    results = ds.map(lambda row: {"i": row["i"], "out": fn(row["source"], *args)}).take_all()
    return [r["out"] for r in sorted(results, key=lambda r: r["i"])]


class PolicyDist:
    """A picklable ``policy_fn``: a policy's action distribution for a block's contexts."""

    def __init__(self, policy: Any) -> None:
        self.policy = policy

    def __call__(self, log: SlateLog) -> FloatArray:
        """(n, n_items, k) for ``log``'s contexts."""
        return np.asarray(self.policy.action_dist(log.context), dtype=np.float64)


@dataclass(frozen=True, slots=True)
class PartitionedEstimate:
    """An estimator's value, bootstrap interval and weight diagnostics over every partition."""

    estimator: str
    value: float
    low: float
    high: float
    stderr: float
    n: int
    ess: float
    max_weight: float
    mean_weight: float
    level: float

    def to_dict(self) -> dict[str, Any]:
        """Plain data."""
        return {k: getattr(self, k) for k in self.__slots__}


def estimate_partitioned(sources: Sequence[Source], policy_fn: PolicyFn, *, n_bootstrap: int = 200,
                         level: float = 0.95, seed: int = 0, alpha: float = 1.0,
                         engine: Callable[..., list[Any]] | None = None) -> list[PartitionedEstimate]:
    """IPS, SNIPS and DR with Poisson-bootstrap intervals over partitions (paths or in-memory logs).

    Args:
        sources: the partitions, in order (Parquet paths or :class:`SlateLog`s).
        policy_fn: maps a block of a partition to the evaluation policy's
            ``(n, n_items, n_positions)`` action distribution (e.g. ``lambda log:
            policy.action_dist(log.context)``); it must be picklable for Ray.
        n_bootstrap: Poisson-bootstrap replicates (seeded per partition and block).
        level: confidence level of the intervals.
        seed: the bootstrap's seed.
        alpha: the ridge reward model's penalty.
        engine: ``None`` (this process) or :func:`ray_data_map`.
    """
    if len(sources) < 2:
        raise OPEError("estimate_partitioned needs at least 2 partitions (the reward model of each is "
                       "fitted on the others); split the log with split_log.")
    grams = _map(gram_stats, sources, (policy_fn,), engine)
    total_gram = np.sum([g.gram for g in grams], axis=0)
    total_xty = np.sum([g.xty for g in grams], axis=0)
    pen = np.full(total_gram.shape[0], alpha)
    pen[0] = 1e-8
    betas = [np.linalg.solve(total_gram - g.gram + np.diag(pen), total_xty - g.xty) for g in grams]
    items = [(src, beta, i) for i, (src, beta) in enumerate(zip(sources, betas, strict=True))]
    stats_list = _map(_stats_task, items, (policy_fn, n_bootstrap, seed), engine)
    stats = stats_list[0]
    for s in stats_list[1:]:
        stats = stats.merge(s)
    return _finalise(stats, level)


def _stats_task(item: tuple[Source, FloatArray, int], policy_fn: PolicyFn, n_bootstrap: int,
                seed: int) -> EstimateStats:
    source, beta, index = item
    return estimate_stats(source, policy_fn, beta, n_bootstrap, (seed, index))


def _finalise(stats: EstimateStats, level: float) -> list[PartitionedEstimate]:
    k = stats.num.shape[1]
    count = stats.boot[:, -1]
    out = []
    ess = stats.w_sum**2 / stats.w_sq if stats.w_sq > 0 else 0.0
    for e, name in enumerate(PARTITIONED_ESTIMATORS):
        den = stats.den[e]
        plain = np.isnan(den).all()
        value = float(np.sum(stats.num[e] / (stats.n if plain else den)))
        num_b = stats.boot[:, 2 * k * e:2 * k * e + k]
        den_b = count[:, None] if plain else stats.boot[:, 2 * k * e + k:2 * k * (e + 1)]
        reps = np.sum(num_b / den_b, axis=1)
        low, high, se = percentile_interval(reps, level)
        out.append(PartitionedEstimate(name, value, low, high, se, stats.n, ess,
                                       stats.max_weight if name != "dm" else math.nan,
                                       stats.w_sum / stats.w_count, level))
    return out
