"""Request bodies to typed, validated records; every problem is an error naming its field."""

from __future__ import annotations

import hashlib
import json
import math
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from serving.catalog import ServedShape
from serving.errors import BadRequest, InvalidField

MAX_USER_ID = 256
MAX_EVENT_TOKEN = 64
MAX_ABS_REWARD = 1e9
MAX_REVENUE = 1e12
SLATE_KEYS = frozenset({"user_id", "context", "k", "candidates", "exclude", "anchor_item", "experiment"})
REWARD_KEYS = frozenset({"event_id", "clicks", "reward", "purchase", "revenue"})


def _reject_constant(name: str) -> float:
    raise BadRequest(f"the body holds {name}, which is not valid JSON; send finite numbers only.",
                     field="body")


def _parse_int(text: str) -> int | float:
    """An integer literal; one longer than Python's int-string limit is an infinity, like ``1e999``."""
    limit = sys.get_int_max_str_digits()
    if limit and len(text) - text.startswith("-") > limit:
        return -math.inf if text.startswith("-") else math.inf
    return int(text)


_DECODER = json.JSONDecoder(parse_constant=_reject_constant, parse_int=_parse_int)


def parse_json(data: bytes) -> dict[str, Any]:
    """Decode a request body that must be one JSON object (the literals NaN and Infinity refused).

    orjson decodes the common body; what it refuses is decoded again by the standard
    library, which accepts what JSON allows and orjson does not (UTF-16 bodies,
    escaped lone surrogates, numbers beyond the float range) and words the errors. A
    number too large for a float (``1e999``, or an integer literal longer than Python's
    int-string limit of 4,300 digits) decodes to infinity; the field checks refuse it,
    naming the field.

    Raises:
        BadRequest: not UTF-8/16/32, not JSON, too deeply nested, or not an object.
    """
    try:
        body = orjson.loads(data)
    except orjson.JSONDecodeError:
        try:
            body = _DECODER.decode(data.decode(json.detect_encoding(data), "surrogatepass"))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise BadRequest(f"the body is not valid JSON ({err}); send one JSON object.",
                             field="body") from None
        except RecursionError:
            raise BadRequest("the body is nested too deeply; send a flat JSON object.",
                             field="body") from None
    if not isinstance(body, dict):
        raise BadRequest(f"the body must be a JSON object, found {type(body).__name__}.", field="body")
    return body


