"""A PPO-trained slate policy: Plackett-Luce over a network's item scores, exact propensities.

The network (a stable-baselines3 ``ActorCriticPolicy``, :class:`PLSlateActorCritic`)
reads an observation made of the context and the eligibility mask,
``[context (d), eligible (n_items) as 0/1]``, and gives one score (logit) per
item. A slate is drawn by Plackett-Luce over the eligible items: stage 0 picks
an item with probability ``softmax(logit / temperature)``, each later stage
picks from the items left, in proportion to ``exp(logit / temperature)``. The
same distribution is what PPO trains (its log-probability is exact, a sum of
stage log-softmaxes), what :meth:`PPOSlatePolicy.select` samples, and what
:meth:`PPOSlatePolicy.action_dist` gives the off-policy estimators, so the
propensities of logged PPO decisions are exact (per-slot marginals past the
third slot are Monte Carlo, see :mod:`bandits.slates`).

Persistence, two ways, neither unpickles anything:

* :meth:`PPOSlatePolicy.save` / :meth:`SlatePolicy.load` — the common ``.npz``
  format of every policy (the network's weights are its learned state), so
  serving loads a PPO policy like any bandit after ``import bandits.ppo``.
* :meth:`PPOSlatePolicy.save_sb3` / :meth:`PPOSlatePolicy.load_sb3` —
  stable-baselines3's own zip format (``policy.pth`` etc.; the file a
  ``PPO.save`` checkpoint also is) plus our metadata in a JSON file beside it
  (``model.zip`` and ``model.json``). Weights are read with
  ``torch.load(weights_only=True)`` and the zip's pickled ``data`` entry is
  never read, so a checkpoint written by ``PPO.save`` can be loaded too.

Importing this module loads torch; ``import bandits`` does not, so import
``bandits.ppo`` before ``SlatePolicy.load`` of a saved PPO policy.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.save_util import load_from_zip_file, save_to_zip_file
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

from bandits.policy import (
    BoolArray,
    Feedback,
    FloatArray,
    IntArray,
    SlateDecision,
    SlatePolicy,
    register_policy,
)
from bandits.slates import plackett_luce_dist, plackett_luce_slates
from simulator.errors import PolicyError

logger = logging.getLogger(__name__)

SB3_META_VERSION = 1
ACTIVATIONS: dict[str, type[nn.Module]] = {"tanh": nn.Tanh, "relu": nn.ReLU}


# ---------------------------------------------------------------------------- torch distribution
class PlackettLuce:
    """Plackett-Luce distribution over slates of ``k`` distinct eligible items (torch, batched).

    Args:
        logits: shape (B, n_items), item scores.
        eligible: shape (B, n_items) bool; at least ``k`` True per row.
        k: slate length.
    """

    def __init__(self, logits: th.Tensor, eligible: th.Tensor, k: int) -> None:
        self.k = k
        self.masked = logits.masked_fill(~eligible, float("-inf"))

    def sample(self) -> th.Tensor:
        """Slates (B, k) by the Gumbel-top-k trick (exactly Plackett-Luce)."""
        u = th.rand_like(self.masked).clamp_(1e-20, 1.0)
        gumbel = -th.log(-th.log(u))
        return th.topk(self.masked + gumbel, self.k, dim=1).indices

    def mode(self) -> th.Tensor:
        """The most likely slate (B, k): the top-k eligible items by score."""
        return th.topk(self.masked, self.k, dim=1).indices

    def get_actions(self, deterministic: bool = False) -> th.Tensor:
        """A sampled slate, or the mode when ``deterministic``."""
        return self.mode() if deterministic else self.sample()

    def log_prob(self, slates: th.Tensor) -> th.Tensor:
        """Exact log-probability (B,) of slates (B, k) given in stage order."""
        slates = slates.long()
        chosen = th.gather(self.masked, 1, slates)
        left = self.masked
        norms = []
        for s in range(self.k):  # k is small; each stage is one pass over (B, n_items)
            norms.append(th.logsumexp(left, dim=1))
            if s + 1 < self.k:
                left = left.scatter(1, slates[:, s:s + 1], float("-inf"))
        return (chosen - th.stack(norms, dim=1)).sum(dim=1)

    def entropy(self) -> th.Tensor:
        """Entropy (B,) of the first stage (a proxy for the slate entropy, which has no closed form)."""
        logp = th.log_softmax(self.masked, dim=1)
        p = logp.exp()
        return -(p * th.where(p > 0, logp, th.zeros_like(logp))).sum(dim=1)


# ---------------------------------------------------------------------------- SB3 network
class ContextFeatures(BaseFeaturesExtractor):
    """Features: the context part of the observation, standardised with fixed statistics.

    The eligibility mask (the last ``n_items`` columns) is left out: it only
    restricts the slate distribution (:class:`PlackettLuce`), so the hidden layers
    stay as narrow as the context. The statistics are buffers, so they travel
    with the weights in every saved file.

    Args:
        observation_space: ``Box`` of shape (d + n_items,).
        n_items: catalog size (the mask is the last ``n_items`` columns).
        context_mean: shape (d,) or None (zeros).
        context_std: shape (d,) or None (ones).
    """

    def __init__(self, observation_space: spaces.Box, n_items: int,
                 context_mean: Sequence[float] | None = None,
                 context_std: Sequence[float] | None = None) -> None:
        d = int(np.prod(observation_space.shape)) - n_items
        super().__init__(observation_space, max(d, 1))
        mean = np.zeros(d) if context_mean is None else np.asarray(context_mean, dtype=np.float64)
        std = np.ones(d) if context_std is None else np.asarray(context_std, dtype=np.float64)
        if mean.shape != (d,) or std.shape != (d,):
            raise PolicyError(f"`context_mean` and `context_std` must have shape ({d},), found "
                              f"{mean.shape} and {std.shape}.")
        self.dim_context = d
        self.register_buffer("context_mean", th.as_tensor(mean, dtype=th.float32))
        self.register_buffer("context_std", th.as_tensor(np.maximum(std, 1e-8), dtype=th.float32))

    def forward(self, observations: th.Tensor) -> th.Tensor:
        """Standardised context, shape (B, d) (a constant column when d = 0)."""
        obs = observations.flatten(1)
        if self.dim_context == 0:
            return th.ones_like(obs[:, :1])
        mean, std = self.get_buffer("context_mean"), self.get_buffer("context_std")
        return (obs[:, :self.dim_context] - mean) / std


RELATION_KEYS = ("group_context", "group_items", "value_context", "value_item")
#: Relation features per (session, item): same group, price above / below the anchor's, and
#: the same three within the anchor's group.
N_RELATIONS = 6


def check_anchor_relation(relation: dict[str, Any] | None, dim_context: int,
                          n_item_features: int) -> dict[str, Any] | None:
    """Validate an ``anchor_relation`` (see :class:`PLSlateActorCritic`); return it normalised.

    Raises:
        PolicyError: missing or unknown keys, or column indices out of range.
    """
    if relation is None:
        return None
    if not isinstance(relation, dict) or set(relation) != set(RELATION_KEYS):
        raise PolicyError(f"`anchor_relation` must be a dict with keys {list(RELATION_KEYS)}, "
                          f"found {relation!r}.")
    try:
        group_context = [int(c) for c in relation["group_context"]]
        group_items = [int(j) for j in relation["group_items"]]
        value_context, value_item = int(relation["value_context"]), int(relation["value_item"])
    except (TypeError, ValueError) as err:
        raise PolicyError(f"`anchor_relation` must hold integer column indices: {err}") from None
    if len(group_context) != len(group_items) or not group_context:
        raise PolicyError(f"`anchor_relation`: `group_context` and `group_items` must pair up one to one, "
                          f"found {len(group_context)} and {len(group_items)} columns.")
    if not all(0 <= c < dim_context for c in [*group_context, value_context]):
        raise PolicyError(f"`anchor_relation`: context columns must lie in [0, {dim_context - 1}], "
                          f"found {[*group_context, value_context]}.")
    if not all(0 <= j < n_item_features for j in [*group_items, value_item]):
        raise PolicyError(f"`anchor_relation`: item-feature columns must lie in [0, {n_item_features - 1}] "
                          f"(set item features first), found {[*group_items, value_item]}.")
    return {"group_context": group_context, "group_items": group_items, "value_context": value_context,
            "value_item": value_item}


def relation_features(context: th.Tensor, item_features: th.Tensor,
                      relation: dict[str, Any]) -> th.Tensor:
    """Features of every item relative to each session's anchor, shape (B, n_items, 6).

    ``same`` (the item is in the anchor's group, e.g. category), ``up = max(x_i - x_a, 0)``
    and ``down = max(x_a - x_i, 0)`` (its value, e.g. standardised log price, above or
    below the anchor's), ``same * up``, ``same * down`` and ``same * [x_i > x_a]``.

    Args:
        context: shape (B, d), the raw context (the anchor's group one-hot and value in it).
        item_features: shape (n_items, f).
        relation: from :func:`check_anchor_relation`.
    """
    group_a = context[:, relation["group_context"]]
    group_i = item_features[:, relation["group_items"]]
    same = group_a @ group_i.T
    diff = item_features[None, :, relation["value_item"]] - context[:, relation["value_context"], None]
    up, down = th.relu(diff), th.relu(-diff)
    return th.stack([same, up, down, same * up, same * down, same * (diff > 0).to(diff.dtype)], dim=2)


class ItemBias(nn.Module):
    """A learned score per item, the same for every observation: (B, latent) -> (B, n_items)."""

    def __init__(self, n_items: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(th.zeros(n_items))

    def forward(self, latent: th.Tensor) -> th.Tensor:
        """The bias broadcast over the batch."""
        return self.bias.expand(latent.shape[0], -1)


class PLSlateActorCritic(ActorCriticPolicy):
    """SB3 actor-critic whose actor is a Plackett-Luce slate distribution over item scores.

    Observation: ``Box`` of shape (d + n_items,), ``[context, eligible as 0/1]``.
    Action space: ``MultiDiscrete([n_items] * k)``; actions are slates in slot order.

    Args:
        observation_space: as above.
        action_space: as above.
        lr_schedule: SB3's learning-rate schedule.
        context_mean: shape (d,), the context standardisation (stored as buffers).
        context_std: shape (d,).
        item_features: shape (n_items, f) or None. When given (a buffer), each item's
            score gains a term shared across items, ``(U h) . item_features[i]`` for the
            actor's last hidden layer ``h``, so what is learned about one item carries
            over to similar ones (same category, similar price).
        free_item_scores: give each item its own score weights ``W[i] . h`` (a free
            per-item head). False keeps only a per-item bias, so items are scored
            through their features alone: far fewer parameters to learn when the
            features describe the items (needs ``item_features``).
        anchor_relation: or None. Scores also through features of each item relative
            to the session's anchor (:func:`relation_features`), weighted by ``V h``:
            ``group_context`` / ``group_items`` are the context columns and item-feature
            columns of the same group one-hot (the anchor's category, each item's),
            ``value_context`` / ``value_item`` those of one value (standardised log price).
        **kwargs: passed to :class:`ActorCriticPolicy` (``net_arch``, ``activation_fn``, ...).
    """

    def __init__(self, observation_space: spaces.Space[Any], action_space: spaces.Space[Any],
                 lr_schedule: Any, context_mean: Sequence[float] | None = None,
                 context_std: Sequence[float] | None = None,
                 item_features: Sequence[Sequence[float]] | None = None, free_item_scores: bool = True,
                 anchor_relation: dict[str, Any] | None = None, **kwargs: Any) -> None:
        if not isinstance(action_space, spaces.MultiDiscrete) or len(set(action_space.nvec.tolist())) != 1:
            raise PolicyError(f"PLSlateActorCritic needs a MultiDiscrete([n_items] * k) action space, "
                              f"found {action_space}.")
        self.n_items = int(action_space.nvec[0])
        self.k = int(action_space.nvec.shape[0])
        if not isinstance(observation_space, spaces.Box) or observation_space.shape is None or len(
                observation_space.shape) != 1 or observation_space.shape[0] < self.n_items:
            raise PolicyError(f"PLSlateActorCritic needs a Box observation of shape (d + n_items,) with "
                              f"n_items = {self.n_items}, found {observation_space}.")
        phi = np.zeros((self.n_items, 0)) if item_features is None else np.asarray(item_features, dtype=float)
        if phi.ndim != 2 or phi.shape[0] != self.n_items:
            raise PolicyError(f"`item_features` must have shape (n_items={self.n_items}, f), "
                              f"found {phi.shape}.")
        if not free_item_scores and phi.shape[1] == 0:
            raise PolicyError("`free_item_scores=False` needs `item_features`: without either, every item "
                              "would get the same score.")
        self._phi_init = phi
        self.free_item_scores = bool(free_item_scores)
        self.dim_context = int(observation_space.shape[0]) - self.n_items
        self.anchor_relation = check_anchor_relation(anchor_relation, self.dim_context, phi.shape[1])
        kwargs["features_extractor_class"] = ContextFeatures
        kwargs["features_extractor_kwargs"] = {
            "n_items": self.n_items,
            "context_mean": None if context_mean is None else [float(v) for v in context_mean],
            "context_std": None if context_std is None else [float(v) for v in context_std]}
        super().__init__(observation_space, action_space, lr_schedule, **kwargs)

    def _build(self, lr_schedule: Any) -> None:
        super()._build(lr_schedule)
        # One score per item instead of SB3's k independent categorical heads.
        if self.free_item_scores:
            self.action_net = nn.Linear(self.mlp_extractor.latent_dim_pi, self.n_items)
            if self.ortho_init:
                nn.init.orthogonal_(self.action_net.weight, gain=0.01)
                nn.init.zeros_(self.action_net.bias)
        else:
            self.action_net = ItemBias(self.n_items)
        self.n_item_features = int(self._phi_init.shape[1])
        if self.n_item_features:
            self.register_buffer("item_features", th.as_tensor(self._phi_init, dtype=th.float32))
            self.item_head = nn.Linear(self.mlp_extractor.latent_dim_pi, self.n_item_features, bias=False)
            nn.init.orthogonal_(self.item_head.weight, gain=0.01)
        if self.anchor_relation is not None:
            self.relation_head = nn.Linear(self.mlp_extractor.latent_dim_pi, N_RELATIONS, bias=False)
            nn.init.orthogonal_(self.relation_head.weight, gain=0.01)
        self.optimizer = self.optimizer_class(  # type: ignore[call-arg]
            self.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs)

    def _latents(self, obs: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        features = self.extract_features(obs)
        if isinstance(features, tuple):
            pi_features, vf_features = features
            extractor = self.mlp_extractor
            return extractor.forward_actor(pi_features), extractor.forward_critic(vf_features)
        pi, vf = self.mlp_extractor(features)
        return pi, vf

    def _latent_pi(self, obs: th.Tensor) -> th.Tensor:
        features = self.extract_features(obs)
        pi_features = features[0] if isinstance(features, tuple) else features
        out: th.Tensor = self.mlp_extractor.forward_actor(pi_features)
        return out

    def _logits(self, latent_pi: th.Tensor, obs: th.Tensor) -> th.Tensor:
        logits: th.Tensor = self.action_net(latent_pi)
        if self.n_item_features:
            phi = self.get_buffer("item_features")
            logits = logits + self.item_head(latent_pi) @ phi.T
            if self.anchor_relation is not None:
                rel = relation_features(obs.flatten(1)[:, :self.dim_context], phi, self.anchor_relation)
                logits = logits + th.einsum("bnr,br->bn", rel, self.relation_head(latent_pi))
        return logits

    def _slate_dist(self, latent_pi: th.Tensor, obs: th.Tensor) -> PlackettLuce:
        eligible = obs.flatten(1)[:, -self.n_items:] > 0.5
        return PlackettLuce(self._logits(latent_pi, obs), eligible, self.k)

    def scores(self, obs: th.Tensor) -> th.Tensor:
        """Item scores (logits), shape (B, n_items), for observations (B, d + n_items)."""
        return self._logits(self._latent_pi(obs), obs)

    def forward(self, obs: th.Tensor, deterministic: bool = False) -> tuple[th.Tensor, th.Tensor, th.Tensor]:
        """Slates (B, k), values (B, 1) and log-probabilities (B,)."""
        latent_pi, latent_vf = self._latents(obs)
        dist = self._slate_dist(latent_pi, obs)
        actions = dist.get_actions(deterministic)
        return actions, self.value_net(latent_vf), dist.log_prob(actions)

    def evaluate_actions(self, obs: Any, actions: th.Tensor) -> tuple[th.Tensor, th.Tensor, th.Tensor]:
        """Values (B, 1), log-probabilities (B,) and entropies (B,) of given slates."""
        latent_pi, latent_vf = self._latents(obs)
        dist = self._slate_dist(latent_pi, obs)
        return self.value_net(latent_vf), dist.log_prob(actions), dist.entropy()

    def get_distribution(self, obs: Any) -> Any:
        """The slate distribution for observations (B, d + n_items)."""
        return self._slate_dist(self._latent_pi(obs), obs)


def network_kwargs(net_arch: Sequence[int], activation: str) -> dict[str, Any]:
    """``policy_kwargs`` for SB3's ``PPO(PLSlateActorCritic, env, policy_kwargs=...)``."""
    if activation not in ACTIVATIONS:
        raise PolicyError(f"`activation` must be one of {sorted(ACTIVATIONS)}, found {activation!r}.")
    return {"net_arch": [int(h) for h in net_arch], "activation_fn": ACTIVATIONS[activation]}


def observation_space(dim_context: int, n_items: int) -> spaces.Box:
    """The network's observation space: ``[context (d), eligible (n_items)]``."""
    return spaces.Box(-np.inf, np.inf, shape=(dim_context + n_items,), dtype=np.float32)


# ---------------------------------------------------------------------------- the slate policy
@register_policy("ppo")
class PPOSlatePolicy(SlatePolicy):
    """A trained PPO network served as a slate policy with exact Plackett-Luce propensities.

    ``update`` does nothing: the network learns from environment rollouts
    (``slatewise train-ppo``), not from logged feedback, so it can be served and
    evaluated next to bandits that learn online.

    Args:
        n_items: catalog size.
        k: slate length.
        dim_context: context dimension ``d`` (0: the context is ignored).
        net_arch: hidden layer widths of the actor and of the critic.
        activation: ``tanh`` or ``relu``.
        temperature: scores are divided by it before Plackett-Luce; 1 is the
            distribution PPO trained, smaller is greedier.
        n_draws: Monte Carlo draws for the per-slot marginals of slots 4 and later.
        n_item_features: width ``f`` of the item features the network scores with (0: none);
            the features themselves are learned state, loaded with the weights.
        free_item_scores: a free per-item head besides the feature scores (see
            :class:`PLSlateActorCritic`); False needs ``n_item_features >= 1``.
        anchor_relation: which context and item-feature columns describe the anchor's
            group and value, for the relation features (see :class:`PLSlateActorCritic`).
        seed: seeds the slate draws and the initial weights (a clone starts from the same weights).
    """

    #: ``update`` learns nothing: the policy is trained on rollouts first, then plays frozen.
    learns_online: ClassVar[bool] = False

    def __init__(self, n_items: int, k: int, dim_context: int = 0, *,
                 net_arch: Sequence[int] = (64, 64), activation: str = "tanh",
                 temperature: float = 1.0, n_draws: int = 10_000, n_item_features: int = 0,
                 free_item_scores: bool = True, anchor_relation: dict[str, Any] | None = None,
                 seed: int | None = None) -> None:
        super().__init__(n_items, k, dim_context, seed=seed)
        arch = tuple(net_arch)
        if not arch or not all(isinstance(h, int | np.integer) and h >= 1 for h in arch):
            raise PolicyError(f"`net_arch` must be a non-empty list of positive layer widths, found "
                              f"{list(arch)!r}.")
        if not isinstance(temperature, float | int) or not np.isfinite(temperature) or temperature <= 0:
            raise PolicyError(f"`temperature` must be a positive number, found {temperature!r}.")
        if not isinstance(n_draws, int | np.integer) or n_draws < 1:
            raise PolicyError(f"`n_draws` must be a positive integer, found {n_draws!r}.")
        self.net_arch = tuple(int(h) for h in arch)
        self.activation = activation
        self.temperature = float(temperature)
        self.n_draws = int(n_draws)
        if not isinstance(n_item_features, int | np.integer) or n_item_features < 0:
            raise PolicyError(f"`n_item_features` must be an integer >= 0, found {n_item_features!r}.")
        self.n_item_features = int(n_item_features)
        self.free_item_scores = bool(free_item_scores)
        kwargs = network_kwargs(self.net_arch, activation)
        kwargs["free_item_scores"] = self.free_item_scores
        self.anchor_relation = check_anchor_relation(anchor_relation, self.dim_context, self.n_item_features)
        kwargs["anchor_relation"] = self.anchor_relation
        if self.n_item_features:
            kwargs["item_features"] = np.zeros((self.n_items, self.n_item_features)).tolist()
        with th.random.fork_rng(devices=[]):
            th.manual_seed(0 if seed is None else int(seed))
            self._net = PLSlateActorCritic(observation_space(self.dim_context, self.n_items),
                                           spaces.MultiDiscrete(np.full(self.k, self.n_items)),
                                           lambda _: 0.0, **kwargs)
        # Inference in float64: a row's scores then do not depend on the batch it comes in.
        self._net.double()
        self._net.set_training_mode(False)

    @property
    def network(self) -> PLSlateActorCritic:
        """The underlying SB3 network (read-only use; load weights with :meth:`load_network_state`)."""
        return self._net

    # ------------------------------------------------------------ scores
    def observation(self, context: FloatArray, eligible: BoolArray | None) -> FloatArray:
        """The network's input (n, d + n_items): context columns, then the eligibility mask."""
        n = context.shape[0]
        mask = np.ones((n, self.n_items)) if eligible is None else eligible.astype(np.float64)
        return np.concatenate([context[:, :self.dim_context], mask], axis=1)

    def scores(self, context: FloatArray, eligible: BoolArray | None = None) -> FloatArray:
        """Plackett-Luce logits (n, n_items): network scores divided by the temperature."""
        obs = th.as_tensor(self.observation(context, eligible), dtype=th.float64)
        with th.no_grad():
            logits = self._net.scores(obs).numpy()
        out: FloatArray = logits / self.temperature
        return out

    def sample_slates(self, context: Any, eligible: Any = None) -> tuple[IntArray, FloatArray]:
        """Slates and their exact probabilities, without the per-slot marginals.

        The same distribution as :meth:`select` (without ``required``), for fast
        batch simulation: the marginals of ``select`` cost ``O(n_items ** 2)``
        per row, this costs ``O(n_items)``.

        Returns:
            ``(slate, pscore)`` of shapes (n, k) and (n,).
        """
        ctx, elig, _ = self._check_inputs(context, eligible, None)
        logits = self.scores(ctx, elig)
        masked = logits if elig is None else np.where(elig, logits, -np.inf)
        keys = masked + self._rng.gumbel(size=masked.shape)
        slate = np.argsort(-keys, axis=1, kind="stable")[:, :self.k].astype(np.int64)
        top = masked.max(axis=1, keepdims=True)
        weights = np.exp(masked - top)
        chosen = np.take_along_axis(weights, slate, axis=1)
        left = np.empty_like(chosen)
        rows = np.arange(ctx.shape[0])
        for s in range(self.k):  # mass left at each stage, summed directly (no cancellation)
            left[:, s] = weights.sum(axis=1)
            weights[rows, slate[:, s]] = 0.0
        pscore: FloatArray = np.prod(chosen / left, axis=1)
        return slate, pscore

    def _select(self, context: FloatArray, eligible: BoolArray | None,
                required: BoolArray | None) -> SlateDecision:
        slate, pscore, pscore_item, used = plackett_luce_slates(
            self._rng, self.scores(context, eligible), self.k, eligible, required, n_draws=self.n_draws)
        return SlateDecision(slate=slate, pscore=pscore, pscore_item=pscore_item, n_draws=used)

    def _action_dist(self, context: FloatArray, eligible: BoolArray | None,
                     required: BoolArray | None, n_draws: int | None) -> FloatArray:
        dist, _ = plackett_luce_dist(self._rng, self.scores(context, eligible), self.k, eligible,
                                     required, n_draws=n_draws or self.n_draws)
        return dist

    def _update(self, feedback: Feedback) -> None:
        """Nothing to learn from logged feedback (PPO learns from rollouts)."""
        logger.debug("PPOSlatePolicy.update ignores %d feedback rows (trained by rollouts).",
                     feedback.n_rounds)

    # ------------------------------------------------------------ state
    def network_state(self) -> dict[str, th.Tensor]:
        """The network's ``state_dict`` (weights and the context statistics)."""
        return {key: value.detach().clone() for key, value in self._net.state_dict().items()}

    def load_network_state(self, state: dict[str, Any]) -> None:
        """Load a ``state_dict`` of a :class:`PLSlateActorCritic` with the same shapes.

        Raises:
            PolicyError: missing, unexpected or mis-shaped entries (a different network).
        """
        own = self._net.state_dict()
        missing = sorted(set(own) - set(state))
        extra = sorted(set(state) - set(own))
        if missing or extra:
            raise PolicyError(f"network weights do not fit this policy (n_items={self.n_items}, k={self.k}, "
                              f"d={self.dim_context}, net_arch={list(self.net_arch)}): missing "
                              f"{missing[:5]}, unexpected {extra[:5]}.")
        tensors = {key: th.as_tensor(np.asarray(value)) if not isinstance(value, th.Tensor) else value
                   for key, value in state.items()}
        bad = [key for key in own if tuple(own[key].shape) != tuple(tensors[key].shape)]
        if bad:
            raise PolicyError(f"network weights do not fit this policy: {bad[0]} has shape "
                              f"{tuple(tensors[bad[0]].shape)}, expected {tuple(own[bad[0]].shape)}.")
        self._net.load_state_dict({key: tensors[key].to(own[key].dtype) for key in own})
        self._net.set_training_mode(False)

    def _get_state(self) -> dict[str, np.ndarray[Any, Any]]:
        return {f"net.{key}": value.cpu().numpy() for key, value in self.network_state().items()}

    def _set_state(self, state: dict[str, np.ndarray[Any, Any]]) -> None:
        bad = [key for key in state if not key.startswith("net.")]
        if bad:
            raise PolicyError(f"PPOSlatePolicy state holds unexpected arrays {bad}.")
        self.load_network_state({key[4:]: value for key, value in state.items()})

    # ------------------------------------------------------------ SB3 format
    def metadata(self) -> dict[str, Any]:
        """Our metadata beside an SB3 zip: policy name, constructor arguments, format version."""
        params = self.get_params()
        params["net_arch"] = list(self.net_arch)
        return {"format": "slatewise-ppo", "version": SB3_META_VERSION, "policy": self.policy_name,
                "params": params}

    def save_sb3(self, path: str | os.PathLike[str]) -> Path:
        """Write the network in stable-baselines3's zip format, and ``<path>.json`` beside it.

        Returns:
            The zip path (``.zip`` appended when missing).
        """
        target = Path(path)
        if target.suffix != ".zip":
            target = target.with_name(target.name + ".zip")
        target.parent.mkdir(parents=True, exist_ok=True)
        save_to_zip_file(target, data={"slatewise": json.dumps(self.metadata())},
                         params={"policy": self._net.state_dict()})
        target.with_suffix(".json").write_text(json.dumps(self.metadata(), indent=2))
        return target

    @classmethod
    def load_sb3(cls, path: str | os.PathLike[str], metadata: str | os.PathLike[str] | None = None,
                 **overrides: Any) -> PPOSlatePolicy:
        """Load a network from an SB3 zip (ours, or a ``PPO.save`` checkpoint of a PLSlateActorCritic).

        Args:
            path: the zip file.
            metadata: the JSON metadata (default: ``path`` with suffix ``.json``).
            **overrides: constructor arguments to change (e.g. ``temperature``, ``seed``).

        Raises:
            PolicyError: missing or foreign files, or weights that do not fit.
        """
        source = Path(path)
        meta_path = Path(metadata) if metadata is not None else source.with_suffix(".json")
        if not source.is_file():
            raise PolicyError(f"no SB3 model file at {source}.")
        if not meta_path.is_file():
            raise PolicyError(f"no slatewise metadata at {meta_path}; it is written beside the zip by "
                              "save_sb3 and by slatewise train-ppo.")
        meta = json.loads(meta_path.read_text())
        if meta.get("format") != "slatewise-ppo" or meta.get("version") != SB3_META_VERSION:
            raise PolicyError(f"{meta_path} is not slatewise PPO metadata version {SB3_META_VERSION} "
                              f"(found format {meta.get('format')!r}, version {meta.get('version')!r}).")
        try:
            _, params, _ = load_from_zip_file(source, load_data=False, device="cpu")
        except (OSError, ValueError, RuntimeError) as err:
            raise PolicyError(f"{source} is not a stable-baselines3 model file: {err}") from err
        if not params or "policy" not in params:
            raise PolicyError(f"{source} holds no policy weights (policy.pth).")
        policy = cls(**(meta["params"] | overrides))
        weights: dict[str, Any] = dict(params["policy"])
        policy.load_network_state(weights)
        return policy
