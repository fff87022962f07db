"""HTML and SVG of the rollout dashboard, rendered from the experiment document and nothing else.

Every number shown comes from :func:`serving.report.experiment_document`, the
document ``GET /v1/experiments/<name>`` answers; each numeric cell and each plot
marker also carries the document's value in a ``data-value`` attribute, so the
page can be checked against the JSON. Every string from configuration or
requests (experiment, arm and policy names, reasons, actors) is escaped with
:func:`html.escape`. The plots are inline SVG drawn here: no script library, no
build step, nothing fetched from elsewhere.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Sequence
from html import escape
from importlib import resources
from typing import Any

#: arm colours, in the arms' order (cycled)
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2")
#: milliseconds between the page's refreshes
POLL_MS = 3000

PLOT_W, PLOT_H = 720, 240
_LEFT, _RIGHT, _TOP, _BOTTOM = 64, 16, 14, 30

ACTIONS = {
    "continue": "Continue: keep the split in force and collect evidence.",
    "ramp": "Ramp {arm} to the next stage.",
    "ship": "Ship {arm}: give it all traffic.",
    "roll back": "Roll back {arm}: send its traffic to control.",
}


def e(value: object) -> str:
    """``value`` as escaped HTML text (quotes included, so it is safe in attributes too)."""
    return escape(str(value), quote=True)


def asset(name: str) -> str:
    """The text of a file shipped in ``serving/static`` (the page's CSS and script)."""
    return resources.files("serving").joinpath("static", name).read_text(encoding="utf-8")


def fmt(x: float | None, spec: str = ".4f") -> str:
    """A number for reading (an en dash for a missing one)."""
    return "–" if x is None else format(x, spec)


def share(w: float) -> str:
    """A traffic share as a percentage."""
    return f"{w * 100:.4g}%"


def clock_text(ts: float) -> str:
    """UTC wall time of a UNIX time (``2026-12-03 17:45:01 UTC``)."""
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ts))


def num_cell(x: float | None, spec: str = ".4f") -> str:
    """A table cell showing ``x`` and carrying it exactly in ``data-value``."""
    value = "" if x is None else repr(x) if isinstance(x, int) else repr(float(x))
    return f'<td class="num" data-value="{value}">{fmt(x, spec)}</td>'


# ---------------------------------------------------------------------- page parts
def decision_part(doc: dict[str, Any]) -> str:
    """The rollout decision in words, with its reason."""
    d = doc["decision"]
    words = ACTIONS.get(d["action"], d["action"]).format(arm=d["arm"] or "")
    target = "" if not d["weights"] else " New split: " + ", ".join(
        f"{name} {share(w)}" for name, w in d["weights"].items()) + "."
    how = ("The learner applies it by itself (auto = true)." if doc["ramp"]["auto"] else
           "An admin applies it with the form below.") if d["weights"] else ""
    return (f'<h2>Decision</h2><p class="decision" data-action="{e(d["action"])}"><strong>{e(words)}</strong>'
            f'{e(target)} {e(how)}</p><p class="reason">Why: {e(d["reason"])}</p>'
            f'<p class="muted">As of {e(clock_text(doc["series"]["points"][-1]["time"]))}; traffic version '
            f'<span data-value="{doc["traffic_version"]}">{doc["traffic_version"]}</span>. '
            f'Statistics over {e(doc["statistics_window"]["description"])}.</p>')


def arms_part(doc: dict[str, Any]) -> str:
    """The arm table: weights, policy versions, decisions, users, rewards, means and tests."""
    rows = []
    for i, a in enumerate(doc["arms"]):
        colour = COLOURS[i % len(COLOURS)]
        low, high = a["interval"]
        dlow, dhigh = a["diff_interval"]
        rows.append(
            f'<tr data-arm="{e(a["name"])}"><th scope="row"><span class="swatch" data-colour="{colour}">'
            f'<svg width="10" height="10"><rect width="10" height="10" fill="{colour}"/></svg></span> '
            f'{e(a["name"])}{" (control)" if a["name"] == doc["control"] else ""}</th>'
            f'<td>{e(a["policy"])}</td><td class="num" data-value="{e(a["policy_version"])}">'
            f'{e(a["policy_version"] if a["policy_version"] is not None else "–")}</td>'
            f'{num_cell(a["weight"], ".4g")}{num_cell(a["decisions"], "d")}{num_cell(a["users"], "d")}'
            f'{num_cell(a["final"], "d")}{num_cell(a["pending"], "d")}{num_cell(a["rewards"], "d")}'
            f'{num_cell(a["mean_reward"])}{num_cell(low)}{num_cell(high)}'
            f'{num_cell(a["diff_vs_control"], "+.4f")}{num_cell(dlow, "+.4f")}{num_cell(dhigh, "+.4f")}'
            f'{num_cell(a["msprt_p"], ".3g")}</tr>')
    level = 1 - doc["ramp"]["alpha"]
    return (f'<h2>Arms</h2><table id="arms-table"><thead><tr><th>arm</th><th>policy</th><th>version</th>'
            '<th>weight</th><th>decisions</th><th>users</th><th>final</th><th>pending</th><th>rewarded</th>'
            f'<th>mean reward</th><th>{level:.0%} low</th><th>{level:.0%} high</th><th>diff vs control</th>'
            '<th>diff low</th><th>diff high</th><th>mSPRT p</th></tr></thead><tbody>'
            + "".join(rows) + f'</tbody></table><p class="muted">{e(doc["outcomes"])}.</p>')


