"""Slate policies behind one interface, and off-policy evaluation (``bandits.ope``).

Importing ``bandits`` registers every policy of :mod:`bandits.policies`, so
``make_policy(name, ...)`` and ``SlatePolicy.load(path)`` know them all.
"""

from bandits.policies import (
    UCB1,
    BernoulliTS,
    BoughtTogether,
    EpsilonGreedy,
    HybridLinUCB,
    ItemSimilarity,
    LinearTS,
    LinUCB,
    LogisticTS,
    Popularity,
    RidgeEpsilonGreedy,
    Softmax,
    UniformPolicy,
    UpsellLadder,
)
from bandits.policy import (
    Feedback,
    SlateDecision,
    SlatePolicy,
    make_policy,
    register_policy,
    registered_policies,
)
from simulator.errors import PolicyError

__all__ = [
    "UCB1",
    "BernoulliTS",
    "BoughtTogether",
    "EpsilonGreedy",
    "Feedback",
    "HybridLinUCB",
    "ItemSimilarity",
    "LinUCB",
    "LinearTS",
    "LogisticTS",
    "PolicyError",
    "Popularity",
    "RidgeEpsilonGreedy",
    "SlateDecision",
    "SlatePolicy",
    "Softmax",
    "UniformPolicy",
    "UpsellLadder",
    "make_policy",
    "register_policy",
    "registered_policies",
]
