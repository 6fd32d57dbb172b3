"""A static, self-contained HTML page: text, tables and Plotly charts, plotly.js inlined once.

The page needs no network: plotly.js comes from the installed ``plotly`` package
(``plotly.offline.get_plotlyjs``), there are no web fonts or images to fetch, and every chart is
drawn in the browser from data embedded in the page. ``Page.write`` is atomic: the file appears
whole or not at all.
"""

from __future__ import annotations

import html
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Sequence

from pipeline.fsutil import write_text

CONFIG = {"displaylogo": False, "responsive": True, "modeBarButtonsToRemove": ["select2d", "lasso2d"]}

CSS = """
:root { --ink:#1b1b1b; --muted:#555; --line:#d8d8d8; --warn:#8a4b00; --warnbg:#fff4e0; --okbg:#eef6ee; --bad:#a00000; }
* { box-sizing: border-box; }
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink); margin: 0; background: #fafafa; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 28px 64px; background: #fff; }
h1 { font-size: 26px; margin: 0 0 4px; } h2 { font-size: 20px; margin: 36px 0 8px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
h3 { font-size: 16px; margin: 22px 0 6px; }
.sub { color: var(--muted); margin: 0 0 16px; }
nav { font-size: 14px; margin: 10px 0 18px; } nav a { margin-right: 14px; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; margin: 12px 0; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 10px 14px; min-width: 180px; }
.card b { display: block; font-size: 20px; } .card span { color: var(--muted); font-size: 13px; }
.note { border-left: 5px solid #4a7; background: var(--okbg); padding: 8px 12px; margin: 10px 0; }
.note.warn { border-left-color: var(--warn); background: var(--warnbg); }
.note.bad { border-left-color: var(--bad); background: #fde8e8; }
.note::before { font-weight: 700; margin-right: 6px; }
.note.warn::before { content: "Caution:"; } .note.bad::before { content: "Alert:"; } .note.info::before { content: "Note:"; }
figure.chart { margin: 14px 0 20px; overflow-x: auto; } figcaption { color: var(--muted); font-size: 13px; margin-top: 2px; }
table { border-collapse: collapse; margin: 8px 0 14px; font-size: 13.5px; }
th, td { border-bottom: 1px solid var(--line); padding: 4px 10px 4px 0; text-align: left; vertical-align: top; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
details { margin: 6px 0 14px; } summary { cursor: pointer; color: #0b5394; }
.passage { border: 1px solid var(--line); border-radius: 6px; padding: 8px 12px; margin: 8px 0; }
.passage .meta { color: var(--muted); font-size: 13px; margin-bottom: 4px; }
mark { background: #ffe58a; padding: 0 1px; border-bottom: 2px solid #b08900; }
.grid2 { display: grid; grid-template-columns: 1fr 1fr; gap: 18px; } @media (max-width: 900px) { .grid2 { grid-template-columns: 1fr; } }
footer { color: var(--muted); font-size: 12.5px; margin-top: 40px; }
"""


def esc(value) -> str:
    return html.escape("" if value is None else str(value))


def highlight(text: str, phrases: Iterable[str]) -> str:
    """``text`` escaped, with each occurrence of any of ``phrases`` (case-insensitive, longest first) in <mark>."""
    phrases = sorted({p for p in phrases if isinstance(p, str) and p.strip()}, key=len, reverse=True)
    if not phrases:
        return esc(text)
    pattern = re.compile("|".join(re.escape(p) for p in phrases), re.IGNORECASE)
    out, last = [], 0
    for m in pattern.finditer(text):
        out += [esc(text[last:m.start()]), f"<mark>{esc(m.group(0))}</mark>"]
        last = m.end()
    return "".join(out) + esc(text[last:])


def table(header: Sequence[str], rows: Iterable[Sequence], numeric: Sequence[int] = (), caption: str = "") -> str:
    """An HTML table; cells are escaped unless wrapped in ``Raw``; columns in ``numeric`` right-aligned."""
    def cell(tag, i, v):
        cls = ' class="num"' if i in numeric else ""
        return f"<{tag}{cls}>{v if isinstance(v, Raw) else esc(v)}</{tag}>"

    head = "".join(cell("th", i, h) for i, h in enumerate(header))
    body = "".join("<tr>" + "".join(cell("td", i, v) for i, v in enumerate(r)) + "</tr>" for r in rows)
    cap = f"<caption>{esc(caption)}</caption>" if caption else ""
    return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


class Raw(str):
    """Markup that ``table`` and ``Page`` insert as is (already escaped)."""


class Page:
    """Blocks of HTML in order; ``figure`` embeds a Plotly figure (drawn by the inlined plotly.js)."""

    def __init__(self, title: str, subtitle: str = ""):
        self.title, self.subtitle = title, subtitle
        self.blocks: list[str] = []
        self.toc: list[tuple[str, str]] = []
        self.charts = 0

    def section(self, title: str) -> None:
        anchor = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
        self.toc.append((anchor, title))
        self.blocks.append(f'<h2 id="{anchor}">{esc(title)}</h2>')

    def heading(self, title: str) -> None:
        self.blocks.append(f"<h3>{esc(title)}</h3>")

    def text(self, text: str) -> None:
        self.blocks.append(f"<p>{esc(text)}</p>")

    def raw(self, markup: str) -> None:
        self.blocks.append(markup)

    def note(self, text: str, kind: str = "info") -> None:
        """A boxed note; ``kind`` info, warn or bad (each also says so in words, not only by colour)."""
        self.blocks.append(f'<div class="note {kind}" role="note">{esc(text)}</div>')

    def cards(self, items: Sequence[tuple[str, str]]) -> None:
        """Key figures: (value, what it is) pairs."""
        inner = "".join(f'<div class="card"><b>{esc(v)}</b><span>{esc(k)}</span></div>' for v, k in items)
        self.blocks.append(f'<div class="cards">{inner}</div>')

    def figure(self, fig, caption: str) -> None:
        """Embed ``fig`` with a caption saying what it shows (also its accessible description)."""
        import plotly.io as pio

        self.charts += 1
        div_id = f"chart-{self.charts}"
        body = pio.to_html(fig, include_plotlyjs=False, full_html=False, div_id=div_id, config=CONFIG)
        self.blocks.append(f'<figure class="chart" role="img" aria-label="{esc(caption)}">{body}'
                           f"<figcaption>{esc(caption)}</figcaption></figure>")

    def details(self, summary: str, markup: str) -> None:
        self.blocks.append(f"<details><summary>{esc(summary)}</summary>{markup}</details>")

    def render(self) -> str:
        from plotly.offline import get_plotlyjs

        now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        nav = "".join(f'<a href="#{a}">{esc(t)}</a>' for a, t in self.toc)
        return (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
                f'<meta name="viewport" content="width=device-width, initial-scale=1">'
                f"<title>{esc(self.title)}</title><style>{CSS}</style>"
                f'<script type="text/javascript">{get_plotlyjs()}</script></head>'
                f"<body><main><h1>{esc(self.title)}</h1><p class=\"sub\">{esc(self.subtitle)}</p>"
                f"<nav>{nav}</nav>{''.join(self.blocks)}"
                f"<footer>Generated {now} by framing-pipeline. Static page: works offline, nothing is fetched."
                f"</footer></main></body></html>\n")

    def write(self, path: str | Path) -> None:
        write_text(path, self.render())