def checks_part(doc: dict[str, Any]) -> str:
    """Sample-ratio test, guardrails and the off-policy checks against pre-traffic bars."""
    srm = doc["srm"]
    users = ", ".join(f"{name} {n} (expected {srm['expected'][name]:.1f})"
                      for name, n in srm["users"].items())
    rows = "".join(
        f'<tr class="status-{e(g["status"].replace(" ", "-"))}"><td>{e(g["check"])}</td>'
        f'<td>{e(g["arm"] or "all arms")}</td>{num_cell(g["value"], ".4g")}<td>{e(g["rule"])}</td>'
        f'<td class="status">{e(g["status"])}</td></tr>' for g in doc["guardrails"])
    ope_rows = []
    for o in doc["off_policy"]:
        c = o["check"]
        if c is None:
            ope_rows.append(f'<tr data-arm="{e(o["arm"])}"><td>{e(o["arm"])}</td>{num_cell(o["bar"], ".4g")}'
                            '<td colspan="6">not checked yet (the arm has had no traffic request)</td></tr>')
            continue
        ope_rows.append(
            f'<tr data-arm="{e(o["arm"])}"><td>{e(o["arm"])}</td>{num_cell(o["bar"], ".4g")}'
            f'{num_cell(c["value"])}{num_cell(c["low"])}{num_cell(c["high"])}{num_cell(c["n"], "d")}'
            f'<td class="status">{"cleared" if c["passed"] else "failed"}</td>'
            f'<td>{e(clock_text(c["time"]))}</td></tr>')
    ope = ('<p class="muted">No arm has a pre-traffic bar (ope_bar).</p>' if not ope_rows else
           '<table id="ope-table"><thead><tr><th>arm</th><th>bar</th><th>estimate</th><th>95% low</th>'
           '<th>95% high</th><th>decisions</th><th>result</th><th>checked</th></tr></thead><tbody>'
           + "".join(ope_rows) + "</tbody></table>")
    return (f'<h2>Guardrails</h2><p>Sample-ratio test p = <span id="srm-p" data-value="'
            f'{"" if srm["p"] is None else repr(srm["p"])}">{fmt(srm["p"], ".4g")}</span>; users per arm: '
            f'{e(users)}.</p><table id="guardrails-table"><thead><tr><th>check</th><th>arm</th><th>value</th>'
            f'<th>rule</th><th>status</th></tr></thead><tbody>{rows}</tbody></table>'
            f'<h2>Off-policy bar before traffic</h2>{ope}')


def history_part(doc: dict[str, Any], path: str, before: int | None) -> str:
    """A page of the traffic history (who changed it, why), with links to older and newer pages."""
    rows = "".join(
        f'<tr data-version="{h["version"]}"><td class="num">{h["version"]}</td>'
        f'<td>{e(clock_text(h["time"]))}</td>'
        f'<td>{e(", ".join(f"{a} {share(w)}" for a, w in h["weights"].items()))}</td><td>{e(h["actor"])}</td>'
        f'<td>{e(h["reason"])}</td></tr>' for h in doc["history"])
    links = []
    if before is not None:
        links.append(f'<a href="{e(path)}">newest</a>')
    if doc["history_next"] is not None:
        links.append(f'<a href="{e(path)}?history_before={doc["history_next"]}">older</a>')
    return ('<h2>Traffic history</h2><table id="history-table"><thead><tr><th>version</th><th>time</th>'
            '<th>split</th><th>by</th><th>reason</th></tr></thead><tbody>' + rows + "</tbody></table>"
            + (f'<p class="pages">{" · ".join(links)}</p>' if links else ""))


