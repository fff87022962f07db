"""Worlds and the vectorised session environment PPO trains on.

PPO steps :class:`~simulator.envs.vector.BatchSessionEnv` (all sessions in one
numpy call) through :class:`SlateObservation`, which

* appends the eligibility mask to the context, so the network's observation is
  ``[context (d), eligible (n_items) as 0/1]`` — exactly what
  :meth:`bandits.ppo.PPOSlatePolicy.observation` builds when the trained policy
  is served — and the Plackett-Luce head only ever proposes valid slates;
* makes the reward the configured outcome (click, purchase or revenue) summed
  over the slate, whatever the world's own ``reward_type``.

:class:`~simulator.envs.sb3.SB3BatchEnv` then presents it to stable-baselines3.
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np
import numpy.typing as npt
from gymnasium.vector import VectorEnv, VectorWrapper
from gymnasium.vector.utils import batch_space

from bandits.ppo import observation_space
from experiments.ppo.config import WorldSpec
from simulator.envs import BatchSessionEnv, ToyWorld, WorldLike
from simulator.envs.sb3 import SB3BatchEnv

_TOY_INTS = ("n_items", "k", "n_types", "max_steps")
FloatArray = npt.NDArray[np.float64]


def item_features(world: WorldLike, price_knots: int = 5) -> FloatArray:
    """Features of every item, shape (n_items, f), for ``ppo.item_features``.

    Columns: category one-hot; the item's log price, standardised over the
    catalog (``z``), and a piecewise-linear basis of it, ``max(z - t, 0)`` at
    ``price_knots`` knots ``t`` (quantiles of ``z``), so a score can bend at a
    price (e.g. around the anchor's); then the catalog's other numeric features
    (``world.catalog.features`` without its log-price column), standardised.
    Worlds without a catalog (``ToyWorld``) give their ``category`` and ``price``.

    Args:
        world: the world (its catalog, or ``category`` and ``price`` attributes).
        price_knots: knots of the price basis (0: the standardised log price only).
    """
    catalog = getattr(world, "catalog", None)
    source = catalog if catalog is not None else world
    _, category = np.unique(np.asarray(getattr(source, "category")), return_inverse=True)  # noqa: B009
    price = np.asarray(getattr(source, "price"), dtype=np.float64)  # noqa: B009
    log_price = np.log(np.maximum(price, 1e-9))
    z = (log_price - log_price.mean()) / max(float(log_price.std()), 1e-9)
    knots = np.quantile(z, (np.arange(price_knots) + 0.5) / price_knots) if price_knots else np.zeros(0)
    hinges = np.maximum(z[:, None] - knots[None, :], 0.0)
    columns = [z[:, None], hinges / np.maximum(hinges.std(axis=0), 1e-9)]
    extra = getattr(catalog, "features", None) if catalog is not None else None
    if extra is not None:
        feats = np.asarray(extra, dtype=np.float64).reshape(price.shape[0], -1)
        names = list(getattr(catalog, "feature_names", None) or [])
        keep = [j for j in range(feats.shape[1]) if j >= len(names) or "price" not in names[j]]
        feats = feats[:, keep]
        columns.append((feats - feats.mean(axis=0)) / np.maximum(feats.std(axis=0), 1e-9))
    onehot = np.eye(int(category.max()) + 1)[category]
    out: FloatArray = np.concatenate([onehot, *columns], axis=1)
    return out


def anchor_relation(world: WorldLike) -> dict[str, Any] | None:
    """Where the anchor's category and log price sit in the context and in :func:`item_features`.

    For ``PPOSlatePolicy(anchor_relation=...)``: the context columns
    ``anchor_<category>`` pair with the item features' category one-hot, and
    ``anchor_log_price`` (standardised over the catalog, as the items' ``z``) with
    the items' ``z``. None for a world without those context columns (``ToyWorld``).
    """
    names = list(getattr(world, "context_names", ()) or ())
    catalog = getattr(world, "catalog", None)
    if catalog is None or "anchor_log_price" not in names:
        return None
    categories = np.unique(np.asarray(catalog.category)).tolist()
    columns = [f"anchor_{c}" for c in categories]
    if not all(c in names for c in columns):
        return None
    return {"group_context": [names.index(c) for c in columns], "group_items": list(range(len(categories))),
            "value_context": names.index("anchor_log_price"), "value_item": len(categories)}


def make_world(cfg: WorldSpec) -> WorldLike:
    """The world a config names: ``World.default(seed)``, a :class:`ToyWorld` or a saved world."""
    if cfg.kind == "toy":
        args: dict[str, Any] = {key: (int(v) if key in _TOY_INTS else float(v)) for key, v in cfg.toy.items()}
        return ToyWorld(reward_type=cfg.reward, **args)
    module = importlib.import_module("simulator.world")
    if cfg.kind == "calibrated":
        assert cfg.path is not None  # checked by the config
        saved: WorldLike = module.load_world(cfg.path)
        return saved
    world: WorldLike = module.World.default(seed=cfg.seed)
    return world


class SlateObservation(VectorWrapper):
    """Observation ``[context, eligible]`` and reward = the chosen outcome summed over the slate.

    The final observation of a finished session (``info["final_obs"]``, used by
    PPO to bootstrap sessions cut by the step limit) gets an all-ones mask: the
    eligibility of a finished session is not kept by the environment.

    Args:
        env: a :class:`BatchSessionEnv`.
        reward: ``click``, ``purchase`` or ``revenue``.
        reward_scale: the reward is multiplied by it (PPO's value targets then stay
            near 1; evaluation always reports the unscaled reward).
    """

    def __init__(self, env: VectorEnv[Any, Any, Any], reward: str = "revenue",
                 reward_scale: float = 1.0) -> None:
        super().__init__(env)
        self.reward_scale = float(reward_scale)
        base = env.unwrapped
        self.n_items = int(getattr(base, "n_items"))  # noqa: B009 (a BatchSessionEnv attribute)
        self.reward_kind = reward
        d = int(np.prod(base.single_observation_space.shape or (0,)))
        self.single_observation_space = observation_space(d, self.n_items)
        self.observation_space = batch_space(self.single_observation_space, env.num_envs)

    def _obs(self, obs: Any, mask: Any) -> Any:
        return np.concatenate([np.asarray(obs, dtype=np.float32), np.asarray(mask, dtype=np.float32)],
                              axis=1)

    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        """Reset the sessions; the observation carries the eligibility mask."""
        obs, info = self.env.reset(seed=seed, options=options)
        return self._obs(obs, info["action_mask"]), info

    def step(self, actions: Any) -> tuple[Any, Any, Any, Any, dict[str, Any]]:
        """Step the sessions; reward = ``info[reward]`` summed over the slate."""
        obs, _, terminated, truncated, info = self.env.step(actions)
        reward = self.reward_scale * np.asarray(info[self.reward_kind], dtype=np.float64).sum(axis=1)
        if "final_obs" in info:
            final = np.asarray(info["final_obs"], dtype=np.float32)
            info["final_obs"] = self._obs(final, np.ones((final.shape[0], self.n_items)))
        return self._obs(obs, info["action_mask"]), reward, terminated, truncated, info


def make_vec_env(world: WorldLike, num_envs: int, reward: str, seed: int,
                 reward_scale: float = 1.0) -> SB3BatchEnv:
    """The SB3 ``VecEnv`` PPO trains on: ``num_envs`` sessions of ``world``, seeded."""
    env = SB3BatchEnv(SlateObservation(BatchSessionEnv(num_envs, world, diagnostics=False), reward,
                                       reward_scale))
    env.seed(seed)
    return env
