"""``slatewise learn``: fit a policy from a log alone, prove it on the held-out part, save it to serve.

Three ways to learn (``--policy NAME[:key=value,...]``), each an :class:`OfflineLearner`
(its name, its fit and its keys) found by :func:`learner`:

* ``offline_pl`` — a Plackett-Luce slate policy whose linear scores maximise an
  IPS (or SNIPS) estimate of its value on the log (``bandits.offline.train``);
  keys ``objective``, ``clip``, ``l2``, ``max_epochs``, ``batch_size``, ``learning_rate``,
  ``temperature``.
* ``ppo`` — PPO trained in a world calibrated on the training part of the log
  (``simulator.world.calibrate``: a one-decision world of the log's shoppers
  whose click model is fitted to the log's rewards as events, click or
  purchase), then served on the log's context columns; keys ``total_steps``,
  ``temperature``, ``calibrate_rows`` and the ``[ppo]`` keys of ``train-ppo``.
* any other registered bandit — built for the log's catalog and warm-started by
  its own ``update`` (``bandits.offline.warm``); key ``warm`` (``resample``, the
  default, or ``replay``) plus the policy's constructor arguments.

The held-out share of sessions is then scored with the off-policy estimators
beside the logging policy's own mean reward there; the improvement's interval
and one-sided lower bound combine the estimate's and the logger mean's
uncertainty (see :func:`improvement`). The policy is written to ``--out`` and
the report beside it (``POLICY.json``), which serving checks the catalog against.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import numpy as np
from scipy import stats

from bandits.offline.stamp import CatalogStamp, report_path
from bandits.policy import LAZY_POLICIES, SlatePolicy, make_policy, registered_policies
from experiments.cli.output import emit_json, json_option
from simulator.errors import OPEError, PolicyError, WorldError
from simulator.logs import Catalog, LogFormatError, LogValidationError, SlateLog, load_parquet

REPORT_VERSION = 1
DEFAULT_ESTIMATORS = ("ips", "snips", "dr")
OFFLINE_KEYS = ("objective", "clip", "l2", "max_epochs", "batch_size", "learning_rate", "temperature",
                "val_fraction")
PPO_DEFAULT_STEPS = 20_000
#: What a learner's fit returns: the policy, how it learned, method-specific facts.
Fitted = tuple[SlatePolicy, str, dict[str, Any]]
#: Held-out decisions scored at most (a random subset of a larger held-out part).
MAX_TEST_ROWS = 20_000


@dataclass(frozen=True, slots=True)
class Improvement:
    """One estimator's value of the learned policy on the held-out rows, and its gain over the logger.

    Attributes:
        estimator: the estimator's name.
        value, low, high: the estimate and its 95% interval (reward per decision).
        ess: effective sample size of its importance weights (NaN for DM).
        improvement: ``value - logger_value``.
        improvement_low, improvement_high: its two-sided interval at the report's level.
        lower_bound: its one-sided lower bound at the report's level.
        warnings: the estimator's warnings.
    """

    estimator: str
    value: float
    low: float
    high: float
    ess: float
    improvement: float
    improvement_low: float
    improvement_high: float
    lower_bound: float
    warnings: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        """Plain JSON."""
        return dataclasses.asdict(self) | {"warnings": list(self.warnings)}


@dataclass(frozen=True, slots=True)
class LearnReport:
    """What ``slatewise learn`` did and found.

    Attributes:
        log: the log file.
        policy: the spec learned (``NAME[:key=value,...]``).
        policy_name: the registered name of the saved policy.
        method: how it learned (``offline-ips``, ``warm-resample``, ``ppo-calibrated`` ...).
        out: the policy file.
        train_rows, test_rows: decisions learned from and scored (held out by session; at most
            :data:`MAX_TEST_ROWS` of the held-out decisions, drawn at random, are scored, and
            ``details["held_out_rows"]`` says how many were held out).
        holdout: the held-out share of sessions.
        fit_seconds: wall time of the fit.
        pscore_source: ``logged`` or ``estimated`` (then every estimate inherits that model's error).
        reward_type: the log's reward.
        level: confidence level.
        logger_value, logger_low, logger_high: the logging policy's mean reward per decision on
            the held-out rows, with its interval.
        estimates: one :class:`Improvement` per estimator.
        stamp: the catalog and context the policy was learned on.
        details: method-specific facts (epochs, warm-start updates, PPO steps ...).
    """

    log: str
    policy: str
    policy_name: str
    method: str
    out: str
    train_rows: int
    test_rows: int
    holdout: float
    fit_seconds: float
    pscore_source: str
    reward_type: str
    level: float
    logger_value: float
    logger_low: float
    logger_high: float
    estimates: tuple[Improvement, ...]
    stamp: CatalogStamp
    details: tuple[tuple[str, Any], ...]

    def to_json(self) -> dict[str, Any]:
        """Plain JSON (what ``--json`` prints and ``POLICY.json`` holds)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["estimates"] = [e.to_json() for e in self.estimates]
        out["stamp"] = self.stamp.to_json()
        out["details"] = dict(self.details)
        return {"report_version": REPORT_VERSION} | out


# ---------------------------------------------------------------------------- spec and split
def parse_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """``NAME[:key=value,...]`` -> name and parameters (values read as JSON when they parse)."""
    name, _, rest = spec.partition(":")
    params: dict[str, Any] = {}
    for part in filter(None, rest.split(",")):
        key, eq, raw = part.partition("=")
        if not eq or not key.strip():
            raise click.BadParameter(f"{part!r} in {spec!r} is not key=value; write e.g. "
                                     "'offline_pl:l2=0.001'", param_hint="--policy")
        try:
            params[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            params[key.strip()] = raw
    if not name:
        raise click.BadParameter(f"{spec!r} names no policy", param_hint="--policy")
    return name, params


def split_sessions(log: SlateLog, holdout: float, seed: int) -> tuple[SlateLog, SlateLog]:
    """Train and held-out parts: a random ``holdout`` share of the sessions is held out."""
    sessions = np.unique(np.asarray(log.session_id))
    rng = np.random.default_rng(seed)
    n_test = round(holdout * sessions.size)
    if n_test < 1 or n_test >= sessions.size:
        raise click.BadParameter(f"--holdout {holdout} of {sessions.size} sessions leaves nothing to learn "
                                 "from or to test on", param_hint="--holdout")
    test_sessions = rng.choice(sessions, size=n_test, replace=False)
    is_test = np.isin(np.asarray(log.session_id), test_sessions)
    return log.take(np.flatnonzero(~is_test)), log.take(np.flatnonzero(is_test))


# ---------------------------------------------------------------------------- the three learners
def _fit_offline(train: SlateLog, params: dict[str, Any], seed: int) -> Fitted:
    from bandits.offline.train import fit_offline_pl

    fit = fit_offline_pl(train, seed=seed, **params)
    return fit.policy, f"offline-{fit.objective}", {"epochs": fit.epochs, "best_epoch": fit.best_epoch,
                                                     "train_objective": fit.train_value,
                                                     "val_objective": fit.val_value}


def _catalog_fill(catalog: Catalog) -> dict[str, Any]:
    fill: dict[str, Any] = {"category": np.asarray(catalog.category)}
    if catalog.features.ndim == 2 and catalog.features.shape[1]:
        fill["item_features"] = np.asarray(catalog.features, dtype=np.float64)
    if catalog.price is not None:
        fill["price"] = np.asarray(catalog.price, dtype=np.float64)
    return fill


def _fit_bandit(name: str, train: SlateLog, params: dict[str, Any],
                seed: int) -> Fitted:
    from bandits.offline.warm import warm_start

    rule = str(params.pop("warm", "resample"))
    cls = registered_policies()[name]
    if getattr(cls, "anchor_context", False) and "anchor_column" not in params:
        raise PolicyError(f"{name} reads the anchor item's catalog index from a context column; the log's "
                          f"columns are {list(train.metadata.context_names)[:6]}...: pass "
                          f"{name}:anchor_column=J with the column that holds it.")
    accepted = inspect.signature(cls.__init__).parameters
    args: dict[str, Any] = {"n_items": train.n_items, "k": train.n_positions,
                            "dim_context": train.dim_context, "seed": seed}
    for key, value in _catalog_fill(train.catalog).items():
        if key in accepted and key not in params and accepted[key].default is inspect.Parameter.empty:
            args[key] = value
    try:
        policy = make_policy(name, **(args | params))
    except TypeError as err:
        raise PolicyError(f"{name}: {err}") from None
    info = warm_start(policy, train, rule=rule, seed=seed)
    return policy, f"warm-{rule}", {"warm_rule": rule, "warm_updates": info.updates}


class LogContextWorld:
    """A world whose shoppers see only the log's context columns (the first ``dim_context``).

    ``calibrate`` builds a world whose context is the log's columns followed by the
    anchor's; a policy served on the log's columns must be trained on those alone.
    Everything else is the wrapped world's (its compiled dynamics are not offered).
    """

    def __init__(self, world: Any, dim_context: int) -> None:
        self._world = world
        self._d = int(dim_context)

    def __getattr__(self, name: str) -> Any:
        if name == "fused":
            raise AttributeError(name)
        return getattr(self._world, name)

    @property
    def dim_context(self) -> int:
        """The log's context width."""
        return self._d

    @property
    def context_names(self) -> tuple[str, ...]:
        """The log's context names."""
        return tuple(self._world.context_names[:self._d])

    def context(self, state: Any) -> Any:
        """The wrapped world's context, first ``dim_context`` columns."""
        return np.asarray(self._world.context(state))[:, :self._d]

    def context_bounds(self) -> tuple[Any, Any]:
        """Bounds of those columns."""
        low, high = self._world.context_bounds()
        return np.asarray(low)[:self._d], np.asarray(high)[:self._d]

    def observe(self, state: Any, bounds: tuple[Any, Any] | None = None) -> Any:
        """The wrapped world's observation with the first ``dim_context`` context columns.

        ``bounds`` are this world's (``dim_context`` wide): the wrapped world's bounds are
        kept for the columns dropped, this world's applied to the columns kept.
        """
        if bounds is not None:
            low, high = (np.asarray(b, dtype=np.float64).copy() for b in self._world.context_bounds())
            low[:self._d], high[:self._d] = bounds
            bounds = (low, high)
        seen = self._world.observe(state, bounds=bounds)
        return dataclasses.replace(seen, context=np.asarray(seen.context)[:, :self._d])


def click_view(log: SlateLog) -> SlateLog:
    """The log with its reward read as events (reward > 0), typed ``click``: what ``calibrate`` fits."""
    reward = (np.asarray(log.reward) > 0).astype(np.float64)
    return dataclasses.replace(log, reward=reward,
                               metadata=dataclasses.replace(log.metadata, reward_type="click"))


def _ppo_keys() -> tuple[str, ...]:
    from experiments.ppo.config import PPO_KEYS

    return ("temperature", "calibrate_rows", *PPO_KEYS)


def _fit_ppo(train: SlateLog, params: dict[str, Any], seed: int) -> Fitted:
    from experiments.ppo.config import PPOConfig, TrainConfig, WorldSpec
    from experiments.ppo.train import train_frozen
    from simulator.world import calibrate

    temperature = float(params.pop("temperature", 1.0))
    calibrate_rows = int(params.pop("calibrate_rows", 200_000))
    rows = train if train.n_rounds <= calibrate_rows else train.take(
        np.sort(np.random.default_rng(seed).choice(train.n_rounds, calibrate_rows, replace=False)))
    # The training world uses every training row; the learn command scores policies on its own test split.
    cal = calibrate(click_view(rows), n_simulated=10_000, seed=seed, holdout=0.0)
    world = LogContextWorld(cal.world, train.dim_context)
    base = {"total_steps": PPO_DEFAULT_STEPS, "num_envs": 64, "n_steps": 16, "batch_size": 256,
            "anchor_relation": False, "reward_scale": 1.0, "seed": seed}
    ppo = PPOConfig(**(base | params))
    config = TrainConfig(world=WorldSpec(kind="calibrated", reward="click"), ppo=ppo)
    policy: SlatePolicy = train_frozen(config, world)
    if temperature != 1.0:
        tuned = make_policy("ppo", **(policy.get_params() | {"temperature": temperature}))
        tuned._set_state(policy._get_state())
        policy = tuned
    return policy, "ppo-calibrated", {"ppo_steps": ppo.total_steps, "calibrated_rows": rows.n_rounds,
                                      "calibration_all_inside": cal.all_inside,
                                      "calibrated_reward": "click" if train.metadata.reward_type == "click"
                                      else f"{train.metadata.reward_type} > 0 as an event"}


@dataclass(frozen=True, slots=True)
class OfflineLearner:
    """How ``slatewise learn`` fits one ``--policy`` name from a log.

    Attributes:
        name: the ``--policy`` name.
        fit: ``fit(train, params, seed) -> (policy, method, details)``; ``params`` is a fresh
            dict holding only ``keys`` (the fit may pop from it).
        keys: the ``key=value`` parameters it takes, or a function giving them (read when
            needed, so a learner's heavy imports wait until it is used).
    """

    name: str
    fit: Callable[[SlateLog, dict[str, Any], int], Fitted]
    keys: tuple[str, ...] | Callable[[], tuple[str, ...]]

    def key_names(self) -> tuple[str, ...]:
        """The parameters it takes."""
        return self.keys if isinstance(self.keys, tuple) else self.keys()


#: The learners with a fit of their own; any other registered bandit is warm-started (:func:`learner`).
OFFLINE_LEARNERS: dict[str, OfflineLearner] = {spec.name: spec for spec in (
    OfflineLearner("offline_pl", _fit_offline, OFFLINE_KEYS),
    OfflineLearner("ppo", _fit_ppo, _ppo_keys),
)}


def _warm_keys(name: str) -> tuple[str, ...]:
    params = inspect.signature(registered_policies()[name].__init__).parameters
    return ("warm", *(p for p in params if p != "self"))


def learner(name: str) -> OfflineLearner:
    """The learner for ``--policy name``: its own entry, else a warm start of the registered bandit.

    Raises:
        PolicyError: no learner and no registered policy of that name.
    """
    if name in OFFLINE_LEARNERS:
        return OFFLINE_LEARNERS[name]
    if name not in registered_policies():
        known = sorted(set(registered_policies()) | set(LAZY_POLICIES))
        raise PolicyError(f"unknown policy {name!r}; choose one of {known}.")
    return OfflineLearner(name, functools.partial(_fit_bandit, name),
                          functools.partial(_warm_keys, name))


def fit_policy(name: str, params: dict[str, Any], train: SlateLog, seed: int) -> Fitted:
    """Fit the policy ``name`` on ``train`` by its :class:`OfflineLearner`: ``(policy, method, details)``.

    Raises:
        PolicyError: an unknown policy or parameter, or a policy that cannot learn from this log.
    """
    spec = learner(name)
    keys = spec.key_names()
    unknown = sorted(set(params) - set(keys))
    if unknown:
        raise PolicyError(f"{name} does not take {unknown}; its keys are {list(keys)}.")
    return spec.fit(train, dict(params), seed)


# ---------------------------------------------------------------------------- proof on held-out rows
def improvement(est: Any, logger_mean: float, logger_se: float, level: float) -> Improvement:
    """The estimate beside the logger's held-out mean, with the improvement's interval and lower bound.

    The improvement ``value - logger_mean`` gets the half-widths of the estimate's
    interval and of the logger mean's normal interval added in quadrature; the
    one-sided lower bound is ``improvement - z_level * sqrt(stderr^2 + logger_se^2)``.
    Both treat the two as independent; on the same rows they are usually
    positively correlated, which makes these intervals wider than needed, not narrower.
    """
    z2 = float(stats.norm.ppf(0.5 + level / 2))
    z1 = float(stats.norm.ppf(level))
    gain = est.value - logger_mean
    half_log = z2 * logger_se
    lo = gain - math.hypot(est.value - est.low, half_log)
    hi = gain + math.hypot(est.high - est.value, half_log)
    bound = gain - z1 * math.hypot(est.stderr, logger_se)
    return Improvement(est.estimator, est.value, est.low, est.high, est.ess, gain, lo, hi, bound,
                       tuple(est.warnings))


def evaluate_holdout(policy: SlatePolicy, test: SlateLog, *, estimators: tuple[str, ...] = DEFAULT_ESTIMATORS,
                     level: float = 0.95, n_bootstrap: int = 200,
                     seed: int = 0) -> tuple[float, float, float, tuple[Improvement, ...]]:
    """The logger's mean reward per decision on ``test`` (value, low, high) and each estimator's row."""
    from bandits.ope import estimate_all

    per_row = np.asarray(test.reward).sum(axis=1)
    mean = float(per_row.mean())
    se = float(per_row.std(ddof=1) / math.sqrt(per_row.size)) if per_row.size > 1 else math.inf
    z2 = float(stats.norm.ppf(0.5 + level / 2))
    dist = policy.action_dist(test.context)
    results = estimate_all(test, dist, estimators=list(estimators), level=level, seed=seed,
                           n_bootstrap=n_bootstrap, interval="bootstrap" if n_bootstrap >= 2 else "normal")
    return mean, mean - z2 * se, mean + z2 * se, tuple(improvement(r, mean, se, level) for r in results)


def learn(log_path: Path, spec: str, out: Path, *, holdout: float = 0.2, seed: int = 0,
          level: float = 0.95, n_bootstrap: int = 200, estimators: tuple[str, ...] = DEFAULT_ESTIMATORS,
          max_test_rows: int = MAX_TEST_ROWS) -> LearnReport:
    """Everything ``slatewise learn`` does: read, split, fit, evaluate, save policy and report.

    Raises:
        LogFormatError, LogValidationError: the log cannot be read.
        PolicyError, OPEError, WorldError: the policy cannot be learned or evaluated.
    """
    log = load_parquet(log_path)
    name, params = parse_spec(spec)
    train, test = split_sessions(log, holdout, seed)
    began = time.perf_counter()
    policy, method, details = fit_policy(name, params, train, seed)
    seconds = time.perf_counter() - began
    held_out = test.n_rounds
    if held_out > max_test_rows:  # the action distribution is (rows, n_items, k): score a random subset
        test = test.take(np.sort(np.random.default_rng(seed).choice(held_out, max_test_rows, replace=False)))
    details["held_out_rows"] = held_out
    mean, low, high, rows = evaluate_holdout(policy, test, estimators=estimators, level=level,
                                             n_bootstrap=n_bootstrap, seed=seed)
    stamp = CatalogStamp.of(log.catalog, log.n_positions, log.dim_context, log.metadata.context_names)
    report = LearnReport(str(log_path), spec, policy.policy_name, method, str(out), train.n_rounds,
                         test.n_rounds, holdout, round(seconds, 3), log.metadata.pscore_source,
                         log.metadata.reward_type, level, mean, low, high, rows, stamp,
                         tuple(sorted(details.items())))
    policy.save(out)
    report_path(out).write_text(json.dumps(_plain(report.to_json()), indent=2, allow_nan=False))
    return report


def _plain(value: Any) -> Any:
    from experiments.plain import plain_json

    return plain_json(value)


def _table(report: LearnReport) -> str:
    lines = [f"learned {report.policy} ({report.method}) from {report.train_rows:,} decisions in "
             f"{report.fit_seconds:.1f} s; held out {report.test_rows:,} decisions "
             f"({report.holdout:.0%} of sessions)",
             f"logging policy on the held-out rows: {report.logger_value:.4f} "
             f"[{report.logger_low:.4f}, {report.logger_high:.4f}] {report.reward_type} per decision", "",
             f"{'estimator':<10}{'estimate':>11}  {'95% interval':<23}{'improvement':>12}  "
             f"{'95% interval':<23}{'lower bound':>12}{'ESS':>10}"]
    notes = []
    for e in report.estimates:
        ess = "-" if math.isnan(e.ess) else f"{e.ess:,.0f}"
        gain = f"[{e.improvement_low:.4f}, {e.improvement_high:.4f}]"
        lines.append(f"{e.estimator:<10}{e.value:>11.4f}  [{e.low:.4f}, {e.high:.4f}]".ljust(46)
                     + f"{e.improvement:>10.4f}  " + gain.ljust(23) + f"{e.lower_bound:>12.4f}{ess:>10}")
        notes += [f"{e.estimator}: {w}" for w in e.warnings]
    if notes:
        lines += ["", "warnings:", *(f"  {n}" for n in notes)]
    if report.pscore_source == "estimated":
        lines += ["", "propensities: estimated from the log itself (not logged); every estimate above "
                      "inherits that model's error."]
    lines += ["", f"wrote {report.out} and {report_path(report.out)}"]
    return "\n".join(lines)


@click.command("learn")
@click.argument("log_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--policy", "spec", required=True,
              help="NAME[:key=value,...]: offline_pl, ppo, or any registered bandit (warm-started).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Policy file (.npz) to write; the report goes beside it (.json).")
@click.option("--holdout", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.2,
              show_default=True, help="Share of sessions held out for the off-policy proof.")
@click.option("--estimators", default=",".join(DEFAULT_ESTIMATORS), show_default=True,
              help="Comma-separated estimators for the held-out proof.")
@click.option("--n-bootstrap", type=click.IntRange(0), default=200, show_default=True,
              help="Bootstrap resamples of the intervals (0: normal intervals).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seeds the split and the fit.")
@json_option
def learn_cmd(log_file: Path, spec: str, out: Path, holdout: float, estimators: str, n_bootstrap: int,
              seed: int, as_json: bool) -> None:
    """Learn a policy from LOG_FILE alone, prove it on held-out sessions, and save it."""
    if out.suffix != ".npz":
        raise click.BadParameter(f"{out}: the policy file must end in .npz", param_hint="--out")
    names = tuple(e.strip() for e in estimators.split(",") if e.strip())
    try:
        report = learn(log_file, spec, out, holdout=holdout, seed=seed, n_bootstrap=n_bootstrap,
                       estimators=names)
    except FileNotFoundError as err:
        raise click.ClickException(f"{log_file}: no such log file ({err.strerror})") from None
    except (LogFormatError, LogValidationError, PolicyError, OPEError, WorldError) as err:
        raise click.ClickException(str(err)) from None
    if as_json:
        emit_json(report.to_json())
        return
    click.echo(_table(report))