# ---------------------------------------------------------------------- plots
class _Axes:
    """Maps data to the plot area of a ``PLOT_W`` x ``PLOT_H`` SVG."""

    def __init__(self, x0: float, x1: float, y0: float, y1: float) -> None:
        self.x0, self.x1 = x0, x1 if x1 > x0 else x0 + 1.0
        self.y0, self.y1 = y0, y1 if y1 > y0 else y0 + 1.0

    def x(self, v: float) -> float:
        return _LEFT + (v - self.x0) / (self.x1 - self.x0) * (PLOT_W - _LEFT - _RIGHT)

    def y(self, v: float) -> float:
        return PLOT_H - _BOTTOM - (v - self.y0) / (self.y1 - self.y0) * (PLOT_H - _TOP - _BOTTOM)


def _path(points: Sequence[tuple[float, float]]) -> str:
    return " ".join(f"{x:.1f},{y:.1f}" for x, y in points)


def _frame(ax: _Axes, ticks: Sequence[tuple[float, str]], title: str) -> str:
    parts = [f'<rect x="{_LEFT}" y="{_TOP}" width="{PLOT_W - _LEFT - _RIGHT}" '
             f'height="{PLOT_H - _TOP - _BOTTOM}" fill="#fff" stroke="#999"/>']
    for v, label in ticks:
        y = ax.y(v)
        parts.append(f'<line x1="{_LEFT}" x2="{PLOT_W - _RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>'
                     f'<text x="{_LEFT - 4}" y="{y + 4:.1f}" text-anchor="end" font-size="11">'
                     f'{e(label)}</text>')
    parts.append(f'<text x="{_LEFT}" y="{PLOT_H - 8}" font-size="11">{e(clock_text(ax.x0))}</text>'
                 f'<text x="{PLOT_W - _RIGHT}" y="{PLOT_H - 8}" font-size="11" text-anchor="end">'
                 f'{e(clock_text(ax.x1))}</text>'
                 f'<text x="{PLOT_W / 2:.0f}" y="{PLOT_H - 8}" font-size="11" text-anchor="middle">'
                 f'{e(title)}</text>')
    return "".join(parts)


def _changes(ax: _Axes, series: dict[str, Any], control: str) -> str:
    """Dashed vertical lines at the traffic changes between plotted points (the ramp stages).

    A change goes where the points' traffic version moves past it: at its own time,
    kept between the last point before it and the first point after it.
    """
    out = []
    points = series["points"]
    for a, b in itertools.pairwise(points):
        for c in series["changes"]:
            if not a["traffic_version"] < c["version"] <= b["traffic_version"]:
                continue
            x = ax.x(min(max(c["time"], a["time"]), b["time"]))
            moved = ", ".join(f"{arm} {share(w)}" for arm, w in c["weights"].items() if arm != control)
            out.append(f'<g class="stage" data-version="{c["version"]}">'
                       f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{_TOP}" y2="{PLOT_H - _BOTTOM}" stroke="#555" '
                       'stroke-dasharray="4 3"/>'
                       f'<text x="{x + 3:.1f}" y="{_TOP + 11}" font-size="10">v{c["version"]}</text>'
                       f'<title>traffic version {c["version"]} by {e(c["actor"])}: {e(moved)}</title></g>')
    return "".join(out)


def _ticks(lo: float, hi: float, n: int = 4) -> list[tuple[float, str]]:
    return [(lo + (hi - lo) * i / n, f"{lo + (hi - lo) * i / n:.3g}") for i in range(n + 1)]


