"""Experiments over many runs: replications, A/B comparisons, sweeps and capacity plans.

``replications``: seeds, jobs and Student-t intervals; ``compare``: paired A/B with
common random numbers; ``sweep``: parameter grids; ``plan``: the cheapest passing
configuration per load level; ``parallel``: worker processes and Dask;
``intervals``: confidence intervals and paired tests.
"""
from __future__ import annotations

from capsim.experiments.compare import Comparison, compare
from capsim.experiments.plan import capacity_plan
from capsim.experiments.replications import Replications, replicate
from capsim.experiments.sweep import sweep

__all__ = ["replicate", "Replications", "compare", "Comparison", "sweep", "capacity_plan"]
