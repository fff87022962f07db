"""Slate policies behind one interface, and off-policy evaluation (``bandits.ope``)."""

from bandits.policy import (
    Feedback,
    PolicyError,
    SlateDecision,
    SlatePolicy,
    make_policy,
    register_policy,
    registered_policies,
)

__all__ = [
    "Feedback",
    "PolicyError",
    "SlateDecision",
    "SlatePolicy",
    "make_policy",
    "register_policy",
    "registered_policies",
]