def reward_plot(doc: dict[str, Any]) -> str:
    """Cumulative mean reward per arm with its interval over time, with the traffic changes marked."""
    series = doc["series"]
    points = series["points"]
    names = [a["name"] for a in doc["arms"]]
    values = [v for p in points for a in p["arms"].values() for v in (a["low"], a["high"], a["mean"])
              if v is not None]
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    pad = (hi - lo) * 0.05 or 0.05
    ax = _Axes(points[0]["time"], points[-1]["time"], lo - pad, hi + pad)
    body = [_frame(ax, _ticks(lo - pad, hi + pad), "cumulative mean reward per final decision")]
    for i, name in enumerate(names):
        colour = COLOURS[i % len(COLOURS)]
        seen = [p for p in points if p["arms"].get(name, {}).get("mean") is not None]
        if not seen:
            continue
        band = [p for p in seen if p["arms"][name]["low"] is not None and p["arms"][name]["high"] is not None]
        if band:
            outline = [(ax.x(p["time"]), ax.y(p["arms"][name]["high"])) for p in band] + \
                [(ax.x(p["time"]), ax.y(p["arms"][name]["low"])) for p in reversed(band)]
            body.append(f'<polygon class="interval" data-arm="{e(name)}" points="{_path(outline)}" '
                        f'fill="{colour}" fill-opacity="0.15" stroke="none"/>')
        line = [(ax.x(p["time"]), ax.y(p["arms"][name]["mean"])) for p in seen]
        last = seen[-1]["arms"][name]
        body.append(f'<polyline class="mean" data-arm="{e(name)}" data-points="{len(seen)}" '
                    f'points="{_path(line)}" fill="none" stroke="{colour}" stroke-width="2"/>'
                    f'<circle class="last" data-arm="{e(name)}" data-value="{last["mean"]!r}" '
                    f'data-low="{"" if last["low"] is None else repr(last["low"])}" '
                    f'data-high="{"" if last["high"] is None else repr(last["high"])}" '
                    f'cx="{line[-1][0]:.1f}" cy="{line[-1][1]:.1f}" r="3.5" fill="{colour}">'
                    f'<title>{e(name)}: {fmt(last["mean"])}</title></circle>')
    body.append(_changes(ax, series, doc["control"]))
    return (f'<svg id="reward-plot" role="img" aria-label="mean reward per arm over time" width="{PLOT_W}" '
            f'height="{PLOT_H}" viewBox="0 0 {PLOT_W} {PLOT_H}" xmlns="http://www.w3.org/2000/svg">'
            + "".join(body) + "</svg>")


