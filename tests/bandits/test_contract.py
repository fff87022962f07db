"""The contract every registered policy keeps (river-style checks run over all implementations)."""

from __future__ import annotations

import contextlib
import copy
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from bandits import (  # registers every policy
    Feedback,
    PolicyError,
    SlateDecision,
    SlatePolicy,
    registered_policies,
)
from bandits.slates import uniform_slates

# Policies registered outside bandits.policies join the contract when they import.
with contextlib.suppress(ImportError):
    import bandits.ppo  # noqa: F401

N_ITEMS, K, DIM = 7, 3, 4
NAMES = sorted(registered_policies())


def build(name: str, seed: int = 0, trained: bool = True) -> SlatePolicy:
    cls = registered_policies()[name]
    policy = cls.example(N_ITEMS, K, DIM, seed=seed)
    if trained:
        policy.update(training_feedback(cls, seed=11))
    return policy


def contexts(cls: type[SlatePolicy], n: int, seed: int) -> np.ndarray:
    return cls.example_context(np.random.default_rng(seed), n, DIM, N_ITEMS)


def training_feedback(cls: type[SlatePolicy], seed: int, n: int = 300) -> Feedback:
    rng = np.random.default_rng(seed)
    ctx = contexts(cls, n, seed)
    slate, pscore, _ = uniform_slates(rng, n, N_ITEMS, K)
    # Items with a higher index are clicked more, so learned state is far from the prior.
    reward = (rng.random((n, K)) < 0.1 + 0.1 * slate / N_ITEMS + 0.2 * (slate == 2)).astype(float)
    return Feedback(ctx, slate, reward, pscore)


