"""One blueprint per concern: slates, rewards, experiments, operations."""
