"""Plotly figures for the report and the monitor, readable without colour.

Every series carries a second cue besides its colour: bars a fill pattern, lines a dash style and
marker symbol, and every chart labels its marks directly (percentages and counts on bars and
heatmap cells, series names at line ends, one titled panel per label), so a grey-scale print or a
colour-blind reader loses nothing. Colours are the Okabe–Ito palette. Shares are drawn with their
95% Wilson intervals; buckets with fewer passages than ``thin`` get hollow markers.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#999999", "#000000")
PATTERNS = ("/", "x", ".", "\\", "+", "-", "|", "")
DASHES = ("solid", "dash", "dot", "dashdot", "longdash", "longdashdot")
SYMBOLS = ("circle", "square", "diamond", "triangle-up", "x", "cross", "star", "hexagon")
FONT = dict(family="system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif", size=13)


def style(i: int) -> dict:
    """The i-th series' colour, pattern, dash and symbol."""
    return {"color": PALETTE[i % len(PALETTE)], "pattern": PATTERNS[i % len(PATTERNS)],
            "dash": DASHES[i % len(DASHES)], "symbol": SYMBOLS[i % len(SYMBOLS)]}


# A small white theme. Plotly's "plotly_white" template is deep-copied into every figure, which cost
# more than a second per report; these few settings are all the pages use of it.
_AXIS = dict(gridcolor="#e8e8e8", linecolor="#bbb", zerolinecolor="#ccc", automargin=True)


def _fill(s: dict) -> dict:
    """A bar's fill: its colour with its pattern drawn over it, light enough for printed labels to stay legible."""
    return dict(color=s["color"], pattern=dict(shape=s["pattern"], fgcolor="rgba(0,0,0,0.45)", fillmode="overlay",
                                               size=9, solidity=0.2))


def _ink(color: str) -> str:
    """Black or white text, whichever reads better on ``color`` (#rrggbb)."""
    r, g, b = (int(color[i:i + 2], 16) / 255 for i in (1, 3, 5))
    return "#000" if 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.4 else "#fff"


def _layout(fig: go.Figure, title: str, height: int, **kw) -> go.Figure:
    fig.update_layout(title=dict(text=title, x=0, xanchor="left"), height=height, font=FONT, template="none",
                      plot_bgcolor="white", paper_bgcolor="white", margin=dict(l=10, r=30, t=60, b=40), **kw)
    fig.update_xaxes(**_AXIS)
    fig.update_yaxes(**_AXIS)
    return fig


def pct(x: float) -> str:
    return "–" if pd.isna(x) else f"{100 * x:.0f}%"


def share_bars(table: pd.DataFrame, labels: Sequence[str], display: Mapping[str, str], title: str) -> go.Figure:
    """Horizontal bars of each label's overall share with Wilson error bars, labelled "41% (k/n)"."""
    rows = table.set_index("label").loc[list(labels)]
    fig = go.Figure()
    for i, (label, r) in enumerate(rows.iterrows()):
        s = style(i)
        fig.add_bar(y=[display.get(label, label)], x=[r["share"]], orientation="h", name=display.get(label, label),
                    marker=_fill(s),
                    error_x=dict(type="data", symmetric=False, array=[r["hi"] - r["share"]],
                                 arrayminus=[r["share"] - r["lo"]], color="#333"),
                    showlegend=False,
                    hovertemplate=f"{display.get(label, label)}: %{{x:.1%}} (95% CI {pct(r['lo'])}–{pct(r['hi'])})<extra></extra>")
        # The label sits past the interval's end, so it never hides the error bar.
        fig.add_scatter(y=[display.get(label, label)], x=[r["hi"]], mode="text", showlegend=False, hoverinfo="skip",
                        text=[f"  {pct(r['share'])} ({int(r['k'])}/{int(r['n'])})"], textposition="middle right",
                        cliponaxis=False)
    fig.update_xaxes(range=[0, 1.2], tickformat=".0%", tickvals=[0, 0.25, 0.5, 0.75, 1.0],
                     title="share of passages (95% Wilson interval)")
    fig.update_yaxes(autorange="reversed")
    return _layout(fig, title, 90 + 45 * len(labels))


