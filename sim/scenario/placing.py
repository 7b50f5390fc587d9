"""Where a ``capsim validate`` warning belongs: its field's FILE:LINE:COL, or the ``--set`` that gave it.

Every warning of ``capsim.scenario.checks`` starts with the dotted path of its field
(``workload.sessions.events[0]: ...``). When the scenario file holds that field, the
warning is placed at it, as problems are; when an override set it (or a section around
it), at ``--set ARG``; a field the file leaves to its default has no place.
"""
from __future__ import annotations

import re
from pathlib import Path

from capsim.scenario.problems import get, has, position
from capsim.scenario.yaml_io import YAMLProblem, read_bounded, read_tree

__all__ = ["leading_path", "places"]

_LEAD = re.compile(r"^([A-Za-z_]\w*(?:\.[A-Za-z_]\w*|\[\d+\])*): ")
_SEGMENT = re.compile(r"[A-Za-z_]\w*|\d+")


def leading_path(text: str) -> tuple | None:
    """``'a.b[2].c: ...'`` -> ``('a', 'b', 2, 'c')``; None when the text does not start with a path."""
    m = _LEAD.match(text)
    return None if m is None else _segments(m.group(1))


def _segments(dotted: str) -> tuple:
    return tuple(int(s) if s.isdigit() else s for s in _SEGMENT.findall(dotted))


def places(texts: list[str], file: str | None, overrides: list[str] | None = None) -> list[str | None]:
    """For each warning text: ``'FILE:LINE:COL'``, ``'--set ARG'`` or None."""
    tree = _tree(file)
    out = []
    for text in texts:
        path = leading_path(text)
        out.append(None if path is None else _override(path, overrides or []) or _in_file(tree, path, file))
    return out


def _tree(file: str | None):
    if file is None:
        return None
    try:
        return read_tree(read_bounded(Path(file)))
    except (YAMLProblem, OSError, UnicodeDecodeError):
        return None


def _override(path: tuple, overrides: list[str]) -> str | None:
    """The last override whose path contains, or lies inside, ``path``."""
    for arg in reversed(overrides):
        opath = _segments(arg.partition("=")[0])
        n = min(len(opath), len(path))
        if opath and opath[:n] == path[:n]:
            return f"--set {arg}"
    return None


def _in_file(tree, path: tuple, file: str | None) -> str | None:
    node = tree
    for seg in path:
        if not has(node, seg):
            return None
        node = get(node, seg)
    pos = position(tree, path)
    return None if pos is None else f"{file}:{pos[0]}:{pos[1]}"