def _check_keys(body: dict[str, Any], allowed: frozenset[str]) -> None:
    if not allowed.issuperset(body):
        unknown = sorted(set(body) - allowed)
        raise InvalidField(unknown[0], f"only the fields {sorted(allowed)}", f"unknown field {unknown[0]!r}",
                           "Remove it or check its spelling.")


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def is_clean_text(value: str) -> bool:
    """Whether ``value`` is valid Unicode (JSON escapes can smuggle in lone surrogates)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _float(field: str, value: Any) -> float:
    if not _is_number(value):
        raise InvalidField(field, "a number", _short(value))
    try:
        out = float(value)
    except OverflowError:
        out = math.inf
    if not math.isfinite(out):
        raise InvalidField(field, "a finite number", _short(value))
    return out


def _int(field: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer() and low <= value <= high:
            return int(value)
        raise InvalidField(field, f"an integer in [{low}, {high}]", _short(value))
    if not low <= value <= high:
        raise InvalidField(field, f"an integer in [{low}, {high}]", _short(value))
    return value


def _number_list(field: str, value: Any, length: int) -> npt.NDArray[np.float64]:
    if not isinstance(value, list):
        raise InvalidField(field, f"a list of {length} numbers", _short(value))
    if len(value) != length:
        raise InvalidField(field, f"{length} numbers", f"{len(value)}")
    if all(type(v) is float for v in value):  # the common case, checked in one pass
        arr = np.array(value, dtype=np.float64)
        if np.isfinite(arr).all():
            return arr
    return np.array([_float(f"{field}[{i}]", v) for i, v in enumerate(value)], dtype=np.float64)


_PLAIN_NUMBERS = frozenset({float, int})


def _plain_context(value: Any, d: int, limit: float) -> npt.NDArray[np.float64] | None:
    """``value`` as an array when it is ``d`` numbers (not bools), finite and within ``±limit``.

    None otherwise: the caller's checks then name what is wrong.
    """
    if type(value) is not list or len(value) != d or not _PLAIN_NUMBERS.issuperset(map(type, value)):
        return None
    try:
        arr = np.array(value, dtype=np.float64)
    except OverflowError:  # an integer beyond the float range
        return None
    top = float(np.abs(arr).max()) if d else 0.0
    return arr if top <= limit and top < math.inf else None  # NaN fails both comparisons


def _text_ids(shape: ServedShape) -> bool:
    return bool(shape.item_ids) and isinstance(shape.item_ids[0], str)


def _id_kind(shape: ServedShape) -> str:
    return "a text item id (the shop's own)" if _text_ids(shape) else "an integer item id"


def _id_kind_ok(item: Any, shape: ServedShape) -> bool:
    """An id of the catalog's kind: text for a shop's catalog of text ids, else an integer."""
    if _text_ids(shape):
        return isinstance(item, str)
    return isinstance(item, int) and not isinstance(item, bool)


def _items(field: str, value: Any, shape: ServedShape) -> list[int]:
    if not isinstance(value, list):
        raise InvalidField(field, "a list of item ids", _short(value))
    if len(value) > 4 * shape.n_items + 16:
        raise InvalidField(field, f"at most {4 * shape.n_items + 16} item ids", f"{len(value)}")
    out = []
    for i, item in enumerate(value):
        if not _id_kind_ok(item, shape):
            raise InvalidField(f"{field}[{i}]", _id_kind(shape), _short(item))
        index = shape.index_of.get(item)
        if index is None:
            raise InvalidField(f"{field}[{i}]", "an item id of the catalog", str(item),
                               "GET the catalog from your shop's item list; unknown items cannot be shown.")
        out.append(index)
    return out


def _checked_context(raw: Any, shape: ServedShape, limit: float) -> npt.NDArray[np.float64]:
    """A context given as a list or (with ``context_names``) an object, every problem named."""
    d = shape.dim_context
    if isinstance(raw, dict):
        if not shape.context_names:
            raise InvalidField("context", f"a list of {d} numbers (this service has no feature names)",
                               "an object")
        names = set(shape.context_names)
        missing = sorted(names - set(raw))
        extra = sorted(set(raw) - names)
        if missing or extra:
            raise InvalidField("context", f"the features {list(shape.context_names)}",
                               f"missing {missing}, unknown {extra}")
        context = np.array([_float(f"context.{n}", raw[n]) for n in shape.context_names])
    else:
        context = _number_list("context", raw, d)
    too_big = np.abs(context) > limit
    if too_big.any():
        i = int(np.flatnonzero(too_big)[0])
        name = f"context.{shape.context_names[i]}" if isinstance(raw, dict) else f"context[{i}]"
        raise InvalidField(name, f"a number within ±{limit:g} (serving.max_abs_context)",
                           repr(float(context[i])), "Scale or clip the feature.")
    return context


@dataclass(frozen=True, slots=True)
class SlateRequest:
    """A validated ``POST /v1/slates`` body.

    Attributes:
        user_id: the shopper (assignment key).
        experiment: experiment name, or None for the default one.
        context: shape (d,).
        k: requested slate length.
        eligible: shape (n_items,) bool, or None when every item is allowed.
        anchor: catalog index of the anchor item, or None.
    """

    user_id: str
    experiment: str | None
    context: npt.NDArray[np.float64]
    k: int
    eligible: npt.NDArray[np.bool_] | None
    anchor: int | None


def parse_slate_request(body: dict[str, Any], shape: ServedShape,
                        max_abs_context: float = 1e6) -> SlateRequest:
    """Validate a slate request against the served catalog and shapes.

    Context features must be finite numbers of absolute value at most ``max_abs_context``.

    Raises:
        InvalidField: naming the first bad field, with what was expected and found.
    """
    _check_keys(body, SLATE_KEYS)
    user_id = body.get("user_id")
    if isinstance(user_id, int) and not isinstance(user_id, bool):
        user_id = str(user_id)
    if not isinstance(user_id, str) or not 0 < len(user_id) <= MAX_USER_ID or not is_clean_text(user_id):
        raise InvalidField("user_id", f"a non-empty string of at most {MAX_USER_ID} valid characters",
                           "nothing" if "user_id" not in body else _short(body.get("user_id")))
    experiment = body.get("experiment")
    if experiment is not None and not isinstance(experiment, str):
        raise InvalidField("experiment", "an experiment name (string)", _short(experiment))
    if "context" not in body:
        raise InvalidField("context", f"a list of {shape.dim_context} numbers"
                           + (f" or an object with keys {list(shape.context_names)}"
                              if shape.context_names else ""), "nothing")
    raw = body["context"]
    context = _plain_context(raw, shape.dim_context, max_abs_context)
    if context is None:  # not the common case (d plain numbers within the limit): check and name
        context = _checked_context(raw, shape, max_abs_context)
    k = _int("k", body["k"], 1, shape.k) if body.get("k") is not None else shape.k
    eligible = None
    if body.get("candidates") is not None:
        eligible = np.zeros(shape.n_items, dtype=bool)
        eligible[_items("candidates", body["candidates"], shape)] = True
    if body.get("exclude") is not None:
        excluded = _items("exclude", body["exclude"], shape)
        if excluded:
            eligible = np.ones(shape.n_items, dtype=bool) if eligible is None else eligible
            eligible[excluded] = False
    anchor = None
    if body.get("anchor_item") is not None:
        anchor_id = body["anchor_item"]
        if not _id_kind_ok(anchor_id, shape):
            raise InvalidField("anchor_item", _id_kind(shape), _short(anchor_id))
        if anchor_id not in shape.index_of:
            raise InvalidField("anchor_item", "an item id of the catalog", str(anchor_id))
        anchor = shape.index_of[anchor_id]
        eligible = np.ones(shape.n_items, dtype=bool) if eligible is None else eligible
        eligible[anchor] = False
    if eligible is not None and int(eligible.sum()) < shape.k:
        field = "candidates" if body.get("candidates") is not None else "exclude"
        raise InvalidField(field, f"at least {shape.k} showable items after `exclude` and `anchor_item`",
                           f"{int(eligible.sum())}", "Pass more candidates or exclude fewer items.")
    return SlateRequest(user_id=user_id, experiment=experiment, context=context, k=k,
                        eligible=eligible, anchor=anchor)


@dataclass(frozen=True, slots=True)
class RewardRequest:
    """A ``POST /v1/rewards`` body, checked for types (lengths are checked against the decision).

    Attributes:
        event_id: the decision's event token, as the slate answer gave it.
        body: the original body, for per-slot checks and the digest.
    """

    event_id: str
    body: dict[str, Any]


def parse_reward_request(body: dict[str, Any]) -> RewardRequest:
    """Check the reward body's fields and the event id (outcomes are checked by :func:`outcome_arrays`)."""
    _check_keys(body, REWARD_KEYS)
    event_id = body.get("event_id")
    if not isinstance(event_id, str) or not 0 < len(event_id) <= MAX_EVENT_TOKEN or not event_id.isascii():
        raise InvalidField("event_id", "the event_id string of a POST /v1/slates answer",
                           "nothing" if "event_id" not in body else _short(event_id))
    has_clicks = body.get("clicks") is not None
    has_reward = body.get("reward") is not None
    if has_clicks == has_reward:
        raise InvalidField("clicks", "exactly one of `clicks` (per slot) or `reward`",
                           "both" if has_clicks else "neither")
    return RewardRequest(event_id=event_id, body=body)