def panels_over_time(table: pd.DataFrame, x: str, labels: Sequence[str], display: Mapping[str, str], title: str,
                     thin: int = 0, reference: Mapping[str, float] | None = None, y_title: str = "share",
                     order: Sequence[str] | None = None) -> go.Figure:
    """One titled panel per label: its share per time bucket (``x``) with the Wilson band as error
    bars; a dashed line at ``reference[label]`` (e.g. training prevalence) when given. ``order`` lists
    every bucket, empty ones included: the line breaks there instead of joining distant periods."""
    fig = make_subplots(rows=len(labels), cols=1, shared_xaxes=True, vertical_spacing=0.09 if len(labels) < 4 else 0.05,
                        subplot_titles=[display.get(k, k) for k in labels])
    for i, label in enumerate(labels):
        s = style(i)
        rows = table[table["label"] == label]
        if order is not None:
            rows = rows.set_index(x).reindex(list(order)).rename_axis(x).reset_index()
        hollow = rows["n"].fillna(0) < thin
        fig.add_scatter(
            x=rows[x], y=rows["share"], mode="lines+markers", name=display.get(label, label), showlegend=False,
            line=dict(color=s["color"], dash=s["dash"], width=2),
            marker=dict(symbol=[s["symbol"] + ("-open" if h else "") for h in hollow], size=8, color=s["color"]),
            error_y=dict(type="data", symmetric=False, array=rows["hi"] - rows["share"],
                         arrayminus=rows["share"] - rows["lo"], color=s["color"], thickness=1),
            customdata=rows[["k", "n", "lo", "hi"]].to_numpy(),
            hovertemplate="%{x}: %{y:.0%} (%{customdata[0]}/%{customdata[1]}; 95% CI "
                          "%{customdata[2]:.0%}–%{customdata[3]:.0%})<extra>" + display.get(label, label) + "</extra>",
            row=i + 1, col=1)
        if reference and label in reference:
            fig.add_hline(y=reference[label], line=dict(color="#333", dash="dash", width=1), row=i + 1, col=1,
                          annotation_text=f"training {pct(reference[label])}", annotation_position="top left")
        fig.update_yaxes(range=[0, 1.05], tickformat=".0%", row=i + 1, col=1, title=y_title if i == len(labels) // 2 else None)
    fig.update_xaxes(type="category", categoryorder="array", categoryarray=list(order) if order is not None else None)
    note = f"hollow markers: fewer than {thin} passages" if thin else ""
    return _layout(fig, title + (f"<br><sup>{note}; bars: 95% Wilson interval</sup>" if note else ""),
                   140 + 170 * len(labels))


def stacked_shares(table: pd.DataFrame, group: str, groups: Sequence[str], labels: Sequence[str],
                   display: Mapping[str, str], title: str, group_display: Mapping[str, str] | None = None) -> go.Figure:
    """100% stacked horizontal bars, one per group, one patterned segment per label with its
    percentage printed inside; the group's n at the bar's end."""
    group_display = group_display or {}
    fig = go.Figure()
    names = [f"{group_display.get(g, g)} (n={int(table[table[group] == g]['n'].iloc[0])})" for g in groups]
    for i, label in enumerate(labels):
        s = style(i)
        rows = table[table["label"] == label].set_index(group).reindex(list(groups))
        fig.add_bar(y=names, x=rows["share"], orientation="h", name=display.get(label, label),
                    marker=_fill(s),
                    text=[f"{display.get(label, label)} {pct(v)}" if v >= 0.12 else (pct(v) if v >= 0.05 else "")
                          for v in rows["share"].fillna(0)],
                    textposition="inside", insidetextanchor="middle", textfont=dict(color=_ink(s["color"])),
                    customdata=rows[["k", "n", "lo", "hi"]].to_numpy(),
                    hovertemplate=display.get(label, label) + ": %{x:.0%} (%{customdata[0]}/%{customdata[1]}; "
                                  "95% CI %{customdata[2]:.0%}–%{customdata[3]:.0%})<extra></extra>")
    fig.update_xaxes(range=[0, 1], tickformat=".0%")
    fig.update_yaxes(autorange="reversed", type="category")
    return _layout(fig, title, 130 + 32 * len(groups), barmode="stack",
                   legend=dict(orientation="h", yanchor="bottom", y=1.0, x=0, traceorder="normal"))


def heatmap(z: pd.DataFrame, text: pd.DataFrame, title: str, colorbar: str, zmax: float | None = None,
            hover: pd.DataFrame | None = None, x_title: str = "", y_title: str = "", x_side: str = "top") -> go.Figure:
    """A grey-blue heatmap whose every cell prints its value (``text``), so colour is only a second cue."""
    fig = go.Figure(go.Heatmap(
        z=z.to_numpy(dtype=float), x=[str(c) for c in z.columns], y=[str(i) for i in z.index],
        text=text.to_numpy(), texttemplate="%{text}", textfont=dict(size=11), colorscale="Blues", zmin=0, zmax=zmax,
        colorbar=dict(title=colorbar, thickness=12), xgap=2, ygap=2,
        customdata=(hover if hover is not None else text).to_numpy(),
        hovertemplate="%{y} · %{x}: %{customdata}<extra></extra>"))
    fig.update_xaxes(type="category", title=x_title, side=x_side)
    fig.update_yaxes(type="category", autorange="reversed", title=y_title)
    width = 220 + 52 * z.shape[1]  # wide tables scroll sideways rather than squeeze their cells' numbers
    return _layout(fig, title, 170 + 30 * z.shape[0], width=width if width > 1120 else None)


def heatmap_menu(options: Mapping[str, tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]], title: str,
                 colorbar: str) -> go.Figure:
    """``heatmap`` of several same-shaped tables (name → (z, text, hover)) with a menu to switch between them."""
    names = list(options)
    z0, text0, hover0 = options[names[0]]
    fig = heatmap(z0, text0, f"{title}: {names[0]}", colorbar, zmax=1, hover=hover0, x_side="bottom")
    buttons = [dict(label=name, method="update",
                    args=[{"z": [z.to_numpy(dtype=float)], "text": [text.to_numpy()], "customdata": [hover.to_numpy()]},
                          {"title.text": f"{title}: {name}"}])
               for name, (z, text, hover) in options.items()]
    fig.update_layout(updatemenus=[dict(buttons=buttons, direction="down", x=0, xanchor="left", y=1.02, yanchor="bottom",
                                        showactive=True)],
                      margin=dict(t=100))
    return fig


