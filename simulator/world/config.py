"""The configuration of a synthetic world: a frozen, validated dataclass loadable from TOML."""

from __future__ import annotations

import math
import tomllib
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from simulator.errors import WorldError

REWARD_TYPES = ("click", "purchase", "revenue")

# (field, lower bound, upper bound) of the numeric fields; None = unbounded on that side.
_RANGES: dict[str, tuple[float | None, float | None]] = {
    "n_categories": (2, None), "items_per_category": (1, None), "k": (1, None),
    "n_segments": (1, None), "n_taste": (0, None), "max_steps": (1, None),
    "n_complements": (1, None), "price_low": (0.0, None), "price_high": (0.0, None),
    "price_sigma": (0.0, None), "position_decay": (0.0, None), "segment_pref_scale": (0.0, None),
    "taste_scale": (0.0, None), "price_sens_mean": (0.0, None), "price_sens_spread": (0.0, None),
    "patience_spread": (0.0, None), "checkout_prob": (0.0, 1.0), "fatigue": (0.0, None),
    "relevance_weight": (0.0, None), "overprice_weight": (0.0, None),
}


@dataclass(frozen=True, slots=True)
class WorldConfig:
    """Everything that defines a synthetic shop; the seed draws the rest.

    Sizes:
        n_categories: number of categories ``C``.
        items_per_category: items per category (``n_items = C * items_per_category``).
        k: slate length.
        n_segments: shopper segments (each with category preferences, price
            sensitivity and patience).
        n_taste: continuous taste features per shopper (uniform in [-1, 1]).
        max_steps: step limit of a session.
        n_complements: complementary categories per category (cross-sell targets).

    Catalog:
        price_low, price_high: range of the category base prices (log-uniform), currency units.
        price_sigma: log-normal spread of prices within a category (cheap and premium tiers).

    Responses (all logits):
        position_decay: examination of slot ``j`` is ``(j + 1) ** -position_decay``.
        base_logit: attraction logit of an average item.
        segment_pref_scale: spread of segment-by-category preferences.
        taste_scale: weight of the taste features against item latent features.
        cross_bonus: attraction bonus of a cross-sell (complementary category of the anchor).
        up_bonus: attraction bonus of an up-sell (same category, dearer than the anchor).
        other_bonus: attraction bonus of an item that is neither (usually negative).
        buy_base: purchase-given-click logit at the catalog's median price.
        price_sens_mean, price_sens_spread: price sensitivity of segments (purchase logit
            falls by ``sensitivity`` per unit of log price above the median).

    Sessions:
        checkout_prob: probability of checking out after a step that ends with a
            non-empty cart.
        abandon_base: abandonment logit of a step.
        fatigue: abandonment logit added per step taken.
        relevance_weight: abandonment logit removed per unit of the slate's expected
            click share (irrelevant slates lose shoppers).
        overprice_weight: abandonment logit added per unit of the slate's mean log price
            jump above the anchor (expensive up-sells lose shoppers).
        patience_spread: spread of segments' patience (subtracted from the abandonment logit).

    Rules:
        reward_type: ``click``, ``purchase`` or ``revenue``.
        candidates_only: slates may show only cross-sells and up-sells of the anchor.
        require_cross_sell: every slate holds at least one cross-sell.
    """

    n_categories: int = 12
    items_per_category: int = 25
    k: int = 3
    n_segments: int = 4
    n_taste: int = 2
    max_steps: int = 20
    n_complements: int = 2
    price_low: float = 10.0
    price_high: float = 300.0
    price_sigma: float = 0.6
    position_decay: float = 0.8
    base_logit: float = -1.0
    segment_pref_scale: float = 0.8
    taste_scale: float = 0.5
    cross_bonus: float = 0.8
    up_bonus: float = 1.2
    other_bonus: float = -0.8
    buy_base: float = -0.4
    price_sens_mean: float = 0.5
    price_sens_spread: float = 0.2
    checkout_prob: float = 0.08
    abandon_base: float = -3.2
    fatigue: float = 0.1
    relevance_weight: float = 2.0
    overprice_weight: float = 4.0
    patience_spread: float = 0.4
    reward_type: str = "revenue"
    candidates_only: bool = False
    require_cross_sell: bool = False

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.type in ("int",) and (isinstance(value, bool) or not isinstance(value, int)):
                raise WorldError(f"WorldConfig.{f.name} must be an integer, found {value!r}.")
            if f.type == "float":
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise WorldError(f"WorldConfig.{f.name} must be a number, found {value!r}.")
                if not math.isfinite(value):
                    raise WorldError(f"WorldConfig.{f.name} must be finite, found {value!r}.")
                object.__setattr__(self, f.name, float(value))
            if f.type == "bool" and not isinstance(value, bool):
                raise WorldError(f"WorldConfig.{f.name} must be true or false, found {value!r}.")
            if f.name in _RANGES:
                low, high = _RANGES[f.name]
                if (low is not None and value < low) or (high is not None and value > high):
                    span = f"[{low}, {'inf' if high is None else high}]"
                    raise WorldError(f"WorldConfig.{f.name} must lie in {span}, found {value!r}.")
        if self.reward_type not in REWARD_TYPES:
            raise WorldError(f"WorldConfig.reward_type must be one of {list(REWARD_TYPES)}, "
                             f"found {self.reward_type!r}.")
        if self.price_high < self.price_low or self.price_low <= 0:
            raise WorldError(f"WorldConfig.price_low and price_high must satisfy 0 < price_low <= "
                             f"price_high, found {self.price_low} and {self.price_high}.")
        if self.n_complements >= self.n_categories:
            raise WorldError(f"WorldConfig.n_complements must be below n_categories = "
                             f"{self.n_categories}, found {self.n_complements}.")
        if self.k + 1 > self.n_items:
            raise WorldError(f"WorldConfig.k must leave room for the anchor: k <= n_items - 1 = "
                             f"{self.n_items - 1}, found {self.k}.")

    @property
    def n_items(self) -> int:
        """Catalog size."""
        return self.n_categories * self.items_per_category

    def to_json(self) -> dict[str, Any]:
        """Plain-JSON form (every field)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> WorldConfig:
        """Build from a mapping; unknown keys are an error naming them."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise WorldError(f"{source}: unknown world settings {unknown}; known settings are "
                             f"{sorted(known)}.")
        return cls(**data)

    @classmethod
    def from_toml(cls, path: str | Path) -> WorldConfig:
        """Load from a TOML file: top-level keys, or the keys of a ``[world]`` table."""
        p = Path(path)
        try:
            data = tomllib.loads(p.read_text())
        except FileNotFoundError:
            raise WorldError(f"world config {p} does not exist.") from None
        except tomllib.TOMLDecodeError as err:
            raise WorldError(f"world config {p} is not valid TOML: {err}") from None
        if "world" in data:
            if not isinstance(data["world"], dict):
                raise WorldError(f"{p}: `world` must be a table, found {type(data['world']).__name__}.")
            data = data["world"]
        return cls.from_dict(data, source=str(p))
