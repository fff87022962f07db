"""Fit a world to a real log (e.g. the Open Bandit Dataset) and check the fit.

Model fitted: the click probability of item ``i`` shown at position ``p`` to a
shopper with features ``x`` is ``exam[p] * sigmoid(a_i + x @ (u + V[:, i]))``
(a position-based model: examination by position times an attraction by item
and user features). The parameters maximise the log-likelihood of the logged
clicks, each row weighted by ``1 / pscore`` (normalised to mean 1) so a
non-uniform logging policy does not bias the fit toward its favourite items,
with ridge penalties that keep rare items and features near the average.
The fitted world draws shoppers from the log's distinct contexts (with their
frequencies) and shows ``k = n_positions`` slots.

The fit is checked two ways beyond the table. A seeded share of the log's
sessions is held out: the world is fitted on the rest, and on the held-out
impressions its binary log loss is compared, paired per impression and clustered
by session, with two baselines fitted on the same part: one constant click rate
and one click rate per position. The losses are unweighted: each impression
scores the conditional click probability of the item shown there, which the
logging policy's choice (a function of the context) does not bias. A world that
does not beat the better baseline by more than 2 standard errors is not
supported by the data. :func:`cross_check` does the same on another logger's
log of the same catalog and compares predicted with logged click rates there.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import optimize, sparse, stats

from simulator.errors import WorldError
from simulator.logs import SlateLog
from simulator.world.config import WorldConfig
from simulator.world.core import World
from simulator.world.generate import generate_log
from simulator.world.io import load_world, save_world
from simulator.world.params import WorldParams
from simulator.world.policies import UniformPolicy

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
logger = logging.getLogger(__name__)
__all__ = ["Baselines", "Calibration", "CalibrationRow", "CheckRow", "CrossCheck", "LogLossCheck",
           "calibrate", "cross_check", "load_world", "predict_clicks", "save_world", "wilson"]
_EPS = 1e-12
_BASELINE_TEXT = {"constant": "one constant click rate", "position": "one click rate per position"}


@dataclass(frozen=True, slots=True)
class CalibrationRow:
    """One line of a calibration table: logged against simulated click rate.

    Attributes:
        kind: ``position`` or ``item``.
        key: the position (0-based) or the item index.
        shown: logged impressions.
        logged_rate: logged click rate (propensity-weighted).
        logged_low, logged_high: its 95% Wilson interval.
        simulated_rate: click rate in the fitted world under uniform logging.
        simulated_shown: simulated impressions behind it.
        inside: the simulated rate lies inside the logged interval.
    """

    kind: str
    key: int
    shown: int
    logged_rate: float
    logged_low: float
    logged_high: float
    simulated_rate: float
    simulated_shown: int
    inside: bool

    def to_json(self) -> dict[str, Any]:
        """Plain-JSON form (every field)."""
        return asdict(self)


def _rate_table(model: str, rows: list[tuple[CalibrationRow | CheckRow, float]]) -> list[str]:
    """Header and lines of a table of logged click rates (with intervals) beside the ``model``'s rates."""
    lines = [f"{'kind':<9}{'key':>5}{'shown':>8}  {'logged':>8}  {'95% interval':<19}{model:>10}  inside"]
    for r, rate in rows:
        inside = "yes" if r.inside else "NO"
        lines.append(f"{r.kind:<9}{r.key:>5}{r.shown:>8}  {r.logged_rate:>8.4f}  "
                     f"[{r.logged_low:.4f}, {r.logged_high:.4f}]  {rate:>9.4f}  {inside}")
    return lines


