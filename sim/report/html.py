"""One self-contained HTML page: a title, tables and plotly figures, readable offline.

plotly.js is embedded once, with the first figure (``include_plotlyjs=True``); the others
reference it (``False``). Each figure sits in ``<div id="fig-NAME">`` so its data can be
found in the page (``figure_data``).
"""
from __future__ import annotations

import base64
import html
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

from capsim.results.files import safe_dir, write_text

__all__ = ["Page", "figure_data"]

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1200px;color:#222;
padding:0 1em}
h1{margin-bottom:.2em}.sub{color:#666;margin-top:0}
table{border-collapse:collapse;margin:1em 0;font-size:14px}
th,td{border-bottom:1px solid #ddd;padding:4px 10px;text-align:left;vertical-align:top}
th{background:#f6f6f6}td.num{text-align:right;font-variant-numeric:tabular-nums}
nav a{margin-right:1em}.note{color:#555;font-size:14px}section{margin-top:2em}
"""


class Page:
    """Build with ``text``, ``table`` and ``figure``; ``write(path)`` renders it."""

    def __init__(self, title: str, subtitle: str = ""):
        self.title, self.subtitle = title, subtitle
        self.parts: list[tuple[str, str, object]] = []      # (kind, heading, payload)

    def text(self, heading: str, body: str) -> "Page":
        self.parts.append(("text", heading, body))
        return self

    def table(self, heading: str, rows, note: str = "", collapsed: bool = False) -> "Page":
        """``rows``: a DataFrame, or (label, value) pairs; ``collapsed``: folded until clicked."""
        self.parts.append(("table", heading, (rows, note, collapsed)))
        return self

    def figure(self, name: str, fig, note: str = "") -> "Page":
        self.parts.append(("figure", name, (fig, note)))
        return self

    def render(self) -> str:
        body, nav, first = [], [], True
        for kind, heading, payload in self.parts:
            anchor = _anchor(heading)
            if kind == "figure":
                fig, note = payload
                title = fig.layout.title.text or heading
                nav.append(f'<a href="#{anchor}">{html.escape(_plain(title))}</a>')
                div = fig.to_html(full_html=False, include_plotlyjs=first, div_id=f"fig-{heading}",
                                  config={"responsive": True, "displaylogo": False})
                first = False
                body.append(f'<section id="{anchor}">{div}{_note(note)}</section>')
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
        return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
                f"<title>{html.escape(self.title)}</title><style>{STYLE}</style></head><body>"
                f"<h1>{html.escape(self.title)}</h1>{sub}<nav>{' '.join(nav)}</nav>{''.join(body)}</body></html>\n")

    def write(self, path) -> Path:
        path = Path(path)
        safe_dir(path.parent)
        return write_text(path, self.render())      # atomic, never through a symlink

    @property
    def figures(self) -> dict:
        return {h: p[0] for k, h, p in self.parts if k == "figure"}


def _anchor(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "section"


def _plain(text: str) -> str:
    return re.sub(r"<[^>]+>", "", text)


def _note(note: str) -> str:
    return f'<p class="note">{html.escape(note)}</p>' if note else ""


def _cell(v) -> str:
    if isinstance(v, float):
        return "" if v != v else f"{v:.6g}"
    return html.escape("" if v is None else str(v))


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
