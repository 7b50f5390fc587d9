"""The engine: one run of a scenario (``Model``) on the event kernel, its metrics and its controller.

``kernel``: the request-path calendar beside SimPy; ``model``: builds the components
and runs them; ``metrics``: per-request recording and the time series; ``histogram``:
log-bucketed latency histograms; ``streams``: named random streams; ``autoscaler``:
the controller that runs a scaling policy against the fleet.
"""
from __future__ import annotations

from capsim.engine.kernel import Kernel
from capsim.engine.model import Model
from capsim.engine.streams import Streams

__all__ = ["Kernel", "Model", "Streams"]
