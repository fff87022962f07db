"""The dashboard in a real browser: Chromium (headless, through chromedriver) against the real server.

The server runs an auto-rollout experiment on 127.0.0.1; shoppers are simulated
over HTTP (slates, then clicks): equal arms until the learner has ramped the
treatment twice, then a worse treatment until the learner rolls it back. The
browser logs in with the viewer token, waits for the page's own refresh, and the
arm table and the plots are checked against ``GET /v1/experiments/<name>``; a
traffic change is tried without the admin token, with a wrong one and with the
right one. Without Chromium or chromedriver the test is skipped, except under
``SLATEWISE_CI=1``, where it fails.
"""

from __future__ import annotations

import http.client
import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.serving.live import free_port, request, start_server, stop_server

ADMIN = "admin-t0ken"
VIEWER = "viewer-t0ken"


def _browser() -> Any:
    """A headless Chromium session, or a skip (a failure under SLATEWISE_CI=1) when one cannot start."""
    missing = [name for name in ("chromium", "chromedriver") if shutil.which(name) is None]
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        missing.append("the selenium package")
    if missing:
        message = f"the browser test needs {', '.join(missing)} (Debian: apt-get install chromium chromium-driver)"
        if os.environ.get("SLATEWISE_CI") == "1":
            pytest.fail(message)
        pytest.skip(message)
    options = webdriver.ChromeOptions()
    options.binary_location = str(shutil.which("chromium"))
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1100,1900"):
        options.add_argument(arg)
    return webdriver.Chrome(options=options, service=Service(str(shutil.which("chromedriver"))))


def _config(folder: Path) -> Path:
    path = folder / "serving.toml"
    path.write_text(f"""
[serving]
user_id_secret = "a-secret-for-the-browser-test"
n_items = 20
k = 3
dim_context = 4
admin_token = "{ADMIN}"
dashboard_token = "{VIEWER}"
learn_interval_s = 0.3
series_interval_s = 0.4
reward_window_s = 3600

[[experiments]]
name = "checkout"
control = "control"
ramp = [0.1, 0.25, 0.5]
min_decisions_per_stage = 40
non_inferiority_margin = 0.25
auto = true

[[experiments.arms]]
name = "control"
policy = "uniform"
weight = 0.9
learn = false

[[experiments.arms]]
name = "treatment"
policy = "uniform"
weight = 0.1
learn = false
""")
    return path


