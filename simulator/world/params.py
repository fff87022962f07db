"""The arrays that define a world, and how a synthetic world's arrays are drawn from a config."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import numpy.typing as npt

from simulator.errors import WorldError
from simulator.world.config import WorldConfig

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class WorldParams:
    """Every array of a world.

    ``C`` categories, ``n_items`` items, ``f`` shopper features, ``P`` shopper profiles.

    Attributes:
        item_id: shape (n_items,) int64, external item ids.
        category_names: the ``C`` category names.
        item_category: shape (n_items,) int64, category index of each item.
        price: shape (n_items,), price in currency units (> 0).
        item_features: shape (n_items, q), item features written to the catalog.
        item_feature_names: names of the ``q`` item features.
        complement: shape (C, C) bool, ``complement[a, b]``: category b is a cross-sell for anchor category a.
        item_bias: shape (n_items,), attraction logit of each item.
        item_weight: shape (f, n_items), attraction logit per unit of each shopper feature.
        position_bias: shape (k,), examination probability of each slot.
        profile_features: shape (P, f), shopper feature means of each profile.
        profile_weight: shape (P,), probability of each profile (sums to 1).
        profile_price_sens: shape (P,), price sensitivity of each profile.
        profile_patience: shape (P,), patience of each profile (abandonment logit removed).
        profile_segment: shape (P,) int64, the segment a profile belongs to.
        taste_features: how many trailing shopper features are tastes drawn uniformly in [-1, 1]
            (they replace the profile's value; 0 for calibrated worlds).
        feature_names: names of the ``f`` shopper features.
    """

    item_id: IntArray
    category_names: tuple[str, ...]
    item_category: IntArray
    price: FloatArray
    item_features: FloatArray
    item_feature_names: tuple[str, ...]
    complement: BoolArray
    item_bias: FloatArray
    item_weight: FloatArray
    position_bias: FloatArray
    profile_features: FloatArray
    profile_weight: FloatArray
    profile_price_sens: FloatArray
    profile_patience: FloatArray
    profile_segment: IntArray
    taste_features: int
    feature_names: tuple[str, ...]

    def __post_init__(self) -> None:
        n = int(np.asarray(self.item_id).shape[0])
        c = len(self.category_names)
        f = int(np.asarray(self.item_weight).shape[0])
        p = int(np.asarray(self.profile_weight).shape[0])
        expected: dict[str, tuple[int, ...]] = {
            "item_id": (n,), "item_category": (n,), "price": (n,), "complement": (c, c),
            "item_bias": (n,), "item_weight": (f, n), "profile_features": (p, f),
            "profile_weight": (p,), "profile_price_sens": (p,), "profile_patience": (p,),
            "profile_segment": (p,),
        }
        for name, shape in expected.items():
            arr = np.asarray(getattr(self, name))
            if arr.shape != shape:
                raise WorldError(f"world parameter `{name}` must have shape {shape}, found {arr.shape}.")
            if arr.dtype.kind == "f" and not np.isfinite(arr).all():
                raise WorldError(f"world parameter `{name}` holds NaN or infinite values.")
        if np.asarray(self.item_features).shape[0] != n:
            raise WorldError(f"world parameter `item_features` must have {n} rows, found "
                             f"{np.asarray(self.item_features).shape[0]}.")
        if (np.asarray(self.price) <= 0).any():
            raise WorldError("world parameter `price` must be > 0 for every item.")
        cat = np.asarray(self.item_category)
        if n and (cat.min() < 0 or cat.max() >= c):
            raise WorldError(f"world parameter `item_category` must lie in [0, {c - 1}].")
        pos = np.asarray(self.position_bias)
        if pos.ndim != 1 or pos.size < 1 or ((pos <= 0) | (pos > 1)).any():
            raise WorldError(f"world parameter `position_bias` must be a (k,) array in (0, 1], "
                             f"found {pos.tolist()}.")
        w = np.asarray(self.profile_weight)
        if (w < 0).any() or not np.isclose(w.sum(), 1.0):
            raise WorldError("world parameter `profile_weight` must be non-negative and sum to 1.")
        if not 0 <= self.taste_features <= f:
            raise WorldError(f"world parameter `taste_features` must lie in [0, {f}], "
                             f"found {self.taste_features}.")
        if len(self.feature_names) != f:
            raise WorldError(f"world parameter `feature_names` must hold {f} names, "
                             f"found {len(self.feature_names)}.")

    @property
    def n_items(self) -> int:
        """Catalog size."""
        return int(self.item_id.shape[0])

    def to_json(self) -> dict[str, Any]:
        """Plain-JSON form: arrays as nested lists (floats round-trip exactly)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = value.tolist() if isinstance(value, np.ndarray) else (
                list(value) if isinstance(value, tuple) else value)
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WorldParams:
        """Inverse of :meth:`to_json`."""
        known = {f.name for f in fields(cls)}
        missing = sorted(known - set(data))
        if missing:
            raise WorldError(f"saved world parameters lack {missing}.")
        ints = {"item_id", "item_category", "profile_segment"}
        tuples = {"category_names", "item_feature_names", "feature_names"}
        kwargs: dict[str, Any] = {}
        for name in known:
            value = data[name]
            if name in tuples:
                kwargs[name] = tuple(str(v) for v in value)
            elif name == "taste_features":
                kwargs[name] = int(value)
            elif name == "complement":
                kwargs[name] = np.asarray(value, dtype=bool)
            elif name == "item_features":
                arr = np.asarray(value, dtype=np.float64)
                kwargs[name] = arr.reshape(len(data["item_id"]), -1)
            else:
                kwargs[name] = np.asarray(value, dtype=np.int64 if name in ints else np.float64)
        if kwargs["item_weight"].ndim == 1:
            kwargs["item_weight"] = kwargs["item_weight"].reshape(0, len(data["item_id"]))
        if kwargs["profile_features"].ndim == 1:
            kwargs["profile_features"] = kwargs["profile_features"].reshape(
                len(data["profile_weight"]), 0)
        return cls(**kwargs)


def synthetic_params(config: WorldConfig, rng: np.random.Generator) -> WorldParams:
    """Draw a synthetic shop: categories, prices, complements, segments, attraction weights.

    Args:
        config: the world's configuration.
        rng: the generator drawing every parameter (the world's seed).

    Returns:
        The world's arrays.
    """
    c, per, s, t = config.n_categories, config.items_per_category, config.n_segments, config.n_taste
    n = c * per
    item_category = np.repeat(np.arange(c, dtype=np.int64), per)
    log_base = rng.uniform(np.log(config.price_low), np.log(config.price_high), size=c)
    log_price = log_base[item_category] + config.price_sigma * rng.standard_normal(n)
    price = np.round(np.exp(log_price), 2).clip(0.01)
    # complements: each category gets `n_complements` distinct other categories.
    keys = rng.random((c, c))
    np.fill_diagonal(keys, -1.0)
    top = np.argsort(-keys, axis=1)[:, : config.n_complements]
    complement = np.zeros((c, c), dtype=bool)
    complement[np.arange(c)[:, None], top] = True
    quality = rng.standard_normal(n)
    latent = rng.standard_normal((n, t)) if t else np.zeros((n, 0))
    seg_pref = config.segment_pref_scale * rng.standard_normal((s, c))
    item_bias = config.base_logit + 0.4 * quality
    item_weight = np.vstack([seg_pref[:, item_category], config.taste_scale * latent.T])
    segment_sens = config.price_sens_mean + config.price_sens_spread * np.linspace(-1, 1, s) \
        if s > 1 else np.array([config.price_sens_mean])
    patience = config.patience_spread * (np.linspace(-1, 1, s) if s > 1 else np.zeros(1))
    patience = patience[rng.permutation(s)]
    seg_weight = rng.dirichlet(np.full(s, 5.0))
    z = (log_price - log_price.mean()) / max(float(log_price.std()), 1e-9)
    item_features = np.column_stack([z, quality, latent])
    names = ("log_price_z", "quality", *(f"latent_{i}" for i in range(t)))
    position_bias: FloatArray = np.power(1.0 + np.arange(config.k, dtype=np.float64),
                                         -config.position_decay)
    return WorldParams(
        item_id=np.arange(n, dtype=np.int64),
        category_names=tuple(f"cat{j:02d}" for j in range(c)),
        item_category=item_category,
        price=price,
        item_features=item_features,
        item_feature_names=names,
        complement=complement,
        item_bias=item_bias,
        item_weight=item_weight,
        position_bias=position_bias,
        profile_features=np.hstack([np.eye(s), np.zeros((s, t))]),
        profile_weight=seg_weight / seg_weight.sum(),
        profile_price_sens=segment_sens,
        profile_patience=patience,
        profile_segment=np.arange(s, dtype=np.int64),
        taste_features=t,
        feature_names=(*(f"segment_{i}" for i in range(s)), *(f"taste_{i}" for i in range(t))),
    )
