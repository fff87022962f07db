"""Time-ordered splits of a log."""

from __future__ import annotations

import numpy as np
import pandas as pd

from simulator.logs.schema import SlateLog


def train_test_split(log: SlateLog, test_fraction: float = 0.3, *,
                     keep_sessions: bool = True) -> tuple[SlateLog, SlateLog]:
    """Split a log in time: the earliest rows train, the latest test.

    Rows are ordered by ``timestamp`` (row order when the log has none). With
    ``keep_sessions`` every session falls wholly on one side, ordered by when
    it started, so no session leaks from test into train.

    Args:
        log: the log to split.
        test_fraction: share of rows in the test part, in (0, 1).
        keep_sessions: keep each session on one side.

    Returns:
        ``(train, test)``, each in time order.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"`test_fraction` must be in (0, 1), found {test_fraction}.")
    n = log.n_rounds
    time = (log.timestamp.astype(np.int64) if log.timestamp is not None
            else np.arange(n, dtype=np.int64))
    if keep_sessions:
        start = pd.Series(time).groupby(log.session_id).transform("min").to_numpy()
        order = np.lexsort((time, log.session_id, start))
    else:
        order = np.argsort(time, kind="stable")
    cut = round(n * (1.0 - test_fraction))
    if keep_sessions and 0 < cut < n:
        sessions = log.session_id[order]
        # move the cut forward to the next session boundary
        boundary = np.flatnonzero(sessions[1:] != sessions[:-1]) + 1
        later = boundary[boundary >= cut]
        cut = int(later[0]) if later.size else n
    if cut <= 0 or cut >= n:
        raise ValueError(f"`test_fraction`={test_fraction} leaves one side empty for a log of "
                         f"{n} rows{' and its sessions' if keep_sessions else ''}.")
    return log.take(order[:cut]), log.take(order[cut:])