def pvalue_plot(doc: dict[str, Any]) -> str:
    """Each treatment's always-valid mSPRT p-value over time (log scale), with alpha marked."""
    series = doc["series"]
    points = series["points"]
    treatments = [a["name"] for a in doc["arms"] if a["name"] != doc["control"]]
    found = [p["msprt_p"][t] for p in points for t in treatments if p["msprt_p"].get(t)]
    floor = min([series["alpha"] / 10, *found])
    lo = math.floor(math.log10(max(floor, 1e-300)))
    ax = _Axes(points[0]["time"], points[-1]["time"], lo, 0.0)
    ticks = [(float(v), f"1e{v}" if v else "1") for v in range(lo, 1, max(1, -lo // 4))]
    body = [_frame(ax, ticks, "mSPRT always-valid p-value (log scale)")]
    ya = ax.y(math.log10(series["alpha"]))
    body.append(f'<line x1="{_LEFT}" x2="{PLOT_W - _RIGHT}" y1="{ya:.1f}" y2="{ya:.1f}" stroke="#d62728" '
                f'stroke-dasharray="2 2"/><text x="{PLOT_W - _RIGHT - 4}" y="{ya - 3:.1f}" font-size="10" '
                f'text-anchor="end">alpha = {series["alpha"]:g}</text>')
    for i, a in enumerate(doc["arms"]):
        name = a["name"]
        if name == doc["control"]:
            continue
        colour = COLOURS[i % len(COLOURS)]
        seen = [p for p in points if p["msprt_p"].get(name) is not None]
        if not seen:
            continue
        line = [(ax.x(p["time"]), ax.y(math.log10(max(p["msprt_p"][name], 1e-300)))) for p in seen]
        last = seen[-1]["msprt_p"][name]
        body.append(f'<polyline class="pvalue" data-arm="{e(name)}" data-points="{len(seen)}" '
                    f'points="{_path(line)}" fill="none" stroke="{colour}" stroke-width="2"/>'
                    f'<circle class="last" data-arm="{e(name)}" data-value="{last!r}" cx="{line[-1][0]:.1f}" '
                    f'cy="{line[-1][1]:.1f}" r="3.5" fill="{colour}"><title>{e(name)}: p = {last:.3g}</title>'
                    "</circle>")
    body.append(_changes(ax, series, doc["control"]))
    return (f'<svg id="pvalue-plot" role="img" aria-label="sequential test p-value over time" '
            f'width="{PLOT_W}" height="{PLOT_H}" viewBox="0 0 {PLOT_W} {PLOT_H}" xmlns="http://www.w3.org/2000/svg">'
            + "".join(body) + "</svg>")


def plots_part(doc: dict[str, Any]) -> str:
    """Both plots with a caption naming the points' source."""
    n = len(doc["series"]["points"])
    return ('<h2>Over time</h2>' + reward_plot(doc) + pvalue_plot(doc)
            + f'<p class="muted">{n} points: the running sums recorded by the learner every '
              f'{doc["series"]["interval_s"]:g} s at most (thinned beyond {doc["series"]["cap"]}), then the '
              'live report. Shaded: the interval of each mean. Dashed lines: traffic changes.</p>')


def experiment_parts(doc: dict[str, Any], path: str, before: int | None) -> dict[str, str]:
    """The parts of the experiment page the script swaps in on each refresh, by element id."""
    return {"part-decision": decision_part(doc), "part-arms": arms_part(doc), "part-plots": plots_part(doc),
            "part-checks": checks_part(doc), "part-history": history_part(doc, path, before)}


# ---------------------------------------------------------------------- pages
def page(title: str, nonce: str, parts_url: str, body: str) -> str:
    """A whole HTML page with the shipped CSS and script inline (under ``nonce``), refreshing its parts."""
    return ('<!doctype html><html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<title>{e(title)}</title><style nonce="{nonce}">{asset("dashboard.css")}</style></head>'
            f'<body data-parts="{e(parts_url)}" data-poll-ms="{POLL_MS}">'
            f'<header><h1>{e(title)}</h1><p class="muted"><a href="/">all experiments</a> · refreshed '
            '<span id="refreshes" data-count="0">0</span> times <span id="refresh-error"></span></p></header>'
            f'{body}<script nonce="{nonce}">{asset("dashboard.js")}</script></body></html>')


def traffic_form(doc: dict[str, Any], endpoint: str, enabled: bool) -> str:
    """The admin form changing the split through ``POST /v1/experiments/<name>/traffic``."""
    if not enabled:
        return ('<h2>Change traffic</h2><p class="muted">Traffic changes are disabled on this service '
                '(no serving.admin_token): the page is read-only.</p>')
    inputs = "".join(
        f'<label>{e(a["name"])} <input type="number" class="weight" data-arm="{e(a["name"])}" '
        f'min="0" max="1" step="any" value="{a["weight"]!r}"></label> ' for a in doc["arms"])
    return ('<h2>Change traffic</h2><form id="traffic-form" data-endpoint="' + e(endpoint) + '">'
            '<p>Read-only without the admin token: it is sent with this change only, never stored.</p>'
            f'<p>{inputs}</p><p><label>reason <input type="text" id="reason" maxlength="500" '
            'value="manual change from the dashboard"></label></p><p><label>admin token '
            '<input type="password" id="admin-token" autocomplete="off"></label> '
            '<button type="submit" id="set-weights" value="weights">set these weights</button> '
            '<button type="submit" id="apply-decision" value="apply">apply the current decision</button></p>'
            '<p id="traffic-result" role="status"></p></form>')


def index_rows(docs: list[dict[str, Any]]) -> str:
    """The experiment list: split, decisions, SRM p and the decision of each."""
    rows = []
    for d in docs:
        decisions = sum(a["decisions"] for a in d["arms"])
        rows.append(
            f'<tr data-experiment="{e(d["name"])}">'
            f'<td><a href="/experiments/{e(d["name"])}">{e(d["name"])}</a></td>'
            f'{num_cell(d["traffic_version"], "d")}'
            f'<td>{e(", ".join(f"{a} {share(w)}" for a, w in d["weights"].items()))}</td>'
            f'{num_cell(decisions, "d")}{num_cell(d["srm_p"], ".4g")}'
            f'<td class="decision" data-action="{e(d["decision"]["action"])}">{e(d["decision"]["action"])}'
            f'{" " + e(d["decision"]["arm"]) if d["decision"]["arm"] else ""}</td></tr>')
    return ('<table id="experiments-table"><thead><tr><th>experiment</th><th>traffic version</th>'
            '<th>split</th><th>decisions</th><th>SRM p</th><th>decision</th></tr></thead><tbody>'
            + "".join(rows) + "</tbody></table>")


def login_page(nonce: str, next_path: str, wrong: bool) -> str:
    """The viewer-token form shown instead of a protected page (401)."""
    note = '<p class="error">That token is wrong.</p>' if wrong else ""
    return ('<!doctype html><html lang="en"><head><meta charset="utf-8"><title>slatewise dashboard</title>'
            f'<style nonce="{nonce}">{asset("dashboard.css")}</style></head>'
            '<body><h1>slatewise dashboard</h1>'
            f'<p>This dashboard needs its viewer token (serving.dashboard_token).</p>{note}'
            '<form method="post" action="/dashboard/login"><input type="hidden" name="next" '
            f'value="{e(next_path)}"><label>viewer token <input type="password" name="token" '
            'autocomplete="off"></label> <button type="submit">open</button></form></body></html>')
