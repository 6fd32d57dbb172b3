"""Open a static HTML page in Debian's headless Chromium (Playwright drives /usr/bin/chromium; no
browser download) and say what a reader would meet: charts drawn, console errors, network requests."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]

# Per chart: its plot SVG's drawn marks (bars, points, lines, heatmap cells, text) and its size.
_CHARTS_JS = """() => Array.from(document.querySelectorAll('figure.chart')).map(fig => {
  const plot = fig.querySelector('.js-plotly-plot');
  const svg = plot ? plot.querySelector('svg.main-svg') : null;
  const marks = plot ? plot.querySelectorAll(
      '.point, .bars path, .scatterlayer path.js-line, .heatmaplayer image, .hm image, .textpoint, g.trace path').length : 0;
  const box = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
  return {id: plot ? plot.id : null, marks: marks, width: box.width, height: box.height,
          title: (fig.querySelector('.gtitle') || {}).textContent || ''};
})"""


@dataclass
class Visit:
    charts: list[dict] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    title: str = ""


def visit(page_path: Path, screenshot: Path | None = None, width: int = 1280, full_page: bool = True,
          clip_height: int | None = None) -> Visit:
    """Load ``page_path`` from disk, wait for every chart, and report; save a PNG to ``screenshot``."""
    from playwright.sync_api import sync_playwright

    seen = Visit()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": 900})
            page.on("console", lambda m: seen.console_errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: seen.console_errors.append(str(e)))
            page.on("request", lambda r: seen.requests.append(r.url))
            page.goto(Path(page_path).resolve().as_uri(), wait_until="load", timeout=60_000)
            count = page.locator("figure.chart").count()
            page.wait_for_function(
                f"document.querySelectorAll('figure.chart .js-plotly-plot svg.main-svg').length >= {count}",
                timeout=60_000)
            seen.charts = page.evaluate(_CHARTS_JS)
            seen.title = page.title()
            if screenshot is not None:
                if clip_height:
                    page.set_viewport_size({"width": width, "height": clip_height})
                    page.screenshot(path=str(screenshot), full_page=False)
                else:
                    page.screenshot(path=str(screenshot), full_page=full_page)
        finally:
            browser.close()
    return seen
