"""Serving configuration: frozen dataclasses read from TOML, overridable by environment variables.

Precedence, lowest first: defaults in code (an embedded LinUCB experiment on the
default world), the TOML file, then ``SLATEWISE_<KEY>`` environment variables
for every scalar key of the ``[serving]`` table (for example
``SLATEWISE_DB_PATH``, ``SLATEWISE_ADMIN_TOKEN``, ``SLATEWISE_REWARD_WINDOW_S``).

Example TOML::

    [serving]
    db_path = "serving.db"          # or: store = "postgresql://user:password@host:5432/slatewise"
    admin_token = "change-me"

    [[experiments]]
    name = "default"
    salt = "default-v1"
    control = "control"

    [[experiments.arms]]
    name = "control"
    policy = "linucb"
    weight = 1.0
    params = { alpha = 1.0 }
"""

from __future__ import annotations

import math
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from simulator.errors import ConfigError

ENV_PREFIX = "SLATEWISE_"
SYNCHRONOUS_MODES = ("OFF", "NORMAL", "FULL", "EXTRA")
STORE_URL_SCHEMES = ("postgresql://", "postgres://")


@dataclass(frozen=True, slots=True)
class ArmConfig:
    """One arm of an experiment: a policy and its share of traffic.

    Attributes:
        name: arm name, unique within the experiment.
        policy: registered policy name (``bandits.registered_policies()``).
        weight: initial traffic share; an experiment's weights sum to 1.
        params: extra constructor arguments of the policy (``alpha``, ``epsilon`` ...).
        learn: whether the learner updates this arm's policy from its rewards.
        policy_file: optional saved policy (``.npz``) to start from, e.g. written by
            ``slatewise learn``; checked at start-up against the served catalog and
            context width (and, when its learn report ``POLICY.json`` lies beside it,
            against the catalog's item ids and the context names it was learned on).
        ope_bar: when set, the arm gets no traffic until the lower 95% bound of its
            off-policy estimate (mean reward per decision) on the service's recent
            logs reaches this value.
    """

    name: str
    policy: str
    weight: float
    params: Mapping[str, Any] = field(default_factory=dict)
    learn: bool = True
    policy_file: str = ""
    ope_bar: float | None = None


@dataclass(frozen=True, slots=True)
class ABExperimentConfig:
    """An A/B experiment: arms, sticky assignment salt and rollout rules.

    Attributes:
        name: experiment name (URL path segment).
        salt: mixed into the assignment hash; a new salt reshuffles every user.
        arms: the arms, control included.
        control: name of the control arm.
        ramp: treatment traffic stages, increasing, in (0, 1].
        min_decisions_per_stage: rewarded decisions a treatment needs before a ramp step.
        alpha: significance level of the intervals and the sequential test.
        non_inferiority_margin: a ramp step needs the lower bound of (treatment - control)
            mean reward per decision to be at least ``-margin``.
        srm_alpha: a sample-ratio-mismatch p-value below this is a guardrail breach.
        msprt_tau: standard deviation of the mixing prior of the mSPRT (reward units).
        auto: whether the learner applies ramp and rollback decisions by itself.
    """

    name: str
    salt: str
    arms: tuple[ArmConfig, ...]
    control: str
    ramp: tuple[float, ...] = (0.01, 0.05, 0.25, 0.5)
    min_decisions_per_stage: int = 200
    alpha: float = 0.05
    non_inferiority_margin: float = 0.02
    srm_alpha: float = 0.001
    msprt_tau: float = 0.1
    auto: bool = False

    def arm(self, name: str) -> ArmConfig:
        """The arm called ``name`` (KeyError when unknown)."""
        for arm in self.arms:
            if arm.name == name:
                return arm
        raise KeyError(name)


def _default_experiments() -> tuple[ABExperimentConfig, ...]:
    arm = ArmConfig(name="control", policy="linucb", weight=1.0, params={"alpha": 1.0})
    return (ABExperimentConfig(name="default", salt="default-v1", arms=(arm,), control="control"),)


