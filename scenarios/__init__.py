"""The built-in scenarios, shipped with capsim as package data (``capsim scenarios`` lists them).

``path("fullscale")`` is the file of a built-in scenario; ``names()`` lists them.
"""
from __future__ import annotations

from pathlib import Path

__all__ = ["DIR", "SCHEMA", "path", "names"]

DIR = Path(__file__).resolve().parent
SCHEMA = DIR / "capsim.schema.json"


def names() -> list[str]:
    """Built-in scenario names: ``launch``, ``bench/webtier``, ``validation/mm1``, ..."""
    return sorted(p.relative_to(DIR).with_suffix("").as_posix() for p in DIR.rglob("*.yaml"))


def path(name: str) -> Path:
    """The file of built-in scenario ``name`` (``launch`` or ``launch.yaml``)."""
    stem = name[:-5] if name.endswith(".yaml") else name
    if stem not in names():
        raise KeyError(f"no built-in scenario {name!r}; expected one of {', '.join(names())}")
    return DIR / f"{stem}.yaml"
