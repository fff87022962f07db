"""Online learning: one learner turns stored outcomes into new policy versions.

Every worker process of ``slatewise serve`` starts a learner thread, but only
the one holding the store's leader lock works (:meth:`serving.store.EventStore.leader_lock`:
an exclusive ``flock`` on ``<model_dir>/learner.lock`` for SQLite, a PostgreSQL
advisory lock for hosts sharing a database); the others retry the lock every
``learn_interval_s`` seconds, so when the learning process dies another takes
over. A process that takes the lead reads every arm's state from ``model_dir``
afresh, so it continues from the last published version whoever published it. Each pass, for every arm with
``learn = true``, the learner reads the outcomes that became final since its
cursors (rewards by arrival ``seq``; decisions whose reward window closed
without a reward, as reward 0), calls ``policy.update`` once with the batch,
and publishes the result as the next version (:func:`serving.models.publish`),
storing the cursors in the pointer so a new learner resumes where the last
stopped. Workers pick the new version up atomically (see :mod:`serving.models`).
For experiments with ``auto = true`` it also applies the rollout decision.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from bandits import Feedback, PolicyError, SlatePolicy
from serving import rollout
from serving.catalog import ServedShape
from serving.config import ServingConfig
from serving.models import arm_dir, build_policy, publish, read_pointer
from serving.store import EventStore, Removal
from serving.store.schema import SERIES_CAP

logger = logging.getLogger(__name__)

BATCH_LIMIT = 50_000
CHECKPOINT_INTERVAL_S = 0.5
#: seconds between retention passes (the first pass runs at once)
RETENTION_INTERVAL_S = 600.0


class Learner:
    """Updates arm policies from the store and publishes versions.

    Args:
        cfg: serving configuration.
        shape: catalog and shapes.
        store: the event store.
        clock: UNIX time source (tests replace it).
    """

    def __init__(self, cfg: ServingConfig, shape: ServedShape, store: EventStore,
                 clock: Callable[[], float] = time.time) -> None:
        self.cfg = cfg
        self.shape = shape
        self.store = store
        self.clock = clock
        self._state: dict[tuple[str, str], tuple[SlatePolicy, int, dict[str, int]]] = {}
        self._stop = threading.Event()
        self._leader = store.leader_lock(cfg.model_dir)
        self._leading = False
        self._thread: threading.Thread | None = None
        self.passes = 0
        self._next_retention = float("-inf")

    def _current(self, experiment: str, arm: str) -> tuple[SlatePolicy, int, dict[str, int]]:
        key = (experiment, arm)
        if key in self._state:
            return self._state[key]
        directory = arm_dir(self.cfg.model_dir, experiment, arm)
        pointer = read_pointer(directory)
        if pointer is not None:
            try:
                policy = SlatePolicy.load(directory / str(pointer["file"]))
                cursors = {"seq": int(pointer.get("seq", 0)), "event": int(pointer.get("event", 0))}
                self._state[key] = (policy, int(pointer["version"]), cursors)
                return self._state[key]
            except (PolicyError, OSError, KeyError) as err:
                logger.warning("learner could not load %s/%s: %s; starting from the config",
                               experiment, arm, err)
        exp = self.cfg.experiment(experiment)
        self._state[key] = (build_policy(exp.arm(arm), self.shape, experiment), 0,
                            {"seq": 0, "event": 0})
        return self._state[key]

    def run_once(self) -> dict[tuple[str, str], int]:
        """One pass over every learning arm; returns the new version of each arm that changed."""
        published: dict[tuple[str, str], int] = {}
        now = self.clock()
        for exp in self.cfg.experiments:
            for arm in exp.arms:
                if not arm.learn:
                    continue
                policy, version, cursors = self._current(exp.name, arm.name)
                batch = self.store.new_feedback(exp.name, arm.name, self.shape.k, cursors["seq"],
                                                cursors["event"], now - self.cfg.reward_window_s,
                                                BATCH_LIMIT)
                new_cursors = {"seq": batch.seq, "event": batch.event}
                if batch.n == 0:
                    self._state[(exp.name, arm.name)] = (policy, version, new_cursors)
                    continue
                policy.update(Feedback(batch.context, batch.slate, batch.reward, batch.pscore))
                version += 1
                publish(arm_dir(self.cfg.model_dir, exp.name, arm.name), policy, version, new_cursors)
                self._state[(exp.name, arm.name)] = (policy, version, new_cursors)
                published[(exp.name, arm.name)] = version
                logger.info("learner published %s/%s version %d from %d outcomes", exp.name, arm.name,
                            version, batch.n)
            if exp.auto:
                report = rollout.evaluate(self.store, exp, self.cfg.experiments,
                                          now - self.cfg.reward_window_s)
                split = rollout.apply(self.store, exp, report.decision, report.split)
                if split is not None:
                    logger.warning("rollout of %s: %s", exp.name, split.reason)
        rollout.advance(self.store, self.cfg.experiments, now - self.cfg.reward_window_s)  # cheap reports
        self.store.add_series_points(now, self.cfg.series_interval_s, SERIES_CAP)  # the dashboard's plots
        if self.cfg.retention_days and now >= self._next_retention:
            self.retain(now)
            self._next_retention = now + RETENTION_INTERVAL_S
        self.passes += 1
        return published

    def retain(self, now: float) -> Removal:
        """Remove what is older than ``serving.retention_days``, once the totals have counted it.

        Runs after the totals were advanced, so every removed row is already inside
        the experiment statistics' sums (which therefore cover the whole experiment,
        not only the retained rows).
        """
        totals = self.store.totals()
        removal = self.store.expire(now - self.cfg.retention_days * 86_400.0,
                                    min(totals.decision_cursor, totals.expired_cursor),
                                    self.cfg.retention_mode, now)
        if removal.decisions:
            logger.info("retention: %s %d decisions and %d rewards", removal.action, removal.decisions,
                        removal.rewards)
        return removal

    # ------------------------------------------------------------------ background
    def try_lead(self) -> bool:
        """Take the learner lock if free (non-blocking); True when this process holds it.

        On taking the lead (first time or again) the cached arm states are dropped, so
        the pass starts from the versions another leader may have published meanwhile.
        """
        leading = self._leader.try_acquire()
        if leading and not self._leading:
            self._state.clear()
        self._leading = leading
        return leading

    def release(self) -> None:
        """Give up the lock (another process may lead)."""
        self._leader.release()
        self._leading = False

    def _loop(self) -> None:
        next_pass = time.monotonic() + self.cfg.learn_interval_s
        while not self._stop.wait(min(CHECKPOINT_INTERVAL_S, self.cfg.learn_interval_s)):
            try:
                self.store.maintain()
            except Exception as err:  # upkeep is retried on the next tick
                logger.warning("store upkeep failed: %s", err)
            if time.monotonic() < next_pass:
                continue
            next_pass = time.monotonic() + self.cfg.learn_interval_s
            if not self.try_lead():
                continue
            try:
                self.run_once()
            except Exception:  # keep learning after a bad pass; the next one retries
                logger.exception("learner pass failed")

    def start(self) -> threading.Thread:
        """Start the background thread: store upkeep in every process, passes only with the lock.

        Store upkeep (SQLite: a passive WAL checkpoint) runs every
        :data:`CHECKPOINT_INTERVAL_S` seconds; learner passes
        every ``learn_interval_s`` seconds while this process holds the learner lock.
        """
        thread = threading.Thread(target=self._loop, name="slatewise-learner", daemon=True)
        self._thread = thread
        thread.start()
        return thread

    def stop(self) -> None:
        """Stop the background loop after its current pass (waiting up to 30 s for it) and release the lock.

        Waiting keeps the loop from touching the store after the caller closes it.
        """
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=30.0)
        self.release()
