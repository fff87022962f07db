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
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
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
__all__ = ["Calibration", "CalibrationRow", "calibrate", "load_world", "save_world", "wilson"]


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
        """Plain-JSON form."""
        return {"kind": self.kind, "key": self.key, "shown": self.shown,
                "logged_rate": self.logged_rate, "logged_low": self.logged_low,
                "logged_high": self.logged_high, "simulated_rate": self.simulated_rate,
                "simulated_shown": self.simulated_shown, "inside": self.inside}


@dataclass(frozen=True, slots=True)
class Calibration:
    """A fitted world and its calibration table.

    Attributes:
        world: the fitted world (click reward, one decision per session).
        rows: the table: every position, then the most-shown items.
        n_rows: logged impressions used.
        n_clicks: logged clicks.
    """

    world: World
    rows: tuple[CalibrationRow, ...]
    n_rows: int
    n_clicks: int

    @property
    def all_inside(self) -> bool:
        """Every simulated rate lies inside its logged interval."""
        return all(r.inside for r in self.rows)

    def to_json(self) -> dict[str, Any]:
        """Plain-JSON form of the table (not the world)."""
        return {"n_rows": self.n_rows, "n_clicks": self.n_clicks, "all_inside": self.all_inside,
                "rows": [r.to_json() for r in self.rows]}

    def to_text(self) -> str:
        """The table for people."""
        lines = [f"calibration on {self.n_rows:,} impressions ({self.n_clicks:,} clicks)",
                 f"{'kind':<9}{'key':>5}{'shown':>8}  {'logged':>8}  {'95% interval':<19}"
                 f"{'simulated':>10}  inside"]
        for r in self.rows:
            lines.append(f"{r.kind:<9}{r.key:>5}{r.shown:>8}  {r.logged_rate:>8.4f}  "
                         f"[{r.logged_low:.4f}, {r.logged_high:.4f}]  {r.simulated_rate:>9.4f}  "
                         f"{'yes' if r.inside else 'NO'}")
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


def calibrate(log: SlateLog, *, ridge: float = 1.0, interaction_ridge: float = 20.0,
              n_simulated: int = 300_000, seed: int | None = 0, top_items: int = 10) -> Calibration:
    """Fit a world to ``log`` and tabulate logged against simulated click rates.

    Args:
        log: a click log (one row per position, like the Open Bandit Dataset, or full slates).
        ridge: L2 penalty on item attractions (around their mean) and shared user effects.
        interaction_ridge: L2 penalty on the item-by-user-feature deviations.
        n_simulated: decisions simulated in the fitted world for the table.
        seed: seed of the simulation and of the fitted world's generator.
        top_items: how many of the most-shown items the table lists.

    Returns:
        The fitted world and its calibration table.
    """
    if log.metadata.reward_type not in ("click", "custom"):
        raise WorldError(f"calibrate needs a click log, found reward_type "
                         f"{log.metadata.reward_type!r}.")
    ctx, item, pos, click, weight, n_pos = _impressions(log)
    if n_pos + 1 > log.n_items:
        raise WorldError(f"calibrate needs more items than positions + 1, found {log.n_items} items "
                         f"and {n_pos} positions.")
    weight = weight / weight.mean()
    m, d = ctx.shape
    n_items = log.n_items
    # distinct shoppers: the fitted world's profiles
    profiles, inverse, counts = np.unique(ctx, axis=0, return_inverse=True, return_counts=True)
    inverse = inverse.ravel()

    onehot_t = sparse.csr_matrix((np.ones(m), (item, np.arange(m))), shape=(n_items, m))

    def unpack(theta: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
        e = theta[:n_pos]
        a = theta[n_pos:n_pos + n_items]
        u = theta[n_pos + n_items:n_pos + n_items + d]
        v = theta[n_pos + n_items + d:].reshape(d, n_items)
        return e, a, u, v

    def loss(theta: FloatArray) -> tuple[float, FloatArray]:
        e, a, u, v = unpack(theta)
        z = a[item] + ctx @ u + np.einsum("md,dm->m", ctx, v[:, item])
        s = 1.0 / (1.0 + np.exp(-z))
        q = np.clip(np.exp(e[pos]) * s, 1e-12, 1 - 1e-12)
        nll = -float(np.sum(weight * (click * np.log(q) + (1 - click) * np.log1p(-q))))
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
    world = World(config, seed, params=params)
    rows = _table(world, item, pos, click, weight, n_pos, n_simulated, seed, top_items)
    return Calibration(world, rows, int(m), int(click.sum()))


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