@dataclass(frozen=True, slots=True)
class Baselines:
    """The two models a calibrated world must beat, fitted on the same impressions as the world.

    Attributes:
        constant: click rate of all fitted impressions (unweighted).
        by_position: click rate of the fitted impressions at each position (unweighted).
    """

    constant: float
    by_position: tuple[float, ...]

    def to_json(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return {"constant": self.constant, "by_position": list(self.by_position)}


@dataclass(frozen=True, slots=True)
class LogLossCheck:
    """Mean binary log loss of the world and of the baselines on impressions not fitted.

    Attributes:
        n: impressions scored.
        n_sessions: sessions they belong to (the clusters of the standard error).
        world: mean log loss of the world's click probability (position bias times attraction).
        constant: mean log loss of the constant-rate baseline.
        position: mean log loss of the per-position baseline.
        best_baseline: ``constant`` or ``position``, whichever has the lower loss here.
        gain: the best baseline's loss minus the world's (positive: the world predicts better).
        gain_se: standard error of ``gain``, paired per impression, clustered by session.
        supported: ``gain > 2 * gain_se``: the data support the world over the best baseline.
    """

    n: int
    n_sessions: int
    world: float
    constant: float
    position: float
    best_baseline: str
    gain: float
    gain_se: float
    supported: bool

    @property
    def verdict(self) -> str:
        """One sentence: whether the data support the world or only the best baseline."""
        if self.supported:
            return (f"the world beats {_BASELINE_TEXT[self.best_baseline]} by "
                    f"{self.gain / self.gain_se:.1f} standard errors of log loss: the data support it.")
        return (f"the world does not beat {_BASELINE_TEXT[self.best_baseline]} by more than 2 "
                f"standard errors of log loss: the data cannot support more than "
                f"{_BASELINE_TEXT[self.best_baseline]}.")

    def to_json(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return {"n": self.n, "n_sessions": self.n_sessions, "world": self.world,
                "constant": self.constant, "position": self.position,
                "best_baseline": self.best_baseline, "gain": self.gain, "gain_se": self.gain_se,
                "supported": self.supported, "verdict": self.verdict}

    def to_text(self) -> str:
        """Losses and verdict for people."""
        return "\n".join([
            f"log loss on {self.n:,} impressions ({self.n_sessions:,} sessions): "
            f"world {self.world:.5f}, constant {self.constant:.5f}, per position {self.position:.5f}",
            f"gain over the {self.best_baseline} baseline: {self.gain:+.5f} (se {self.gain_se:.5f})",
            f"verdict: {self.verdict}"])


@dataclass(frozen=True, slots=True)
class Calibration:
    """A fitted world, its calibration table and its held-out check.

    Attributes:
        world: the fitted world (click reward, one decision per session), fitted on the
            log's fit part (every session not held out).
        rows: the table: every position, then the most-shown items, logged rates of the whole log.
        n_rows: logged impressions used.
        n_clicks: logged clicks.
        baselines: the constant and per-position click rates of the fit part.
        held_out: the log loss check on the held-out sessions, None when nothing was held out.
    """

    world: World
    rows: tuple[CalibrationRow, ...]
    n_rows: int
    n_clicks: int
    baselines: Baselines
    held_out: LogLossCheck | None

    @property
    def all_inside(self) -> bool:
        """Every simulated rate lies inside its logged interval."""
        return all(r.inside for r in self.rows)

    def to_json(self) -> dict[str, Any]:
        """Plain-JSON form of the table and the held-out check, if any (not the world)."""
        out = {"n_rows": self.n_rows, "n_clicks": self.n_clicks, "all_inside": self.all_inside,
               "rows": [r.to_json() for r in self.rows], "baselines": self.baselines.to_json()}
        return out if self.held_out is None else out | {"held_out": self.held_out.to_json()}

    def to_text(self) -> str:
        """The table for people."""
        lines = [f"calibration on {self.n_rows:,} impressions ({self.n_clicks:,} clicks)",
                 *_rate_table("simulated", [(r, r.simulated_rate) for r in self.rows])]
        if self.held_out is not None:
            lines += ["held-out check (world fitted on the other sessions)", self.held_out.to_text()]
        return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class CheckRow:
    """One line of a cross-policy check: a logged click rate against the world's prediction.

    Attributes:
        kind: ``overall`` or ``position``.
        key: the position (0-based), -1 for ``overall``.
        shown: logged impressions.
        logged_rate: logged click rate (unweighted).
        logged_low, logged_high: its 95% Wilson interval.
        predicted_rate: mean of the world's click probability over the same impressions.
        inside: the prediction lies inside the logged interval.
    """

    kind: str
    key: int
    shown: int
    logged_rate: float
    logged_low: float
    logged_high: float
    predicted_rate: float
    inside: bool

    def to_json(self) -> dict[str, Any]:
        """Plain-JSON form (every field)."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class CrossCheck:
    """A calibrated world checked on another logger's log of the same catalog.

    Attributes:
        name: what was checked (a file name or a label).
        rows: overall, then every position: the other log's click rates against the predictions
            on its own impressions (its contexts and shown items, no simulation).
        log_loss: the world's log loss on the other log against the baselines of the calibration.
    """

    name: str
    rows: tuple[CheckRow, ...]
    log_loss: LogLossCheck

    @property
    def all_inside(self) -> bool:
        """Every prediction lies inside its logged interval."""
        return all(r.inside for r in self.rows)

    def to_json(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return {"name": self.name, "all_inside": self.all_inside,
                "rows": [r.to_json() for r in self.rows], "log_loss": self.log_loss.to_json()}

    def to_text(self) -> str:
        """The check for people."""
        lines = [f"cross-policy check on {self.name}",
                 *_rate_table("predicted", [(r, r.predicted_rate) for r in self.rows]),
                 self.log_loss.to_text()]
        return "\n".join(lines)


def wilson(clicks: float, n: float, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a rate with ``clicks`` successes out of ``n`` (may be fractional)."""
    if n <= 0:
        return 0.0, 1.0
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    phat = clicks / n
    den = 1 + z * z / n
    centre = (phat + z * z / (2 * n)) / den
    half = z * np.sqrt(phat * (1 - phat) / n + z * z / (4 * n * n)) / den
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


def _impressions(log: SlateLog) -> tuple[FloatArray, IntArray, IntArray, FloatArray, FloatArray, int]:
    """Flatten a log to impressions: context rows (m, d), item, position, click, weight."""
    ctx = np.asarray(log.context, dtype=np.float64)
    if log.position is not None:
        item = log.slate[:, 0]
        pos = np.asarray(log.position)
        click = (np.asarray(log.reward)[:, 0] > 0).astype(np.float64)
        ps = np.asarray(log.pscore_item)[:, 0]
        return ctx, item, pos, click, 1.0 / ps, log.n_positions
    n, k = log.slate.shape
    rows = np.repeat(np.arange(n), k)
    return (ctx[rows], log.slate.ravel(), np.tile(np.arange(k), n),
            (np.asarray(log.reward).ravel() > 0).astype(np.float64),
            1.0 / np.asarray(log.pscore_item).ravel(), k)


def _impression_sessions(log: SlateLog) -> IntArray:
    """The session of every impression, in the order of :func:`_impressions`."""
    sessions = np.asarray(log.session_id, dtype=np.int64)
    return sessions if log.position is not None else np.repeat(sessions, log.k)


def _click_prob(exam: FloatArray, item_bias: FloatArray, item_weight: FloatArray, ctx: FloatArray,
                item: IntArray, pos: IntArray) -> tuple[FloatArray, FloatArray]:
    """The model: click probability ``exam[pos] * sigmoid(item_bias[item] + ctx @ item_weight[:, item])``.

    Returns the click probability and the attraction (the sigmoid) of every impression.
    """
    z = item_bias[item] + np.einsum("md,dm->m", ctx, item_weight[:, item])
    s = 1.0 / (1.0 + np.exp(-z))
    return exam[pos] * s, s


def predict_clicks(world: World, ctx: FloatArray, item: IntArray, pos: IntArray) -> FloatArray:
    """Click probability of a calibrated world for impressions (context rows, item, position)."""
    return _click_prob(world.position_bias, world.params.item_bias, world.params.item_weight,
                       ctx, item, pos)[0]


def _log_loss(q: FloatArray, click: FloatArray) -> FloatArray:
    """Binary log loss of every impression under click probability ``q``."""
    q = np.clip(q, _EPS, 1 - _EPS)
    return -(click * np.log(q) + (1 - click) * np.log1p(-q))


def _baselines(pos: IntArray, click: FloatArray, n_pos: int) -> Baselines:
    shown = np.bincount(pos, minlength=n_pos)
    clicks = np.bincount(pos, weights=click, minlength=n_pos)
    by_pos = clicks / np.maximum(shown, 1)
    return Baselines(float(click.mean()), tuple(float(r) for r in by_pos))


def _score(world: World, baselines: Baselines, log: SlateLog) -> LogLossCheck:
    """Log loss of the world and the baselines on ``log``, the gain's se clustered by session."""
    ctx, item, pos, click, _, _ = _impressions(log)
    sessions = _impression_sessions(log)
    loss_world = _log_loss(predict_clicks(world, ctx, item, pos), click)
    loss_const = _log_loss(np.full(click.shape, baselines.constant), click)
    loss_pos = _log_loss(np.asarray(baselines.by_position)[pos], click)
    best = "constant" if loss_const.mean() <= loss_pos.mean() else "position"
    diff = (loss_const if best == "constant" else loss_pos) - loss_world
    n = diff.size
    gain = float(diff.mean())
    _, cluster = np.unique(sessions, return_inverse=True)
    n_clusters = int(cluster.max()) + 1
    resid = np.bincount(cluster.ravel(), weights=diff - gain, minlength=n_clusters)
    se = (float(np.sqrt(n_clusters / (n_clusters - 1) * np.sum(resid ** 2)) / n)
          if n_clusters > 1 else float("inf"))
    return LogLossCheck(int(n), n_clusters, float(loss_world.mean()), float(loss_const.mean()),
                        float(loss_pos.mean()), best, gain, se, bool(gain > 2 * se))


def _split(log: SlateLog, holdout: float, seed: int | None) -> tuple[SlateLog, SlateLog | None]:
    """The fit part and the held-out part of ``log``: a seeded share ``holdout`` of its sessions."""
    if holdout == 0:
        return log, None
    sessions = np.unique(np.asarray(log.session_id))
    n_held = round(holdout * sessions.size)
    if n_held < 1 or n_held >= sessions.size:
        raise WorldError(f"holdout={holdout} holds out {n_held} of the log's {sessions.size} sessions; "
                         f"use a log with more sessions, another holdout in (0, 1), or 0 to skip the "
                         f"held-out check.")
    held = np.random.default_rng(seed).permutation(sessions)[:n_held]
    mask = np.isin(np.asarray(log.session_id), held)
    return log.take(~mask), log.take(mask)


def calibrate(log: SlateLog, *, ridge: float = 1.0, interaction_ridge: float = 20.0,
              n_simulated: int = 300_000, seed: int | None = 0, top_items: int = 10,
              holdout: float = 0.2) -> Calibration:
    """Fit a world to ``log``, tabulate logged against simulated click rates, score held-out sessions.

    The saved world is fitted on the fit part only: the sessions not held out
    (all of them when ``holdout`` is 0). The table lists logged rates of the whole log.

    Args:
        log: a click log (one row per position, like the Open Bandit Dataset, or full slates).
        ridge: L2 penalty on item attractions (around their mean) and shared user effects.
        interaction_ridge: L2 penalty on the item-by-user-feature deviations.
        n_simulated: decisions simulated in the fitted world for the table.
        seed: seed of the held-out split, the simulation and the fitted world's generator.
        top_items: how many of the most-shown items the table lists.
        holdout: share of the log's sessions held out of the fit and scored, in [0, 1);
            0 skips the held-out check.

    Returns:
        The fitted world, its calibration table and its held-out check.
    """
    if log.metadata.reward_type not in ("click", "custom"):
        raise WorldError(f"calibrate needs a click log, found reward_type "
                         f"{log.metadata.reward_type!r}.")
    if not 0 <= holdout < 1:
        raise WorldError(f"holdout must lie in [0, 1), found {holdout}; pass a share of sessions "
                         f"such as 0.2, or 0 to skip the held-out check.")
    if log.n_positions + 1 > log.n_items:
        raise WorldError(f"calibrate needs more items than positions + 1, found {log.n_items} items "
                         f"and {log.n_positions} positions.")
    fit_log, held_log = _split(log, holdout, seed)
    fitted = _impressions(fit_log)
    world = _fit(fit_log, fitted, ridge, interaction_ridge, seed)
    _, _, f_pos, f_click, _, n_pos = fitted
    baselines = _baselines(f_pos, f_click, n_pos)
    held = None if held_log is None else _score(world, baselines, held_log)
    _, item, pos, click, weight, _ = fitted if held_log is None else _impressions(log)
    rows = _table(world, item, pos, click, weight / weight.mean(), n_pos, n_simulated, seed, top_items)
    return Calibration(world, rows, int(click.size), int(click.sum()), baselines, held)


def cross_check(cal: Calibration, other: SlateLog, *, name: str = "the checked log") -> CrossCheck:
    """Check a calibrated world on another logger's log of the same catalog.

    Predictions use ``other``'s own impressions (its contexts and shown items),
    not a simulation; the log losses use the baselines of ``cal`` (fitted on its fit part).
    """
    world = cal.world
    problems = []
    if other.metadata.reward_type not in ("click", "custom"):
        problems.append(f"reward_type is {other.metadata.reward_type!r}, not click")
    if other.n_items != world.n_items:
        problems.append(f"it has {other.n_items} items, the world {world.n_items}")
    if other.context.shape[1] != world.n_features:
        problems.append(f"its context has {other.context.shape[1]} columns, the world's shoppers "
                        f"{world.n_features}")
    if other.n_positions != world.k:
        problems.append(f"it has {other.n_positions} positions, the world {world.k}")
    if problems:
        raise WorldError(f"{name} does not match the calibrated log: {'; '.join(problems)}; check "
                         f"against a click log of the same catalog, context columns and positions.")
    ctx, item, pos, click, _, n_pos = _impressions(other)
    q = predict_clicks(world, ctx, item, pos)
    shown = np.concatenate([[click.size], np.bincount(pos, minlength=n_pos)])
    clicks = np.concatenate([[click.sum()], np.bincount(pos, weights=click, minlength=n_pos)])
    predicted = np.concatenate([[q.sum()], np.bincount(pos, weights=q, minlength=n_pos)])
    rows = []
    for j in range(n_pos + 1):
        n = int(shown[j])
        rate = float(clicks[j] / max(n, 1))
        pred = float(predicted[j] / max(n, 1))
        low, high = wilson(float(clicks[j]), n)
        rows.append(CheckRow("overall" if j == 0 else "position", j - 1, n, rate, low, high, pred,
                             bool(low <= pred <= high)))
    return CrossCheck(name, tuple(rows), _score(world, cal.baselines, other))


def _fit(log: SlateLog, impressions: tuple[FloatArray, IntArray, IntArray, FloatArray, FloatArray, int],
         ridge: float, interaction_ridge: float, seed: int | None) -> World:
    """The world maximising the propensity-weighted, ridge-penalised likelihood of ``log``.

    ``impressions`` is ``_impressions(log)``.
    """
    ctx, item, pos, click, weight, n_pos = impressions
    weight = weight / weight.mean()
    m, d = ctx.shape
    n_items = log.n_items
    # distinct shoppers: the fitted world's profiles
    profiles, counts = np.unique(ctx, axis=0, return_counts=True)

    onehot_t = sparse.csr_matrix((np.ones(m), (item, np.arange(m))), shape=(n_items, m))

    def unpack(theta: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
        e = theta[:n_pos]
        a = theta[n_pos:n_pos + n_items]
        u = theta[n_pos + n_items:n_pos + n_items + d]
        v = theta[n_pos + n_items + d:].reshape(d, n_items)
        return e, a, u, v

    def loss(theta: FloatArray) -> tuple[float, FloatArray]:
        e, a, u, v = unpack(theta)
        q, s = _click_prob(np.exp(e), a, u[:, None] + v, ctx, item, pos)
        q = np.clip(q, _EPS, 1 - _EPS)
        nll = float(np.sum(weight * _log_loss(q, click)))
        g_q = -weight * (click / q - (1 - click) / (1 - q))
        g_e = np.bincount(pos, weights=g_q * q, minlength=n_pos)
        g_z = g_q * q * (1 - s)
        g_a = np.bincount(item, weights=g_z, minlength=n_items)
        g_u = ctx.T @ g_z
        g_v = np.asarray(onehot_t @ (ctx * g_z[:, None])).T
        abar = a.mean()
        pen = ridge * (np.sum((a - abar) ** 2) + np.sum(u ** 2)) + interaction_ridge * np.sum(v ** 2)
        g_a = g_a + 2 * ridge * (a - abar)
        g_u = g_u + 2 * ridge * u
        g_v = g_v + 2 * interaction_ridge * v
        return nll + pen, np.concatenate([g_e, g_a, g_u, g_v.ravel()])

    rate = max(float(np.average(click, weights=weight)), 1e-6)
    theta0 = np.concatenate([np.zeros(n_pos), np.full(n_items, np.log(rate / (1 - rate))),
                             np.zeros(d), np.zeros(d * n_items)])
    bounds = [(-10.0, 0.0)] * n_pos + [(None, None)] * (theta0.size - n_pos)
    res = optimize.minimize(loss, theta0, jac=True, method="L-BFGS-B", bounds=bounds,
                            options={"maxiter": 2000})
    if not res.success:
        logger.warning("calibration optimiser stopped: %s", res.message)
    e, a, u, v = unpack(res.x)
    cat_names, cat_index = np.unique(log.catalog.category, return_inverse=True)
    price = np.ones(n_items) if log.catalog.price is None else np.maximum(log.catalog.price, 0.01)
    names = log.metadata.context_names or tuple(f"x{j}" for j in range(d))
    params = WorldParams(
        # A world's ids are integers: a shop's text ids become the catalog indices 0..n_items-1.
        item_id=(np.arange(n_items, dtype=np.int64) if np.asarray(log.catalog.item_id).dtype.kind not in "iu"
                 else np.asarray(log.catalog.item_id, dtype=np.int64)),
        category_names=tuple(str(c) for c in cat_names),
        item_category=cat_index.astype(np.int64).ravel(),
        price=np.asarray(price, dtype=np.float64),
        item_features=np.asarray(log.catalog.features, dtype=np.float64),
        item_feature_names=log.catalog.feature_names or tuple(
            f"f{j}" for j in range(log.catalog.features.shape[1])),
        complement=np.zeros((cat_names.size, cat_names.size), dtype=bool),
        item_bias=a,
        item_weight=u[:, None] + v,
        position_bias=np.exp(e),
        profile_features=profiles,
        profile_weight=counts / counts.sum(),
        profile_price_sens=np.zeros(profiles.shape[0]),
        profile_patience=np.zeros(profiles.shape[0]),
        profile_segment=np.arange(profiles.shape[0], dtype=np.int64),
        taste_features=0,
        feature_names=tuple(str(x) for x in names),
    )
    config = WorldConfig(n_categories=max(2, cat_names.size), items_per_category=1, k=n_pos,
                         n_complements=1, max_steps=1, reward_type="click", cross_bonus=0.0,
                         up_bonus=0.0, other_bonus=0.0, checkout_prob=0.0, buy_base=0.0,
                         price_sens_mean=0.0, price_sens_spread=0.0, patience_spread=0.0) \
        if cat_names.size > 1 else None
    if config is None:
        raise WorldError("calibrate needs a catalog with at least 2 categories.")
    return World(config, seed, params=params)


def _table(world: World, item: IntArray, pos: IntArray, click: FloatArray, weight: FloatArray,
           n_pos: int, n_simulated: int, seed: int | None, top_items: int) -> tuple[CalibrationRow, ...]:
    sim = generate_log(world, UniformPolicy(), max(1, n_simulated // n_pos), seed=seed)
    s_click = np.asarray(sim.reward)
    s_items = np.asarray(sim.slate)
    rows: list[CalibrationRow] = []

    def row(kind: str, key: int, mask: Any, s_clicks: float, s_shown: int) -> CalibrationRow:
        w = weight[mask]
        n_eff = float(w.sum() ** 2 / np.sum(w ** 2)) if w.size else 0.0
        rate = float(np.average(click[mask], weights=w)) if w.size else 0.0
        low, high = wilson(rate * n_eff, n_eff)
        srate = s_clicks / max(s_shown, 1)
        return CalibrationRow(kind, key, int(w.size), rate, low, high, float(srate), int(s_shown),
                              bool(low <= srate <= high))

    for p in range(n_pos):
        rows.append(row("position", p, pos == p, float(s_click[:, p].sum()), int(s_click.shape[0])))
    shown = np.bincount(item, minlength=world.n_items)
    s_shown = np.bincount(s_items.ravel(), minlength=world.n_items)
    s_clicks = np.bincount(s_items.ravel(), weights=s_click.ravel(), minlength=world.n_items)
    for i in np.argsort(-shown, kind="stable")[:top_items]:
        rows.append(row("item", int(i), item == i, float(s_clicks[i]), int(s_shown[i])))
    return tuple(rows)
