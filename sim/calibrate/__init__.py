"""Calibration: turn a user's measurements into scenario values, each with its source.

``read_node_pg_run`` reads a per-request log with server timings; ``calibrate`` fits the
handler's CPU, the database step, the event loop's own work and the latency outside the
server; ``fit_distribution`` is the maximum-likelihood fit behind every distribution.
"""
from __future__ import annotations

from capsim.calibrate.event_loop import LoopEstimate, estimate_event_loop
from capsim.calibrate.fit import Fit, fit_distribution
from capsim.calibrate.logs import RequestLog, read_node_pg_run
from capsim.calibrate.service import Calibration, calibrate

__all__ = ["RequestLog", "read_node_pg_run", "Fit", "fit_distribution", "LoopEstimate", "estimate_event_loop",
           "Calibration", "calibrate"]
