"""One HTML page: a title, KPI tiles, tables and plotly figures, readable offline.

plotly.js is embedded once, in the page's head (the default: a self-contained page), or,
with ``render(plotly_js="../plotly-2.35.2.min.js")``, loaded from a copy beside the
reports (``shared_plotly_js``: one copy for a folder of reports, written once, named by
its version so a copy of another version is never overwritten). Each figure sits in
``<div id="fig-NAME">`` so its data can be found in the page (``figure_data``). Figures
with a time axis (``figure(..., time=True)``) zoom together: zooming or panning one sets
the same time range on the others.
"""
from __future__ import annotations

import base64
import html
import json
import os
import re
from pathlib import Path

from dataclasses import dataclass

import numpy as np
import pandas as pd

from capsim.report.labels import format_number
from capsim.results.files import safe_dir, write_text

__all__ = ["Page", "Tile", "figure_data", "shared_plotly_js", "PLOTLY_VERSION"]

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1200px;color:#222;
padding:0 1em}
h1{margin-bottom:.2em}.sub{color:#666;margin-top:0}
table{border-collapse:collapse;margin:1em 0;font-size:14px}
th,td{border-bottom:1px solid #ddd;padding:4px 10px;text-align:left;vertical-align:top}
th{background:#f6f6f6}td.num{text-align:right;font-variant-numeric:tabular-nums}
nav a{margin-right:1em}.note{color:#555;font-size:14px}section{margin-top:2em}
.tiles{display:flex;flex-wrap:wrap;gap:12px;margin:1.2em 0}
.tile{border:1px solid #ddd;border-radius:8px;padding:10px 14px;min-width:170px;flex:1 1 170px;background:#fafafa}
.tile .label{font-size:13px;color:#555}.tile .value{font-size:21px;font-weight:600;margin:2px 0}
.tile .detail{font-size:12px;color:#666}.tile.good{border-left:6px solid #2e8b57}
.tile.bad{border-left:6px solid #c0392b}.tile.neutral{border-left:6px solid #999}
"""
# zooming one time figure sets the same x range on every other one (and a double-click resets all)
LINK_ZOOM = r"""<script>window.addEventListener("load",function(){
var figs=Array.prototype.slice.call(document.querySelectorAll(".capsim-time .plotly-graph-div"));var busy=false;
figs.forEach(function(gd){gd.on("plotly_relayout",function(ev){if(busy)return;var upd=null;
for(var k in ev){var m=k.match(/^xaxis[0-9]*\.range\[0\]$/);if(m){var ax=k.split(".")[0];
upd={"xaxis.range":[ev[ax+".range[0]"],ev[ax+".range[1]"]]};break;}
if(/^xaxis[0-9]*\.range$/.test(k)){upd={"xaxis.range":ev[k]};break;}
if(/^xaxis[0-9]*\.autorange$/.test(k)){upd={"xaxis.autorange":true};break;}}
if(!upd)return;busy=true;Promise.all(figs.filter(function(g){return g!==gd;}).map(function(g){
return Plotly.relayout(g,upd);})).then(function(){busy=false;},function(){busy=false;});});});});</script>"""


@dataclass(frozen=True)
class Tile:
    """A KPI tile: a label, a big value, a line of detail; ``state`` good, bad or neutral (its colour)."""
    label: str
    value: str
    detail: str = ""
    state: str = "neutral"


def _plotly_js() -> str:
    from plotly.offline import get_plotlyjs
    return get_plotlyjs()


def _plotly_version() -> str:
    from plotly.offline import get_plotlyjs_version
    return get_plotlyjs_version()


PLOTLY_VERSION = _plotly_version()


def shared_plotly_js(folder) -> Path:
    """``folder/plotly-VERSION.min.js``, written if it is not there yet (never overwritten: the name
    carries the version, so reports drawn with another plotly keep theirs)."""
    path = safe_dir(folder) / f"plotly-{PLOTLY_VERSION}.min.js"
    if not path.exists():
        write_text(path, _plotly_js())      # atomic, never through a symlink
    return path


class Page:
    """Build with ``tiles``, ``text``, ``table`` and ``figure``; ``write(path)`` renders it."""

    def __init__(self, title: str, subtitle: str = ""):
        self.title, self.subtitle = title, subtitle
        self.parts: list[tuple[str, str, object]] = []      # (kind, heading, payload)

    def tiles(self, tiles: list[Tile]) -> "Page":
        self.parts.append(("tiles", "", list(tiles)))
        return self

    def text(self, heading: str, body: str) -> "Page":
        self.parts.append(("text", heading, body))
        return self

    def table(self, heading: str, rows, note: str = "", collapsed: bool = False) -> "Page":
        """``rows``: a DataFrame, or (label, value) pairs; ``collapsed``: folded until clicked."""
        self.parts.append(("table", heading, (rows, note, collapsed)))
        return self

    def figure(self, name: str, fig, note: str = "", time: bool = False) -> "Page":
        """``time``: the figure's x axis is the run's time (it zooms with the other time figures)."""
        self.parts.append(("figure", name, (fig, note, time)))
        return self

    def render(self, plotly_js: str | None = None) -> str:
        """The page; ``plotly_js``: a (relative) URL of plotly.js to load instead of embedding it."""
        body, nav = [], []
        for kind, heading, payload in self.parts:
            anchor = _anchor(heading)
            if kind == "figure":
                fig, note, time = payload
                title = fig.layout.title.text or heading
                nav.append(f'<a href="#{anchor}">{html.escape(_plain(title.split("<br>")[0]))}</a>')
                div = fig.to_html(full_html=False, include_plotlyjs=False, div_id=f"fig-{heading}",
                                  config={"responsive": True, "displaylogo": False})
                cls = ' class="capsim-time"' if time else ""
                body.append(f'<section id="{anchor}"{cls}>{div}{_note(note)}</section>')
            elif kind == "tiles":
                body.append(_tiles(payload))
            elif kind == "table":
                rows, note, collapsed = payload
                inner = f"{_table(rows)}{_note(note)}"
                if collapsed:
                    inner = f"<details><summary>show {len(rows)} rows</summary>{inner}</details>"
                body.append(f'<section id="{anchor}"><h2>{html.escape(heading)}</h2>{inner}</section>')
            else:
                body.append(f'<section id="{anchor}"><h2>{html.escape(heading)}</h2>'
                            f'<p>{html.escape(payload)}</p></section>')
        sub = f'<p class="sub">{html.escape(self.subtitle)}</p>' if self.subtitle else ""
        has_figures = any(k == "figure" for k, _, _ in self.parts)
        script = ""
        if has_figures:
            script = (f'<script charset="utf-8" src="{html.escape(plotly_js)}"></script>' if plotly_js
                      else f'<script type="text/javascript">{_plotly_js()}</script>')
        link = LINK_ZOOM if sum(1 for k, _, p in self.parts if k == "figure" and p[2]) > 1 else ""
        return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
                f"<title>{html.escape(self.title)}</title><style>{STYLE}</style>{script}</head><body>"
                f"<h1>{html.escape(self.title)}</h1>{sub}<nav>{' '.join(nav)}</nav>{''.join(body)}{link}"
                "</body></html>\n")

    def write(self, path, shared_js_folder=None) -> Path:
        """Write the page to ``path``; with ``shared_js_folder``, plotly.js is loaded from the shared copy
        there (``shared_plotly_js``) instead of embedded."""
        path = Path(path)
        safe_dir(path.parent)
        src = None
        if shared_js_folder is not None:
            js = shared_plotly_js(shared_js_folder).resolve()
            src = Path(os.path.relpath(js, path.parent.resolve())).as_posix()
        return write_text(path, self.render(src))      # atomic, never through a symlink

    @property
    def figures(self) -> dict:
        return {h: p[0] for k, h, p in self.parts if k == "figure"}


def _anchor(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "section"


def _plain(text: str) -> str:
    return re.sub(r"<[^>]+>", "", text)


def _note(note: str) -> str:
    return f'<p class="note">{html.escape(note)}</p>' if note else ""


def _tiles(tiles: list[Tile]) -> str:
    cells = "".join(f'<div class="tile {html.escape(t.state)}"><div class="label">{html.escape(t.label)}</div>'
                    f'<div class="value">{html.escape(t.value)}</div><div class="detail">{html.escape(t.detail)}</div>'
                    "</div>" for t in tiles)
    return f'<section class="tiles">{cells}</section>'


def _cell(v) -> str:
    if isinstance(v, (float, np.floating)):
        return "" if v != v else format_number(v)
    return html.escape("" if v is None or v is pd.NA else str(v))


def _table(rows) -> str:
    if isinstance(rows, pd.DataFrame):
        head = "".join(f"<th>{html.escape(str(c))}</th>" for c in rows.columns)
        body = "".join("<tr>" + "".join(
            f'<td class="num">{_cell(v)}</td>' if isinstance(v, (int, float)) and not isinstance(v, bool)
            else f"<td>{_cell(v)}</td>" for v in r) + "</tr>" for r in rows.itertuples(index=False))
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    body = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{_cell(v)}</td></tr>" for k, v in rows)
    return f"<table><tbody>{body}</tbody></table>"


def figure_data(page_html: str, name: str) -> list[dict]:
    """The trace list plotly was given for figure ``name`` in a rendered page (for tests and tools)."""
    call = page_html.index("Plotly.newPlot(", page_html.index(f'id="fig-{name}"'))
    start = page_html.index(f'"fig-{name}"', call)
    i = page_html.index("[", start)
    data, _ = json.JSONDecoder().raw_decode(page_html[i:])
    return _decode(data)


def _decode(node):
    """plotly's typed arrays (``{"dtype": "f8", "bdata": base64, "shape": "r, c"}``) as numpy arrays."""
    if isinstance(node, dict) and "bdata" in node and "dtype" in node:
        arr = np.frombuffer(base64.b64decode(node["bdata"]), dtype=np.dtype(node["dtype"]))
        shape = node.get("shape")
        return arr.reshape([int(x) for x in str(shape).split(",")]) if shape else arr
    if isinstance(node, dict):
        return {k: _decode(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_decode(v) for v in node]
    return node
