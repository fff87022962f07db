"""A world's constants laid out for the compiled kernels, as named records.

:func:`build_tables` turns a :class:`~simulator.world.config.WorldConfig` and
:class:`~simulator.world.params.WorldParams` into a :class:`Tables`: numpy
structured arrays whose fields the kernels of :mod:`simulator.world._kernels`
read by name (``items[i].log_price``, ``rules[0].fatigue``), plus a few plain
arrays laid out for vectorised loops. The record types:

* :data:`ITEM`, one per item: ``bias``, ``log_price``, ``rel_log_price``
  (minus the catalog's median log price), ``price_z`` (the log price
  standardised over the catalog); the items' ``category`` and ``price``, read
  in every loop over the catalog, are plain contiguous arrays beside it;
* :data:`RULES`, one record: the response and session settings of the config,
  ``reward_code`` (0 click, 1 purchase, 2 revenue), the candidate rules;
* :data:`SLOT` and :data:`END`, the outputs of one step, per slot (n, k) and
  per session (n,).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from simulator.world.config import WorldConfig
from simulator.world.params import WorldParams

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

REWARD_CODES = {"click": 0, "purchase": 1, "revenue": 2}

#: One item: what the kernels read of it.
ITEM = np.dtype([("bias", "f8"), ("log_price", "f8"), ("rel_log_price", "f8"), ("price_z", "f8")],
                align=True)

#: The response and session settings (one record).
RULES = np.dtype([("buy_base", "f8"), ("checkout_prob", "f8"), ("abandon_base", "f8"), ("fatigue", "f8"),
                  ("relevance_weight", "f8"), ("overprice_weight", "f8"), ("cross_bonus", "f8"),
                  ("up_bonus", "f8"), ("other_bonus", "f8"), ("reward_code", "i8"), ("max_steps", "i8"),
                  ("candidates_only", "?"), ("require_cross_sell", "?")], align=True)

#: What one slot of one step produced.
SLOT = np.dtype([("click", "f8"), ("purchase", "f8"), ("revenue", "f8"), ("cross_sell", "?"),
                 ("up_sell", "?")], align=True)

#: What one session's step produced.
END = np.dtype([("reward", "f8"), ("expected_reward", "f8"), ("checkout", "?"), ("abandon", "?"),
                ("truncated", "?"), ("done", "?"), ("anchor_changed", "?")], align=True)


@dataclass(frozen=True, slots=True)
class Tables:
    """The constants of one world, in the kernels' layouts.

    ``N`` items, ``F`` shopper features, ``C`` categories, ``P`` profiles, ``k`` slots.

    Attributes:
        items: shape (N,) of :data:`ITEM`.
        rules: shape (1,) of :data:`RULES`.
        exam: shape (k,), examination probability of each slot.
        slot_order: shape (k,) int64, the slots from most to least examined.
        weight: shape (F, N), attraction weight of each shopper feature on each item.
        weight_t: shape (N, F), the same transposed (one item's weights contiguous).
        bias: shape (N,), the items' attraction biases (contiguous, for vectorised loops).
        category: shape (N,) int64, each item's category.
        price: shape (N,), each item's price.
        complement: shape (C, C) bool, ``complement[a, b]``: category b is a cross-sell for category a.
        base_bonus: shape (C, N), the bonus of each item for an anchor of each category, up-sells ignored.
        members: shape (N,) int64, item indices grouped by category.
        starts: shape (C + 1,) int64, category ``c``'s items are ``members[starts[c]:starts[c + 1]]``.
        profile_cdf: shape (P,), cumulative profile probabilities (last 1).
        anchor_cdf: shape (P * N,), row ``p`` of the first-anchor CDFs plus ``p``, flattened.
        profile_features: shape (P, F); profile_price_sens, profile_patience: shape (P,);
        profile_segment: shape (P,) int64.
        profile_click_value: shape (P, N), expected reward of a click on each item for each
            profile's price sensitivity.
        taste: how many trailing shopper features are tastes drawn in [-1, 1].
    """

    items: npt.NDArray[np.void]
    rules: npt.NDArray[np.void]
    exam: FloatArray
    slot_order: IntArray
    weight: FloatArray
    weight_t: FloatArray
    bias: FloatArray
    category: IntArray
    price: FloatArray
    complement: BoolArray
    base_bonus: FloatArray
    members: IntArray
    starts: IntArray
    profile_cdf: FloatArray
    anchor_cdf: FloatArray
    profile_features: FloatArray
    profile_price_sens: FloatArray
    profile_patience: FloatArray
    profile_segment: IntArray
    profile_click_value: FloatArray
    taste: int


def anchor_probs(params: WorldParams) -> FloatArray:
    """Shape (P, N): probability of each first anchor for each profile.

    A softmax of the item's attraction logit for the profile (taste features at 0).
    """
    logits = params.item_bias[None, :] + params.profile_features @ params.item_weight
    logits = logits - logits.max(axis=1, keepdims=True)
    probs: FloatArray = np.exp(logits)
    out: FloatArray = probs / probs.sum(axis=1, keepdims=True)
    return out


def _read_only(a: npt.NDArray[np.generic]) -> None:
    a.flags.writeable = False


def build_tables(config: WorldConfig, params: WorldParams) -> Tables:
    """The kernels' layout of the world ``(config, params)`` (arrays copied, read-only)."""
    p, cfg = params, config
    n_items = p.n_items
    price = np.asarray(p.price, dtype=np.float64)
    log_price = np.log(price)
    scale = max(float(log_price.std()), 1e-9)
    rel_log_price = log_price - float(np.median(log_price))
    category = np.asarray(p.item_category, dtype=np.int64)
    items = np.zeros(n_items, dtype=ITEM)
    items["bias"] = p.item_bias
    items["log_price"] = log_price
    items["rel_log_price"] = rel_log_price
    items["price_z"] = (log_price - log_price.mean()) / scale
    rules = np.zeros(1, dtype=RULES)
    for name in ("buy_base", "checkout_prob", "abandon_base", "fatigue", "relevance_weight",
                 "overprice_weight", "cross_bonus", "up_bonus", "other_bonus", "max_steps",
                 "candidates_only", "require_cross_sell"):
        rules[name] = getattr(cfg, name)
    code = REWARD_CODES[cfg.reward_type]
    rules["reward_code"] = code
    exam = np.ascontiguousarray(p.position_bias, dtype=np.float64)
    weight = np.ascontiguousarray(np.asarray(p.item_weight, dtype=np.float64).reshape(-1, n_items))
    complement = np.ascontiguousarray(p.complement, dtype=np.bool_)
    members = np.argsort(category, kind="stable").astype(np.int64)
    # reward of a click on each item for each profile (the purchase probability depends on the
    # profile's price sensitivity only)
    sens = np.asarray(p.profile_price_sens, dtype=np.float64)
    buy = 1.0 / (1.0 + np.exp(-(cfg.buy_base - sens[:, None] * rel_log_price[None, :])))
    click_value = np.ones_like(buy) if code == 0 else (buy if code == 1 else buy * price[None, :])
    probs = anchor_probs(p)
    cdf = np.cumsum(probs, axis=1)
    cdf = cdf / cdf[:, -1:]
    profile_cdf = np.cumsum(np.asarray(p.profile_weight, dtype=np.float64))
    tables = Tables(
        items=items, rules=rules, exam=exam,
        slot_order=np.argsort(-exam, kind="stable").astype(np.int64),
        weight=weight, weight_t=np.ascontiguousarray(weight.T), bias=np.ascontiguousarray(items["bias"]),
        category=category.copy(), price=price.copy(), complement=complement,
        base_bonus=np.ascontiguousarray(np.where(complement[:, category], cfg.cross_bonus, cfg.other_bonus),
                                        dtype=np.float64),
        members=members,
        starts=np.searchsorted(category[members], np.arange(complement.shape[0] + 1)).astype(np.int64),
        profile_cdf=profile_cdf / profile_cdf[-1],
        anchor_cdf=(cdf + np.arange(probs.shape[0])[:, None]).ravel(),
        profile_features=np.ascontiguousarray(p.profile_features, dtype=np.float64),
        profile_price_sens=np.ascontiguousarray(sens),
        profile_patience=np.ascontiguousarray(p.profile_patience, dtype=np.float64),
        profile_segment=np.ascontiguousarray(p.profile_segment, dtype=np.int64),
        profile_click_value=np.ascontiguousarray(click_value),
        taste=int(p.taste_features),
    )
    for name in Tables.__slots__:
        value = getattr(tables, name)
        if isinstance(value, np.ndarray):
            _read_only(value)
    return tables
