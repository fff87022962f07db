"""Hybrid LinUCB (Li et al. 2010, algorithm 2): shared item-feature weights plus per-item weights.

The reward of item ``a`` in context ``x`` is ``z_a . beta + x . theta_a`` with the
shared feature ``z_a = x (outer) f_a`` (flattened, dimension ``d * p``) built from
the item's features ``f_a``. ``beta`` is learned from every item's feedback, so
an item never shown still gets an informed score from its features: new items
are not cold. Put a constant 1 in the context to give item features main effects.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from bandits.policies.base import ScorePolicy, check_number, expect_state, feature_matrix, slot_weights
from bandits.policies.linear import check_dim_context
from bandits.policy import Feedback, FloatArray, register_policy

#: Rows per chunk when scoring, to bound the (rows, items, d) intermediates.
_SCORE_CHUNK = 4_096


@register_policy("hybrid_linucb")
class HybridLinUCB(ScorePolicy):
    """Hybrid LinUCB: top-k of ``z . beta + x . theta_a + alpha * sqrt(s_a)``.

    ``s_a`` is the predictive variance factor of the hybrid model (Li et al.
    2010, eq. for ``s_{t,a}``). Learning is exact in batches: the shared system
    ``A0 = reg I + sum z z^T - sum_a B_a^T A_a^{-1} B_a`` is rebuilt from the
    per-item statistics of the touched items, so a batch gives the same state
    as its events one by one.

    Args:
        n_items: catalog size.
        k: slate length.
        dim_context: context dimension ``d`` (>= 1).
        item_features: shape (n_items, p), numeric item features.
        alpha: width of the upper confidence bound (>= 0).
        reg: ridge penalty (> 0) of both the shared and per-item parts.
        examination: shape (k,), examination probability of each slot, or None.
        seed: seed of the policy's random generator (unused by the decision).
    """

    def __init__(self, n_items: int, k: int, dim_context: int, *, item_features: Any,
                 alpha: float = 1.0, reg: float = 1.0, examination: Sequence[float] | None = None,
                 seed: int | None = None) -> None:
        super().__init__(n_items, k, dim_context, epsilon=0.0, examination=examination, seed=seed)
        check_dim_context(self.dim_context, "HybridLinUCB")
        self.item_features = feature_matrix("item_features", item_features, self.n_items)
        self.alpha = check_number("alpha", alpha, low=0.0)
        self.reg = check_number("reg", reg, low=0.0, low_open=True)
        m, d, p = self.n_items, self.dim_context, self.item_features.shape[1]
        dz = d * p
        self._A0 = np.eye(dz) * self.reg
        self._b0 = np.zeros(dz)
        self._A = np.repeat(np.eye(d)[None] * self.reg, m, axis=0)
        self._B = np.zeros((m, d, dz))
        self._b = np.zeros((m, d))
        self._refresh()

    @classmethod
    def example(cls, n_items: int, k: int, dim_context: int, *, seed: int | None = None) -> HybridLinUCB:
        """Hybrid LinUCB on random item features."""
        rng = np.random.default_rng(seed)
        return cls(n_items, k, dim_context, item_features=rng.standard_normal((n_items, 2)), seed=seed)

    # ------------------------------------------------------------ derived quantities
    def _refresh(self) -> None:
        """Recompute inverses, estimates and the per-item quadratic forms after learning."""
        d, p = self.dim_context, self.item_features.shape[1]
        self._A_inv = np.linalg.inv(self._A)
        self._A0_inv = np.linalg.inv(self._A0)
        beta = self._A0_inv @ self._b0
        self._beta = beta.reshape(d, p)
        self._theta = np.einsum("ade,ae->ad", self._A_inv, self._b - self._B @ beta)
        # z_a^T A0^{-1} z_a = x^T M(f_a) x with M(f)[d, e] = sum_pq f_p A0inv[(d,p),(e,q)] f_q.
        a0 = self._A0_inv.reshape(d, p, d, p)
        f = self.item_features
        shared = np.einsum("ap,dpeq,aq->ade", f, a0, f)
        # -2 z^T A0^{-1} B_a^T A_a^{-1} x  ->  x^T G_a x.
        c = np.einsum("zy,ady,ade->aze", self._A0_inv, self._B, self._A_inv)  # (a, dz, d)
        g = np.einsum("ap,adpe->ade", f, c.reshape(-1, d, p, d))
        # x^T A_a^{-1} B_a A0^{-1} B_a^T A_a^{-1} x.
        ab = np.einsum("ade,aez->adz", self._A_inv, self._B)
        dd = np.einsum("adz,zy,aey->ade", ab, self._A0_inv, ab)
        self._H = shared - g - np.transpose(g, (0, 2, 1)) + self._A_inv + dd

    def _scores(self, context: FloatArray) -> FloatArray:
        n = context.shape[0]
        out = np.empty((n, self.n_items))
        f = self.item_features
        for lo in range(0, n, _SCORE_CHUNK):
            x = context[lo:lo + _SCORE_CHUNK]
            mean = (x @ self._beta) @ f.T + x @ self._theta.T
            var = np.einsum("ind,nd->ni", np.matmul(x, self._H), x)
            out[lo:lo + x.shape[0]] = mean + self.alpha * np.sqrt(np.maximum(var, 0.0))
        return out

    # ------------------------------------------------------------ learning
    def _update(self, feedback: Feedback) -> None:
        _n, k_fb = feedback.slate.shape
        w = slot_weights(feedback, self.examination, self.k).reshape(-1, 1)
        x = np.repeat(feedback.context, k_fb, axis=0) * w
        items = feedback.slate.ravel()
        r = feedback.reward.ravel()
        if items.size == 0:
            return
        z = (x[:, :, None] * self.item_features[items][:, None, :]).reshape(items.size, -1)
        touched = np.unique(items)
        # Remove the touched items' old contribution to the shared system ...
        self._A0 += np.einsum("adz,ade,aey->zy", self._B[touched], self._A_inv[touched],
                              self._B[touched])
        self._b0 += np.einsum("adz,ade,ae->z", self._B[touched], self._A_inv[touched],
                              self._b[touched])
        # ... update the per-item statistics ...
        np.add.at(self._A, items, x[:, :, None] * x[:, None, :])
        np.add.at(self._B, items, x[:, :, None] * z[:, None, :])
        np.add.at(self._b, items, x * r[:, None])
        a_inv = np.linalg.inv(self._A[touched])
        # ... and add back their new contribution with the shared observations.
        self._A0 += z.T @ z - np.einsum("adz,ade,aey->zy", self._B[touched], a_inv, self._B[touched])
        self._b0 += z.T @ r - np.einsum("adz,ade,ae->z", self._B[touched], a_inv, self._b[touched])
        self._refresh()

    def _get_state(self) -> dict[str, np.ndarray[Any, Any]]:
        return {"A0": self._A0.copy(), "b0": self._b0.copy(), "A": self._A.copy(), "B": self._B.copy(),
                "b": self._b.copy()}

    def _set_state(self, state: dict[str, np.ndarray[Any, Any]]) -> None:
        m, d = self.n_items, self.dim_context
        dz = d * self.item_features.shape[1]
        expect_state(state, {"A0": (dz, dz), "b0": (dz,), "A": (m, d, d), "B": (m, d, dz), "b": (m, d)},
                     "HybridLinUCB")
        self._A0 = np.array(state["A0"], dtype=np.float64)
        self._b0 = np.array(state["b0"], dtype=np.float64)
        self._A = np.array(state["A"], dtype=np.float64)
        self._B = np.array(state["B"], dtype=np.float64)
        self._b = np.array(state["b"], dtype=np.float64)
        self._refresh()
