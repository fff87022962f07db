"""Warm-start any registered bandit from a log: its own ``update`` sees the logged decisions.

Two rules, both driven by the logged per-slot propensities (``pscore_item``):

* ``resample`` (the default) — **importance resampling.** Every logged
  impression (a row's item at one slot with its reward) is drawn, with
  replacement, with probability proportional to ``1 / pscore_item``, as many
  draws as there are impressions, and the draws are fed to ``update`` as
  one-item feedback. The drawn impressions are distributed as if the logger had
  shown every item equally often in each context, so what a bandit estimates
  per item — a mean reward (``epsilon_greedy``, ``ucb1``, ``softmax``,
  ``bernoulli_ts``, ``popularity``) or a regression of reward on context
  (``linucb``, ``linear_ts``, ``logistic_ts``, ``ridge_epsilon_greedy``,
  ``hybrid_linucb``) — no longer favours the logger's favourite items or the
  contexts in which it showed them (a self-normalised IPS estimate per item).
  The slot of an impression is not passed on: the statistics pool the slots.
* ``replay`` — **the replay rule** (Li, Chu, Langford and Wang 2011): the log is
  walked in order in small batches; the policy chooses a slate for each logged
  context and learns from a slot only when it chose the logged item there,
  accepted with probability ``min(pscore_item) / pscore_item`` (rejection
  sampling, so every accepted match is as likely as under a uniform logger;
  with a uniform logger every match is kept). The policy then sees the stream
  it would have seen online, its own exploration included, which is what a
  policy whose updates depend on its choices (UCB, Thompson sampling) needs to
  be unbiased; it learns from about ``k / n_items`` of the log.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bandits.policy import Feedback, SlatePolicy
from simulator.errors import PolicyError
from simulator.logs import SlateLog

WARM_RULES = ("resample", "replay")
_CHUNK = 20_000


@dataclass(frozen=True, slots=True)
class WarmStart:
    """How a policy was warm-started.

    Attributes:
        rule: ``resample`` or ``replay``.
        rows: logged decisions read.
        updates: one-item feedback rows passed to ``update``.
    """

    rule: str
    rows: int
    updates: int


def _impressions(log: SlateLog) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per impression: its row (m,), item (m,), reward (m,) and logged probability (m,)."""
    n, k = log.slate.shape
    rows = np.repeat(np.arange(n), k)
    return (rows, np.asarray(log.slate).ravel(), np.asarray(log.reward).ravel(),
            np.asarray(log.pscore_item).ravel())


def warm_start(policy: SlatePolicy, log: SlateLog, *, rule: str = "resample", seed: int = 0,
               batch_size: int = 256) -> WarmStart:
    """Update ``policy`` in place from every decision of ``log`` by ``rule`` (see the module docs).

    Args:
        policy: a policy sized for the log (``n_items``, context width).
        log: the logged decisions.
        rule: ``resample`` or ``replay``.
        seed: seeds the resampling and the rejection draws.
        batch_size: contexts per ``select`` call of the replay rule.

    Raises:
        PolicyError: an unknown rule, or a policy of another catalog size.
    """
    if rule not in WARM_RULES:
        raise PolicyError(f"`rule` must be one of {list(WARM_RULES)}, found {rule!r}.")
    if policy.n_items != log.n_items:
        raise PolicyError(f"the policy knows {policy.n_items} items but the log's catalog has {log.n_items}.")
    rng = np.random.default_rng(seed)
    ctx = np.asarray(log.context, dtype=np.float64)
    rows, item, reward, prob = _impressions(log)
    if rule == "resample":
        w = 1.0 / prob
        draws = rng.choice(rows.size, size=rows.size, p=w / w.sum())
        for start in range(0, draws.size, _CHUNK):
            idx = draws[start:start + _CHUNK]
            policy.update(Feedback(ctx[rows[idx]], item[idx][:, None], reward[idx][:, None]))
        return WarmStart(rule, log.n_rounds, int(draws.size))
    n, k_log = log.slate.shape
    floor = float(prob.min())
    slot = (np.asarray(log.position)[:, None] if log.position is not None
            else np.broadcast_to(np.arange(k_log), (n, k_log)))
    if int(slot.max()) >= policy.k:
        raise PolicyError(f"the log has slot {int(slot.max())} but the policy shows k = {policy.k} items.")
    logged = np.asarray(log.slate)
    p_item = np.asarray(log.pscore_item)
    r_item = np.asarray(log.reward)
    updates = 0
    for start in range(0, n, batch_size):
        sl = slice(start, min(start + batch_size, n))
        chosen = policy.select(ctx[sl]).slate
        mine = np.take_along_axis(chosen, slot[sl], axis=1)
        keep = (mine == logged[sl]) & (rng.random(mine.shape) < floor / p_item[sl])
        r_idx, s_idx = np.nonzero(keep)
        if r_idx.size:
            policy.update(Feedback(ctx[sl][r_idx], logged[sl][r_idx, s_idx][:, None],
                                   r_item[sl][r_idx, s_idx][:, None]))
            updates += int(r_idx.size)
    return WarmStart(rule, n, updates)
