"""The rollout dashboard: its series of running sums, HTML pages, token and size bound."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from html import escape
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flask import Flask
from flask.testing import FlaskClient

from serving import rollout
from serving.blueprints.dashboard import VIEWER_COOKIE
from serving.config import ABExperimentConfig, ArmConfig
from serving.report import MARKED_CHANGES
from serving.store import ArmTotals, ExperimentTotals, SplitCounts, SQLiteStore, Totals
from serving.store.schema import SERIES_CAP
from serving.store.totals import SeriesPoint
from serving.traffic import change_split
from tests.serving.conftest import Clock, admin
from tests.serving.test_experiments_api import ab, fill


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


# ---------------------------------------------------------------------- the document and the pages
class Cells(HTMLParser):
    """Collects, per element id of interest, the data-* attributes of the elements inside it."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, list[str]] = {}  # arm -> data-value of its cells, in column order
        self.marks: list[dict[str, str]] = []  # SVG elements with a data-arm
        self.text: list[str] = []
        self._arm: str | None = None
        self._in_arms = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "table" and a.get("id") == "arms-table":
            self._in_arms = True
        if self._in_arms and tag == "tr" and "data-arm" in a:
            self._arm = a["data-arm"]
            self.rows[self._arm] = []
        if self._in_arms and tag == "td" and self._arm is not None and "data-value" in a:
            self.rows[self._arm].append(a["data-value"])
        if tag in ("polyline", "polygon", "circle") and "data-arm" in a:
            self.marks.append({"tag": tag, **a})

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._in_arms = False
        if tag == "tr":
            self._arm = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)


COLUMNS = ("policy_version", "weight", "decisions", "users", "final", "pending", "rewards", "mean_reward",
           "interval.0", "interval.1", "diff_vs_control", "diff_interval.0", "diff_interval.1", "msprt_p")


def _field(arm: dict[str, Any], column: str) -> Any:
    name, _, index = column.partition(".")
    value = arm[name]
    return value[int(index)] if index else value


def _parse(html: str) -> Cells:
    cells = Cells()
    cells.feed(html)
    return cells


def _as_number(text: str) -> float | None:
    return None if text == "" else float(text)


def run_ramp_and_rollback(app: Flask, clock: Clock) -> list[list[tuple[str, float]]]:
    """Equal arms through two ramp stages (applied by the learner), then a worse treatment, rolled back."""
    learner = app.extensions["slatewise"].learner
    batches = []
    for seed, n, p_treatment in ((1, 400, 1.0), (2, 300, 1.0), (3, 1500, 0.1)):
        batches.append(fill(app, "ab", n, {"control": 1.0 if p_treatment == 1.0 else 0.6,
                                           "treatment": p_treatment}, seed=seed))
        learner.run_once()
        clock.now += 60
    learner.run_once()  # nothing new: no point
    return batches


def rollout_exp() -> ABExperimentConfig:
    return ab(arms=(ArmConfig("control", "uniform", 0.9, learn=False), ArmConfig("treatment", "uniform", 0.1,
                                                                               learn=False)),
              ramp=(0.1, 0.25, 0.5), min_decisions_per_stage=30, auto=True)


@pytest.fixture
def driven(app_factory: Callable[..., Flask], clock: Clock) -> tuple[Flask, list[list[tuple[str, float]]]]:
    app = app_factory(experiments=(rollout_exp(),), series_interval_s=30.0)
    return app, run_ramp_and_rollback(app, clock)


