"""Propensities of a log whose logging policy is unknown, estimated from the log itself.

The model, per slot ``j`` of a slate of ``k``:

* **Classifier.** A multinomial logistic regression (scikit-learn, L2, on
  standardised context) fits ``p_j(item | context)``, the probability that the
  logger put ``item`` at slot ``j``. Logs with one row per position (``k = 1``
  and a ``position`` column) add the position, one-hot, to the context.
* **Cross-fitted.** Sessions are split into ``n_folds`` folds; each row is
  scored by the model fitted on the other folds, so no propensity comes from a
  model that saw its row or its session.
* **Calibrated.** Per slot, a temperature ``T`` and a share ``a`` of the uniform
  distribution, ``p = (1 - a) softmax(log p_hat / T) + a / n_items``, fitted by
  maximum likelihood on the out-of-fold predictions: ``T`` undoes over- or
  under-confidence, and ``a`` gives items the other folds never showed a
  probability above zero.

Then ``pscore_item[:, j] = p_j(slate[:, j] | context)``, and the slate's
``pscore`` follows **Plackett-Luce** with first-stage probabilities ``p_0``:
``prod_j p_0(s_j) / (1 - sum_{l<j} p_0(s_l))`` (each slot draws from the items
not yet shown). Both are exact in the limit for a uniform logger and for a
Plackett-Luce logger whose logits are linear in the context; other loggers get
the best such approximation.

What no estimate can fix: the context must hold what the logger decided on.
If it also used something the log lacks (the exact anchor item, stock, a
shopper's history), the estimate is ``P(item | logged context)``, and
off-policy estimates built on it can be biased; a log imported this way is
marked ``pscore_source = "estimated"``, so every later estimate says so.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.optimize import minimize_scalar
from threadpoolctl import threadpool_limits

from simulator.errors import LogValidationError, Problem
from simulator.logs.schema import SlateLog

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
logger = logging.getLogger(__name__)

C_GRID = (0.003, 0.03, 0.3)
"""Inverse L2 strengths tried; slot 0's out-of-fold log loss picks one for every slot."""
CHUNK_ROWS = 20_000
CALIBRATION_ROWS = 5_000
TEMPERATURE_RANGE = (0.05, 20.0)
UNIFORM_SHARE_RANGE = (1e-6, 0.999)


@dataclass(frozen=True, slots=True)
class PscoreEstimate:
    """Estimated propensities of a log and how well the model fits.

    Attributes:
        pscore: shape (n,), the slate's probability (Plackett-Luce on slot 0's model).
        pscore_item: shape (n, k), each shown item's probability at its slot.
        n_folds: folds of the cross-fit.
        c: inverse L2 strength of the classifiers (scikit-learn's ``C``), the one chosen.
        c_log_loss: (C, slot 0's out-of-fold log loss) of every ``C`` tried.
        temperature: shape (k,), the calibration temperature of each slot.
        uniform_share: shape (k,), the calibration's share of the uniform distribution per slot.
        log_loss: shape (k,), out-of-fold mean log loss (nats) of each slot's calibrated model.
        uniform_log_loss: ``log(n_items)``, the log loss of guessing uniformly (the baseline).
        converged: every classifier converged within its iteration limit.
    """

    pscore: FloatArray
    pscore_item: FloatArray
    n_folds: int
    c: float
    c_log_loss: tuple[tuple[float, float], ...]
    temperature: tuple[float, ...]
    uniform_share: tuple[float, ...]
    log_loss: tuple[float, ...]
    uniform_log_loss: float
    converged: bool

    def describe(self) -> str:
        """One line for log metadata and reports."""
        losses = ", ".join(f"{v:.3f}" for v in self.log_loss)
        return (f"per-slot multinomial logistic regression (scikit-learn, C={self.c:g}), {self.n_folds}-fold "
                f"cross-fit by session, temperature + uniform-share calibration, Plackett-Luce slate "
                f"pscore; out-of-fold log loss per slot [{losses}] vs uniform {self.uniform_log_loss:.3f}")


def _features(context: FloatArray, position: IntArray | None, n_positions: int) -> FloatArray:
    parts = [np.asarray(context, dtype=np.float64)]
    if position is not None:
        parts.append(np.eye(n_positions)[position])
    x = np.hstack(parts) if parts[0].shape[1] or position is not None else np.zeros((context.shape[0], 1))
    return x


def _calibrated(logp: FloatArray, temperature: float, share: float) -> FloatArray:
    """Log of ``(1 - share) softmax(logp / T) + share / n_items``, shape of ``logp`` (n, n_items)."""
    m = logp.shape[1]
    with np.errstate(invalid="ignore"):
        z = logp / temperature
    top = np.max(z, axis=1, keepdims=True)
    lse = top + np.log(np.exp(z - top).sum(axis=1, keepdims=True))
    out: FloatArray = np.logaddexp(np.log1p(-share) + z - lse, np.log(share / m))
    return out


