"""The calibrated scenario as YAML, each calibrated value preceded by a comment that gives its
source, sample size and uncertainty; a header lists the inputs and what was left at the base."""
from __future__ import annotations

import io
import textwrap

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

__all__ = ["scenario_yaml"]

WIDTH = 110


def _commented(node):
    if isinstance(node, dict):
        m = CommentedMap()
        for k, v in node.items():
            m[k] = _commented(v)
        return m
    if isinstance(node, list):
        s = CommentedSeq(_commented(v) for v in node)
        if all(not isinstance(v, (dict, list)) for v in node):
            s.fa.set_flow_style()
        return s
    return node


def _lines(text: str, indent: int) -> str:
    return "\n".join(textwrap.wrap(text, WIDTH - indent, break_on_hyphens=False)) or text


def scenario_yaml(data: dict, settings, left: list[str], header: list[str]) -> str:
    root = _commented(data)
    for s in settings:
        node = root
        for key in s.path[:-1]:
            node = node[key]
        if isinstance(node, CommentedMap) and s.path[-1] in node:
            indent = 2 * (len(s.path) - 1)
            node.yaml_set_comment_before_after_key(s.path[-1], before=_lines(s.comment, indent + 2), indent=indent)
            value = node[s.path[-1]]
            for key, comment in s.children.items():
                if isinstance(value, CommentedMap) and key in value:
                    value.yaml_set_comment_before_after_key(key, before=_lines(comment, indent + 4), indent=indent + 2)
    top = list(header)
    if left:
        top.append("Left at the base scenario's value (the inputs do not identify them): " + "; ".join(left) + ".")
    root.yaml_set_start_comment("\n".join(_lines(t, 2) for t in top))
    out = io.StringIO()
    y = YAML()
    y.width = 4096
    y.indent(mapping=2, sequence=4, offset=2)
    y.representer.add_representer(type(None), lambda r, _: r.represent_scalar("tag:yaml.org,2002:null", "null"))
    y.dump(root, out)
    return out.getvalue()
