"""The ``capsim`` command (``main``): run, compare, sweep, plan, report, validate, schema, docs."""
from __future__ import annotations

from capsim.cli.main import main

__all__ = ["main"]