def test_page_numbers_are_the_json_documents(driven: tuple[Flask, Any]) -> None:
    app, _ = driven
    client = app.test_client()
    page = client.get("/experiments/ab")
    assert page.status_code == 200 and page.mimetype == "text/html"
    doc = client.get("/v1/experiments/ab?series=1").get_json()
    history = [h["reason"].split(":")[0] for h in doc["history"]]
    assert history == ["roll back", "ramp", "ramp", "configured split"]
    cells = _parse(page.get_data(as_text=True))
    assert set(cells.rows) == {"control", "treatment"}
    for arm in doc["arms"]:
        shown = cells.rows[arm["name"]]
        assert len(shown) == len(COLUMNS)
        for column, text in zip(COLUMNS, shown, strict=True):
            assert _as_number(text) == _field(arm, column), (arm["name"], column)
    text = "".join(cells.text)
    assert "Roll back" not in text or doc["decision"]["action"] == "roll back"
    assert doc["decision"]["reason"] in text


def test_plots_follow_the_series_and_end_at_the_report(driven: tuple[Flask, Any]) -> None:
    app, batches = driven
    client = app.test_client()
    doc = client.get("/v1/experiments/ab?series=1").get_json()
    points = doc["series"]["points"]
    assert len(points) == 4  # three learner passes with new sums, then the live report
    first = points[0]["arms"]
    for name in ("control", "treatment"):  # the first stored point: the first batch alone, by hand
        r = np.array([click for arm, click in batches[0] if arm == name])
        half = 1.959963984540054 * r.std(ddof=1) / np.sqrt(r.size)
        assert first[name]["final"] == r.size
        assert first[name]["mean"] == pytest.approx(r.mean())
        assert [first[name]["low"], first[name]["high"]] == pytest.approx([r.mean() - half, r.mean() + half])
    live = points[-1]["arms"]
    for arm in doc["arms"]:
        assert live[arm["name"]]["mean"] == arm["mean_reward"] and live[arm["name"]]["decisions"] == arm["decisions"]
    p = [pt["msprt_p"]["treatment"] for pt in points]
    assert all(b <= a for a, b in itertools.pairwise(p))  # always-valid p never rises
    assert p[-1] == doc["arms"][1]["msprt_p"] and p[-1] < 0.05
    marks = _parse(client.get("/experiments/ab").get_data(as_text=True)).marks
    means = {m["data-arm"]: m for m in marks if m.get("class") == "mean"}
    assert {a: int(m["data-points"]) for a, m in means.items()} == {"control": 4, "treatment": 4}
    last = {m["data-arm"]: float(m["data-value"]) for m in marks if m["tag"] == "circle" and "data-low" in m}
    assert last == {a["name"]: a["mean_reward"] for a in doc["arms"]}
    page = client.get("/experiments/ab").get_data(as_text=True)
    inside = [c["version"] for c in doc["series"]["changes"] if c["version"] > points[0]["traffic_version"]]
    assert inside == [3, 4]  # the second ramp and the rollback happened between plotted points
    for version in inside:
        assert page.count(f'class="stage" data-version="{version}"') == 2  # on both plots
    assert 'class="stage" data-version="2"' not in page  # before the first point


def test_parts_are_the_page_sections(driven: tuple[Flask, Any]) -> None:
    app, _ = driven
    client = app.test_client()
    page = client.get("/experiments/ab").get_data(as_text=True)
    parts = client.get("/experiments/ab/parts").get_json()["parts"]
    assert set(parts) == {"part-decision", "part-arms", "part-plots", "part-checks", "part-history"}
    for key in ("part-arms", "part-checks", "part-history"):  # the decision and plots carry the clock
        assert f'<section id="{key}">{parts[key]}</section>' in page


def test_index_lists_experiments_with_their_state(driven: tuple[Flask, Any]) -> None:
    app, _ = driven
    client = app.test_client()
    page = client.get("/").get_data(as_text=True)
    doc = client.get("/v1/experiments/ab").get_json()
    assert 'href="/experiments/ab"' in page and f'data-action="{doc["decision"]["action"]}"' in page
    assert f'data-value="{sum(a["decisions"] for a in doc["arms"])!r}"' in page
    assert client.get("/parts").get_json()["parts"]["part-experiments"] in page