def _shoppers(port: int, n: int, p_click: dict[str, float], rng: np.random.Generator, tag: str) -> None:
    """``n`` shoppers ask for a slate and click its first item with their arm's probability."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        for i in range(n):
            status, answer = request(port, "POST", "/v1/slates", {
                "user_id": f"{tag}-{i}", "experiment": "checkout",
                "context": rng.normal(size=4).round(3).tolist()}, conn=conn)
            assert status == 200, answer
            click = int(rng.random() < p_click[answer["arm"]])
            status, body = request(port, "POST", "/v1/rewards",
                                   {"event_id": answer["event_id"], "clicks": [click, 0, 0]}, conn=conn)
            assert status in (200, 202), body
    finally:
        conn.close()


def _report(port: int) -> dict[str, Any]:
    status, doc = request(port, "GET", "/v1/experiments/checkout?series=1")
    assert status == 200, doc
    return dict(doc)


def _until(port: int, done: Any, drive: Any, what: str, limit_s: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        drive()
        doc = _report(port)
        if done(doc):
            return doc
    raise AssertionError(f"the learner did not {what} within {limit_s:g} s: {_report(port)['history']}")


def _settled(port: int, quiet_s: float = 2.0) -> dict[str, Any]:
    """The report once the learner has folded in every reward and recorded the last sums.

    Settled: the stored points and every arm's counts stay the same for ``quiet_s`` (several
    learner passes, which a loaded machine can delay), so the page loaded next shows the same.
    """
    def state(doc: dict[str, Any]) -> Any:
        return doc["series"]["points"][:-1], [(a["decisions"], a["rewards"], a["final"]) for a in doc["arms"]]

    deadline = time.monotonic() + 60.0
    doc = _report(port)
    since, seen = time.monotonic(), state(doc)
    while time.monotonic() < deadline:
        time.sleep(0.25)
        doc = _report(port)
        if state(doc) != seen:
            since, seen = time.monotonic(), state(doc)
        elif time.monotonic() - since >= quiet_s:
            return doc
    raise AssertionError("the series did not settle within 60 s")


def _cells(driver: Any) -> dict[str, list[str]]:
    from selenium.webdriver.common.by import By

    rows = driver.find_elements(By.CSS_SELECTOR, "#arms-table tbody tr")
    return {r.get_attribute("data-arm"): [c.get_attribute("data-value") for c in
                                          r.find_elements(By.CSS_SELECTOR, "td[data-value]")] for r in rows}


@pytest.mark.slow
def test_the_dashboard_in_a_browser(tmp_path: Path) -> None:
    driver = _browser()
    port = free_port()
    proc = start_server(tmp_path, port, {"SLATEWISE_CONFIG": str(_config(tmp_path))}, workers=1)
    rng = np.random.default_rng(0)
    try:
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait

        rounds = iter(range(10_000))
        ramped = _until(port, lambda d: d["traffic_version"] >= 3,
                        lambda: _shoppers(port, 120, {"control": 0.5, "treatment": 0.55}, rng, f"a{next(rounds)}"),
                        "ramp twice")
        assert [h["actor"] for h in ramped["history"][:2]] == ["rollout", "rollout"]
        assert ramped["weights"]["treatment"] >= 0.25
        rolled = _until(port, lambda d: d["weights"]["treatment"] == 0.0,
                        lambda: _shoppers(port, 120, {"control": 0.4, "treatment": 0.05}, rng, f"b{next(rounds)}"),
                        "roll back")
        assert rolled["history"][0]["reason"].startswith("roll back: guardrail")
        doc = _settled(port)

        url = f"http://127.0.0.1:{port}/experiments/checkout"
        driver.get(url)
        assert driver.find_elements(By.CSS_SELECTOR, "#arms-table") == []  # the viewer token is asked first
        driver.find_element(By.NAME, "token").send_keys(VIEWER)
        driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
        wait = WebDriverWait(driver, 20)
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#arms-table"))
        assert driver.current_url == url
        wait.until(lambda d: int(d.find_element(By.ID, "refreshes").get_attribute("data-count")) >= 1)

        cells = _cells(driver)  # after the refresh: the parts fetched by the page's own script
        assert set(cells) == {"control", "treatment"}
        for arm in doc["arms"]:
            shown = cells[arm["name"]]
            expected = [arm["policy_version"], arm["weight"], arm["decisions"], arm["users"], arm["final"],
                        arm["pending"], arm["rewards"], arm["mean_reward"], *arm["interval"],
                        arm["diff_vs_control"], *arm["diff_interval"], arm["msprt_p"]]
            assert [None if v == "" else float(v) for v in shown] == expected, arm["name"]
        decision = driver.find_element(By.CSS_SELECTOR, "#part-decision .decision")
        assert decision.get_attribute("data-action") == doc["decision"]["action"]

        points = doc["series"]["points"]
        assert len(points) >= 4
        for plot, kind in (("reward-plot", "mean"), ("pvalue-plot", "pvalue")):
            svg = driver.find_element(By.ID, plot)
            assert svg.size["width"] > 300 and svg.size["height"] > 100  # drawn, not just present
            lines = {e.get_attribute("data-arm"): int(e.get_attribute("data-points"))
                     for e in svg.find_elements(By.CSS_SELECTOR, f"polyline.{kind}")}
            arms = ["control", "treatment"] if kind == "mean" else ["treatment"]
            assert lines == {a: sum(p["arms"][a]["mean"] is not None if kind == "mean" else
                                    p["msprt_p"][a] is not None for p in points) for a in arms}
            stages = {int(g.get_attribute("data-version")) for g in svg.find_elements(By.CSS_SELECTOR, "g.stage")}
            assert {h["version"] for h in doc["history"][:3]} <= stages  # both ramps and the rollback marked
        last = {c.get_attribute("data-arm"): float(c.get_attribute("data-value"))
                for c in driver.find_elements(By.CSS_SELECTOR, "#reward-plot circle.last")}
        assert last == {a["name"]: a["mean_reward"] for a in doc["arms"]}

        result = driver.find_element(By.ID, "traffic-result")
        weight = {i.get_attribute("data-arm"): i for i in driver.find_elements(By.CSS_SELECTOR, "input.weight")}
        for arm, share in (("control", "0.8"), ("treatment", "0.2")):
            weight[arm].clear()
            weight[arm].send_keys(share)
        driver.find_element(By.ID, "set-weights").click()  # no token: read-only, nothing sent
        wait.until(lambda d: "Read-only" in result.text)
        token = driver.find_element(By.ID, "admin-token")
        token.send_keys("not-the-token")
        driver.find_element(By.ID, "set-weights").click()
        wait.until(lambda d: "Refused (401)" in result.text)
        assert _report(port)["traffic_version"] == doc["traffic_version"]
        token.clear()
        token.send_keys(ADMIN)
        driver.find_element(By.ID, "set-weights").click()
        wait.until(lambda d: "Applied" in result.text)
        mine = doc["traffic_version"] + 1
        change = {h["version"]: h for h in _report(port)["history"]}[mine]  # (auto may roll back again)
        assert change["weights"] == {"control": 0.8, "treatment": 0.2} and change["actor"] == "admin"
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, f'#history-table tr[data-version="{mine}"]'))

        shot = tmp_path / "dashboard.png"
        driver.save_screenshot(str(shot))
        assert shot.stat().st_size > 10_000
        if os.environ.get("SLATEWISE_DASHBOARD_SHOT"):  # how docs/img/dashboard.png is made
            driver.set_window_size(1280, 1420)
            time.sleep(0.5)
            driver.save_screenshot(os.environ["SLATEWISE_DASHBOARD_SHOT"])
    finally:
        driver.quit()
        stop_server(proc)