def _fit_calibration(logp: FloatArray, y: IntArray) -> tuple[float, float, float]:
    """Temperature and uniform share maximising the likelihood of ``y`` (n,) under ``logp`` (n, n_items).

    For a temperature the best share is a 1-d problem over per-row numbers, so
    the (n, n_items) work is done once per temperature: a bounded Brent search
    over ``log T`` around a bounded search over the share's logit.

    Returns:
        ``(temperature, share, mean log loss)``.
    """
    n, m = logp.shape
    rows = np.arange(n)
    logged = logp[rows, y]

    def best_share(t: float) -> tuple[float, float]:
        with np.errstate(invalid="ignore"):
            z = logp / t
        top = np.max(z, axis=1)
        lse = top + np.log(np.exp(z - top[:, None]).sum(axis=1))
        own = logged / t - lse  # log softmax of the logged item, -inf when it had no probability

        def loss(u: float) -> float:
            a = float(np.clip(1.0 / (1.0 + np.exp(-u)), *UNIFORM_SHARE_RANGE))
            return float(-np.logaddexp(np.log1p(-a) + own, np.log(a / m)).mean())

        lo, hi = (np.log(v / (1.0 - v)) for v in UNIFORM_SHARE_RANGE)
        res = minimize_scalar(loss, bounds=(lo, hi), method="bounded", options={"xatol": 1e-3})
        return float(np.clip(1.0 / (1.0 + np.exp(-res.x)), *UNIFORM_SHARE_RANGE)), float(res.fun)

    outer = minimize_scalar(lambda v: best_share(float(np.exp(v)))[1], method="bounded",
                            bounds=tuple(np.log(TEMPERATURE_RANGE)), options={"xatol": 1e-3})
    t = float(np.exp(outer.x))
    share, loss = best_share(t)
    return t, share, loss


class _SlotModel:
    """The ``n_folds`` classifiers of one slot; scores each row with the model that did not see it."""

    def __init__(self, x: FloatArray, y: IntArray, folds: list[tuple[IntArray, IntArray]], n_items: int,
                 c: float, max_fit_rows: int, rng: np.random.Generator) -> None:
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        self.n_items = n_items
        self.fold_of = np.empty(x.shape[0], dtype=np.int64)
        self.models: list[Any] = []
        self.converged = True
        for f, (train, test) in enumerate(folds):
            self.fold_of[test] = f
            if train.size > max_fit_rows:
                train = np.sort(rng.choice(train, size=max_fit_rows, replace=False))
            classes = np.unique(y[train])
            if classes.size == 1:
                self.models.append(int(classes[0]))
                continue
            model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=300, tol=1e-3))
            # Warnings become diagnostics: hitting the iteration limit sets `converged`; others (such as
            # "more classes than half the rows", expected for a large catalog and a short log) are logged.
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                model.fit(x[train], y[train])
            for w in caught:
                if issubclass(w.category, ConvergenceWarning):
                    self.converged = False
                else:
                    logger.debug("propensity classifier: %s", w.message)
            self.models.append(model)

    def log_proba(self, x: FloatArray, rows: IntArray) -> FloatArray:
        """Out-of-fold log probabilities (len(rows), n_items); -inf for items absent from training."""
        out = np.full((rows.size, self.n_items), -np.inf)
        folds = self.fold_of[rows]
        for f, model in enumerate(self.models):
            at = np.flatnonzero(folds == f)
            if not at.size:
                continue
            if isinstance(model, int):
                out[at, model] = 0.0
                continue
            classes = model.classes_
            with np.errstate(divide="ignore"):
                block = np.full((at.size, self.n_items), -np.inf)
                block[:, classes] = model.predict_log_proba(x[rows[at]])
            out[at] = block
        return out