def test_guardrails_and_the_off_policy_bar(app_factory: Callable[..., Flask]) -> None:
    exp = ab(arms=(ArmConfig("control", "uniform", 1.0), ArmConfig("candidate", "uniform", 0.0, ope_bar=0.9)))
    app = app_factory(experiments=(exp,))
    client = app.test_client()
    assert client.get("/v1/experiments/ab").get_json()["off_policy"] == [
        {"arm": "candidate", "bar": 0.9, "check": None}]
    fill(app, "ab", 300, {"control": 0.3, "candidate": 0.3})
    res = client.post("/v1/experiments/ab/traffic", headers=admin(),
                      json={"weights": {"control": 0.95, "candidate": 0.05}})
    assert res.status_code == 409
    check = client.get("/v1/experiments/ab").get_json()["off_policy"][0]["check"]
    svc = app.extensions["slatewise"]
    est = rollout.off_policy_estimate(svc.store, exp, svc.hub.get("ab", "candidate").policy)
    assert check["passed"] is False and check["n"] == 300
    assert [check["value"], check["low"], check["high"]] == pytest.approx([est.value, est.low, est.high])
    page = client.get("/experiments/ab").get_data(as_text=True)
    assert f'data-value="{check["low"]!r}"' in page and ">failed<" in page


def test_a_sample_ratio_mismatch_shows_as_a_breach(app: Flask, client: FlaskClient) -> None:
    fill(app, "ab", 300, {"control": 0.3, "treatment": 0.3}, arm_of=lambda user: "control")
    doc = client.get("/v1/experiments/ab").get_json()
    srm = doc["guardrails"][0]
    assert srm["status"] == "breach" and srm["value"] == doc["srm_p"] < 1e-10
    assert 'class="status-breach"' in client.get("/experiments/ab").get_data(as_text=True)


HOSTILE = "<img src=x onerror=alert(1)>&\"'"


def test_names_and_reasons_are_escaped(app_factory: Callable[..., Flask]) -> None:
    exp = ab(arms=(ArmConfig("control", "uniform", 0.5), ArmConfig(HOSTILE, "uniform", 0.5, learn=False)))
    app = app_factory(experiments=(exp,))
    client = app.test_client()
    fill(app, "ab", 50, {"control": 0.3, HOSTILE: 0.3})
    res = client.post("/v1/experiments/ab/traffic", headers=admin(),
                      json={"weights": {"control": 0.6, HOSTILE: 0.4}, "reason": "<script>alert(2)</script>"})
    assert res.status_code == 200
    for path in ("/experiments/ab", "/"):
        page = client.get(path).get_data(as_text=True)
        assert "<img" not in page and "<script>alert" not in page
        assert "onerror=alert(1)" not in page.replace("&lt;img src=x onerror=alert(1)&gt;", "")
    page = client.get("/experiments/ab").get_data(as_text=True)
    assert escape(HOSTILE, quote=True) in page and "&lt;script&gt;alert(2)&lt;/script&gt;" in page
    assert HOSTILE in _parse(page).rows  # the browser reads the name back exactly


def test_pages_carry_a_nonce_policy(client: FlaskClient) -> None:
    res = client.get("/experiments/ab")
    policy = res.headers["Content-Security-Policy"]
    nonce = policy.split("'nonce-")[1].split("'")[0]
    page = res.get_data(as_text=True)
    assert "default-src 'none'" in policy and f'<script nonce="{nonce}">' in page
    assert page.count("<script") == 1 and "http://" not in page.replace("http://www.w3.org/2000/svg", "")
    assert client.get("/experiments/ab").headers["Content-Security-Policy"] != policy  # fresh per answer


def test_unknown_experiment_page_is_404(client: FlaskClient) -> None:
    assert client.get("/experiments/nope").status_code == 404
    assert client.get("/experiments/nope/parts").status_code == 404


VIEWER = "viewer-token-1"


