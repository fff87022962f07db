"""Serving policies: built from the config, published as versioned files, picked up atomically.

Layout under ``model_dir``::

    <experiment>/<arm>/v00000007.npz   # a policy saved by SlatePolicy.save (atomic rename)
    <experiment>/<arm>/CURRENT.json    # {"version": 7, "file": "v00000007.npz", cursors...}
    learner.lock                       # flock held by the one learner process

The learner writes a new ``.npz`` first (``SlatePolicy.save`` writes a temporary
file and renames it), then replaces ``CURRENT.json`` the same way. A rename is
atomic, so a worker reads either the old pointer or the new one, and the file a
pointer names is always complete. Workers look at the pointer at most every
``reload_interval_s`` seconds and swap in the new policy object as one
reference assignment; a request in flight keeps the object it started with.
The last :data:`KEEP_VERSIONS` files are kept, so a slow reader never loses the
file its pointer named.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bandits.policies  # noqa: F401  (registers every policy)
from bandits import PolicyError, SlatePolicy, make_policy, registered_policies
from bandits.policy import ensure_registered
from serving.catalog import ServedShape
from serving.config import ArmConfig, ServingConfig
from simulator.errors import ConfigError

logger = logging.getLogger(__name__)

KEEP_VERSIONS = 5
POINTER = "CURRENT.json"


@dataclass(slots=True)
class ArmPolicy:
    """The policy an arm serves, its version, and a lock around its use.

    Attributes:
        name: registered policy name.
        policy: the policy object (never mutated once published).
        version: 0 for the configured initial policy, then the learner's versions.
        lock: serialises ``select`` calls (policies own a random generator).
    """

    name: str
    policy: SlatePolicy
    version: int
    lock: threading.Lock = field(default_factory=threading.Lock)


def arm_dir(model_dir: str | Path, experiment: str, arm: str) -> Path:
    """Directory of an arm's versioned policy files."""
    return Path(model_dir) / experiment / arm


def read_pointer(directory: Path) -> dict[str, Any] | None:
    """The arm's ``CURRENT.json`` or None when no version was published."""
    try:
        data: dict[str, Any] = json.loads((directory / POINTER).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as err:
        logger.warning("unreadable policy pointer in %s: %s", directory, err)
        return None
    return data


def publish(directory: Path, policy: SlatePolicy, version: int, cursors: dict[str, int]) -> Path:
    """Save ``policy`` as ``version`` and point ``CURRENT.json`` at it, both atomically.

    Args:
        directory: the arm's directory.
        policy: the policy to publish.
        version: its version number (greater than the current one).
        cursors: learner progress stored beside the version (``seq``, ``event``).

    Returns:
        The saved policy file.
    """
    directory.mkdir(parents=True, exist_ok=True)
    target = policy.save(directory / f"v{version:08d}.npz")
    pointer = {"version": version, "file": target.name, "policy": policy.policy_name,
               "time": time.time(), **cursors}
    fd, tmp = tempfile.mkstemp(prefix=".CURRENT.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(pointer, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, directory / POINTER)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    old = sorted(directory.glob("v*.npz"))[:-KEEP_VERSIONS]
    for path in old:
        path.unlink(missing_ok=True)
    return target


def build_policy(arm: ArmConfig, shape: ServedShape, experiment: str) -> SlatePolicy:
    """The arm's initial policy: its saved file, or a fresh one from the registry.

    Raises:
        ConfigError: unknown policy, bad parameters, or a saved file of the wrong shape.
    """
    where = f"experiments[{experiment!r}].arms[{arm.name!r}]"
    if not ensure_registered(arm.policy):
        raise ConfigError(f"`{where}.policy` must be a registered policy among "
                          f"{sorted(registered_policies())}, found {arm.policy!r}.")
    try:
        if arm.policy_file:
            policy = SlatePolicy.load(arm.policy_file)
        else:
            params = {"seed": 0, **dict(arm.params)}
            policy = make_policy(arm.policy, n_items=shape.n_items, k=shape.k,
                                 dim_context=shape.dim_context, **params)
    except (PolicyError, TypeError) as err:
        raise ConfigError(f"`{where}`: cannot build policy {arm.policy!r}: {err}") from None
    if policy.n_items != shape.n_items or policy.k != shape.k or \
            policy.dim_context not in (0, shape.dim_context):
        raise ConfigError(f"`{where}.policy_file` holds a policy for n_items={policy.n_items}, "
                          f"k={policy.k}, d={policy.dim_context}; the service has "
                          f"n_items={shape.n_items}, k={shape.k}, d={shape.dim_context}.")
    return policy


class ModelHub:
    """Every arm's current policy in this process, reloaded when the learner publishes.

    Args:
        cfg: the serving configuration.
        shape: catalog and shapes.
    """

    def __init__(self, cfg: ServingConfig, shape: ServedShape) -> None:
        self.cfg = cfg
        self.shape = shape
        self._arms: dict[tuple[str, str], ArmPolicy] = {}
        self._stamps: dict[tuple[str, str], int] = {}
        self._next_check = 0.0
        self._reload_lock = threading.Lock()
        for exp in cfg.experiments:
            for arm in exp.arms:
                initial = build_policy(arm, shape, exp.name)
                self._arms[(exp.name, arm.name)] = ArmPolicy(arm.policy, initial, 0)
        self.reload(force=True)

    def get(self, experiment: str, arm: str) -> ArmPolicy:
        """The arm's current policy (checks for a newer version at most every reload interval)."""
        now = time.monotonic()
        if now >= self._next_check:
            self.reload()
        return self._arms[(experiment, arm)]

    def reload(self, force: bool = False) -> int:
        """Load every arm whose pointer changed; returns how many were swapped."""
        if not self._reload_lock.acquire(blocking=force):
            return 0
        try:
            self._next_check = time.monotonic() + self.cfg.reload_interval_s
            swapped = 0
            for (exp, arm), current in list(self._arms.items()):
                directory = arm_dir(self.cfg.model_dir, exp, arm)
                try:
                    stamp = (directory / POINTER).stat().st_mtime_ns
                except FileNotFoundError:
                    continue
                if not force and self._stamps.get((exp, arm)) == stamp:
                    continue
                pointer = read_pointer(directory)
                if pointer is None or int(pointer.get("version", -1)) <= current.version:
                    self._stamps[(exp, arm)] = stamp
                    continue
                try:
                    policy = SlatePolicy.load(directory / str(pointer["file"]))
                except (PolicyError, OSError, KeyError) as err:
                    logger.warning("could not load %s/%s version %s: %s", exp, arm,
                                   pointer.get("version"), err)
                    continue
                self._arms[(exp, arm)] = ArmPolicy(current.name, policy, int(pointer["version"]))
                self._stamps[(exp, arm)] = stamp
                swapped += 1
            return swapped
        finally:
            self._reload_lock.release()

    def versions(self) -> dict[tuple[str, str], int]:
        """Current version of every arm's policy in this process."""
        return {key: arm.version for key, arm in self._arms.items()}
