"""Small synthetic logs with an exactly known truth, for the estimator tests.

A contextual bandit with ``n_items`` items and one slot: contexts ``x ~ N(0, I_d)``,
click probability linear in ``[1, x, onehot(a)]`` (so the built-in ridge model is
well specified), softmax logging and evaluation policies with known probabilities.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulator.logs import Catalog, SlateLog


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@dataclass(frozen=True)
class Bandit:
    d: int = 3
    n_items: int = 6
    seed: int = 0

    def _params(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        rng = np.random.default_rng([self.seed, 99])
        theta = rng.normal(0, 0.04, self.d)
        gamma = rng.uniform(0.1, 0.6, self.n_items)
        log_w = rng.normal(0, 0.3, (self.d, self.n_items))
        eval_w = rng.normal(0, 0.6, (self.d, self.n_items))
        return theta, gamma, log_w, eval_w

    def click_prob(self, x: np.ndarray) -> np.ndarray:
        """(n, n_items), within (0, 1) for |x| of a few sigma."""
        theta, gamma, _, _ = self._params()
        return np.clip(gamma[None, :] + (x @ theta)[:, None], 0.01, 0.99)

    def logging(self, x: np.ndarray) -> np.ndarray:
        return softmax(x @ self._params()[2])

    def evaluation(self, x: np.ndarray) -> np.ndarray:
        return softmax(x @ self._params()[3])

    def truth(self, n: int = 400_000) -> float:
        """The evaluation policy's value over the context distribution (Monte Carlo error ~1e-4)."""
        x = np.random.default_rng([self.seed, 5]).normal(size=(n, self.d))
        return float((self.evaluation(x) * self.click_prob(x)).sum(axis=1).mean())

    def log(self, n: int, seed: int, *, pscore_scale: float = 1.0) -> tuple[SlateLog, np.ndarray]:
        """A log of ``n`` decisions and the evaluation policy's (n, n_items, 1) action distribution."""
        rng = np.random.default_rng([self.seed, seed])
        x = rng.normal(size=(n, self.d))
        mu = self.logging(x)
        a = (mu.cumsum(axis=1) < rng.random(n)[:, None]).sum(axis=1).clip(max=self.n_items - 1)
        p = mu[np.arange(n), a]
        r = (rng.random(n) < self.click_prob(x)[np.arange(n), a]).astype(float)
        log = SlateLog.from_arrays(context=x, slate=a[:, None], reward=r[:, None],
                                   pscore=p * pscore_scale, pscore_item=(p * pscore_scale)[:, None],
                                   catalog=Catalog.anonymous(self.n_items))
        return log, self.evaluation(x)[:, :, None]
