"""Reports a person reads: one self-contained HTML file, a Markdown twin, and summary.json.

A :class:`Report` is a list of sections, each holding text, tables
(``pandas.DataFrame``) and figures (``matplotlib`` figures). ``write(out_dir)``
renders ``report.html`` (figures embedded as base64 PNG, so the file stands
alone), ``report.md`` (figures saved under ``figures/``) and ``summary.json``
(the machine-readable numbers given to the report). Files are written with
the user's umask, like any other file the user creates.

:func:`format_interval` prints an estimate and its interval with the digits the
interval supports (two significant digits of its half-width).
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

from experiments.plain import plain_json

_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#222;line-height:1.45}
h1{border-bottom:2px solid #444;padding-bottom:.2em}h2{margin-top:1.8em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:1em 0;font-size:.92em}
th,td{border:1px solid #ccc;padding:.3em .6em;text-align:right}th{background:#f2f2f2}
td:first-child,th:first-child{text-align:left}
figure{margin:1em 0}figure img{max-width:100%;border:1px solid #eee}
figcaption{font-size:.9em;color:#555}.note{background:#fff8e1;border-left:4px solid #f0b400;padding:.5em 1em}
ul.warnings{background:#fff3f0;border-left:4px solid #d9480f;padding:.5em 1em .5em 2em;font-size:.92em}
"""


@dataclass(slots=True)
class Section:
    """One titled part of a report."""

    title: str
    text: list[str] = field(default_factory=list)
    tables: list[tuple[str, pd.DataFrame]] = field(default_factory=list)
    figures: list[tuple[str, str, Figure]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Report:
    """A report under construction; call :meth:`write` once it is complete."""

    title: str
    summary: dict[str, Any] = field(default_factory=dict)
    sections: list[Section] = field(default_factory=list)

    def section(self, title: str) -> Section:
        """Append and return a new section."""
        sec = Section(title)
        self.sections.append(sec)
        return sec

    def write(self, out_dir: str | os.PathLike[str]) -> dict[str, Path]:
        """Write ``report.html``, ``report.md``, ``figures/*.png`` and ``summary.json``.

        Returns:
            The paths written, by kind (``html``, ``md``, ``json``).
        """
        out = Path(out_dir)
        figures_dir = out / "figures"
        figures_dir.mkdir(parents=True, exist_ok=True)
        pngs: dict[str, bytes] = {}
        for sec in self.sections:
            for name, _caption, fig in sec.figures:
                buf = io.BytesIO()
                fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
                plt.close(fig)
                pngs[name] = buf.getvalue()
                (figures_dir / f"{name}.png").write_bytes(pngs[name])
        paths = {
            "html": _atomic_write(out / "report.html", self._html(pngs)),
            "md": _atomic_write(out / "report.md", self._markdown()),
            "json": _atomic_write(out / "summary.json",
                                  json.dumps(plain_json(self.summary), indent=2, allow_nan=False)),
        }
        return paths

    def _html(self, pngs: dict[str, bytes]) -> str:
        parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(self.title)}"
                 f"</title><style>{_CSS}</style></head><body><h1>{html.escape(self.title)}</h1>"]
        for sec in self.sections:
            parts.append(f"<h2>{html.escape(sec.title)}</h2>")
            parts += [f"<p>{html.escape(t)}</p>" for t in sec.text]
            parts += [f"<p class='note'>{html.escape(n)}</p>" for n in sec.notes]
            for caption, table in sec.tables:
                parts.append(f"<h3>{html.escape(caption)}</h3>")
                parts.append(table.to_html(index=False, float_format=_fmt, border=0, escape=True))
            if sec.warnings:
                parts.append(f"<h3>Warnings ({len(sec.warnings)})</h3><ul class='warnings'>")
                parts += [f"<li>{html.escape(w)}</li>" for w in sec.warnings]
                parts.append("</ul>")
            for name, caption, _fig in sec.figures:
                data = base64.b64encode(pngs[name]).decode()
                # onload marks the image, so a headless browser's DOM dump shows it rendered
                parts.append(f"<figure><img onload='this.dataset.loaded=1' alt='{html.escape(caption)}' "
                             f"src='data:image/png;base64,"
                             f"{data}'><figcaption>{html.escape(caption)}</figcaption></figure>")
        parts.append("</body></html>")
        return "\n".join(parts)

    def _markdown(self) -> str:
        lines = [f"# {self.title}", ""]
        for sec in self.sections:
            lines += [f"## {sec.title}", ""]
            for t in sec.text:
                lines += [t, ""]
            for n in sec.notes:
                lines += [f"> **Note:** {n}", ""]
            for caption, table in sec.tables:
                lines += [f"**{caption}**", "", _markdown_table(table), ""]
            if sec.warnings:
                lines += [f"**Warnings ({len(sec.warnings)})**", ""]
                lines += [f"- {w}" for w in sec.warnings]
                lines += [""]
            for name, caption, _fig in sec.figures:
                lines += [f"![{caption}](figures/{name}.png)", "", f"*{caption}*", ""]
        return "\n".join(lines)


def interval_decimals(low: float, high: float, value: float = math.nan) -> int:
    """Decimal places that show two significant digits of the interval's half-width (may be negative).

    Without a usable interval (NaN, zero width), three significant digits of ``value``.
    """
    half = (high - low) / 2
    if math.isfinite(half) and half > 0:
        return 1 - math.floor(math.log10(half))
    if math.isfinite(value) and value != 0:
        return 2 - math.floor(math.log10(abs(value)))
    return 0


def format_number(value: float, decimals: int) -> str:
    """``value`` rounded to ``decimals`` places (negative: to tens, hundreds...), thousands separated."""
    if not math.isfinite(value):
        return "–"
    rounded = round(value, decimals)
    text = f"{rounded:,.{max(decimals, 0)}f}"
    return "0" if text in ("-0", "-0.0") else text


def format_interval(value: float, low: float, high: float) -> str:
    """``value [low, high]`` with the digits the interval supports.

    >>> format_interval(0.00512, 0.00304, 0.00718)
    '0.0051 [0.0030, 0.0072]'
    >>> format_interval(205.27, 23.67, 735.99)
    '210 [20, 740]'
    """
    d = interval_decimals(low, high, value)
    return f"{format_number(value, d)} [{format_number(low, d)}, {format_number(high, d)}]"


def _fmt(value: float) -> str:
    if value != value:  # NaN
        return "–"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.4g}"


def _markdown_table(table: pd.DataFrame) -> str:
    def cell(value: Any) -> str:
        return _fmt(value) if isinstance(value, float) else str(value).replace("|", "\\|")

    header = "| " + " | ".join(str(c) for c in table.columns) + " |"
    rule = "| " + " | ".join("---" for _ in table.columns) + " |"
    rows = ["| " + " | ".join(cell(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join([header, rule, *rows])


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _atomic_write(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file, with the permissions the umask gives."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp creates 0600; a report is an ordinary file
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
