"""Reading YAML for capsim: YAML 1.2 (ruamel), turned into plain Python values.

Every YAML that capsim reads (scenario files, ``--set`` values, ``--slo`` files, sweep
values) goes through this module.
"""
from __future__ import annotations

from datetime import date

from ruamel.yaml import YAML

__all__ = ["plain", "read_plain"]


def plain(node):
    """ruamel containers and scalars -> dict, list, str, int, float, bool, None (dates -> ISO text)."""
    if isinstance(node, dict):
        return {plain(k): plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [plain(v) for v in node]
    for kind in (bool, int, float, str):   # bool first: ruamel's ScalarBoolean is an int
        if isinstance(node, kind):
            return kind(node)
    return node.isoformat() if isinstance(node, date) else node


def read_plain(text: str):
    """A YAML 1.2 document as plain values ('100' -> 100, 'hpa' -> 'hpa', '{a: 1}' -> {'a': 1})."""
    return plain(YAML(typ="safe", pure=True).load(text))
