"""The demo's report, on a shrunk copy of its config: what a first reader sees must be right.

No estimate outside the reward's range, units named, every estimate's warnings and a
recommendation for every (policy, log) row in summary.json, report.md and report.html,
training budgets stated, files readable under the user's umask.
"""

from __future__ import annotations

import json
import os
import stat
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from experiments.config import parse_experiment_config
from experiments.runs import DEMO_CONFIG, run
from simulator.world import World


def _shrunk_demo() -> dict[str, Any]:
    raw = tomllib.loads(DEMO_CONFIG.read_text())
    raw["seeds"] = [0]
    raw["simulate"] |= {"sessions": 60, "batch_sessions": 30}
    raw["compare"] |= {"log_sessions": 400, "train_sessions": 60}
    for entry in raw["policies"]:
        if entry["name"] == "ppo":
            entry["params"] = {"train_steps": 1024, "num_envs": 16, "batch_size": 512, "temperature": 0.5}
    return raw


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("demo")
    old = os.umask(0o027)
    try:
        run(parse_experiment_config(_shrunk_demo()), out, workers=2, progress=False, title="demo")
    finally:
        os.umask(old)
    return out, json.loads((out / "summary.json").read_text())


@pytest.mark.slow
def test_no_estimate_outside_the_reward_range(demo: tuple[Path, dict[str, Any]]) -> None:
    _out, summary = demo
    world = World.default(seed=0)
    top = float(np.sort(world.params.price)[-world.k:].sum())  # the most one slate of k items can earn
    policies = summary["compare"]["policies"]
    assert len(policies) == len(_shrunk_demo()["policies"])
    for label, p in policies.items():
        for est, e in p["estimates"].items():
            for key in ("estimate", "low", "high"):
                assert e[key] is not None and 0.0 <= e[key] <= top, (label, est, key, e[key])


@pytest.mark.slow
def test_units_training_and_recommendations_are_named(demo: tuple[Path, dict[str, Any]]) -> None:
    out, summary = demo
    assert "per session" in summary["simulate"]["unit"] and "per decision" in summary["simulate"]["unit"]
    assert summary["compare"]["unit"] == "revenue per decision"
    ppo = next(v for k, v in summary["simulate"]["policies"].items() if "PPO" in k)
    assert "pre-trained by PPO" in ppo["training"] and "train_steps = 1,024" in ppo["training"]
    md, html = (out / "report.md").read_text(), (out / "report.html").read_text()
    for text in (md, html):
        assert "revenue per session" in text and "revenue per decision" in text
        assert "How each policy was trained" in text
    for label, p in summary["compare"]["policies"].items():
        verdict = p["recommendation"]["verdict"]
        assert verdict.startswith("use ") or "cannot support" in verdict, label
        assert p["recommendation"]["reasons"], label
        assert verdict in md and verdict in html
        chosen = [e for e, v in p["estimates"].items() if v["recommended"]]
        assert chosen == ([] if p["recommendation"]["estimator"] is None else [p["recommendation"]["estimator"]])


@pytest.mark.slow
def test_every_warning_reaches_all_three_files(demo: tuple[Path, dict[str, Any]]) -> None:
    out, summary = demo
    warnings = [f"{label} / {est}: {w}" for label, p in summary["compare"]["policies"].items()
                for est, e in p["estimates"].items() for w in e["warnings"]]
    assert warnings  # a 400-session log under softmax logging has small ESS for the greedy policies
    assert summary["compare"]["warnings"][:len(warnings)] == warnings
    md, html = (out / "report.md").read_text(), (out / "report.html").read_text()
    for w in warnings:
        assert f"- {w}" in md
        assert html.count("<li>") >= len(warnings)


@pytest.mark.slow
def test_files_follow_the_umask(demo: tuple[Path, dict[str, Any]]) -> None:
    out, _summary = demo
    for name in ("report.html", "report.md", "summary.json"):
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o640, name  # 0o666 & ~0o027
