"""Calibration: turn a user's measurements into scenario values, each with its source.

Readers: ``read_request_log`` (CSV or JSON lines, columns by ``columns.Mapping``),
``read_node_pg_run`` (node-pg-measurements runs), ``read_artillery`` (Artillery 2 and 1.x
reports), ``read_metrics`` (per-interval metrics CSVs). ``calibrate(log)`` fits a request
log (per-endpoint CPU and query times, the event loop, the latency outside the server, the
arrival curve, sessions); ``calibrate_files`` reads any mix of inputs and builds the
calibrated scenario and its commented YAML (``capsim calibrate``). ``fit_distribution`` is
the maximum-likelihood fit behind every distribution. Bad input: ``InputError``.
"""
from __future__ import annotations

from capsim.calibrate.artillery import artillery_service, read_artillery
from capsim.calibrate.columns import Mapping, read_mapping
from capsim.calibrate.errors import InputError, InputProblem
from capsim.calibrate.event_loop import LoopEstimate, estimate_event_loop
from capsim.calibrate.fit import Fit, fit_distribution
from capsim.calibrate.inputs import Calibrated, calibrate_files
from capsim.calibrate.logs import RequestLog
from capsim.calibrate.metrics import metrics_fits, read_metrics
from capsim.calibrate.read_log import read_node_pg_run, read_request_log
from capsim.calibrate.service import Calibration, calibrate

__all__ = ["RequestLog", "read_request_log", "read_node_pg_run", "read_artillery", "artillery_service",
           "read_metrics", "metrics_fits", "Mapping", "read_mapping", "InputError", "InputProblem", "Fit",
           "fit_distribution", "LoopEstimate", "estimate_event_loop", "Calibration", "calibrate", "Calibrated",
           "calibrate_files"]
