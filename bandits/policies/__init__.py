"""Every concrete policy; importing this package registers them all by name."""

from bandits.policies.anchored import BoughtTogether, ItemSimilarity, UpsellLadder
from bandits.policies.cf import ItemCF, UserCF
from bandits.policies.explore import Explore, ExploreAnchored
from bandits.policies.fair import FairExposure
from bandits.policies.hybrid import HybridLinUCB
from bandits.policies.linear import LinUCB, RidgeEpsilonGreedy
from bandits.policies.linear_ts import LinearTS, LogisticTS
from bandits.policies.mf import ImplicitALS
from bandits.policies.multi_armed import UCB1, EpsilonGreedy, Popularity, Softmax
from bandits.policies.neural import NeuralLinearTS
from bandits.policies.rules import AssociationRules
from bandits.policies.thompson import BernoulliTS
from bandits.policies.uniform import UniformPolicy

__all__ = [
    "UCB1",
    "AssociationRules",
    "BernoulliTS",
    "BoughtTogether",
    "EpsilonGreedy",
    "Explore",
    "ExploreAnchored",
    "FairExposure",
    "HybridLinUCB",
    "ImplicitALS",
    "ItemCF",
    "ItemSimilarity",
    "LinUCB",
    "LinearTS",
    "LogisticTS",
    "NeuralLinearTS",
    "Popularity",
    "RidgeEpsilonGreedy",
    "Softmax",
    "UniformPolicy",
    "UpsellLadder",
    "UserCF",
]
