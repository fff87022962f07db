"""A trained PPO policy as an agent of the experiment runner (``policies = [{ name = "ppo", ... }]``).

``experiments.simulate.build_agent`` builds every policy with
``make_policy(name, n_items=..., k=..., dim_context=..., seed=..., **params)``.
That would give PPO an untrained network, so for ``name == "ppo"`` the runner
calls :func:`ppo_agent` instead: it loads the trained weights named by the
spec's ``model`` parameter and checks that they fit the world.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bandits import PolicyError, SlatePolicy
from bandits.ppo import PPOSlatePolicy

#: Spec parameters :func:`ppo_agent` accepts besides ``model``.
OVERRIDES = ("temperature", "n_draws")


def ppo_agent(world: Any, spec_params: dict[str, Any], seed: int) -> PPOSlatePolicy:
    """The trained PPO policy a spec names, for ``world``.

    Args:
        world: the world the experiment runs in (``n_items``, ``k``, ``dim_context``).
        spec_params: ``model`` (required): a ``model.zip`` written by ``slatewise
            train-ppo`` (with ``model.json`` beside it) or a ``policy.npz``; optional
            ``temperature`` and ``n_draws``.
        seed: seed of the policy's slate draws.

    Raises:
        PolicyError: no ``model``, unknown parameters, a missing file, or a model
            trained for another catalog size, slate length or context.
    """
    params = dict(spec_params)
    model = params.pop("model", None)
    if not isinstance(model, str | Path) or not str(model):
        raise PolicyError("a `ppo` policy needs `model`: the model.zip (or policy.npz) written by "
                          "`slatewise train-ppo --out DIR`, e.g. params = { model = \"DIR/model.zip\" }.")
    unknown = sorted(set(params) - set(OVERRIDES))
    if unknown:
        raise PolicyError(f"unknown `ppo` parameters {unknown}; allowed: model, {', '.join(OVERRIDES)}.")
    path = Path(model)
    if not path.is_file():
        raise PolicyError(f"`model` file {path} does not exist; train one with `slatewise train-ppo`.")
    if path.suffix == ".npz":
        loaded = SlatePolicy.load(path)
        if not isinstance(loaded, PPOSlatePolicy):
            raise PolicyError(f"{path} holds a {type(loaded).__name__}, not a PPO policy.")
        policy = PPOSlatePolicy(**(loaded.get_params() | params | {"seed": seed}))
        policy.load_network_state(loaded.network_state())
    else:
        policy = PPOSlatePolicy.load_sb3(path, **params, seed=seed)
    expected = (int(world.n_items), int(world.k), int(world.dim_context))
    found = (policy.n_items, policy.k, policy.dim_context)
    if found != expected:
        raise PolicyError(f"{path} was trained for n_items, k, dim_context = {found}, but the world has "
                          f"{expected}; train on this world (same [world] settings).")
    return policy
