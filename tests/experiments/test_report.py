"""The report writer: three files, images embedded, numbers carried into summary.json."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from experiments import plots
from experiments.report import Report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def curves() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = [{"policy": p, "seed": s, "step": t, "reward": rng.random(), "regret": t * rng.random()}
            for p in ("a", "b") for s in range(3) for t in range(5)]
    return pd.DataFrame(rows)


def test_report_writes_three_self_contained_files(tmp_path: Path) -> None:
    report = Report("Policy comparison", summary={"policies": {"a": {"value": 0.5, "low": float("nan")}}})
    sec = report.section("Learning")
    sec.text.append("Two policies <b>learn</b>.")
    sec.tables.append(("values", pd.DataFrame({"policy": ["a", "b"], "value": [0.5, 1234.5]})))
    sec.figures.append(("curves", "learning curves", plots.learning_curves(curves())))
    sec.figures.append(("values", "values", plots.value_intervals(pd.DataFrame(
        {"policy": ["a", "b"], "value": [1.0, 2.0], "low": [0.5, 1.5], "high": [1.5, 2.5], "truth": [1.1, 2.2]}))))
    paths = report.write(tmp_path)

    html = paths["html"].read_text()
    images = re.findall(r"src='data:image/png;base64,([^']+)'", html)
    assert len(images) == 2
    assert all(base64.b64decode(img).startswith(PNG_MAGIC) for img in images)
    assert "&lt;b&gt;learn&lt;/b&gt;" in html  # text is escaped, not injected
    assert "1,234" in html  # thousands are grouped

    md = paths["md"].read_text()
    for name in re.findall(r"\(figures/([^)]+)\)", md):
        assert (tmp_path / "figures" / name).read_bytes().startswith(PNG_MAGIC)
    assert "| policy | value |" in md

    summary = json.loads(paths["json"].read_text())
    assert summary == {"policies": {"a": {"value": 0.5, "low": None}}}


def test_plot_input_is_checked() -> None:
    with pytest.raises(ValueError, match=r"missing \['regret'\]"):
        plots.learning_curves(curves().drop(columns="regret"))


def test_every_plot_renders() -> None:
    share = pd.DataFrame({"policy": ["a"], "cross_sell_clicks": [0.3], "up_sell_clicks": [0.2],
                          "cross_sell_revenue": [0.4], "up_sell_revenue": [0.5]})
    est = pd.DataFrame({"policy": ["a", "a"], "estimator": ["ips", "dr"], "estimate": [1.0, 1.1],
                        "low": [0.8, 1.0], "high": [1.2, 1.2], "truth": [1.05, 1.05]})
    rates = pd.DataFrame({"series": ["log"] * 3, "position": [0, 1, 2], "rate": [0.1, 0.05, 0.02],
                          "low": [0.08, 0.04, 0.01], "high": [0.12, 0.06, 0.03]})
    for fig in (plots.shares(share), plots.estimate_vs_truth(est), plots.rate_by_position(rates)):
        assert fig.get_axes()
