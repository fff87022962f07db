"""The base class checks every policy's output: broken slates are errors, for one row and for many."""

from __future__ import annotations

import numpy as np
import pytest

from bandits.policy import BoolArray, Feedback, FloatArray, SlateDecision, SlatePolicy
from simulator.errors import PolicyError


class Scripted(SlatePolicy):
    """Returns the slates it is told to (to exercise the output checks)."""

    def __init__(self, n_items: int, k: int, slates: list[list[int]]) -> None:
        super().__init__(n_items, k, 0)
        self.slates = slates

    def _select(self, context: FloatArray, eligible: BoolArray | None,
                required: BoolArray | None) -> SlateDecision:
        slate = np.asarray(self.slates[:context.shape[0]], dtype=np.int64)
        n = slate.shape[0]
        return SlateDecision(slate, np.ones(n), np.ones((n, self.k)))

    def _action_dist(self, context: FloatArray, eligible: BoolArray | None,
                     required: BoolArray | None, n_draws: int | None) -> FloatArray:
        raise NotImplementedError

    def _update(self, feedback: Feedback) -> None:
        pass


ELIGIBLE = np.array([True, True, True, False, True])
REQUIRED = np.array([False, False, False, False, True])


@pytest.mark.parametrize("n", [1, 3])
@pytest.mark.parametrize(("bad", "kwargs", "message"), [
    ([0, 0, 1], {}, "a slate with a repeated item"),
    ([0, 3, 1], {"eligible": ELIGIBLE}, "an ineligible item"),
    ([0, 1, 2], {"required": REQUIRED}, "a slate without a required item"),
    ([0, 1, 2], {"required": REQUIRED, "eligible": ELIGIBLE}, "a slate without a required item"),
])
def test_broken_slates_are_caught(n: int, bad: list[int], kwargs: dict, message: str) -> None:
    good = [0, 1, 4]
    policy = Scripted(5, 3, [good] * (n - 1) + [bad])
    with pytest.raises(PolicyError, match=message):
        policy.select(np.zeros((n, 0)), **kwargs)


@pytest.mark.parametrize("n", [1, 3])
def test_valid_slates_pass(n: int) -> None:
    policy = Scripted(5, 3, [[0, 1, 4]] * n)
    out = policy.select(np.zeros((n, 0)), eligible=ELIGIBLE, required=REQUIRED)
    np.testing.assert_array_equal(out.slate, [[0, 1, 4]] * n)
    # The required item is ineligible in this row: nothing to require (same rule as the batch path).
    no_required = np.array([False, False, False, True, False])
    assert policy.select(np.zeros((n, 0)), eligible=ELIGIBLE, required=no_required).slate.shape == (n, 3)
