"""The truth about a policy in a world.

Value per decision (exact where it can be enumerated) and per session (Monte
Carlo with an interval).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import stats

from simulator.errors import WorldError
from simulator.rollout import DistPolicyLike, PolicyAgent, PolicyLike, Step, rollout
from simulator.world.core import SessionState, World
from simulator.world.policies import SCORES, EpsilonGreedyPolicy, WorldPolicy

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class ValueEstimate:
    """A value with its uncertainty.

    Attributes:
        value: the value (reward units: clicks, purchases or currency).
        stderr: its standard error (0 when exact).
        ci_low, ci_high: the two-sided interval at ``confidence`` (equal to
            ``value`` when exact).
        n: number of samples behind it (states or sessions; enumerated states when exact).
        exact: True when computed from the model without sampling.
        confidence: the interval's level.
    """

    value: float
    stderr: float
    ci_low: float
    ci_high: float
    n: int
    exact: bool
    confidence: float = 0.95

    @classmethod
    def from_samples(cls, samples: Any, confidence: float = 0.95) -> ValueEstimate:
        """Mean of ``samples`` (m,) with a normal-approximation interval."""
        x = np.asarray(samples, dtype=np.float64)
        if x.size < 2:
            raise WorldError(f"a Monte Carlo value needs at least 2 samples, found {x.size}.")
        mean = float(x.mean())
        se = float(x.std(ddof=1) / np.sqrt(x.size))
        z = float(stats.norm.ppf(0.5 + confidence / 2))
        return cls(mean, se, mean - z * se, mean + z * se, int(x.size), False, confidence)

    @classmethod
    def exact_value(cls, value: float, n: int) -> ValueEstimate:
        """An exact value."""
        return cls(float(value), 0.0, float(value), float(value), int(n), True)

    def to_json(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return {"value": self.value, "stderr": self.stderr, "ci_low": self.ci_low,
                "ci_high": self.ci_high, "n": self.n, "exact": self.exact,
                "confidence": self.confidence}


@dataclass(frozen=True, slots=True)
class PolicyValue:
    """The value of a policy in a world.

    Attributes:
        first_decision: expected reward of the first decision of a fresh session
            (exact when the shopper population is finite).
        per_decision: expected reward per decision over the decisions the policy
            makes (each decision's exact conditional value, averaged over visited states).
        per_session: expected total reward of a session (exact by enumeration for a
            deterministic built-in policy in an enumerable world, else Monte Carlo).
        session_length: expected number of decisions per session (Monte Carlo).
    """

    first_decision: ValueEstimate
    per_decision: ValueEstimate
    per_session: ValueEstimate
    session_length: ValueEstimate

    def to_json(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return {"first_decision": self.first_decision.to_json(),
                "per_decision": self.per_decision.to_json(),
                "per_session": self.per_session.to_json(),
                "session_length": self.session_length.to_json()}


def decision_value(world: World, policy: WorldPolicy | PolicyLike | PolicyAgent, state: SessionState,
                   rng: np.random.Generator | None = None, n_draws: int = 200) -> tuple[FloatArray, bool]:
    """Expected reward of ``policy``'s decision in each session of ``state``.

    Exact (from the per-slot action distribution: the reward is linear in it under
    the position-based model) for built-in policies and policies with
    ``action_dist``; otherwise the mean over ``n_draws`` calls of ``select``. A
    :class:`~simulator.rollout.PolicyAgent` is its policy seeing the agent's context.

    Returns:
        ``(values (n,), exact)``.
    """
    if isinstance(policy, WorldPolicy):
        return world.expected_reward_dist(state, policy.action_dist(world, state)), True
    seen = world.observe(state)  # context, eligibility and required items in one pass
    ctx, elig, req = seen.context, seen.eligible, seen.required
    if isinstance(policy, PolicyAgent):
        ctx, policy = policy.context(world, state), policy.policy
    if isinstance(policy, DistPolicyLike):
        dist = np.asarray(policy.action_dist(ctx, eligible=elig, required=req), dtype=np.float64)
        return world.expected_reward_dist(state, dist), True
    if not isinstance(policy, PolicyLike):
        raise WorldError(f"`policy` must be a built-in logging policy or have select(context, *, "
                         f"eligible=None, required=None), found {type(policy).__name__}.")
    total = np.zeros(state.n)
    for _ in range(n_draws):
        out = policy.select(ctx, eligible=elig, required=req)
        total += world.expected_reward(state, np.asarray(out.slate, dtype=np.int64))
    return total / n_draws, False


def initial_states(world: World) -> tuple[SessionState, FloatArray] | None:
    """Every possible first state with its probability, when enumerable.

    Enumerable when shoppers have no continuous taste features: profiles x anchors.

    Returns:
        ``(state of P * n_items sessions, probabilities (P * n_items,))`` or None.
    """
    p = world.params
    if p.taste_features:
        return None
    n_p, n_i = p.profile_weight.shape[0], world.n_items
    profile = np.repeat(np.arange(n_p, dtype=np.int64), n_i)
    anchor = np.tile(np.arange(n_i, dtype=np.int64), n_p)
    probs = world.anchor_probs()
    weight = (p.profile_weight[:, None] * probs).ravel()
    n = n_p * n_i
    state = SessionState(
        profile=profile, segment=p.profile_segment[profile], shopper=p.profile_features[profile],
        price_sens=p.profile_price_sens[profile], patience=p.profile_patience[profile],
        anchor=anchor, cart=np.zeros((n, n_i), dtype=bool), cart_value=np.zeros(n),
        step=np.zeros(n, dtype=np.int64), alive=np.ones(n, dtype=bool))
    return state, weight


def first_decision_value(world: World, policy: WorldPolicy | PolicyLike | PolicyAgent, *,
                         n_states: int = 20_000, seed: int | None = 0,
                         confidence: float = 0.95) -> ValueEstimate:
    """Expected reward of the first decision of a fresh session.

    Exact (enumerating profiles x anchors) when the shopper population is finite
    and the policy's action distribution is known; otherwise averaged over
    ``n_states`` drawn first states, with an interval.
    """
    rng = np.random.default_rng(seed)
    enum = initial_states(world)
    if enum is not None:
        state, weight = enum
        keep = weight > 0
        state, weight = state.take(keep), weight[keep]
        values, exact = decision_value(world, policy, state, rng)
        if exact:
            return ValueEstimate.exact_value(float(values @ weight / weight.sum()), state.n)
    state = world.new_sessions(n_states, rng)
    values, _ = decision_value(world, policy, state, rng)
    return ValueEstimate.from_samples(values, confidence)


def policy_value(world: World, policy: WorldPolicy | PolicyLike | PolicyAgent, n_sessions: int = 10_000,
                 seed: int | None = 0, confidence: float = 0.95,
                 n_first_states: int = 20_000) -> PolicyValue:
    """The value of ``policy`` per decision and per session.

    Runs ``n_sessions`` sessions (Monte Carlo over shoppers and responses);
    each decision's value is its exact conditional expected reward when the
    policy's distribution is known, so the per-decision value has less noise
    than the realised rewards. The per-session interval is over sessions; the
    per-decision interval treats decisions as independent (sessions make them
    mildly dependent). ``n_first_states`` first states are drawn for the
    first-decision value when it cannot be enumerated.
    """
    rng = np.random.default_rng(seed)
    per_decision: list[FloatArray] = []

    lengths: list[FloatArray] = []

    def record(step: Step) -> None:
        if isinstance(policy, WorldPolicy | DistPolicyLike):
            values, _ = decision_value(world, policy, step.state)
        else:
            values = world.expected_reward(step.state, step.decision.slate)
        per_decision.append(values)
        lengths.append(step.session.astype(np.float64))

    totals = rollout(world, policy, n_sessions, rng, on_step=record)
    counts = np.bincount(np.concatenate(lengths).astype(np.int64), minlength=n_sessions)
    exact = exact_session_value(world, policy)
    return PolicyValue(
        first_decision=first_decision_value(world, policy, n_states=n_first_states, seed=seed,
                                            confidence=confidence),
        per_decision=ValueEstimate.from_samples(np.concatenate(per_decision), confidence),
        per_session=exact if exact is not None else ValueEstimate.from_samples(totals, confidence),
        session_length=ValueEstimate.from_samples(counts.astype(np.float64), confidence),
    )


def exact_session_value(world: World, policy: WorldPolicy | PolicyLike | PolicyAgent,
                        max_states: int = 1_000_000) -> ValueEstimate | None:
    """Exact expected total reward of a session, when it can be enumerated.

    Enumerable: a deterministic built-in policy (``greedy``, ``patient``,
    ``epsilon_greedy`` with ``epsilon = 0``) in a world whose first states can
    be enumerated (:func:`initial_states`). The session tree is expanded step
    by step over which slots were bought (slots are independent), abandonment
    and checkout, merging nothing; each node adds its exact expected reward.

    Returns:
        The exact value, or None when the policy or world is not enumerable or
        the tree would exceed ``max_states`` live states at a step.
    """
    if not (isinstance(policy, EpsilonGreedyPolicy) and policy.epsilon == 0.0):
        return None
    enum = initial_states(world)
    if enum is None:
        return None
    state, weight = enum
    keep = weight > 0
    state, weight = state.take(keep), weight[keep] / weight[keep].sum()
    k, price, checkout = world.k, world.params.price, world.config.checkout_prob
    patterns = np.array(list(itertools.product([False, True], repeat=k)), dtype=bool)
    total, visited = 0.0, 0
    while state.n:
        visited += state.n
        slate, value = world.best_slate_for(state, SCORES[policy.score](world, state))
        total += float(weight @ value)
        _, buy, abandon = world.slate_probs(state, slate)
        parts: list[tuple[SessionState, FloatArray]] = []
        for b in patterns:
            prob = np.prod(np.where(b, buy, 1.0 - buy), axis=1)
            cart = state.cart.copy()
            rows = np.arange(state.n)
            if b.any():
                cart[rows[:, None], slate[:, b]] = True
                anchor = slate[:, int(np.argmax(b))]
                stay = prob * (1.0 - checkout)
                spent = price[slate[:, b]].sum(axis=1)
            else:
                anchor = state.anchor
                has_cart = state.cart.any(axis=1)
                stay = prob * (1.0 - abandon) * np.where(has_cart, 1.0 - checkout, 1.0)
                spent = np.zeros(state.n)
            nxt = replace(state, cart=cart, anchor=anchor, step=state.step + 1,
                          cart_value=state.cart_value + spent)
            live = (stay > 0) & (nxt.step < world.max_steps)
            parts.append((nxt.take(live), (weight * stay)[live]))
        n_next = sum(p[0].n for p in parts)
        if n_next > max_states:
            return None
        if n_next == 0:
            break
        state = SessionState(*(np.concatenate([getattr(p[0], f) for p in parts])
                               for f in SessionState.__dataclass_fields__))
        weight = np.concatenate([p[1] for p in parts])
    return ValueEstimate.exact_value(total, visited)
