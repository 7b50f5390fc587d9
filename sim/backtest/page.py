"""The backtest's report.html (``capsim.report.Page``): measured beside simulated per interval
(with the replications' 95% band), the prediction errors, and a counterfactual's curves."""
from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from capsim.backtest.intervals import STATS
from capsim.report import Page

__all__ = ["backtest_page", "backtest_page_from", "backtest_figure"]

TITLES = {"rate": ("Arrivals per second", "requests/s", 1), "mean_ms": ("Mean latency", "ms", 1),
          "p95_ms": ("p95 latency", "ms", 1), "p99_ms": ("p99 latency", "ms", 1),
          "errors": ("Error share", "% of answered requests", 100)}


def backtest_figure(table: pd.DataFrame, stat: str, label_a: str = "capsim", label_b: str | None = None) -> go.Figure:
    """One figure over the intervals: measured, capsim (band: 95% interval) and, if any, B."""
    title, unit, scale = TITLES[stat]
    t = table[table["interval"] != "all"]
    x = (t["t_start"] + t["t_end"]) / 2
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=x, y=t[f"measured_{stat}"] * scale, name="measured", mode="lines+markers",
                             line={"color": "black"}))
    sides = [("capsim", label_a, "royalblue")] + ([("capsim_b", label_b, "darkorange")] if label_b else [])
    for side, label, color in sides:
        y = t[f"{side}_{stat}"].astype(float) * scale
        hw = t[f"{side}_{stat}_hw"].astype(float).fillna(0) * scale
        fig.add_trace(go.Scatter(x=pd.concat([x, x[::-1]]), y=pd.concat([y + hw, (y - hw)[::-1]]), fill="toself",
                                 fillcolor=color, opacity=0.2, line={"width": 0}, hoverinfo="skip",
                                 name=f"{label}: 95% interval", showlegend=False))
        fig.add_trace(go.Scatter(x=x, y=y, name=label, mode="lines+markers", line={"color": color, "dash": "dash"}))
    fig.update_layout(title=title, xaxis_title="log time (s), interval midpoints", yaxis_title=unit,
                      template="plotly_white", legend={"orientation": "h", "y": -0.25})
    return fig


def _errors(table: pd.DataFrame, side: str) -> pd.DataFrame:
    out = pd.DataFrame({"interval": table["interval"], "from s": table["t_start"], "to s": table["t_end"],
                        "requests": table["requests"]})
    for k in STATS:
        _, _, scale = TITLES[k]
        out[f"{k} real"] = table[f"measured_{k}"] * scale
        out[f"{k} capsim"] = table[f"{side}_{k}"].astype(float) * scale
        err = table[f"{side}_{k}_error"].astype(float)
        out[f"{k} error" + (" (pp)" if k == "errors" else " %")] = err if k == "errors" else 100 * err
    return out.round(3)


def backtest_page(bt) -> Page:
    """The page of a ``capsim.backtest.Backtest``."""
    comp = bt.comparison().table() if bt.b is not None else None
    return _page(bt.table(), bt.log_name, bt.label_a, bt.label_b if bt.b is not None else None, bt.interval,
                 len(bt.a.summaries), bt.notes, comp)


def backtest_page_from(folder) -> Page:
    """The same page from what ``capsim backtest`` wrote (``backtest.json``, ``comparison.csv``)."""
    import json
    from pathlib import Path
    folder = Path(folder)
    doc = json.loads((folder / "backtest.json").read_text())
    comp = pd.read_csv(folder / "comparison.csv") if doc.get("scenario_b") and (folder / "comparison.csv").exists() else None
    return _page(pd.DataFrame(doc["intervals"]), doc["log"], doc["scenario_a"], doc.get("scenario_b"),
                 doc["interval_s"], doc["replications"], doc["notes"], comp)


def _page(table, log_name, label_a, label_b, interval, replications, notes, comp) -> Page:
    page = Page(f"Backtest: {log_name}", f"{label_a}; {replications} replications; intervals of {interval:g} s "
                                         "by arrival")
    page.text("What this is", " ".join(notes) + " The log's own arrivals are replayed through the scenario; "
              "each curve point is one interval, capsim's the mean over the replications with its 95% interval.")
    for k in STATS:
        page.figure(f"backtest-{k}", backtest_figure(table, k, label_a, label_b))
    page.table("Prediction error per interval (A)", _errors(table, "capsim"),
               note="error: capsim / measured - 1 in %; the error share: capsim - measured in percentage points")
    if label_b is not None:
        page.table(f"Counterfactual B per interval: {label_b}", _errors(table, "capsim_b"))
        if comp is not None:
            keep = [c for c in ("metric", "a", "b", "diff", "ci_low", "ci_high", "p_value", "verdict") if c in comp.columns]
            page.table("B - A on the same traffic (paired, common random numbers)", comp[keep])
    return page
