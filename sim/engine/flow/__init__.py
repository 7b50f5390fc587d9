"""The fast mode (``fidelity: flow``): closed forms per step instead of simulated requests.

``FlowModel`` is the request-level ``capsim.engine.Model`` with fluid work: the same
fleet, controller, schedules, faults, billing, metrics and summary, fed by
``FlowEngine`` every ``flow.step`` seconds (``arrivals``: expected arrivals from the
NHPP; ``step``: event loops, pools and the database in closed form with ``queues``;
``cache``, ``limits``: hit rates and rejections; ``latency``: path distributions into
the histograms; ``validity``: where the approximation cannot be trusted).
"""
from __future__ import annotations

from capsim.engine.flow.model import FlowModel

__all__ = ["FlowModel"]
