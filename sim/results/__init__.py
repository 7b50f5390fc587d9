"""Results of a run: the summary and the time series (``result``), objectives (``slo``), text (``text``)."""
from __future__ import annotations

from capsim.results.result import Result, summarize

__all__ = ["Result", "summarize"]