def count_bars(items: Sequence[tuple[str, int]], title: str, index: int = 0, x_title: str = "passages") -> go.Figure:
    """Horizontal bars of (name, count) pairs, counts printed at the bar ends."""
    s = style(index)
    fig = go.Figure(go.Bar(y=[k for k, _ in items], x=[v for _, v in items], orientation="h",
                           marker=_fill(s),
                           text=[str(v) for _, v in items], textposition="outside", cliponaxis=False,
                           hovertemplate="%{y}: %{x}<extra></extra>"))
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_xaxes(title=x_title)
    return _layout(fig, title, 110 + 26 * max(len(items), 1))


def psi_bars(items: Sequence[tuple[str, float, str]], threshold: float, title: str) -> go.Figure:
    """Horizontal bars of (name, PSI, verdict word), the verdict printed at each bar's end; a dashed
    line at ``threshold``. Drifted bars are hatched, the others plain."""
    fig = go.Figure(go.Bar(
        y=[k for k, _, _ in items], x=[v for _, v, _ in items], orientation="h",
        marker=dict(color=[PALETTE[5] if w == "DRIFT" else PALETTE[0] for _, _, w in items],
                    pattern=dict(shape=["x" if w == "DRIFT" else "" for _, _, w in items], fgcolor="rgba(0,0,0,0.5)",
                                 fillmode="overlay", size=9, solidity=0.2)),
        text=[f"{v:.3f} {w}" for _, v, w in items], textposition="outside", cliponaxis=False,
        hovertemplate="%{y}: PSI %{x:.3f}<extra></extra>"))
    top = max([threshold, *(v for _, v, _ in items)]) * 1.35
    fig.add_vline(x=threshold, line=dict(color="#333", dash="dash"), annotation_text=f"threshold {threshold}",
                  annotation_position="top")
    fig.update_xaxes(range=[0, top], title="population stability index")
    fig.update_yaxes(autorange="reversed", type="category")
    return _layout(fig, title, 130 + 34 * len(items))


