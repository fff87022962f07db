"""Replay of logged decisions as a Gymnasium environment (off-policy evaluation by stepping).

The agent sees each logged decision's context in turn and proposes a slate.
The log only knows the reward of what was shown, so the reward is revealed
where the agent agrees with the log:

* ``method="replay"`` — the unbiased replay method of Li, Chu, Langford and
  Wang (WSDM 2011): an impression counts only when the agent's item at that
  slot is the logged one, and the estimate is the mean reward over counted
  impressions. It is unbiased when the logging policy was uniform.
* ``method="ips"`` — inverse-propensity weighting: a matched impression's
  reward is divided by its logged propensity and the estimate is the mean over
  every impression, counted or not. It is unbiased for any logging policy
  whose propensities are positive.

What an impression is (``match``):

* Logs with one row per position (the Open Bandit Dataset import: ``k = 1``
  and a ``position`` column). The action is a full page of
  ``n_positions`` slots; a row logged at position ``p`` is matched against
  the agent's item at slot ``p`` only, with propensity ``pscore_item`` (the
  item's probability at that slot). The estimate is the reward per logged
  row, so the uniform policy's estimate on a uniform log is the log's mean
  reward.
* Logs of whole slates (``k`` slots per row), ``match="slot"`` (default):
  each slot is an impression matched on its own, with ``pscore_item``
  (independence across slots is assumed, as in item-position IPS); the
  estimate is the reward per impression (multiply by ``k`` for a slate).
* Logs of whole slates, ``match="slate"``: the row counts only when the whole
  slate matches, with ``pscore``; the estimate is the slate's total reward.

Episodes are passes over the log, in log order or shuffled with the
environment's seed; an episode ends with ``truncated=True`` when the pass
(or ``episode_length`` decisions) runs out — ``terminated`` stays False, as
the agent's choice never ends a logged session. The running estimate spans
episodes and is cleared by ``reset(seed=...)`` or
``reset(options={"clear_estimate": True})``.
"""

from __future__ import annotations

import logging
from typing import Any, Literal, SupportsFloat

import gymnasium as gym
import numpy as np
import numpy.typing as npt
from gymnasium import spaces

from simulator.envs.errors import ResetNeededError
from simulator.envs.estimate import ReplayEstimate, RunningRatio
from simulator.envs.slates import SlateSpace, check_slate
from simulator.errors import EnvError
from simulator.logs import Catalog, LogMetadata, SlateLog

logger = logging.getLogger(__name__)

ObsArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]
METHODS = ("replay", "ips")
MATCHES = ("slot", "slate")
REWARD_FIELDS = ("reward", "purchase", "revenue")


def _context_bounds(context: ObsArray) -> tuple[ObsArray, ObsArray]:
    """Per-column bounds that hold every logged context.

    A constant column gets the bounds of the whole context instead (and
    ``v - 1, v + 1`` when the whole context is constant), so no dimension of
    the space is degenerate.
    """
    low, high = context.min(axis=0), context.max(axis=0)
    flat = low == high
    if flat.any():
        g_low, g_high = float(low.min()), float(high.max())
        if g_low == g_high:
            g_low, g_high = g_low - 1.0, g_high + 1.0
        low = np.where(flat, np.minimum(low, g_low), low)
        high = np.where(flat, np.maximum(high, g_high), high)
    return low.astype(np.float32), high.astype(np.float32)


