"""The policy interface every slatewise policy implements.

Shapes are batch-first: ``n`` contexts of dimension ``d``, slates of ``k``
distinct item indices into a catalog of ``n_items`` items.

A policy is a small class with two verbs:

* :meth:`SlatePolicy.select` — choose slates for ``(n, d)`` contexts and return
  them with their propensities (a :class:`SlateDecision`);
* :meth:`SlatePolicy.update` — learn from a batch of :class:`Feedback`.

and one for off-policy evaluation, :meth:`SlatePolicy.action_dist`: the
probability of each item at each slot, shape ``(n, n_items, k)``. The public
methods check the contract and call the private ``_select``, ``_action_dist``
and ``_update`` that subclasses write. State is saved as arrays plus JSON in a
single ``.npz`` file, loaded with ``allow_pickle=False``.
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeVar, final

import numpy as np
import numpy.typing as npt
from numba import njit

from simulator.errors import PolicyError
from simulator.logs import SlateLog

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

POLICY_FORMAT_VERSION = 1
_REGISTRY: dict[str, type[SlatePolicy]] = {}
P = TypeVar("P", bound="type[SlatePolicy]")


def register_policy(name: str) -> Callable[[P], P]:
    """Class decorator: make a policy loadable and constructible by ``name``."""

    def wrap(cls: P) -> P:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"policy name {name!r} is already registered to {_REGISTRY[name]}")
        _REGISTRY[name] = cls
        cls.policy_name = name
        return cls

    return wrap


#: Policies registered by a module that ``import bandits`` does not load (torch, ...), by name:
#: :func:`make_policy` (and so :meth:`SlatePolicy.load`) imports the module on first use.
LAZY_POLICIES = {"ppo": "bandits.ppo", "offline_pl": "bandits.offline.policy"}


def ensure_registered(name: str) -> bool:
    """Import the module of a lazily registered policy ``name``; True when ``name`` is then known."""
    if name not in _REGISTRY and name in LAZY_POLICIES:
        importlib.import_module(LAZY_POLICIES[name])
    return name in _REGISTRY


def registered_policies() -> dict[str, type[SlatePolicy]]:
    """Every registered policy class by name (a copy)."""
    return dict(_REGISTRY)


def make_policy(name: str, **params: Any) -> SlatePolicy:
    """Construct the registered policy ``name`` with ``params`` (lazily registered ones included)."""
    if not ensure_registered(name):
        known = sorted(set(_REGISTRY) | set(LAZY_POLICIES))
        raise PolicyError(f"unknown policy {name!r}; choose one of {known}")
    return _REGISTRY[name](**params)


@dataclass(frozen=True, slots=True)
class SlateDecision:
    """Slates chosen for a batch of contexts, with their propensities.

    Attributes:
        slate: shape (n, k), distinct item indices in position order.
        pscore: shape (n,), probability of the whole slate under the policy.
        pscore_item: shape (n, k), marginal probability of each item at its slot.
        n_draws: ``None`` when the propensities are exact, else the number of
            Monte Carlo draws used to estimate them.
    """

    slate: IntArray
    pscore: FloatArray
    pscore_item: FloatArray
    n_draws: int | None = None


@dataclass(frozen=True, slots=True)
class Feedback:
    """What happened after slates were shown.

    Attributes:
        context: shape (n, d).
        slate: shape (n, k), the shown item indices.
        reward: shape (n, k), per-slot reward (click, purchase or revenue).
        pscore: shape (n,) logging propensity of each slate, or None.
    """

    context: FloatArray
    slate: IntArray
    reward: FloatArray
    pscore: FloatArray | None = None

    @classmethod
    def from_log(cls, log: SlateLog) -> Feedback:
        """Feedback from every row of a log (position logs use ``k = 1``)."""
        return cls(
            context=np.asarray(log.context, dtype=np.float64),
            slate=np.asarray(log.slate),
            reward=np.asarray(log.reward),
            pscore=np.asarray(log.pscore),
        )

    @property
    def n_rounds(self) -> int:
        """Number of decisions in the batch."""
        return int(self.slate.shape[0])


def _as_mask(name: str, mask: Any, n: int, n_items: int) -> BoolArray | None:
    if mask is None:
        return None
    arr = np.asarray(mask)
    if arr.dtype != np.bool_:
        raise PolicyError(f"`{name}` must be a boolean mask, found dtype {arr.dtype}.")
    if arr.shape == (n_items,):
        arr = np.broadcast_to(arr, (n, n_items))
    if arr.shape != (n, n_items):
        raise PolicyError(f"`{name}` must have shape ({n}, {n_items}) or ({n_items},), "
                          f"found {arr.shape}.")
    return arr


class SlatePolicy(ABC):
    """Base class of every policy: choose slates, give their distribution, learn.

    Subclasses store their constructor arguments as attributes of the same
    name (the configuration) and keep learned state private; they implement
    ``_select``, ``_action_dist``, ``_update``, and ``_get_state`` /
    ``_set_state`` for the arrays of their learned state.

    Args:
        n_items: catalog size.
        k: slate length (distinct items per slate).
        dim_context: context dimension ``d`` (0 for context-free policies, which
            ignore the context they are given).
        seed: seed of the policy's own ``numpy.random.Generator``.
    """

    policy_name: ClassVar[str] = "base"

    def __init__(self, n_items: int, k: int, dim_context: int = 0, *,
                 seed: int | None = None) -> None:
        if not isinstance(n_items, int | np.integer) or n_items < 1:
            raise PolicyError(f"`n_items` must be a positive integer, found {n_items!r}.")
        if not isinstance(k, int | np.integer) or not 1 <= k <= n_items:
            raise PolicyError(f"`k` must be an integer in [1, n_items={n_items}], found {k!r}.")
        if not isinstance(dim_context, int | np.integer) or dim_context < 0:
            raise PolicyError(f"`dim_context` must be an integer >= 0, found {dim_context!r}.")
        self.n_items = int(n_items)
        self.k = int(k)
        self.dim_context = int(dim_context)
        self.seed = seed
        self._rng = np.random.default_rng(seed)

    #: The public verbs: final, so the contract is checked in one place for every policy.
    #: A policy customises them through the private hooks (``_select``, ``_select_one_hook``,
    #: ``_action_dist``, ``_update``, ``_update_one_hook``), never by overriding them.
    FINAL_VERBS: ClassVar[tuple[str, ...]] = ("select", "select_one", "action_dist", "update",
                                              "update_one")

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for verb in SlatePolicy.FINAL_VERBS:
            if verb in vars(cls):
                raise TypeError(
                    f"{cls.__name__} overrides SlatePolicy.{verb}, which is final: the public verbs "
                    "check the contract for every policy. Implement the private hook instead "
                    "(_select, _select_one_hook, _action_dist, _update or _update_one_hook).")

    # ------------------------------------------------------------ public verbs
    @final
    def select(self, context: Any, *, eligible: Any = None, required: Any = None) -> SlateDecision:
        """Choose a slate for each context.

        Args:
            context: shape (n, d).
            eligible: shape (n, n_items) or (n_items,) bool, items allowed in the
                slate (default: all). At least ``k`` must be eligible per row.
            required: shape (n, n_items) or (n_items,) bool; each slate holds at
                least one of these items when any is eligible (e.g. cross-sells).

        Returns:
            The slates, shape (n, k), with ``pscore`` (n,) and ``pscore_item`` (n, k).
        """
        ctx, elig, req = self._check_inputs(context, eligible, required)
        decision = self._select(ctx, elig, req)
        self._check_decision(decision, ctx.shape[0], elig, req)
        return decision

    @final
    def select_one(self, context: Any) -> SlateDecision:
        """Choose a slate for one context (d,), no masks: what ``select(context[None, :])`` gives.

        The one-event loop of online learning (decide, then learn from it). The
        context and the decision are checked as :meth:`select` checks them; the
        policy's ``_select_one_hook`` may take a faster path to the same decision.
        """
        ctx = np.asarray(context)
        if ctx.ndim != 1:
            raise PolicyError(f"`context` of select_one must have shape (d,), found {ctx.shape}; "
                              "for a batch use select().")
        x = self._check_context(ctx[None, :])[0]
        decision = self._select_one_hook(x)
        self._check_decision(decision, 1, None, None)
        return decision

    @final
    def action_dist(self, context: Any, *, eligible: Any = None, required: Any = None,
                    n_draws: int | None = None) -> FloatArray:
        """Probability of each item at each slot, shape (n, n_items, k).

        Each slot's column sums to one over items. Exact where the policy allows;
        Monte Carlo policies use ``n_draws`` draws (their default when None).
        """
        ctx, elig, req = self._check_inputs(context, eligible, required)
        dist = self._action_dist(ctx, elig, req, n_draws)
        expected = (ctx.shape[0], self.n_items, self.k)
        if dist.shape != expected:
            raise PolicyError(f"{type(self).__name__}._action_dist returned shape {dist.shape}, "
                              f"expected {expected}.")
        return dist

    @final
    def update(self, feedback: Feedback) -> None:
        """Learn from a batch of feedback (one event is a batch of one).

        ``feedback.slate`` has shape (n, k), or (n, 1) for logs with one row per
        position; ``feedback.reward`` has the same shape; ``feedback.context``
        has shape (n, d).
        """
        ctx, slate, reward = self._check_feedback(feedback.context, feedback.slate, feedback.reward)
        self._update(Feedback(ctx, slate, reward, feedback.pscore))

    @final
    def update_one(self, context: Any, slate: Any, reward: Any) -> None:
        """Learn from one event: context (d,), slate (k,) item indices, reward (k,).

        Checked as :meth:`update` checks a batch of one; the policy's
        ``_update_one_hook`` may take a faster path to the same state.
        """
        ctx, sl, rw = np.asarray(context), np.asarray(slate), np.asarray(reward)
        if ctx.ndim != 1 or sl.ndim != 1 or rw.ndim != 1:
            raise PolicyError(f"update_one takes context (d,), slate (k,) and reward (k,), found shapes "
                              f"{ctx.shape}, {sl.shape} and {rw.shape}; for a batch use update().")
        x, items, r = self._check_feedback(ctx[None, :], sl[None, :], rw[None, :])
        self._update_one_hook(x[0], items[0], r[0])

    # ------------------------------------------------------------ to implement
    @abstractmethod
    def _select(self, context: FloatArray, eligible: BoolArray | None,
                required: BoolArray | None) -> SlateDecision:
        """Choose slates for validated inputs."""

    @abstractmethod
    def _action_dist(self, context: FloatArray, eligible: BoolArray | None,
                     required: BoolArray | None, n_draws: int | None) -> FloatArray:
        """Per-slot item distribution for validated inputs, shape (n, n_items, k)."""

    @abstractmethod
    def _update(self, feedback: Feedback) -> None:
        """Learn from validated feedback."""

    def _select_one_hook(self, context: FloatArray) -> SlateDecision:
        """The decision for one checked context (d,) float64, no masks, as a batch of one (1, k).

        Must return what ``_select(context[None, :], None, None)`` returns (the
        default); a policy overrides it only with a faster path to the same decision.
        """
        return self._select(context[None, :], None, None)

    def _update_one_hook(self, context: FloatArray, slate: IntArray, reward: FloatArray) -> None:
        """Learn one checked event: context (d,) float64, slate (k_fb,) int64, reward (k_fb,) float64.

        Must leave the state ``_update`` leaves for the batch of one (the default);
        a policy overrides it only with a faster path to the same state.
        """
        self._update(Feedback(context[None, :], slate[None, :], reward[None, :]))

    def _get_state(self) -> dict[str, np.ndarray[Any, Any]]:
        """Learned state as named arrays (empty for stateless policies)."""
        return {}

    def _set_state(self, state: dict[str, np.ndarray[Any, Any]]) -> None:
        """Restore what :meth:`_get_state` returned."""
        if state:
            raise PolicyError(f"{type(self).__name__} has no learned state, found {sorted(state)}.")

    # ------------------------------------------------------------ examples
    @classmethod
    def example(cls, n_items: int, k: int, dim_context: int, *, seed: int | None = None) -> SlatePolicy:
        """A small instance of this policy, as the shared contract suite builds it.

        The default passes only the common arguments; a policy whose constructor
        needs more (item features, prices) overrides this with typical values.
        """
        return cls(n_items=n_items, k=k, dim_context=dim_context, seed=seed)

    @classmethod
    def example_context(cls, rng: np.random.Generator, n: int, dim_context: int,
                        n_items: int) -> FloatArray:
        """Contexts (n, dim_context) this policy accepts (default: standard normal)."""
        return rng.standard_normal((n, dim_context))

    # ------------------------------------------------------------ configuration
    def get_params(self) -> dict[str, Any]:
        """Constructor arguments, read back from attributes of the same name."""
        # The most derived ``__init__`` names the configuration; parents' parameters
        # count only when it forwards ``**kwargs`` to them.
        params: dict[str, Any] = {}
        for cls in type(self).__mro__:
            if cls is object or "__init__" not in vars(cls):
                continue
            forwards = False
            for name, p in inspect.signature(cls.__init__).parameters.items():  # type: ignore[misc]
                if p.kind == p.VAR_KEYWORD:
                    forwards = True
                if name == "self" or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                    continue
                params.setdefault(name, getattr(self, name))
            if not forwards:
                break
        return params

    def clone(self) -> SlatePolicy:
        """A fresh, untrained policy with the same configuration."""
        return type(self)(**self.get_params())

    def reset(self) -> None:
        """Forget what was learned and reseed, as if just constructed."""
        fresh = self.clone()
        self.__dict__.update(fresh.__dict__)

    # ------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike[str]) -> Path:
        """Save configuration, learned state and RNG state to one ``.npz`` file, atomically."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        state = self._get_state()
        bad = [key for key in state if key.startswith("__")]
        if bad:
            raise PolicyError(f"state keys may not start with '__': {bad}")
        meta = {
            "format_version": POLICY_FORMAT_VERSION,
            "policy": self.policy_name,
            "params": _jsonable(self.get_params()),
            "rng_state": self._rng.bit_generator.state,
        }
        arrays = dict(state)
        arrays["__meta__"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                np.savez(handle, allow_pickle=False, **arrays)
            os.replace(tmp_name, target)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
        return target

    @staticmethod
    def load(path: str | os.PathLike[str]) -> SlatePolicy:
        """Load a policy saved by :meth:`save` (never unpickles anything)."""
        source = Path(path)
        try:
            with np.load(source, allow_pickle=False) as data:
                arrays = {key: data[key] for key in data.files}
        except (OSError, ValueError) as err:
            raise PolicyError(f"{source} is not a saved slatewise policy: {err}") from err
        if "__meta__" not in arrays:
            raise PolicyError(f"{source} is not a saved slatewise policy (no metadata).")
        meta = json.loads(arrays.pop("__meta__").tobytes().decode())
        if meta.get("format_version") != POLICY_FORMAT_VERSION:
            raise PolicyError(f"{source} has policy format version {meta.get('format_version')}; "
                              f"this slatewise reads version {POLICY_FORMAT_VERSION}.")
        policy = make_policy(meta["policy"], **meta["params"])
        policy._set_state(arrays)
        policy._rng.bit_generator.state = meta["rng_state"]
        return policy

    # ------------------------------------------------------------ checks
    def _check_context(self, ctx: npt.NDArray[Any]) -> FloatArray:
        """Contexts (n, d) as float64, or a PolicyError naming what is wrong."""
        if ctx.dtype.kind not in "fiub":
            raise PolicyError(f"`context` must be numeric, found dtype {ctx.dtype}.")
        if ctx.ndim != 2:
            raise PolicyError(f"`context` must have shape (n, d), found {ctx.shape}; "
                              "for one context pass context[None, :].")
        if self.dim_context and ctx.shape[1] != self.dim_context:
            raise PolicyError(f"`context` must have d = {self.dim_context} columns, "
                              f"found {ctx.shape[1]}.")
        out: FloatArray = ctx.astype(np.float64, copy=False)
        if not _all_finite(out):
            row = int(np.flatnonzero(~np.isfinite(out).all(axis=1))[0])
            raise PolicyError(f"`context` holds NaN or infinite values (row {row}).")
        return out

    def _check_inputs(self, context: Any, eligible: Any,
                      required: Any) -> tuple[FloatArray, BoolArray | None, BoolArray | None]:
        """Contexts (n, d) and masks (n, n_items) as the hooks receive them."""
        ctx = self._check_context(np.asarray(context))
        n = ctx.shape[0]
        elig = _as_mask("eligible", eligible, n, self.n_items)
        req = _as_mask("required", required, n, self.n_items)
        if elig is not None:
            short = elig.sum(axis=1) < self.k
            if short.any():
                row = int(np.flatnonzero(short)[0])
                raise PolicyError(f"`eligible` allows {int(elig[row].sum())} items at row {row}; "
                                  f"a slate needs k = {self.k}.")
        return ctx, elig, req

    def _check_feedback(self, context: Any, slate: Any,
                        reward: Any) -> tuple[FloatArray, IntArray, FloatArray]:
        """Feedback arrays (n, d), (n, k_fb), (n, k_fb) as float64/int64/float64, or a PolicyError."""
        slate = np.asarray(slate)
        reward = np.asarray(reward)
        ctx = np.asarray(context)
        if slate.dtype.kind not in "iu":
            raise PolicyError(f"`feedback.slate` must hold integer item indices, found dtype {slate.dtype}.")
        if slate.ndim != 2 or slate.shape[1] not in (self.k, 1):
            raise PolicyError(f"`feedback.slate` must have shape (n, {self.k}) or (n, 1), "
                              f"found {slate.shape}.")
        n = slate.shape[0]
        if reward.dtype.kind not in "fiub" or reward.shape != slate.shape:
            raise PolicyError(f"`feedback.reward` must be numeric with the shape of `feedback.slate` "
                              f"{slate.shape}, found {reward.dtype} {reward.shape}.")
        if ctx.dtype.kind not in "fiub" or ctx.ndim != 2 or ctx.shape[0] != n or (
                self.dim_context and ctx.shape[1] != self.dim_context):
            width = self.dim_context or "d"
            raise PolicyError(f"`feedback.context` must be numeric with shape ({n}, {width}), "
                              f"found {ctx.dtype} {ctx.shape}.")
        items: IntArray = slate.astype(np.int64, copy=False)
        if not _all_in_range(items, self.n_items):
            raise PolicyError(f"`feedback.slate` holds items outside [0, {self.n_items - 1}]; "
                              "map item ids to catalog indices first.")
        r: FloatArray = reward.astype(np.float64, copy=False)
        x: FloatArray = ctx.astype(np.float64, copy=False)
        if not _all_finite(r):
            raise PolicyError("`feedback.reward` holds NaN or infinite values.")
        if not _all_finite(x):
            raise PolicyError("`feedback.context` holds NaN or infinite values.")
        return x, items, r

    def _check_decision(self, decision: SlateDecision, n: int, eligible: BoolArray | None,
                        required: BoolArray | None) -> None:
        """Slates (n, k) of distinct valid items and propensities of the right shapes, for any ``n``."""
        slate = decision.slate
        name = type(self).__name__
        if slate.shape != (n, self.k) or slate.dtype.kind != "i":
            raise PolicyError(f"{name} returned slates of {slate.dtype} shape {slate.shape}, "
                              f"expected integers of shape {(n, self.k)}.")
        if decision.pscore.shape != (n,) or decision.pscore_item.shape != (n, self.k):
            raise PolicyError(f"{name} returned propensities of shapes {decision.pscore.shape} "
                              f"and {decision.pscore_item.shape}, expected ({n},) and "
                              f"({n}, {self.k}).")
        fault = _slate_fault(slate.astype(np.int64, copy=False), self.n_items, eligible, required)
        if fault:
            raise PolicyError(f"{name} returned {_SLATE_FAULTS[fault]}.")


def _jsonable(value: Any) -> Any:
    """Constructor arguments as plain JSON (numpy scalars and arrays to Python)."""
    if isinstance(value, dict):
        return {str(key): _jsonable(v) for key, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


# ---------------------------------------------------------------------------- compiled checks
# One pass over the arrays in compiled code: the checks cost about a microsecond for one
# event and stay linear for a batch (compiled on first use, cached on disk).
_SLATE_FAULTS = {1: "an item index outside the catalog", 2: "a slate with a repeated item",
                 3: "an ineligible item", 4: "a slate without a required item"}


@njit(cache=True)
def _all_finite(x: npt.NDArray[np.float64]) -> bool:  # pragma: no cover - compiled
    """True when every entry of ``x`` (any shape) is finite."""
    for v in x.flat:  # noqa: SIM110 - numba compiles the loop, not a generator
        if not np.isfinite(v):
            return False
    return True


@njit(cache=True)
def _all_in_range(items: IntArray, n_items: int) -> bool:  # pragma: no cover - compiled
    """True when every entry of ``items`` (any shape) is in ``[0, n_items)``."""
    for v in items.flat:  # noqa: SIM110 - numba compiles the loop, not a generator
        if v < 0 or v >= n_items:
            return False
    return True


@njit(cache=True)
def _slate_fault(slate: IntArray, n_items: int, eligible: BoolArray | None,
                 required: BoolArray | None) -> int:  # pragma: no cover - compiled
    """0 when every row of ``slate`` (n, k) is valid, else the key of the first fault in ``_SLATE_FAULTS``."""
    n, k = slate.shape
    for r in range(n):
        for j in range(k):
            item = slate[r, j]
            if item < 0 or item >= n_items:
                return 1
            for jj in range(j):
                if slate[r, jj] == item:
                    return 2
            if eligible is not None and not eligible[r, item]:
                return 3
        if required is not None:
            wanted = False
            for i in range(n_items):
                if required[r, i] and (eligible is None or eligible[r, i]):
                    wanted = True
                    break
            if wanted:
                hit = False
                for j in range(k):
                    if required[r, slate[r, j]]:
                        hit = True
                        break
                if not hit:
                    return 4
    return 0