def paired_bars(bins: Sequence[str], series: Mapping[str, Sequence[float]], title: str, x_title: str,
                y_title: str = "share") -> go.Figure:
    """Grouped bars comparing distributions over the same bins (e.g. training vs served), patterned
    and labelled with their percentages."""
    fig = go.Figure()
    for i, (name, values) in enumerate(series.items()):
        s = style(i)
        fig.add_bar(x=list(bins), y=list(values), name=name, text=[pct(v) for v in values], textposition="outside",
                    cliponaxis=False,
                    marker=_fill(s),
                    hovertemplate=name + " %{x}: %{y:.1%}<extra></extra>")
    fig.update_xaxes(type="category", title=x_title)
    fig.update_yaxes(tickformat=".0%", title=y_title)
    return _layout(fig, title, 380, barmode="group", legend=dict(orientation="h", yanchor="bottom", y=1.0, x=0))


def histograms(values: Mapping[str, Sequence[float]], title: str, x_title: str, bins: int = 20,
               line: float | None = None, line_text: str = "") -> go.Figure:
    """One titled panel per series: its histogram on [0, 1] in ``bins`` bins; a dashed marker line at ``line``."""
    names = list(values)
    fig = make_subplots(rows=1, cols=len(names), shared_yaxes=True, subplot_titles=names, horizontal_spacing=0.04)
    for i, name in enumerate(names):
        s = style(i)
        fig.add_histogram(x=list(values[name]), xbins=dict(start=0, end=1.0 + 1e-9, size=1 / bins), name=name,
                          showlegend=False,
                          marker=dict(**_fill(s), line=dict(color="#222", width=0.5)),
                          hovertemplate="%{x}: %{y}<extra>" + name + "</extra>", row=1, col=i + 1)
        fig.update_xaxes(range=[0, 1], title=x_title, row=1, col=i + 1)
        if line is not None:
            fig.add_vline(x=line, line=dict(color="#333", dash="dash", width=1), row=1, col=i + 1,
                          annotation_text=line_text, annotation_position="top right")
    fig.update_yaxes(title="predictions", row=1, col=1)
    return _layout(fig, title, 330)


def stacked_counts(table: pd.DataFrame, x: str, series: str, title: str, y_title: str = "requests") -> go.Figure:
    """Stacked vertical bars of counts (``table``: columns x, series, count), patterned per series,
    totals printed on top."""
    fig = go.Figure()
    names = list(dict.fromkeys(table[series]))
    for i, name in enumerate(names):
        s = style(i)
        rows = table[table[series] == name]
        fig.add_bar(x=rows[x], y=rows["count"], name=str(name),
                    marker=_fill(s),
                    hovertemplate=str(name) + " %{x}: %{y}<extra></extra>")
    totals = table.groupby(x, sort=False)["count"].sum()
    fig.add_scatter(x=list(totals.index), y=list(totals.values), mode="text", text=[str(v) for v in totals.values],
                    textposition="top center", showlegend=False, hoverinfo="skip", cliponaxis=False)
    fig.update_xaxes(type="category")
    fig.update_yaxes(title=y_title)
    return _layout(fig, title, 360, barmode="stack", legend=dict(orientation="h", yanchor="bottom", y=1.0, x=0))
