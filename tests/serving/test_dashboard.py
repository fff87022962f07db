"""The rollout dashboard: its series of running sums, HTML pages, token and size bound."""

from __future__ import annotations

from pathlib import Path

from serving.store import ArmTotals, ExperimentTotals, SplitCounts, SQLiteStore, Totals
from serving.store.totals import SeriesPoint


def _write_totals(store: SQLiteStore, totals: Totals) -> None:
    def write(conn):  # type: ignore[no-untyped-def]
        conn.execute("INSERT INTO totals (id, state) VALUES (1, ?) ON CONFLICT (id) DO UPDATE "
                     "SET state = excluded.state", (totals.to_json(),))

    store._writer.run(write)


def _totals(n: int) -> Totals:
    arms = {"control": ArmTotals(n, n // 2, n * 0.3, n * 0.3), "t": ArmTotals(n, n, n * 0.4, n * 0.4)}
    splits = {1: {"control": SplitCounts(n + 1, n), "t": SplitCounts(n + 2, n)}}
    return Totals(n, n, n, {"ab": ExperimentTotals(arms, splits, {"t": 0.5 * n})})


def test_series_points_follow_the_totals_at_most_every_interval(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    assert store.series("ab") == [] and store.add_series_points(100.0, 10.0, 50) == 0  # no totals yet
    _write_totals(store, _totals(10))
    assert store.add_series_points(100.0, 10.0, 50) == 1
    _write_totals(store, _totals(20))
    assert store.add_series_points(105.0, 10.0, 50) == 0  # too soon
    assert store.add_series_points(111.0, 10.0, 50) == 1
    assert store.add_series_points(130.0, 10.0, 50) == 0  # nothing changed
    points = store.series("ab")
    assert [p.ts for p in points] == [100.0, 111.0]
    assert points[1].arms["t"] == ArmTotals(20, 20, 8.0, 8.0)
    assert points[1].decisions == {"control": 21, "t": 22} and points[1].max_log_lambda == {"t": 10.0}
    assert points[0] == SeriesPoint.from_json(points[0].to_json())


def test_series_is_thinned_to_its_cap_keeping_first_and_last(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    for i in range(1, 30):
        _write_totals(store, _totals(i))
        store.add_series_points(float(i), 0.0, 8)
        assert len(store.series("ab")) <= 8
    points = store.series("ab")
    assert points[0].ts == 1.0 and points[-1].ts == 29.0
    assert [p.ts for p in points] == sorted(p.ts for p in points) and len(points) >= 4
