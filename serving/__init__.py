"""The slatewise HTTP service: slates, rewards, sticky A/B assignment, rollout, online learning.

Build the app with :func:`create_app`; run it with ``slatewise serve``.
"""

from serving.app import create_app
from serving.config import ABExperimentConfig, ArmConfig, ServingConfig, load_serving_config
from serving.service import Service
from simulator.errors import ServingError

__all__ = [
           "ABExperimentConfig",
           "ArmConfig",
           "Service",
           "ServingConfig",
           "ServingError",
           "create_app",
           "load_serving_config",
]
