"""Training a PPO slate policy on the session environment and comparing it with the bandits.

* :mod:`experiments.ppo.config` — the frozen, validated TOML config;
* :mod:`experiments.ppo.envs` — worlds and the vectorised training environment;
* :mod:`experiments.ppo.evaluate` — revenue per session of any policy on held-out seeds,
  and bandits trained online for the same number of environment steps;
* :mod:`experiments.ppo.train` — the training loop (progress, evaluation, checkpoints,
  resumption, learning curves).
"""
