"""Matrix factorisation for implicit feedback: weighted ALS (Hu, Koren and Volinsky 2008).

The shopper x item interaction counts ``r`` (see :mod:`bandits.policies.interactions`)
become preferences ``p = [r > 0]`` with confidence ``c = 1 + alpha r``; ALS
minimises ``sum_ui c_ui (p_ui - x_u . y_i)^2 + regularization (|x|^2 + |y|^2)``
over shopper factors ``x`` and item factors ``y``. The fit is the ALS of the
``implicit`` library on the CPU (Cholesky solves with ``exact=True``, else its
conjugate-gradient steps), with BLAS held to one
thread while it runs, as that library asks.

At decision time a row's factor is *folded in* from its current items (the
anchor plus, for a known shopper, the shopper's row of the fitted matrix) by
the same exact least-squares step ALS takes for a shopper,
``x = (Y'Y + Y'(C - I)Y + regularization I)^{-1} Y'C p``, so new shoppers,
anonymous baskets and interactions since the fit are all scored without
refitting. Scores are ``Y x``. The item factors are refitted every
``refresh_every`` events.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from bandits.policies.base import check_int, check_number
from bandits.policies.interactions import InteractionPolicy
from bandits.policy import FloatArray, IntArray, register_policy
from simulator.errors import PolicyError

#: Fits over at least this many interactions use every core (each shopper's solve is independent,
#: so the result does not depend on it); smaller ones run on one thread, which starts faster.
PARALLEL_NNZ = 200_000


def fit_als(counts: sp.csr_matrix, *, factors: int, regularization: float, alpha: float,
            iterations: int, seed: int, exact: bool = True) -> tuple[FloatArray, FloatArray]:
    """Weighted ALS on interaction counts (rows, n_items).

    ``exact``: solve each least-squares step by Cholesky; else by three warm-started
    conjugate-gradient steps (the library's fast default, about 5x faster at 32 factors).

    Returns:
        ``(shopper_factors, item_factors)`` of shapes (rows, factors) and (n_items, factors).
    """
    from implicit.cpu.als import AlternatingLeastSquares

    conf = sp.csr_matrix(counts, dtype=np.float32, copy=True)
    conf.data = 1.0 + alpha * conf.data
    with threadpool_limits(1, "blas"):
        model = AlternatingLeastSquares(factors=factors, regularization=regularization, alpha=1.0,
                                        iterations=iterations, use_cg=not exact, random_state=seed,
                                        calculate_training_loss=False,
                                        num_threads=0 if conf.nnz >= PARALLEL_NNZ else 1)
        model.fit(conf, show_progress=False)
    return (np.asarray(model.user_factors, dtype=np.float64),
            np.asarray(model.item_factors, dtype=np.float64))


def fold_in(item_factors: FloatArray, counts: sp.csr_matrix, regularization: float,
            alpha: float, gram: FloatArray | None = None) -> FloatArray:
    """Exact ALS shopper factors (n, factors) for rows of interaction counts (n, n_items).

    Rows without interactions get the zero factor. ``gram`` is ``Y'Y`` when already known.
    """
    y = item_factors
    n, f = counts.shape[0], y.shape[1]
    coo = counts.tocoo()
    conf = 1.0 + alpha * coo.data
    g = y.T @ y if gram is None else gram
    a = np.broadcast_to(g + regularization * np.eye(f), (n, f, f)).copy()
    if coo.nnz:
        yj = y[coo.col]
        np.add.at(a, coo.row, (conf - 1.0)[:, None, None] * (yj[:, :, None] * yj[:, None, :]))
    b = np.zeros((n, f))
    np.add.at(b, coo.row, conf[:, None] * y[coo.col])
    out: FloatArray = np.asarray(np.linalg.solve(a, b[:, :, None])[:, :, 0], dtype=np.float64)
    return out


@register_policy("als")
class ImplicitALS(InteractionPolicy):
    """Weighted ALS for implicit feedback; slates are the top-k of ``Y x`` (see the module docstring).

    Args:
        n_items: catalog size.
        k: slate length.
        dim_context: context dimension (0: any width holding the anchor column).
        anchor_column: context column holding the anchor item index (-1: none).
        shopper_column: context column holding the shopper index (-1: anonymous), or None.
        n_shoppers: number of known shoppers when ``shopper_column`` is set.
        factors: latent dimension (>= 1).
        regularization: L2 penalty (> 0).
        alpha: confidence per interaction, ``c = 1 + alpha r`` (>= 0).
        iterations: ALS sweeps per fit (>= 1).
        exact: Cholesky solves in the fit (True) or conjugate-gradient steps (False, faster).
        refresh_every: events between refits (>= 1).
        epsilon: exploration probability in [0, 1].
        examination: shape (k,), examination probability of each slot, or None.
        seed: seed of the policy's random generator and of each fit's initial factors (None: 0 for fits).
    """

    def __init__(self, n_items: int, k: int, dim_context: int = 0, *, anchor_column: int = 0,
                 shopper_column: int | None = None, n_shoppers: int = 0, factors: int = 32,
                 regularization: float = 0.1, alpha: float = 10.0, iterations: int = 10,
                 exact: bool = False, refresh_every: int = 1000, epsilon: float = 0.0,
                 examination: Sequence[float] | None = None, seed: int | None = None) -> None:
        super().__init__(n_items, k, dim_context, anchor_column=anchor_column, shopper_column=shopper_column,
                         n_shoppers=n_shoppers, refresh_every=refresh_every, epsilon=epsilon,
                         examination=examination, seed=seed)
        self.factors = check_int("factors", factors, low=1)
        self.regularization = check_number("regularization", regularization, low=0.0, low_open=True)
        self.alpha = check_number("alpha", alpha, low=0.0)
        self.iterations = check_int("iterations", iterations, low=1)
        if not isinstance(exact, bool):
            raise PolicyError(f"`exact` must be True or False, found {exact!r}.")
        self.exact = exact
        self._item_factors = np.zeros((self.n_items, self.factors))
        self._gram = np.zeros((self.factors, self.factors))
        self._snap = 0
        self._matrix = sp.csr_matrix((self._store.n_rows, self.n_items))

    @classmethod
    def example(cls, n_items: int, k: int, dim_context: int, *, seed: int | None = None) -> ImplicitALS:
        """Four factors refitted every 50 events, with a little exploration."""
        return cls(n_items, k, dim_context, factors=4, iterations=5, refresh_every=50, epsilon=0.1, seed=seed)

    def item_factors(self) -> FloatArray:
        """Item factors of the last fit, shape (n_items, factors)."""
        return self._item_factors.copy()

    def _refresh(self) -> None:
        self._snap = self._store.size
        self._matrix = self._store.matrix()
        if self._matrix.nnz == 0:
            return
        seed = int(np.random.SeedSequence([0 if self.seed is None else self.seed, self._n_refreshes])
                   .generate_state(1)[0])
        _, self._item_factors = fit_als(self._matrix, factors=self.factors,
                                        regularization=self.regularization, alpha=self.alpha,
                                        iterations=self.iterations, seed=seed, exact=self.exact)
        self._gram = self._item_factors.T @ self._item_factors

    def _score_rows(self, anchors: IntArray, shoppers: IntArray) -> FloatArray:
        current = self._shopper_items(self._matrix, shoppers, anchors)
        x = fold_in(self._item_factors, current, self.regularization, self.alpha, self._gram)
        out: FloatArray = x @ self._item_factors.T
        return out

    def _get_state(self) -> dict[str, np.ndarray[Any, Any]]:
        return {**self._base_state(), "snap": np.array([self._snap]),
                "item_factors": self._item_factors.copy()}

    def _set_state(self, state: dict[str, np.ndarray[Any, Any]]) -> None:
        self._set_base_state(state, {"snap": (1,), "item_factors": (self.n_items, self.factors)})
        self._snap = int(state["snap"][0])
        self._matrix = self._store.matrix_prefix(self._snap)
        self._item_factors = np.array(state["item_factors"], dtype=np.float64)
        self._gram = self._item_factors.T @ self._item_factors
