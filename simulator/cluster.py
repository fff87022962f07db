"""Ray, the optional cluster runtime: imported on demand with an error that says how to install it.

Both the off-policy estimators (``bandits.ope.partitioned``) and the experiment
engines (``experiments.engine``) run on Ray; they get it from here, so the
install hint and the connection errors are said once.
"""

from __future__ import annotations

from typing import Any

from simulator.errors import EngineError

RAY_INSTALL_HINT = "Ray is an optional extra: pip install 'slatewise[ray]' (or pip install 'ray[data]')."


def import_ray() -> Any:
    """The ``ray`` module, or an :class:`EngineError` that says how to install it."""
    try:
        import ray
    except ImportError:
        raise EngineError(f"--engine ray needs Ray, which is not installed. {RAY_INSTALL_HINT}") from None
    return ray


def init_ray(address: str | None = None, num_cpus: int | None = None) -> Any:
    """Connect to the Ray cluster at ``address``, or start a local Ray when None; returns ``ray``."""
    ray = import_ray()
    if not ray.is_initialized():
        try:
            if address:
                ray.init(address=address, log_to_driver=False)
            else:
                ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as err:
            where = f"the Ray cluster at {address}" if address else "a local Ray"
            raise EngineError(f"could not start {where}: {err}") from None
    return ray