@dataclass(frozen=True, slots=True)
class ServingConfig:
    """Everything the service needs; the defaults serve LinUCB on the default world.

    Attributes:
        db_path: SQLite file of the event store (``:memory:`` is refused: workers share it).
        store: the event store's database when not the SQLite file: a
            ``postgresql://user:password@host:port/dbname`` URL, shared by every host
            of the service; empty (the default) uses ``db_path``.
        model_dir: directory of versioned policy files and the learner lock.
        admin_token: bearer token of the admin endpoints; empty disables them (403).
        reward_window_s: seconds after a decision during which its reward is accepted.
        max_body_bytes: largest accepted request body.
        max_abs_context: largest accepted absolute value of a context feature (larger
            values overflow the policies' arithmetic; scale features instead).
        synchronous: SQLite ``synchronous`` pragma in WAL mode. ``NORMAL`` survives a
            killed process (every committed decision is in the WAL); ``FULL`` also
            survives power loss at one fsync per decision.
        world_seed: seed of ``World.default`` whose catalog is served when
            ``n_items`` is 0 and no ``catalog`` is given.
        catalog: a shop's catalog file (``catalog.parquet`` from ``slatewise catalog
            import``); answers then carry the shop's own item ids. Needs ``k`` and
            ``dim_context``; a relative path is read from the config file's folder
            when it is there.
        n_items: catalog size for an anonymous catalog (ids ``0..n_items-1``); 0 takes
            the default world's catalog.
        k: slate length; 0 takes the default world's.
        dim_context: context width ``d``; 0 takes the default world's.
        context_names: names of the context columns (for named-feature requests).
        learn_interval_s: seconds between learner passes.
        reload_interval_s: how often a worker checks for a new policy version.
        learner: whether this service runs the learner (one process wins the lock).
        slates_app: answer ``/v1/slates`` from the WSGI sub-application
            ``serving.blueprints.slates.SlatesApp`` mounted in front of Flask (same
            answers, errors and metrics, without Flask's per-request machinery; the
            service refuses to start if Flask request hooks are registered); false
            sends slates through the Flask route like every other request.
        client_timeout_s: seconds a worker thread waits for more of a request before it
            gives up on the client (a stalled body is answered 408).
        client_key: when set, ``POST /v1/rewards`` requires ``Authorization: Bearer
            <client_key>`` (the shop's backend holds it); empty accepts rewards
            carrying any event token this service issued.
        user_id_secret: key of the HMAC that turns every ``user_id`` into the pseudonym
            that is stored (:mod:`serving.privacy`); required when a config file is
            read, generated once under ``model_dir`` for the embedded default.
        retention_days: decisions and rewards older than this many days are removed by
            the learner's pass (0 keeps them forever).
        retention_mode: ``delete`` removes expired decisions with their rewards;
            ``drop_context`` keeps them for the counts but deletes their contexts (they
            leave the exports and the off-policy checks).
        dashboard_token: when set, the dashboard pages (``GET /``, ``GET /experiments/<name>``)
            require it (``Authorization: Bearer <dashboard_token>`` or the cookie its form
            sets); empty leaves them readable by anyone who reaches the service.
        series_interval_s: seconds between the points of the experiments' statistics over
            time (the learner's pass appends one at most this often).
        experiments: the experiments; the first one serves slates by default.
    """

    db_path: str = "slatewise-serving.db"
    store: str = ""
    model_dir: str = "slatewise-models"
    admin_token: str = ""
    reward_window_s: float = 86_400.0
    max_body_bytes: int = 65_536
    max_abs_context: float = 1e6
    synchronous: str = "NORMAL"
    world_seed: int = 0
    catalog: str = ""
    n_items: int = 0
    k: int = 0
    dim_context: int = 0
    context_names: tuple[str, ...] = ()
    learn_interval_s: float = 2.0
    reload_interval_s: float = 0.5
    learner: bool = True
    slates_app: bool = True
    client_timeout_s: float = 5.0
    client_key: str = ""
    user_id_secret: str = field(default="", repr=False)
    retention_days: float = 0.0
    retention_mode: str = "delete"
    dashboard_token: str = field(default="", repr=False)
    series_interval_s: float = 30.0
    experiments: tuple[ABExperimentConfig, ...] = field(default_factory=_default_experiments)

    def __post_init__(self) -> None:
        _validate(self)

    def experiment(self, name: str) -> ABExperimentConfig:
        """The experiment called ``name`` (KeyError when unknown)."""
        for exp in self.experiments:
            if exp.name == name:
                return exp
        raise KeyError(name)


_SCALAR_TYPES: dict[str, type] = {
    "db_path": str, "store": str, "model_dir": str, "admin_token": str, "reward_window_s": float,
    "max_body_bytes": int, "max_abs_context": float, "synchronous": str, "world_seed": int, "catalog": str,
    "n_items": int, "k": int,
    "dim_context": int, "learn_interval_s": float, "reload_interval_s": float, "learner": bool,
    "slates_app": bool, "client_key": str, "client_timeout_s": float,
    "user_id_secret": str, "retention_days": float, "retention_mode": str,
    "dashboard_token": str, "series_interval_s": float,
}
RETENTION_MODES = ("delete", "drop_context")