def masks(n: int, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    eligible = rng.random((n, N_ITEMS)) < 0.75
    eligible[:, [0, 4, 6]] = True
    required = np.zeros((n, N_ITEMS), dtype=bool)
    required[:, 5] = True  # eligible only in some rows
    required[:, 6] = rng.random(n) < 0.5
    return eligible, required


def is_exact(policy: SlatePolicy, ctx: np.ndarray) -> bool:
    return policy.select(ctx[:1]).n_draws is None


#: Policies whose contract checks take tens of seconds (a neural network trained per check).
SLOW_POLICIES = {"ppo"}


@pytest.fixture(params=[pytest.param(n, marks=pytest.mark.slow) if n in SLOW_POLICIES else n
                        for n in NAMES])
def name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_every_policy_is_covered() -> None:
    expected = {"uniform", "popularity", "bought_together", "item_similarity", "upsell",
                "epsilon_greedy", "ucb1", "softmax", "bernoulli_ts", "linucb", "hybrid_linucb",
                "linear_ts", "logistic_ts", "ridge_epsilon_greedy"}
    assert expected <= set(NAMES)


def test_slates_are_valid(name: str) -> None:
    policy = build(name)
    cls = type(policy)
    ctx = contexts(cls, 200, seed=1)
    eligible, required = masks(200)
    for kwargs in ({}, {"eligible": eligible}, {"eligible": eligible, "required": required},
                   {"required": required}):
        d = policy.select(ctx, **kwargs)
        assert d.slate.shape == (200, K) and d.slate.dtype.kind == "i"
        assert (np.sort(d.slate, axis=1)[:, 1:] != np.sort(d.slate, axis=1)[:, :-1]).all()
        assert ((d.slate >= 0) & (d.slate < N_ITEMS)).all()
        elig = kwargs.get("eligible", np.ones((200, N_ITEMS), dtype=bool))
        assert np.take_along_axis(elig, d.slate, axis=1).all()
        if "required" in kwargs:
            allowed = required & elig
            shown = np.take_along_axis(allowed, d.slate, axis=1).any(axis=1)
            assert shown[allowed.any(axis=1)].all()
        assert ((d.pscore > 0) & (d.pscore <= 1)).all()
        assert ((d.pscore_item > 0) & (d.pscore_item <= 1)).all()


def test_inputs_are_not_mutated(name: str) -> None:
    policy = build(name)
    ctx = contexts(type(policy), 50, seed=2)
    eligible, required = masks(50)
    fb = training_feedback(type(policy), seed=5, n=50)
    before = [a.copy() for a in (ctx, eligible, required, fb.context, fb.slate, fb.reward)]
    policy.select(ctx, eligible=eligible, required=required)
    policy.action_dist(ctx, eligible=eligible, required=required)
    policy.update(fb)
    for old, new in zip(before, (ctx, eligible, required, fb.context, fb.slate, fb.reward), strict=True):
        assert np.array_equal(old, new)


def test_action_dist_is_a_distribution_per_slot(name: str) -> None:
    policy = build(name)
    ctx = contexts(type(policy), 40, seed=3)
    eligible, required = masks(40)
    dist = policy.action_dist(ctx, eligible=eligible, required=required)
    assert dist.shape == (40, N_ITEMS, K)
    assert (dist >= 0).all()
    np.testing.assert_allclose(dist.sum(axis=1), 1.0, atol=1e-9)
    assert (dist[~eligible] == 0).all()
    # An item fills at most one slot, so its probabilities over slots sum to at most one.
    assert (dist.sum(axis=2) <= 1 + 1e-9).all()


def _chi2_pvalue(observed: np.ndarray, expected_prob: np.ndarray, n: int) -> float:
    expected = expected_prob * n
    zero = expected_prob < 1e-12
    assert observed[zero].sum() == 0, "select showed an item the action distribution gives probability 0"
    obs, exp = observed[~zero], expected[~zero]
    if obs.size < 2:
        return 1.0
    # Pool cells with small expected counts so the chi-squared approximation holds.
    small = exp < 5
    if small.any() and (~small).sum() >= 1:
        obs = np.append(obs[~small], obs[small].sum())
        exp = np.append(exp[~small], exp[small].sum())
    if obs.size < 2:
        return 1.0
    return float(stats.chisquare(obs, exp * obs.sum() / exp.sum()).pvalue)


@pytest.mark.parametrize("masked", [False, True], ids=["all-items", "masked"])
def test_marginals_match_select_frequencies(name: str, masked: bool) -> None:
    policy = build(name)
    n = 2_000
    ctx = np.repeat(contexts(type(policy), 1, seed=4), n, axis=0)
    eligible, required = masks(1, seed=8)
    kwargs = {"eligible": np.repeat(eligible, n, 0), "required": np.repeat(required, n, 0)} if masked else {}
    probe = copy.deepcopy(policy)
    dist = probe.action_dist(ctx[:1], n_draws=40_000, **{k: v[:1] for k, v in kwargs.items()})[0]
    slate = policy.select(ctx, **kwargs).slate
    for slot in range(K):
        observed = np.bincount(slate[:, slot], minlength=N_ITEMS).astype(float)
        p = _chi2_pvalue(observed, dist[:, slot], n)
        assert p > 1e-4 / K, f"slot {slot}: select frequencies {observed / n} vs marginals {dist[:, slot]}"


def test_pscores_agree_with_action_dist_and_frequency(name: str) -> None:
    policy = build(name)
    n = 2_000
    ctx = np.repeat(contexts(type(policy), 1, seed=6), n, axis=0)
    eligible, required = masks(1, seed=9)
    el, rq = np.repeat(eligible, n, 0), np.repeat(required, n, 0)
    exact = is_exact(policy, ctx)
    dist = copy.deepcopy(policy).action_dist(ctx[:1], eligible=eligible, required=required,
                                             n_draws=40_000)[0]
    d = policy.select(ctx, eligible=el, required=rq)
    at_slot = dist[d.slate, np.arange(K)[None, :]]
    if exact:
        np.testing.assert_allclose(d.pscore_item, at_slot, rtol=1e-9, atol=1e-12)
    else:
        draws = d.n_draws or 1
        tol = 4 * np.sqrt(at_slot * (1 - at_slot) / draws) + 3 / draws
        assert (np.abs(d.pscore_item - at_slot) <= tol).all()
    slack = 0.0 if exact else 4 * np.sqrt(0.25 / (d.n_draws or 1))
    assert (d.pscore <= d.pscore_item.min(axis=1) + 1e-12 + slack).all()
    # The most frequent slate is shown about as often as its pscore says.
    codes, first, counts = np.unique(d.slate, axis=0, return_index=True, return_counts=True)
    top = int(np.argmax(counts))
    p = float(d.pscore[first[top]])
    freq = counts[top] / n
    assert abs(freq - p) <= 4 * np.sqrt(p * (1 - p) / n) + slack + 1e-9
    if exact:  # equal slates have equal propensities
        same = (d.slate == codes[top]).all(axis=1)
        np.testing.assert_allclose(d.pscore[same], p, rtol=1e-12)


def test_save_load_round_trip_gives_identical_future(name: str, tmp_path: Path) -> None:
    policy = build(name)
    cls = type(policy)
    ctx = contexts(cls, 30, seed=7)
    eligible, required = masks(30)
    path = policy.save(tmp_path / "policy.npz")
    loaded = SlatePolicy.load(path)
    assert type(loaded) is cls
    p1, p2 = policy.get_params(), loaded.get_params()
    assert p1.keys() == p2.keys()
    for key in p1:
        assert np.array_equal(np.asarray(p1[key]), np.asarray(p2[key])), key
    s1, s2 = policy._get_state(), loaded._get_state()
    assert s1.keys() == s2.keys()
    for key in s1:
        assert np.array_equal(s1[key], s2[key]), key
    for _ in range(2):
        a = policy.select(ctx, eligible=eligible, required=required)
        b = loaded.select(ctx, eligible=eligible, required=required)
        assert np.array_equal(a.slate, b.slate)
        assert np.array_equal(a.pscore, b.pscore)
        assert np.array_equal(a.pscore_item, b.pscore_item)
        fb = training_feedback(cls, seed=21, n=30)
        policy.update(fb)
        loaded.update(fb)


def test_same_seed_gives_same_slates(name: str) -> None:
    a, b = build(name, seed=5), build(name, seed=5)
    ctx = contexts(type(a), 100, seed=8)
    da, db = a.select(ctx), b.select(ctx)
    assert np.array_equal(da.slate, db.slate)
    assert np.array_equal(da.pscore, db.pscore)
    np.testing.assert_array_equal(a.action_dist(ctx[:5]), b.action_dist(ctx[:5]))


def test_clone_and_reset_forget_learning(name: str) -> None:
    trained = build(name, seed=2)
    fresh = build(name, seed=2, trained=False)
    ctx = contexts(type(trained), 20, seed=9)
    clone = trained.clone()
    assert type(clone) is type(trained)
    np.testing.assert_array_equal(clone.action_dist(ctx), fresh.action_dist(ctx))
    trained.reset()
    again = build(name, seed=2, trained=False)
    assert np.array_equal(trained.select(ctx).slate, again.select(ctx).slate)


#: Policies whose update is an online approximation, so one-event and batch learning differ
#: slightly: the Laplace approximation of logistic TS is taken once per update.
APPROXIMATE_ONLINE = {"logistic_ts": 0.25}


def test_one_event_and_batch_learning_agree(name: str) -> None:
    """Learning a batch at once or one event at a time gives the same state and decisions."""
    cls = registered_policies()[name]
    tol = APPROXIMATE_ONLINE.get(name)
    fb = training_feedback(cls, seed=13, n=60)
    batch, online = cls.example(N_ITEMS, K, DIM, seed=1), cls.example(N_ITEMS, K, DIM, seed=1)
    batch.update(fb)
    for i in range(fb.n_rounds):
        online.update(Feedback(fb.context[i:i + 1], fb.slate[i:i + 1], fb.reward[i:i + 1]))
    for key, value in batch._get_state().items():
        if tol is not None and key != "mean":
            continue  # the curvature is taken at different points; compare the estimates only
        np.testing.assert_allclose(online._get_state()[key], value, rtol=tol or 1e-6, atol=tol or 1e-8,
                                   err_msg=key)
    if tol is not None:
        return
    ctx = contexts(cls, 50, seed=10)
    np.testing.assert_allclose(online.action_dist(ctx[:5]), batch.action_dist(ctx[:5]), atol=1e-9)


BAD_CALLS = [
    pytest.param("select", {"context": np.zeros(DIM)}, "shape \\(n, d\\)", id="context-1d"),
    pytest.param("select", {"context": np.zeros((2, DIM + 1))}, "d = 4 columns", id="context-width"),
    pytest.param("select", {"context": np.full((2, DIM), np.nan)}, "NaN", id="context-nan"),
    pytest.param("select", {"context": np.array([["a"] * DIM])}, "numeric", id="context-text"),
    pytest.param("select", {"eligible": np.ones((2, N_ITEMS))}, "boolean mask", id="eligible-dtype"),
    pytest.param("select", {"eligible": np.ones((2, 3), dtype=bool)}, "shape \\(2, 7\\)", id="eligible-shape"),
    pytest.param("select", {"eligible": np.eye(2, N_ITEMS, dtype=bool)}, "a slate needs k = 3",
                 id="too-few-eligible"),
    pytest.param("select", {"required": np.ones(3, dtype=bool)}, "`required` must have shape",
                 id="required-shape"),
    pytest.param("action_dist", {"eligible": np.ones((2, N_ITEMS), dtype=int)}, "boolean mask",
                 id="dist-eligible-dtype"),
    pytest.param("update", {"slate": np.full((2, K), N_ITEMS)}, "outside \\[0, 6\\]", id="slate-range"),
    pytest.param("update", {"slate": np.zeros((2, 2), dtype=int)}, "must have shape \\(n, 3\\)",
                 id="slate-width"),
    pytest.param("update", {"reward": np.full((2, K), np.inf)}, "NaN or infinite", id="reward-inf"),
    pytest.param("update", {"reward": np.zeros((2, 1))}, "shape of `feedback.slate`", id="reward-shape"),
    pytest.param("update", {"context": np.zeros((3, DIM))}, "`feedback.context` must be numeric with shape \\(2, 4\\)", id="feedback-rows"),
]


@pytest.mark.parametrize(("verb", "change", "message"), BAD_CALLS)
def test_bad_calls_raise_clear_errors(name: str, verb: str, change: dict, message: str) -> None:
    policy = build(name, trained=False)
    ctx = contexts(type(policy), 2, seed=12)
    if verb == "update":
        fb = {"context": ctx, "slate": np.tile(np.arange(K), (2, 1)), "reward": np.zeros((2, K))}
        fb.update(change)
        with pytest.raises(PolicyError, match=message):
            policy.update(Feedback(**fb))
        return
    args = {"context": ctx, **change}
    context = args.pop("context")
    with pytest.raises(PolicyError, match=message):
        getattr(policy, verb)(context, **args)


def test_one_event_api_matches_the_batch_api(name: str) -> None:
    """select_one/update_one give exactly what select/update give for a batch of one."""
    a, b = build(name, seed=4), build(name, seed=4)
    cls = type(a)
    ctx = contexts(cls, 12, seed=14)
    fb = training_feedback(cls, seed=15, n=12)
    for i in range(12):
        da, db = a.select(ctx[i:i + 1]), b.select_one(ctx[i])
        assert np.array_equal(da.slate, db.slate)
        assert np.array_equal(da.pscore, db.pscore) and np.array_equal(da.pscore_item, db.pscore_item)
        a.update(Feedback(fb.context[i:i + 1], fb.slate[i:i + 1], fb.reward[i:i + 1]))
        b.update_one(fb.context[i], fb.slate[i], fb.reward[i])
    for key, value in a._get_state().items():
        np.testing.assert_array_equal(b._get_state()[key], value, err_msg=key)
    with pytest.raises(PolicyError, match="select_one must have shape"):
        b.select_one(ctx[:2])
    with pytest.raises(PolicyError, match="update_one takes context"):
        b.update_one(ctx[:1], fb.slate[0], fb.reward[0])


@pytest.mark.parametrize("verb", SlatePolicy.FINAL_VERBS)
def test_public_verbs_are_final(verb: str) -> None:
    """A subclass that overrides a public verb is refused when it is defined."""
    with pytest.raises(TypeError, match=f"overrides SlatePolicy.{verb}, which is final"):
        type("Overrider", (registered_policies()["uniform"],), {verb: lambda self, *a, **k: None})


class _Broken(SlatePolicy):
    """Returns whatever slate it is told to, so the shared decision check can be exercised."""

    slate: np.ndarray = np.zeros((1, 2), dtype=np.int64)

    def _select(self, context: np.ndarray, eligible: np.ndarray | None,
                required: np.ndarray | None) -> SlateDecision:
        n = context.shape[0]
        return SlateDecision(np.repeat(self.slate, n, axis=0), np.ones(n), np.ones((n, self.k)))

    def _action_dist(self, context: np.ndarray, eligible: np.ndarray | None,
                     required: np.ndarray | None, n_draws: int | None) -> np.ndarray:
        return np.zeros((context.shape[0], self.n_items, self.k))

    def _update(self, feedback: Feedback) -> None:
        return None


@pytest.mark.parametrize(("slate", "kwargs", "message"), [
    pytest.param([0, 1], {}, None, id="valid"),
    pytest.param([0, 5], {}, "outside the catalog", id="range"),
    pytest.param([-1, 1], {}, "outside the catalog", id="negative"),
    pytest.param([2, 2], {}, "repeated item", id="repeated"),
    pytest.param([0, 1], {"eligible": np.array([True, False, True, True, True])}, "ineligible",
                 id="ineligible"),
    pytest.param([0, 1], {"required": np.array([False, False, True, False, False])}, "without a required",
                 id="required"),
    pytest.param([0, 1], {"eligible": np.array([True, True, False, True, True]),
                          "required": np.array([False, False, True, False, False])}, None,
                 id="required-but-ineligible"),
])
def test_decisions_are_checked_in_one_place(slate: list[int], kwargs: dict, message: str | None) -> None:
    """select (any batch size) and select_one run the same check on what a policy returns."""
    policy = _Broken(n_items=5, k=2)
    policy.slate = np.array([slate], dtype=np.int64)
    calls = [lambda: policy.select(np.zeros((3, 1)), **kwargs), lambda: policy.select(np.zeros((1, 1)), **kwargs)]
    if not kwargs:
        calls.append(lambda: policy.select_one(np.zeros(1)))
    for call in calls:
        if message is None:
            assert call().slate.shape[1] == 2
        else:
            with pytest.raises(PolicyError, match=f"_Broken returned .*{message}"):
                call()