def test_viewer_token_guards_every_dashboard_route(app_factory: Callable[..., Flask]) -> None:
    client = app_factory(dashboard_token=VIEWER).test_client()
    for path in ("/", "/experiments/ab"):
        res = client.get(path)
        assert res.status_code == 401 and 'action="/dashboard/login"' in res.get_data(as_text=True)
        assert 'id="arms-table"' not in res.get_data(as_text=True)
    for path in ("/parts", "/experiments/ab/parts"):
        res = client.get(path)
        assert res.status_code == 401 and res.get_json()["error"]["field"] == "Authorization"
    bearer = {"Authorization": f"Bearer {VIEWER}"}
    assert client.get("/experiments/ab", headers=bearer).status_code == 200
    assert client.get("/experiments/ab", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/v1/experiments/ab").status_code == 200  # the JSON API is not the dashboard's


def test_login_sets_a_cookie_and_goes_back(app_factory: Callable[..., Flask]) -> None:
    client = app_factory(dashboard_token=VIEWER).test_client()
    wrong = client.post("/dashboard/login", data={"token": "nope", "next": "/experiments/ab"})
    assert wrong.status_code == 401 and "wrong" in wrong.get_data(as_text=True)
    assert client.get_cookie(VIEWER_COOKIE) is None
    res = client.post("/dashboard/login", data={"token": VIEWER, "next": "/experiments/ab"})
    assert res.status_code == 303 and res.headers["Location"] == "/experiments/ab"
    cookie = client.get_cookie(VIEWER_COOKIE)
    assert cookie is not None and VIEWER not in cookie.value and cookie.http_only
    assert client.get("/experiments/ab").status_code == 200 and client.get("/parts").status_code == 200
    away = client.post("/dashboard/login", data={"token": VIEWER, "next": "//elsewhere.example/"})
    assert away.headers["Location"] == "/"  # never sent off-site


def test_without_admin_token_the_page_is_read_only(app_factory: Callable[..., Flask]) -> None:
    page = app_factory(admin_token="").test_client().get("/experiments/ab").get_data(as_text=True)
    assert 'id="traffic-form"' not in page and "read-only" in page


def test_page_and_data_stay_small_at_a_million_decisions(app_factory: Callable[..., Flask]) -> None:
    app = app_factory(experiments=(rollout_exp(),))
    svc = app.extensions["slatewise"]
    exp = svc.cfg.experiment("ab")
    for i in range(MARKED_CHANGES + 5):  # more traffic changes than the plots mark
        change_split(svc.store, exp, {"control": 0.9 - 0.4 * (i % 2), "treatment": 0.1 + 0.4 * (i % 2)},
                     f"change {i} " + "x" * 400, "admin")
    version = svc.store.traffic_version("ab")
    for i in range(1, SERIES_CAP + 40):  # the series fills up and is thinned
        n = i * 1_000_000 // (SERIES_CAP + 39)
        arms = {"control": ArmTotals(n // 2, n // 2, 0.3 * n / 2, 0.3 * n / 2),
                "treatment": ArmTotals(n // 2, n // 2, 0.31 * n / 2, 0.31 * n / 2)}
        splits = {version: {"control": SplitCounts(n // 2, n // 4), "treatment": SplitCounts(n // 2, n // 4)}}
        _write_totals(svc.store, Totals(0, 0, 0, {"ab": ExperimentTotals(arms, splits, {"treatment": i / 10})}))
        svc.store.add_series_points(float(i), 0.0, SERIES_CAP)
    client = app.test_client()
    doc = client.get("/v1/experiments/ab?series=1").get_json()
    assert sum(a["decisions"] for a in doc["arms"]) == 1_000_000
    assert SERIES_CAP // 2 <= len(doc["series"]["points"]) <= SERIES_CAP + 1
    page = client.get("/experiments/ab").data
    parts = client.get("/experiments/ab/parts").data
    assert len(page) + len(parts) < 200_000, (len(page), len(parts))