def _validate(cfg: ServingConfig) -> None:
    if cfg.db_path.strip() in ("", ":memory:"):
        raise ConfigError(f"`serving.db_path` must be a file path (workers share it), found "
                          f"{cfg.db_path!r}.")
    if cfg.store and not cfg.store.startswith(STORE_URL_SCHEMES):
        raise ConfigError("`serving.store` must be a postgresql://user:password@host:port/dbname URL, or "
                          f"empty for the SQLite file `serving.db_path`; found a {cfg.store.split(':')[0]!r} "
                          "target.")
    if cfg.synchronous.upper() not in SYNCHRONOUS_MODES:
        raise ConfigError(f"`serving.synchronous` must be one of {list(SYNCHRONOUS_MODES)}, found "
                          f"{cfg.synchronous!r}.")
    for name in ("reward_window_s", "learn_interval_s", "reload_interval_s", "max_abs_context",
                 "client_timeout_s", "series_interval_s"):
        value = getattr(cfg, name)
        if not math.isfinite(value) or value <= 0:
            raise ConfigError(f"`serving.{name}` must be a positive number of seconds, found {value!r}.")
    for name in ("n_items", "k", "dim_context", "max_body_bytes"):
        if getattr(cfg, name) < 0:
            raise ConfigError(f"`serving.{name}` must be >= 0, found {getattr(cfg, name)!r}.")
    if not math.isfinite(cfg.retention_days) or cfg.retention_days < 0:
        raise ConfigError(f"`serving.retention_days` must be >= 0 days (0 keeps everything), found "
                          f"{cfg.retention_days!r}.")
    if cfg.retention_days and cfg.retention_days * 86_400.0 <= cfg.reward_window_s:
        raise ConfigError(f"`serving.retention_days` ({cfg.retention_days}) must be longer than the reward "
                          f"window (`serving.reward_window_s` = {cfg.reward_window_s} s), or rewards would "
                          "arrive for removed decisions.")
    if cfg.retention_mode not in RETENTION_MODES:
        raise ConfigError(f"`serving.retention_mode` must be one of {list(RETENTION_MODES)}, found "
                          f"{cfg.retention_mode!r}.")
    if cfg.max_body_bytes < 256:
        raise ConfigError(f"`serving.max_body_bytes` must be at least 256, found {cfg.max_body_bytes}.")
    if cfg.catalog and (cfg.n_items or not cfg.k or not cfg.dim_context):
        raise ConfigError(f"`serving.catalog` = {cfg.catalog!r} sets the items: leave `serving.n_items` at 0 "
                          f"(found {cfg.n_items}) and set `serving.k` and `serving.dim_context` (found "
                          f"{cfg.k} and {cfg.dim_context}), the slate length and context width the arms' "
                          "policies were learned for.")
    if not cfg.experiments:
        raise ConfigError("`experiments` is empty; configure at least one experiment with one arm.")
    names = [e.name for e in cfg.experiments]
    if len(set(names)) != len(names):
        raise ConfigError(f"`experiments` names must be unique, found {names}.")
    for exp in cfg.experiments:
        _validate_experiment(exp)


def _validate_experiment(exp: ABExperimentConfig) -> None:
    where = f"experiments[{exp.name!r}]"
    if not exp.name or not exp.name.replace("-", "").replace("_", "").isalnum():
        raise ConfigError(f"`{where}.name` must be letters, digits, '-' or '_', found {exp.name!r}.")
    if not exp.arms:
        raise ConfigError(f"`{where}.arms` is empty; add at least the control arm.")
    arm_names = [a.name for a in exp.arms]
    if len(set(arm_names)) != len(arm_names):
        raise ConfigError(f"`{where}.arms` names must be unique, found {arm_names}.")
    if exp.control not in arm_names:
        raise ConfigError(f"`{where}.control` must name an arm among {arm_names}, found {exp.control!r}.")
    weights = [a.weight for a in exp.arms]
    if any(not math.isfinite(w) or w < 0 for w in weights) or abs(sum(weights) - 1.0) > 1e-6:
        raise ConfigError(f"`{where}.arms[*].weight` must be >= 0 and sum to 1, found {weights}.")
    ramp = list(exp.ramp)
    if any(not 0 < r <= 1 for r in ramp) or ramp != sorted(ramp):
        raise ConfigError(f"`{where}.ramp` must be increasing shares in (0, 1], found {ramp}.")
    if not 0 < exp.alpha < 1 or not 0 < exp.srm_alpha < 1:
        raise ConfigError(f"`{where}.alpha` and `srm_alpha` must be in (0, 1), found "
                          f"{exp.alpha}, {exp.srm_alpha}.")
    if exp.min_decisions_per_stage < 1 or exp.msprt_tau <= 0 or exp.non_inferiority_margin < 0:
        raise ConfigError(f"`{where}`: `min_decisions_per_stage` >= 1, `msprt_tau` > 0 and "
                          "`non_inferiority_margin` >= 0 are required.")


