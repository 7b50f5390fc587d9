"""The scenario edge: YAML in, a validated, frozen ``Scenario`` out (or every problem, placed).

``config``: the ``Scenario`` model (one typed section per component); ``loader``: files
and ``--set`` overrides with FILE:LINE:COL problems (``problems``); ``yaml_io``: bounded
YAML reading (size, nesting, alias expansion); ``slo``: the objectives section; ``checks``: ``capsim validate`` warnings;
``docs``: the JSON schema and the scenario reference.
"""
from __future__ import annotations

from capsim.scenario.config import Scenario
from capsim.scenario.loader import ScenarioError, load, load_builtin, load_text

__all__ = ["Scenario", "ScenarioError", "load", "load_text", "load_builtin"]
