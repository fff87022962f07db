"""Policies learned from logged data alone (off-policy learning).

* :class:`OfflinePLPolicy` (``offline_pl``) — a Plackett-Luce slate policy over a
  linear item score of the standardised context; numpy only, so serving and
  evaluation never load torch.
* :func:`fit_offline_pl` (:mod:`bandits.offline.train`, imports torch) — fits it by
  maximising an IPS (or self-normalised IPS) estimate of its value on a log
  (the BanditNet/POEM idea).
* :func:`warm_start` (:mod:`bandits.offline.warm`) — any registered bandit,
  updated from a log by importance resampling or by the replay rule.

``import bandits.offline`` is light: the trainer is imported where it is called.
"""

from bandits.offline.policy import OfflinePLPolicy
from bandits.offline.warm import WARM_RULES, warm_start

__all__ = ["WARM_RULES", "OfflinePLPolicy", "warm_start"]