class ReplayEnv(gym.Env[ObsArray, IntArray]):
    """Step through a :class:`~simulator.logs.SlateLog`, revealing rewards by replay or IPS.

    Observation: ``Box(low, high, (d,), float32)``, the logged context, with the
    log's per-column minimum and maximum as bounds (a constant column gets the
    bounds of the whole context).
    Action: ``MultiDiscrete([n_items] * k)``, a slate of distinct items; ``k``
    is ``log.n_positions`` for one-row-per-position logs, else ``log.k``.

    Args:
        log: the logged decisions.
        method: ``replay`` (Li et al. 2011) or ``ips``.
        match: ``slot`` (each slot on its own) or ``slate`` (whole slate; only for
            logs without a ``position`` column).
        reward: which logged outcome is the reward: ``reward``, ``purchase`` or ``revenue``.
        shuffle: visit the decisions of each pass in an order drawn from the seed.
        episode_length: decisions per episode; ``None`` makes an episode one pass.
        alpha: one minus the coverage of the reported interval.
        pscore_known: False when the log's propensities are placeholders (for
            example a log built with :meth:`from_arrays` without ``pscore``);
            IPS is then refused.
        render_mode: only ``None`` is supported.

    Raises:
        EnvError: an unknown option, IPS without propensities, a missing reward field.
    """

    metadata = {"render_modes": []}  # noqa: RUF012 (Gymnasium declares it an instance attribute)

    def __init__(
        self,
        log: SlateLog | None = None,
        *,
        method: Literal["replay", "ips"] = "replay",
        match: Literal["slot", "slate"] = "slot",
        reward: Literal["reward", "purchase", "revenue"] = "reward",
        shuffle: bool = False,
        episode_length: int | None = None,
        alpha: float = 0.05,
        pscore_known: bool = True,
        render_mode: str | None = None,
    ) -> None:
        if log is None:
            raise EnvError("`log` is required: gymnasium.make('slatewise/Replay-v0', log=log) with a "
                           "SlateLog, e.g. simulator.logs.import_obd(DATA_DIR, policy='random').")
        if not isinstance(log, SlateLog):
            raise EnvError(f"`log` must be a SlateLog, found {type(log).__name__}. Load one with "
                           "simulator.logs.load_parquet or import_obd, or use ReplayEnv.from_arrays.")
        if method not in METHODS:
            raise EnvError(f"`method` must be one of {list(METHODS)}, found {method!r}.")
        if match not in MATCHES:
            raise EnvError(f"`match` must be one of {list(MATCHES)}, found {match!r}.")
        if reward not in REWARD_FIELDS:
            raise EnvError(f"`reward` must be one of {list(REWARD_FIELDS)}, found {reward!r}.")
        if episode_length is not None and episode_length < 1:
            raise EnvError(f"`episode_length` must be a positive number of decisions or None, "
                           f"found {episode_length}.")
        if render_mode is not None:
            raise EnvError(f"`render_mode` must be None (ReplayEnv does not render), found "
                           f"{render_mode!r}.")
        if len(log) == 0:
            raise EnvError("`log` has no decisions; replay needs at least one.")
        if method == "ips" and not pscore_known:
            raise EnvError("`method='ips'` needs the logging propensities, but this log has none "
                           "(pscore_known=False). Pass the logged `pscore`/`pscore_item`, or use "
                           "method='replay', which needs only that logging was uniform.")
        values = getattr(log, reward)
        if values is None:
            raise EnvError(f"`reward={reward!r}` but the log has no `{reward}` column; use "
                           "reward='reward' or a log that records it.")
        self.log = log
        self.method = method
        self.match = match
        self.reward = reward
        self.shuffle = shuffle
        self.episode_length = episode_length
        self.alpha = alpha
        self.pscore_known = pscore_known
        self.render_mode = render_mode

        self._by_position = log.position is not None
        if self._by_position and match == "slate":
            raise EnvError("`match='slate'` needs logs of whole slates, but this log has one row per "
                           "position (a `position` column, k = 1); use match='slot'.")
        self.n_items = log.n_items
        self.k = log.n_positions if self._by_position else log.k
        self._n = len(log)
        self._event_id = log.event_id
        self._context = np.ascontiguousarray(log.context, dtype=np.float32)
        self._slate = log.slate
        self._values = np.asarray(values, dtype=np.float64)
        position = log.position
        if position is not None:
            self._position = position
            self._row_reward = self._values[:, 0]
            self._row_p = log.pscore_item[:, 0]
        elif match == "slate":
            self._row_reward = self._values.sum(axis=1)
            self._row_p = log.pscore
        else:
            self._slot_p = log.pscore_item
        self._impressions = 1.0 if (self._by_position or match == "slate") else float(log.k)
        if method == "replay" and pscore_known:
            p = log.pscore if match == "slate" else log.pscore_item
            groups = [p[log.position == j, 0] for j in range(self.k)] if self._by_position \
                else [p] if match == "slate" else [p[:, j] for j in range(log.k)]
            if any(g.size and g.max() - g.min() > 1e-9 * g.max() for g in groups):
                logger.warning("replay is unbiased only under uniform logging, but this log's "
                               "propensities vary; method='ips' corrects for that.")

        self.observation_space = spaces.Box(*_context_bounds(self._context), dtype=np.float32)
        self.action_space = SlateSpace(self.n_items, self.k)
        self._all_eligible = np.ones(self.n_items, dtype=bool)
        self._all_eligible.flags.writeable = False
        self._ratio = RunningRatio(method, alpha)
        self._order: IntArray = np.arange(len(log), dtype=np.int64)
        self._cursor = len(log)
        self._episode_steps = 0
        self._active = False

    # ------------------------------------------------------------------ building
    @classmethod
    def from_arrays(
        cls,
        *,
        context: Any,
        slate: Any,
        reward: Any,
        n_items: int,
        pscore: Any | None = None,
        pscore_item: Any | None = None,
        position: Any | None = None,
        n_positions: int | None = None,
        **options: Any,
    ) -> ReplayEnv:
        """Build a replay environment from raw arrays (validated as a :class:`SlateLog`).

        Args:
            context: shape (n, d).
            slate: shape (n, k) logged item indices.
            reward: shape (n, k) per-slot reward.
            n_items: catalog size.
            pscore: shape (n,) slate propensities, or None when unknown.
            pscore_item: shape (n, k) per-slot propensities, or None (then ``pscore``
                is used when ``k = 1``).
            position: shape (n,) slot of each row for one-row-per-position logs.
            n_positions: slots on the page for such logs.
            **options: passed to the constructor (``method``, ``match``, ...).

        Raises:
            EnvError: ``method='ips'`` without ``pscore``.
            LogValidationError: arrays that do not make a valid log.
        """
        known = pscore is not None
        slate_arr = np.asarray(slate)
        if not known:
            if options.get("method") == "ips":
                raise EnvError("`method='ips'` needs the logging propensities, but `pscore` is None. "
                               "Pass pscore (and pscore_item for k > 1), or use method='replay'.")
            pscore = np.ones(slate_arr.shape[0] if slate_arr.ndim else 0)
            pscore_item = np.ones(slate_arr.shape) if slate_arr.ndim == 2 else None
        log = SlateLog.from_arrays(
            context=context, slate=slate_arr, reward=reward, pscore=pscore, pscore_item=pscore_item,
            catalog=Catalog.anonymous(n_items), position=position,
            metadata=LogMetadata(logging_policy="unknown", n_positions=n_positions))
        return cls(log, pscore_known=known, **options)

    # ------------------------------------------------------------------ Gymnasium API
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[ObsArray, dict[str, Any]]:
        """Start an episode at the next logged decision.

        A ``seed`` restarts from the beginning of a fresh pass and clears the
        running estimate; otherwise the episode continues the current pass (a new
        pass starts when the last one is used up).

        Args:
            seed: seeds ``self.np_random`` (the shuffled order).
            options: ``{"clear_estimate": True}`` clears the running estimate.

        Returns:
            The first context, shape (d,), and an info dict with ``event_id`` and
            the running estimate.
        """
        super().reset(seed=seed)
        opts = options or {}
        unknown = sorted(set(opts) - {"clear_estimate"})
        if unknown:
            raise EnvError(f"`options` may hold only 'clear_estimate', found {unknown}.")
        if seed is not None or opts.get("clear_estimate", False):
            self._ratio.clear()
        if seed is not None or self._cursor >= self._n:
            n = self._n
            self._order = self.np_random.permutation(n) if self.shuffle else np.arange(n, dtype=np.int64)
            self._cursor = 0
        self._episode_steps = 0
        self._active = True
        i = int(self._order[self._cursor])
        return self._context[i].copy(), self._info_next(i)

    def step(
        self, action: Any
    ) -> tuple[ObsArray, SupportsFloat, bool, bool, dict[str, Any]]:
        """Propose a slate for the current decision.

        Args:
            action: shape (k,), distinct item indices.

        Returns:
            ``(obs, reward, terminated, truncated, info)``: the next context; the
            revealed reward (replay: the logged reward of matched impressions, 0
            when nothing matched; IPS: that reward divided by its propensity);
            False; True when the pass or ``episode_length`` ran out; and info with
            ``counted`` (bool), ``n_matched``, ``event_id``, ``logged_slate``,
            ``logged_reward``, ``weight`` (summed inverse propensity of the matched
            impressions, 0 when none matched) and the running estimate (``estimate``,
            ``stderr``, ``ci_low``, ``ci_high`` — None while undefined — and
            ``n_events``, ``n_used``).

        Raises:
            ResetNeededError: before ``reset`` or after the episode ended.
            InvalidSlateError: an action that is not a slate of ``k`` distinct items.
        """
        if not self._active:
            raise ResetNeededError("Call reset() before step(): the replay episode has not started "
                                   "or has ended (truncated=True was returned).")
        slate = check_slate(action, self.n_items, self.k)
        i = int(self._order[self._cursor])
        logged = self._slate[i]
        if self._by_position:
            hit = int(slate[self._position[i]]) == int(logged[0])
            n_matched = int(hit)
            r = float(self._row_reward[i]) if hit else 0.0
            weight = 1.0 / float(self._row_p[i]) if hit else 0.0
            r_ips = r * weight
            denom = float(hit)
        elif self.match == "slate":
            hit = bool(np.array_equal(slate, logged))
            n_matched = self.k if hit else 0
            r = float(self._row_reward[i]) if hit else 0.0
            weight = 1.0 / float(self._row_p[i]) if hit else 0.0
            r_ips = r * weight
            denom = float(hit)
        else:
            matched = slate == logged
            n_matched = int(matched.sum())
            hit = n_matched > 0
            r = r_ips = weight = 0.0
            if hit:
                inv = 1.0 / self._slot_p[i][matched]
                values = self._values[i][matched]
                r = float(values.sum())
                r_ips = float((values * inv).sum())
                weight = float(inv.sum())
            denom = float(n_matched)
        if self.method == "replay":
            revealed = r
            self._ratio.add(r, denom, hit)
        else:
            revealed = r_ips
            self._ratio.add(r_ips, self._impressions, hit)
        self._cursor += 1
        self._episode_steps += 1
        truncated = self._cursor >= self._n or (
            self.episode_length is not None and self._episode_steps >= self.episode_length)
        self._active = not truncated
        nxt = i if self._cursor >= self._n else int(self._order[self._cursor])
        info = self._info_next(nxt)
        info.update(counted=hit, n_matched=n_matched, logged_event_id=int(self._event_id[i]),
                    logged_slate=logged.copy(), logged_reward=self._values[i].copy(), weight=weight)
        return self._context[nxt].copy(), revealed, False, truncated, info

    # ------------------------------------------------------------------ extras
    def estimate(self) -> ReplayEstimate:
        """The running estimate of the agent's value over every event since it was cleared."""
        return self._ratio.estimate()

    def action_mask(self) -> npt.NDArray[np.bool_]:
        """Items that may be shown now: every item (shape (n_items,), read-only)."""
        return self._all_eligible

    def context_stats(self) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """Mean and standard deviation of the log's contexts, each shape (d,)."""
        ctx = np.asarray(self._context, dtype=np.float64)
        return ctx.mean(axis=0), ctx.std(axis=0)

    def _info_next(self, i: int) -> dict[str, Any]:
        info = self._ratio.info()
        info["event_id"] = int(self._event_id[i])
        if self._by_position:
            info["position"] = int(self._position[i])
        return info