def estimate_pscore(
    context: FloatArray,
    slate: IntArray,
    n_items: int,
    *,
    groups: IntArray | None = None,
    position: IntArray | None = None,
    n_positions: int | None = None,
    n_folds: int = 5,
    c: float | tuple[float, ...] = C_GRID,
    max_fit_rows: int = 100_000,
    seed: int | None = 0,
    progress: Callable[[str, int, int], None] | None = None,
) -> PscoreEstimate:
    """Fit propensities to a log whose logging policy is unknown (see the module docstring).

    Args:
        context: shape (n, d), what the logger saw.
        slate: shape (n, k), item indices shown, in slot order.
        n_items: catalog size.
        groups: shape (n,), session of each row; the folds split by session (default: by row).
        position: shape (n,), the slot of each row for logs with one row per position (k = 1).
        n_positions: slots on the page when ``position`` is given.
        n_folds: folds of the cross-fit (>= 2).
        c: inverse L2 strength of each classifier (scikit-learn's ``C``; smaller is
            smoother), or several: each is fitted on slot 0 and the one with the
            smallest out-of-fold log loss serves every slot.
        max_fit_rows: each classifier fits on at most this many rows of its training folds
            (a seeded random subset), which bounds the time on long logs.
        seed: seed of the folds and the subsets.
        progress: ``progress("pscore", fits_done, fits_total)``.

    Returns:
        The propensities with the model's diagnostics.

    Raises:
        LogValidationError: fewer sessions than folds, or bad shapes.
    """
    from sklearn.model_selection import GroupKFold

    context = np.asarray(context, dtype=np.float64)
    slate = np.asarray(slate, dtype=np.int64)
    n, k = slate.shape
    groups = np.arange(n) if groups is None else np.asarray(groups)
    n_groups = int(np.unique(groups).size)
    if n_folds < 2:
        raise LogValidationError([Problem("n_folds", "at least 2 folds", str(n_folds))], "pscore estimation")
    if n_groups < n_folds:
        raise LogValidationError([Problem(
            "session_id", f"at least n_folds = {n_folds} sessions to cross-fit", f"{n_groups} sessions",
            fix="Import more of the log, or use fewer folds.")], "pscore estimation")
    if context.shape[0] != n or (groups.shape[0] != n):
        raise LogValidationError([Problem("context", f"{n} rows (as many as `slate`)",
                                          f"{context.shape[0]} rows")], "pscore estimation")
    rng = np.random.default_rng(seed)
    x = _features(context, position, n_positions or (int(position.max()) + 1 if position is not None else 1))
    splitter = GroupKFold(n_splits=n_folds, shuffle=True, random_state=int(rng.integers(2**31)))
    folds = [(np.asarray(tr, dtype=np.int64), np.asarray(te, dtype=np.int64))
             for tr, te in splitter.split(x, groups=groups)]
    sample = np.sort(rng.choice(n, size=min(n, CALIBRATION_ROWS), replace=False))
    rows = np.arange(n)
    pscore_item = np.empty((n, k))
    first_stage = np.empty((n, k))
    temps, shares, losses = [], [], []
    converged = True
    candidates = (float(c),) if isinstance(c, int | float) else tuple(float(v) for v in c)
    total = (len(candidates) + k - 1) * n_folds
    done = 0

    def fitted(j: int, c_j: float) -> tuple[_SlotModel, tuple[float, float, float]]:
        nonlocal done
        model = _SlotModel(x, slate[:, j], folds, n_items, c_j, max_fit_rows, rng)
        done += n_folds
        if progress is not None:
            progress("pscore", done, total)
        return model, _fit_calibration(model.log_proba(x, sample), slate[sample, j])

    # One BLAS thread: the products are skinny (rows x d by d x n_items), where threads only add
    # overhead (6x slower on a busy 2-core machine).
    with threadpool_limits(limits=1, user_api="blas"):
        tried = [(c_j, *fitted(0, c_j)) for c_j in candidates]
        best_c, first_model, first_cal = min(tried, key=lambda entry: entry[2][2])
        fits = [(first_model, first_cal)] + [fitted(j, best_c) for j in range(1, k)]
    for j, (model, (t, a, _)) in enumerate(fits):
        converged &= model.converged
        temps.append(t)
        shares.append(a)
        y = slate[:, j]
        for start in range(0, n, CHUNK_ROWS):
            at = rows[start:start + CHUNK_ROWS]
            logp = _calibrated(model.log_proba(x, at), t, a)
            pscore_item[at, j] = np.exp(logp[np.arange(at.size), y[at]])
            if j == 0:
                first_stage[at] = np.exp(np.take_along_axis(logp, slate[at], axis=1))
        losses.append(float(-np.log(pscore_item[:, j]).mean()))
    before = np.cumsum(first_stage, axis=1) - first_stage
    pscore = np.prod(first_stage / np.maximum(1.0 - before, np.finfo(np.float64).tiny), axis=1)
    if not converged:
        logger.warning("some propensity classifiers stopped at their iteration limit; the estimate is "
                       "usable but may improve with a smaller C")
    return PscoreEstimate(
        pscore=np.clip(pscore, np.finfo(np.float64).tiny, 1.0),
        pscore_item=np.clip(pscore_item, np.finfo(np.float64).tiny, 1.0),
        n_folds=n_folds, c=best_c, c_log_loss=tuple((c_j, cal[2]) for c_j, _, cal in tried),
        temperature=tuple(temps), uniform_share=tuple(shares),
        log_loss=tuple(losses), uniform_log_loss=float(np.log(n_items)), converged=bool(converged),
    )


def with_estimated_pscore(log: SlateLog, **options: Any) -> tuple[SlateLog, PscoreEstimate]:
    """``log`` with its propensities replaced by estimates, marked ``pscore_source = "estimated"``.

    Args:
        log: any log; its own ``pscore`` / ``pscore_item`` are not used.
        **options: passed to :func:`estimate_pscore` (``n_folds``, ``c``, ``seed``, ...).

    Returns:
        The new log and the estimate (for its diagnostics).
    """
    est = estimate_pscore(log.context, log.slate, log.n_items, groups=log.session_id,
                          position=log.position, n_positions=log.n_positions, **options)
    meta = replace(log.metadata, pscore_source="estimated",
                   source=f"{log.metadata.source}; propensities estimated: {est.describe()}".lstrip("; "))
    return replace(log, pscore=est.pscore, pscore_item=est.pscore_item, metadata=meta), est