@dataclass(frozen=True, slots=True)
class Outcome:
    """Per-slot outcome arrays of one decision, shape (k,) each, and the payload digest."""

    reward: npt.NDArray[np.float64]
    purchase: npt.NDArray[np.float64] | None
    revenue: npt.NDArray[np.float64] | None
    digest: str


def outcome_arrays(req: RewardRequest, k: int) -> Outcome:
    """Per-slot arrays for a decision that showed ``k`` items.

    ``clicks`` must be ``k`` values 0 or 1. ``reward`` is ``k`` numbers, or one number
    for the whole slate, shared equally by its ``k`` slots (each within
    ±:data:`MAX_ABS_REWARD`). ``purchase`` (0/1) and ``revenue`` (0 to
    :data:`MAX_REVENUE`) are ``k`` numbers when given.
    """
    body = req.body
    if body.get("clicks") is not None:
        reward = _number_list("clicks", body["clicks"], k)
        if not np.isin(reward, (0.0, 1.0)).all():
            raise InvalidField("clicks", "0 or 1 per slot", _short(body["clicks"]))
    elif isinstance(body["reward"], list):
        reward = _number_list("reward", body["reward"], k)
    else:
        reward = np.full(k, _float("reward", body["reward"]) / k)
    if (np.abs(reward) > MAX_ABS_REWARD).any():
        raise InvalidField("clicks" if body.get("clicks") is not None else "reward",
                           f"rewards within ±{MAX_ABS_REWARD:g} per slot", _short(body.get("reward")),
                           "Rescale the reward.")
    purchase = None if body.get("purchase") is None else _number_list("purchase", body["purchase"], k)
    if purchase is not None and not np.isin(purchase, (0.0, 1.0)).all():
        raise InvalidField("purchase", "0 or 1 per slot", _short(body["purchase"]))
    revenue = None if body.get("revenue") is None else _number_list("revenue", body["revenue"], k)
    if revenue is not None and ((revenue < 0) | (revenue > MAX_REVENUE)).any():
        raise InvalidField("revenue", f"amounts in [0, {MAX_REVENUE:g}] per slot", _short(body["revenue"]))
    canonical = json.dumps({"reward": reward.tolist(),
                            "purchase": None if purchase is None else purchase.tolist(),
                            "revenue": None if revenue is None else revenue.tolist()}, sort_keys=True)
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    return Outcome(reward, purchase, revenue, digest)
