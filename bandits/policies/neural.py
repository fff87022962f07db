"""Neural-linear Thompson sampling (Riquelme, Tucker and Snoek 2018, "Deep Bayesian Bandits Showdown").

A small multilayer perceptron (ReLU layers of widths ``hidden``) maps the
context ``x`` (d,) to a representation ``z = [h(x), 1]`` of dimension
``p = hidden[-1] + 1``. The last layer is a Bayesian linear regression per
item on ``z``: item ``i``'s reward is ``z . theta_i`` plus Gaussian noise of
variance ``noise_var``, with prior ``theta_i ~ N(0, prior_var I)``. Its
posterior is ``N(A_i^{-1} b_i, noise_var A_i^{-1})`` with
``A_i = (noise_var / prior_var) I + sum z z^T`` and ``b_i = sum r z``: the ridge
statistics of :class:`~bandits.policies.ridge.RidgeArms` on ``z`` with penalty
``noise_var / prior_var``. For one context the sampled reward of item ``i`` is
``N(z . theta_i, noise_var z^T A_i^{-1} z)``; slates are the top-k of one such
draw per item (the best item in the most examined slot), drawn and given
propensities by the same machinery as
:class:`~bandits.policies.linear_ts.LinearTS` (quadrature for ``k = 1``, else
Monte Carlo from ``n_draws`` draws). The noise variance is a known parameter;
the paper's inverse-gamma posterior on it is not modelled, so the draws are
Gaussian and their propensities come from the one Gaussian machinery.

The network reads the context alone and has one output head per item, as in the
paper: the policy interface gives contexts and item indices, not item features
(policies are built from ``n_items``, ``k`` and ``d`` alone), so a shared
(context, item features) network would need an input not every caller has.
The heads exist to train the representation (squared error of the shown item's
head); scores and exploration come from the Bayesian last layer only.

Learning cadence: every update adds its observations to the posterior
statistics at once (exact sufficient statistics on the current ``z``) and to a
bounded replay buffer of the last ``buffer_capacity`` observations (one per shown
slot; plain arrays, oldest overwritten first). After every ``retrain_every``-th
event (feedback row; a batch is split at those boundaries, so one batch and its
events one at a time give the same state), the network is trained for
``epochs`` passes of shuffled minibatches over the buffer (Adam, warm-started
from the current weights), and the posterior statistics are recomputed from the
buffer with the new representation; observations older than the buffer then
leave the posterior. With an examination model a reward at slot ``j`` is learned
as ``examination[j]`` times the prediction, in the network and in the regression.

Randomness: Thompson draws use the policy's numpy generator; initial weights
and minibatch order use a ``torch.Generator`` seeded from the same seed; both
states are saved. Torch computes in float64 on the CPU and the process's thread
settings are left as they are. torch is imported when a policy is constructed,
not by ``import bandits``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from bandits.policies.base import (
    DEFAULT_N_DRAWS,
    SampledScorePolicy,
    check_int,
    check_number,
    expect_state,
    slot_weights,
)
from bandits.policies.linear import check_dim_context, ridge_observations
from bandits.policies.linear_ts import normal_quadrature, normal_sampler
from bandits.policies.ridge import RidgeArms
from bandits.policy import BoolArray, Feedback, FloatArray, IntArray, register_policy
from simulator.errors import PolicyError

if TYPE_CHECKING:
    import torch

#: Keys of the posterior statistics in the saved state (those of :class:`RidgeArms`).
_RIDGE_KEYS = ("A", "A_inv", "b", "theta")


def check_hidden(hidden: Any) -> tuple[int, ...]:
    """Hidden layer widths as a non-empty tuple of integers >= 1, or a PolicyError."""
    ok = (isinstance(hidden, Sequence) and not isinstance(hidden, str) and len(hidden) > 0
          and all(isinstance(h, int | np.integer) and not isinstance(h, bool) and h >= 1 for h in hidden))
    if not ok:
        raise PolicyError(f"`hidden` must be a non-empty sequence of layer widths (integers >= 1), "
                          f"e.g. (32, 32), found {hidden!r}.")
    return tuple(int(h) for h in hidden)


def _torch_seed(seed: int | None) -> int:
    """A 63-bit torch seed derived from the policy's seed (fresh entropy for None)."""
    return int(np.random.SeedSequence(seed).generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


def _as_tensor(x: FloatArray) -> torch.Tensor:
    """A float64 tensor sharing memory with a C-contiguous writable copy of ``x`` when one is needed."""
    import torch

    return torch.from_numpy(np.require(x, dtype=np.float64, requirements=["C", "W"]))


@register_policy("neural_linear_ts")
class NeuralLinearTS(SampledScorePolicy):
    """Neural-linear Thompson sampling: a Bayesian linear last layer per item on an MLP's representation.

    Args:
        n_items: catalog size.
        k: slate length.
        dim_context: context dimension ``d`` (>= 1).
        hidden: widths of the ReLU hidden layers (>= 1 each); the last is the representation's.
        learning_rate: Adam step size of the network (> 0).
        epochs: passes over the replay buffer per retraining (>= 1).
        batch_size: observations per minibatch (>= 1).
        retrain_every: events between retrainings of the network (>= 1).
        buffer_capacity: observations (shown slots) kept in the replay buffer (>= 1).
        prior_var: prior variance of each last-layer weight (> 0).
        noise_var: reward noise variance (> 0); the posterior covariance scales with it.
        n_draws: Monte Carlo draws for propensities.
        examination: shape (k,), examination probability of each slot, or None.
        seed: seed of the policy's random generators (numpy for draws, torch for the network).
    """

    def __init__(self, n_items: int, k: int, dim_context: int, *, hidden: Sequence[int] = (32, 32),
                 learning_rate: float = 3e-3, epochs: int = 10, batch_size: int = 64,
                 retrain_every: int = 500, buffer_capacity: int = 5_000, prior_var: float = 1.0,
                 noise_var: float = 0.25, n_draws: int = DEFAULT_N_DRAWS,
                 examination: Sequence[float] | None = None, seed: int | None = None) -> None:
        super().__init__(n_items, k, dim_context, n_draws=n_draws, examination=examination, seed=seed)
        check_dim_context(self.dim_context, "NeuralLinearTS")
        self.hidden = check_hidden(hidden)
        self.learning_rate = check_number("learning_rate", learning_rate, low=0.0, low_open=True)
        self.epochs = check_int("epochs", epochs, low=1)
        self.batch_size = check_int("batch_size", batch_size, low=1)
        self.retrain_every = check_int("retrain_every", retrain_every, low=1)
        self.buffer_capacity = check_int("buffer_capacity", buffer_capacity, low=1)
        self.prior_var = check_number("prior_var", prior_var, low=0.0, low_open=True)
        self.noise_var = check_number("noise_var", noise_var, low=0.0, low_open=True)
        import torch

        self._gen = torch.Generator().manual_seed(_torch_seed(seed))
        widths = (self.dim_context, *self.hidden, self.n_items)
        self._layers: list[tuple[torch.Tensor, torch.Tensor]] = []
        for fan_in, fan_out in itertools.pairwise(widths):
            bound = 1.0 / math.sqrt(fan_in)  # torch.nn.Linear's default initialisation
            w = torch.empty((fan_out, fan_in), dtype=torch.float64)
            b = torch.empty(fan_out, dtype=torch.float64)
            w.uniform_(-bound, bound, generator=self._gen)
            b.uniform_(-bound, bound, generator=self._gen)
            self._layers.append((w, b))
        self._dim_z = self.hidden[-1] + 1
        self._ridge = RidgeArms(self.n_items, self._dim_z, self.noise_var / self.prior_var)
        c, d = self.buffer_capacity, self.dim_context
        self._buf_context = np.zeros((c, d))
        self._buf_item = np.zeros(c, dtype=np.int64)
        self._buf_reward = np.zeros(c)
        self._buf_weight = np.zeros(c)
        self._n_obs = 0  # observations ever stored (the buffer holds the last min(n_obs, capacity))
        self._n_events = 0

    @classmethod
    def example(cls, n_items: int, k: int, dim_context: int, *,
                seed: int | None = None) -> NeuralLinearTS:
        """A tiny network retrained often on a small buffer, so the contract suite runs in seconds."""
        return cls(n_items, k, dim_context, hidden=(8,), epochs=2, batch_size=32, retrain_every=25,
                   buffer_capacity=256, seed=seed)

    # ------------------------------------------------------------ the model
    def _hidden_layers(self, x: torch.Tensor) -> torch.Tensor:
        import torch

        for w, b in self._layers[:-1]:
            x = torch.relu(torch.addmm(b, x, w.T))
        return x

    def representation(self, context: FloatArray) -> FloatArray:
        """The last layer's features ``z = [h(x), 1]`` (n, hidden[-1] + 1) for contexts (n, d)."""
        import torch

        with torch.no_grad():
            h = self._hidden_layers(_as_tensor(context)).numpy()
        z = np.empty((h.shape[0], self._dim_z))
        z[:, :-1] = h
        z[:, -1] = 1.0
        return z

    @property
    def n_stored(self) -> int:
        """Observations in the replay buffer."""
        return min(self._n_obs, self.buffer_capacity)

    def posterior(self) -> tuple[FloatArray, FloatArray]:
        """Posterior means (n_items, p) and covariances (n_items, p, p) of the last-layer weights."""
        return self._ridge.theta.copy(), self.noise_var * self._ridge.A_inv

    def _moments(self, context: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Mean and standard deviation (n, n_items) of each item's sampled reward."""
        z = self.representation(context)
        return self._ridge.mean(z), math.sqrt(self.noise_var) * np.sqrt(self._ridge.variance(z))

    def _sampler(self, context: FloatArray) -> Callable[[slice, int], FloatArray]:
        return normal_sampler(self, *self._moments(context))

    def _max_probabilities(self, context: FloatArray, allowed: BoolArray) -> FloatArray | None:
        return normal_quadrature(*self._moments(context), allowed)

    # ------------------------------------------------------------ learning
    def _update(self, feedback: Feedback) -> None:
        """Absorb the feedback, retraining at every ``retrain_every``-th event."""
        n = feedback.n_rounds
        lo = 0
        while lo < n:
            hi = min(n, lo + self.retrain_every - self._n_events % self.retrain_every)
            self._absorb(Feedback(feedback.context[lo:hi], feedback.slate[lo:hi], feedback.reward[lo:hi]))
            self._n_events += hi - lo
            lo = hi
            if self._n_events % self.retrain_every == 0:
                self.retrain()

    def _absorb(self, feedback: Feedback) -> None:
        """Add the observations to the posterior statistics on the current ``z`` and to the buffer."""
        z = self.representation(feedback.context)
        items, zx, y = ridge_observations(Feedback(z, feedback.slate, feedback.reward), self.examination,
                                          self.k)
        self._ridge.update(items, zx, y)
        k_fb = feedback.slate.shape[1]
        x = feedback.context if k_fb == 1 else np.repeat(feedback.context, k_fb, axis=0)
        self._store(x, items, y, slot_weights(feedback, self.examination, self.k).ravel())

    def _store(self, x: FloatArray, items: IntArray, y: FloatArray, weight: FloatArray) -> None:
        """Write observations into the ring buffer, oldest overwritten first."""
        c, t = self.buffer_capacity, items.shape[0]
        first = max(0, t - c)  # of a batch longer than the buffer only the last c are kept
        pos = (self._n_obs + np.arange(first, t)) % c
        self._buf_context[pos] = x[first:]
        self._buf_item[pos] = items[first:]
        self._buf_reward[pos] = y[first:]
        self._buf_weight[pos] = weight[first:]
        self._n_obs += t

    def retrain(self) -> None:
        """Train the network on the buffer, then recompute the posterior statistics with the new ``z``.

        Runs on its own every ``retrain_every`` events; calling it directly retrains now
        (the event count, and so the cadence, is unchanged).
        """
        import torch

        n = self.n_stored
        if n == 0:
            return
        x = _as_tensor(self._buf_context[:n])
        item = torch.from_numpy(self._buf_item[:n].copy())
        y = _as_tensor(self._buf_reward[:n])
        w = _as_tensor(self._buf_weight[:n])
        params = [t for layer in self._layers for t in layer]
        for t in params:
            t.requires_grad_(True)
        opt = torch.optim.Adam(params, lr=self.learning_rate)
        head_w, head_b = self._layers[-1]
        for _ in range(self.epochs):
            perm = torch.randperm(n, generator=self._gen)
            for lo in range(0, n, self.batch_size):
                idx = perm[lo:lo + self.batch_size]
                h = self._hidden_layers(x[idx])
                # the shown item's head only: a row of the head weights per observation
                pred = ((h * head_w[item[idx]]).sum(dim=1) + head_b[item[idx]]) * w[idx]
                loss = torch.mean((pred - y[idx]) ** 2)
                opt.zero_grad()
                loss.backward()  # type: ignore[no-untyped-call]
                opt.step()
        for t in params:
            t.requires_grad_(False)
            t.grad = None
        self._refit_posterior()

    def _refit_posterior(self) -> None:
        """Posterior statistics from the prior and every buffered observation, on the current ``z``."""
        n = self.n_stored
        self._ridge = RidgeArms(self.n_items, self._dim_z, self.noise_var / self.prior_var)
        z = self.representation(self._buf_context[:n]) * self._buf_weight[:n, None]
        self._ridge.update(self._buf_item[:n], z, self._buf_reward[:n])

    # ------------------------------------------------------------ persistence
    def _own_shapes(self) -> dict[str, tuple[int, ...]]:
        shapes: dict[str, tuple[int, ...]] = {}
        for i, (w, b) in enumerate(self._layers):
            shapes[f"net_w{i}"] = tuple(w.shape)
            shapes[f"net_b{i}"] = tuple(b.shape)
        c, d = self.buffer_capacity, self.dim_context
        shapes.update({"buffer_context": (c, d), "buffer_item": (c,), "buffer_reward": (c,),
                       "buffer_weight": (c,), "counters": (2,),
                       "torch_rng": tuple(self._gen.get_state().shape)})
        return shapes

    def _get_state(self) -> dict[str, np.ndarray[Any, Any]]:
        state: dict[str, np.ndarray[Any, Any]] = dict(self._ridge.state())
        for i, (w, b) in enumerate(self._layers):
            state[f"net_w{i}"] = w.detach().numpy().copy()
            state[f"net_b{i}"] = b.detach().numpy().copy()
        state.update({"buffer_context": self._buf_context.copy(), "buffer_item": self._buf_item.copy(),
                      "buffer_reward": self._buf_reward.copy(), "buffer_weight": self._buf_weight.copy(),
                      "counters": np.array([self._n_obs, self._n_events], dtype=np.int64),
                      "torch_rng": self._gen.get_state().numpy().copy()})
        return state

    def _set_state(self, state: dict[str, np.ndarray[Any, Any]]) -> None:
        import torch

        own = {key: value for key, value in state.items() if key not in _RIDGE_KEYS}
        expect_state(own, self._own_shapes(), "NeuralLinearTS")
        self._ridge.set_state({key: state[key] for key in _RIDGE_KEYS if key in state}, "NeuralLinearTS")
        self._layers = [(torch.from_numpy(np.array(state[f"net_w{i}"], dtype=np.float64)),
                         torch.from_numpy(np.array(state[f"net_b{i}"], dtype=np.float64)))
                        for i in range(len(self._layers))]
        self._buf_context = np.array(state["buffer_context"], dtype=np.float64)
        self._buf_item = np.array(state["buffer_item"], dtype=np.int64)
        self._buf_reward = np.array(state["buffer_reward"], dtype=np.float64)
        self._buf_weight = np.array(state["buffer_weight"], dtype=np.float64)
        self._n_obs, self._n_events = (int(v) for v in state["counters"])
        self._gen.set_state(torch.from_numpy(np.array(state["torch_rng"], dtype=np.uint8)))