def _arm_from_toml(data: Mapping[str, Any], where: str) -> ArmConfig:
    known = {f.name for f in fields(ArmConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"`{where}` has unknown keys {unknown}; known keys are {sorted(known)}.")
    for key in ("name", "policy", "weight"):
        if key not in data:
            raise ConfigError(f"`{where}.{key}` is missing.")
    return ArmConfig(
        name=str(data["name"]), policy=str(data["policy"]), weight=float(data["weight"]),
        params=dict(data.get("params", {})), learn=bool(data.get("learn", True)),
        policy_file=str(data.get("policy_file", "")),
        ope_bar=None if data.get("ope_bar") is None else float(data["ope_bar"]),
    )


def _experiment_from_toml(data: Mapping[str, Any], index: int) -> ABExperimentConfig:
    where = f"experiments[{index}]"
    known = {f.name for f in fields(ABExperimentConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"`{where}` has unknown keys {unknown}; known keys are {sorted(known)}.")
    if "name" not in data or "arms" not in data:
        raise ConfigError(f"`{where}` needs `name` and at least one `[[experiments.arms]]`.")
    arms = tuple(_arm_from_toml(a, f"{where}.arms[{i}]") for i, a in enumerate(data["arms"]))
    kwargs: dict[str, Any] = {key: data[key] for key in known if key in data}
    kwargs["arms"] = arms
    kwargs.setdefault("salt", f"{data['name']}-v1")
    kwargs.setdefault("control", arms[0].name)
    if "ramp" in kwargs:
        kwargs["ramp"] = tuple(float(r) for r in kwargs["ramp"])
    return ABExperimentConfig(**kwargs)


def _coerce(key: str, raw: Any, source: str) -> Any:
    kind = _SCALAR_TYPES[key]
    try:
        if kind is bool:
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text not in ("1", "0", "true", "false", "yes", "no"):
                raise ValueError(text)
            return text in ("1", "true", "yes")
        return kind(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"`{key}` from {source} must be {kind.__name__}, found {raw!r}.") from None


def load_serving_config(path: str | os.PathLike[str] | None = None,
                env: Mapping[str, str] | None = None) -> ServingConfig:
    """Read a serving configuration: code defaults, then the TOML file, then the environment.

    Args:
        path: TOML file, or None for the embedded default (``SLATEWISE_CONFIG`` names a
            file when ``path`` is None).
        env: environment variables (default ``os.environ``); ``SLATEWISE_<KEY>``
            overrides the ``[serving]`` key ``<key>``.

    Returns:
        The validated configuration.

    Raises:
        ConfigError: unknown keys, wrong types or invalid values, naming the key.
    """
    environ = os.environ if env is None else env
    if path is None and environ.get(f"{ENV_PREFIX}CONFIG"):
        path = environ[f"{ENV_PREFIX}CONFIG"]
    values: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(Path(path).read_text())
        except FileNotFoundError:
            raise ConfigError(f"serving config {path} does not exist; pass an existing TOML file.") from None
        except tomllib.TOMLDecodeError as err:
            raise ConfigError(f"serving config {path} is not valid TOML: {err}") from None
        unknown = sorted(set(data) - {"serving", "experiments"})
        if unknown:
            raise ConfigError(f"serving config {path} has unknown tables {unknown}; use [serving] "
                              "and [[experiments]].")
        serving = dict(data.get("serving", {}))
        known = set(_SCALAR_TYPES) | {"context_names"}
        bad = sorted(set(serving) - known)
        if bad:
            raise ConfigError(f"`serving` has unknown keys {bad}; known keys are {sorted(known)}.")
        for key, raw in serving.items():
            values[key] = tuple(str(v) for v in raw) if key == "context_names" else \
                _coerce(key, raw, str(path))
        where = values.get("catalog")
        if where and not Path(where).is_absolute() and (Path(path).parent / where).is_file():
            values["catalog"] = str(Path(path).parent / where)
        if "experiments" in data:
            values["experiments"] = tuple(_experiment_from_toml(e, i)
                                          for i, e in enumerate(data["experiments"]))
    for key in _SCALAR_TYPES:
        name = ENV_PREFIX + key.upper()
        if name in environ:
            values[key] = _coerce(key, environ[name], f"environment variable {name}")
    cfg = ServingConfig(**values)
    if path is not None and not cfg.user_id_secret:
        raise ConfigError(f"serving config {path}: `serving.user_id_secret` is not set. The service stores "
                          "only keyed hashes of user ids; set a secret of at least 16 characters in the "
                          "[serving] table or in SLATEWISE_USER_ID_SECRET (only the embedded default "
                          "configuration generates its own).")
    return cfg


def with_overrides(cfg: ServingConfig, **changes: Any) -> ServingConfig:
    """A copy of ``cfg`` with ``changes`` applied and validated."""
    return replace(cfg, **changes)
