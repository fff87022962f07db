"""Open a report in headless Chromium, check every image rendered, and take a screenshot.

Run: python scripts/check_report.py DIR/report.html [--screenshot out.png]
Needs Debian's `chromium` package (apt-get install chromium). Prints one JSON
document and exits 1 when an image did not load or the page rendered blank.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import matplotlib.image as mpimg

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--virtual-time-budget=10000", "--hide-scrollbars"]


def main() -> int:
    """Check the report; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("report", type=Path)
    parser.add_argument("--screenshot", type=Path, default=None)
    args = parser.parse_args()
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        print(json.dumps({"error": "chromium not found; apt-get install chromium"}))
        return 2
    url = args.report.resolve().as_uri()
    html = args.report.read_text()
    expected = len(re.findall(r"<img ", html))
    shot = args.screenshot or Path(tempfile.mkdtemp()) / "report.png"
    with tempfile.TemporaryDirectory() as profile:
        common = [browser, *FLAGS, f"--user-data-dir={profile}"]
        dom = subprocess.run([*common, "--dump-dom", url], capture_output=True, text=True, timeout=120,
                             check=True).stdout
        subprocess.run([*common, f"--screenshot={shot}", "--window-size=1200,3000", url],
                       capture_output=True, timeout=120, check=True)
    loaded = len(re.findall(r'data-loaded="1"', dom))
    pixels = mpimg.imread(str(shot))[..., :3]
    non_white = float((pixels.mean(axis=2) < 0.95).mean())
    ok = expected > 0 and loaded == expected and non_white > 0.02
    print(json.dumps({"report": str(args.report), "images": expected, "images_loaded": loaded,
                      "screenshot": str(shot), "non_white_fraction": round(non_white, 4), "ok": ok},
                     indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
