"""Fit :class:`~bandits.offline.policy.OfflinePLPolicy` from a log: an IPS estimate, maximised directly.

The idea of BanditNet (Joachims, Swaminathan and de Rijke 2018) and POEM
(Swaminathan and Joachims 2015): write the off-policy estimate of a
parameterised policy's value as a differentiable function of its parameters and
maximise it. Here the policy is Plackett-Luce over linear scores and the
estimate is, for each slot ``s``, the IPS value of the policy's first-stage
choice ``pi(i | x) = softmax(s(x))_i`` on the log's slot-``s`` impressions::

    V_s(theta) = mean_r w_rs * y_rs,   w_rs = pi(i_rs | x_r) / pscore_item_rs

with ``1 / pscore_item`` capped at ``clip * n_items`` (``objective = "ips"``, the
default) or its self-normalised form ``sum_r w_rs y_rs / sum_r w_rs`` (``"snips"``).
Plain IPS gives no credit to probability put on items the log (almost) never shows, so the fit stays where
the log has support; SNIPS treats such items as average and, under a logger
that rarely explores, over-rates them (measured in ``docs/own-shop.md``).
and the objective is ``sum_s V_s``, minus an L2 penalty. Under a position-based
reward (a slot's reward is its examination times the item's attraction) every
slot's ``V_s`` ranks items the same way, so the objective pools the whole log;
the slate is then Plackett-Luce on the same scores (the best item first). The
fit uses Adam on minibatches of logged rows and keeps the weights with the best
objective on a validation share of the training rows (early stopping).

Importing this module loads torch.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch as th

from bandits.offline.policy import OfflinePLPolicy
from simulator.errors import PolicyError
from simulator.logs import SlateLog


@dataclass(frozen=True, slots=True)
class OfflineFit:
    """What :func:`fit_offline_pl` fitted and how.

    Attributes:
        policy: the fitted policy.
        objective: ``ips`` or ``snips`` (the estimate that was maximised).
        epochs: passes over the training rows run (early stopping may end before ``max_epochs``).
        best_epoch: the epoch whose weights were kept (0: the uniform start was best).
        train_value: the objective on the training rows with the kept weights (reward per decision).
        val_value: the objective on the validation rows with the kept weights.
        seconds: wall time of the fit.
    """

    policy: OfflinePLPolicy
    objective: str
    epochs: int
    best_epoch: int
    train_value: float
    val_value: float
    seconds: float


OBJECTIVES = ("ips", "snips")


def _objective(weight: th.Tensor, bias: th.Tensor, z: th.Tensor, slate: th.Tensor, reward: th.Tensor,
               inv_p: th.Tensor, objective: str, clip: float, n_rows: int) -> th.Tensor:
    """Sum over slots of the IPS or SNIPS value of the first-stage softmax, shape ().

    For IPS the rows given may be only those of ``n_rows`` with a non-zero reward: the
    others add exactly nothing to the sum or its gradient, and the mean divides by ``n_rows``.
    """
    logp = th.log_softmax(z @ weight + bias, dim=1)
    w = th.exp(th.gather(logp, 1, slate)) * inv_p.clamp_max(clip)
    if objective == "ips":
        return (w * reward).sum() / n_rows
    return ((w * reward).sum(dim=0) / w.sum(dim=0).clamp_min(1e-30)).sum()


def fit_offline_pl(log: SlateLog, *, objective: str = "ips", temperature: float = 1.0, l2: float = 1e-3,
                   max_epochs: int = 40,
                   batch_size: int = 0, learning_rate: float = 0.05, val_fraction: float = 0.2,
                   patience: int = 4, clip: float = 10.0, seed: int = 0, threads: int = 1) -> OfflineFit:
    """Fit an ``offline_pl`` policy on ``log`` by maximising its IPS value (see the module docs).

    Args:
        log: the logged decisions with ``pscore_item`` (logged or estimated).
        objective: ``ips`` or ``snips``.
        temperature: the fitted policy's temperature (scores are fitted at 1, then divided by it).
        l2: penalty on the squared score weights, per logged row.
        max_epochs: passes over the training rows at most.
        batch_size: logged rows per Adam step (0: about 50 steps per epoch, 64 to 16,384 rows).
        learning_rate: Adam's step size.
        val_fraction: share of the rows held out for early stopping (0: none, run ``max_epochs``).
        patience: epochs without a better validation value before stopping.
        clip: inverse propensities ``1 / pscore_item`` are capped at ``clip * n_items`` (ten
            times what a uniform logger gives, by default): a little bias for much less variance
            on logs with tiny propensities; ``inf`` for none.
        seed: seeds the split, the minibatches and the policy.
        threads: torch threads.

    Raises:
        PolicyError: an unknown objective, or a log with fewer than 10 rows.
    """
    if objective not in OBJECTIVES:
        raise PolicyError(f"`objective` must be one of {list(OBJECTIVES)}, found {objective!r}.")
    began = time.perf_counter()
    n = log.slate.shape[0]
    if n < 10:
        raise PolicyError(f"fit_offline_pl needs at least 10 logged decisions, found {n}.")
    rng = np.random.default_rng(seed)
    ctx = np.asarray(log.context, dtype=np.float64)
    d = ctx.shape[1]
    mean = ctx.mean(axis=0) if n else np.zeros(d)
    std = ctx.std(axis=0)
    std = np.where(std > 1e-8, std, 1.0)
    order = rng.permutation(n)
    n_val = round(val_fraction * n) if 0 < val_fraction < 1 else 0
    n_val = n_val if n_val >= 2 and n - n_val >= 2 else 0
    val_rows, train_rows = order[:n_val], order[n_val:]

    th.set_num_threads(threads)
    gen = th.Generator().manual_seed(seed)
    z_all = th.as_tensor((ctx - mean) / std, dtype=th.float32)
    slate_all = th.as_tensor(np.array(log.slate), dtype=th.int64)
    reward_all = th.as_tensor(np.array(log.reward), dtype=th.float32)
    inv_p_all = th.as_tensor(1.0 / np.asarray(log.pscore_item), dtype=th.float32)
    scale = float(np.abs(np.asarray(log.reward)).mean()) or 1.0  # objective in units of the mean reward
    weight = th.zeros((d, log.n_items), dtype=th.float32, requires_grad=True)
    bias = th.zeros(log.n_items, dtype=th.float32, requires_grad=True)
    opt = th.optim.Adam([weight, bias], lr=learning_rate)
    cap = clip * log.n_items
    # IPS needs only the rows with a reward (a fifth of a typical log): every other row's term is 0.
    rewarded = th.as_tensor((np.asarray(log.reward) != 0).any(axis=1)) if objective == "ips" else None

    def terms(idx: th.Tensor) -> th.Tensor:
        """The objective on rows ``idx``, computed on the rows it depends on."""
        n_rows = idx.numel()
        if rewarded is not None:
            idx = idx[rewarded[idx]]
        return _objective(weight, bias, z_all[idx], slate_all[idx], reward_all[idx], inv_p_all[idx],
                          objective, cap, n_rows)

    def value(rows: np.ndarray) -> float:
        if rows.size == 0:
            return math.nan
        with th.no_grad():
            return float(terms(th.as_tensor(rows)))

    best = (value(val_rows) if n_val else -math.inf, 0, weight.detach().clone(), bias.detach().clone())
    stale, epoch = 0, 0
    train_t = th.as_tensor(train_rows)
    if batch_size == 0:  # about 50 steps per epoch, whatever the log's size
        batch_size = int(np.clip(train_rows.size // 50, 64, 16_384))
    for epoch in range(1, max_epochs + 1):
        perm = train_t[th.randperm(train_t.numel(), generator=gen)]
        for start in range(0, perm.numel(), batch_size):
            idx = perm[start:start + batch_size]
            if idx.numel() < 2:
                continue
            opt.zero_grad()
            obj = terms(idx)
            loss = -obj / scale + l2 * (weight ** 2).sum()
            loss.backward()  # type: ignore[no-untyped-call]
            opt.step()
        if n_val:
            current = value(val_rows)
            if current > best[0]:
                best, stale = (current, epoch, weight.detach().clone(), bias.detach().clone()), 0
            else:
                stale += 1
                if stale >= patience:
                    break
        else:
            best = (math.nan, epoch, weight.detach().clone(), bias.detach().clone())
    _, best_epoch, w_best, b_best = best
    with th.no_grad():
        weight.copy_(w_best)
        bias.copy_(b_best)
    policy = OfflinePLPolicy(log.n_items, log.n_positions, d, temperature=temperature, seed=seed)
    policy.set_weights(w_best.double().numpy(), b_best.double().numpy(), mean, std)
    return OfflineFit(policy, objective, epoch, best_epoch, value(train_rows), value(val_rows),
                      time.perf_counter() - began)
