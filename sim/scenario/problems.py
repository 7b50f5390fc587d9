"""Scenario problems: pydantic errors placed at their YAML line and column.

Each pydantic error becomes a ``Problem`` at the deepest YAML node on its path, printed
``FILE:LINE:COL: dotted.path: expected ..., got ...`` (``--set ARG: dotted.path: ...``
when an override caused it). Union tags and validator labels are dropped from paths;
an unknown key gets the closest valid key as a suggestion.
"""
from __future__ import annotations

import difflib
import re
import types
from dataclasses import dataclass
from typing import Annotated, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from capsim.scenario.config import Scenario

__all__ = ["Problem", "ScenarioError", "problems_of", "MISSING", "has", "get", "dotted", "show", "start", "position"]

MISSING = object()
_EXPECTED = {"int_type": "an integer", "int_parsing": "an integer", "int_from_float": "a whole number",
             "float_type": "a number", "float_parsing": "a number", "finite_number": "a finite number",
             "bool_type": "true or false", "bool_parsing": "true or false", "string_type": "a string",
             "model_type": "a mapping", "model_attributes_type": "a mapping", "dict_type": "a mapping",
             "list_type": "a list", "datetime_type": "an ISO date-time such as 2026-01-05T18:00",
             "datetime_parsing": "an ISO date-time such as 2026-01-05T18:00",
             "datetime_from_date_parsing": "an ISO date-time such as 2026-01-05T18:00"}
_PREFIX = re.compile(r"^([A-Za-z_]\w*(?:\.[A-Za-z_]\w*|\[\d+\])*): (.+)$", re.S)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a scenario; ``line``/``col`` are 1-based (None: no place in the file)."""
    file: str
    line: int | None = None
    col: int | None = None
    path: str = ""
    message: str = ""
    override: str | None = None   # the --set argument it comes from

    def __str__(self) -> str:
        if self.override is not None:
            where = f"--set {self.override}"
        else:
            where = self.file if self.line is None else f"{self.file}:{self.line}:{self.col}"
        return ": ".join(s for s in (where, self.path, self.message) if s)


class ScenarioError(Exception):
    """Everything wrong with a scenario (``problems``), one per line in ``str()``."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        super().__init__("\n".join(map(str, self.problems)))


# -- pydantic errors -> problems ------------------------------------------------------------
def problems_of(exc: ValidationError, data, tree, filename: str, origins) -> list[Problem]:
    items = _merge(_drop_union_noise([_item(err, data) for err in exc.errors(include_url=False)]))
    out = []
    for it in items:
        arg = _origin(it["path"], origins)
        pos = None if arg else _position(tree, it["path"], it["at_key"])
        line, col = pos or (None, None)
        out.append(Problem(filename, line, col, dotted(it["path"]), _text(it), arg))
    return out


def _item(err: dict, data) -> dict:
    """One pydantic error as {path, at_key, expected, got, hint, text, kind}."""
    loc, kind, value = list(err["loc"]), err["type"], err.get("input")
    it = {"at_key": False, "expected": None, "got": show(value), "hint": "", "text": None, "kind": kind}
    if loc and loc[-1] == "[key]":
        loc.pop()
        it.update(at_key=True, expected="a string key")
    path, tp, node = _walk(loc, data)
    it["path"] = path
    ctx = err.get("ctx") or {}
    if it["expected"]:
        pass
    elif kind == "missing":
        it["text"] = "required field is missing"
    elif kind == "extra_forbidden":
        it.update(at_key=True, text=_unknown(path[-1], _fields(*_walk(path[:-1], data)[1:])))
    elif kind == "union_tag_not_found":
        tag = ctx.get("discriminator", "").strip("'")
        it["path"] = path + (tag,)
        names = ", ".join(tags_of(tp, tag))
        it["text"] = f"required field is missing: which {tag}? one of {names}"
    elif kind == "union_tag_invalid":
        it["path"] = path + (ctx.get("discriminator", "").strip("'"),)
        it.update(expected=f"one of {ctx.get('expected_tags')}", got=show(ctx.get("tag")),
                  hint=_suggest(ctx.get("tag"), re.findall(r"'([^']*)'", ctx.get("expected_tags", ""))))
    elif kind == "literal_error":
        it.update(expected=f"one of {ctx.get('expected')}",
                  hint=_suggest(value, re.findall(r"'([^']*)'", ctx.get("expected", ""))))
    elif kind in _EXPECTED:
        it["expected"] = _EXPECTED[kind]
    else:
        _free_text(it, err["msg"], value, tp, node, data)
    return it


def _free_text(it: dict, msg: str, value, tp, node, data) -> None:
    """Reuse pydantic's (or the model's) text; move a leading ``field.path:`` into the path."""
    msg = re.sub(r"^(Value error|Assertion failed), ", "", msg)
    m = _PREFIX.match(msg)
    if m:
        segs = [int(s[1:-1]) if s.startswith("[") else s for s in re.findall(r"[A-Za-z_]\w*|\[\d+\]", m.group(1))]
        if segs[0] in _fields(tp, node):
            it["path"], msg = _walk(it["path"] + tuple(segs), data)[0], m.group(2)
    if not re.search(r"\bgot\b", msg) and not isinstance(value, dict):
        msg = f"{msg}, got {show(value)}"
    it["text"] = msg


def _text(it: dict) -> str:
    if it["text"] is not None:
        return it["text"]
    return f"expected {it['expected']}, got {it['got']}" + (f"; {it['hint']}" if it["hint"] else "")


def _drop_union_noise(items: list[dict]) -> list[dict]:
    """A type mismatch at P beside errors below P: another union branch took the value."""
    def below(it):
        return any(o["path"][:len(it["path"])] == it["path"] and len(o["path"]) > len(it["path"]) for o in items)
    return [it for it in items if not (it["expected"] and not it["at_key"] and below(it))]


def _merge(items: list[dict]) -> list[dict]:
    """Union branches failing on the same value: ``expected A or B, got X``."""
    out, seen = [], {}
    for it in items:
        key = (it["path"], it["got"]) if it["expected"] else None
        if key in seen:
            first = seen[key]
            first["expected"] += f" or {it['expected']}"
            first["hint"] = first["hint"] or it["hint"]
        elif any(o["path"] == it["path"] and _text(o) == _text(it) for o in out):
            continue
        else:
            out.append(it)
            if key:
                seen[key] = it
    return out


def _unknown(key, fields) -> str:
    hint = _suggest(key, list(fields)) or f"expected one of {', '.join(fields)}"
    return f"unknown key {key!r}; {hint}"


def _suggest(value, names: list[str]) -> str:
    close = difflib.get_close_matches(str(value), names, n=1, cutoff=0.6) if isinstance(value, str) else []
    return f"did you mean {close[0]!r}?" if close else ""


def _origin(path: tuple, origins) -> str | None:
    """The last override whose path contains, or lies inside, ``path``."""
    for opath, arg in reversed(origins):
        n = min(len(opath), len(path))
        if path and path[:n] == opath[:n]:
            return arg
    return None


def position(tree, path: tuple, at_key: bool = False):
    """(line, col) of ``path`` in a round-trip YAML ``tree`` (its deepest node there), or None."""
    return _position(tree, path, at_key)


def _position(tree, path: tuple, at_key: bool):
    """(line, col) of the deepest node of ``path`` in the YAML: a scalar's value, else its key."""
    node, pos = tree, start(tree)
    for i, seg in enumerate(path):
        if isinstance(node, dict) and has(node, seg):
            child = node[seg]
            keyed = (at_key and i == len(path) - 1) or isinstance(child, (dict, list))
            line, col = node.lc.key(seg) if keyed else node.lc.value(seg)
        elif isinstance(node, list) and has(node, seg):
            child, (line, col) = node[seg], node.lc.item(seg)
        else:
            break
        node, pos = child, (line + 1, col + 1)
    return pos


# -- walking the data and the model's annotations together ------------------------------
def _walk(loc, data):
    """Keep the segments of a pydantic loc that are YAML keys/indexes or model fields
    (drops union tags and branch labels); returns (path, annotation, node) at its end."""
    path, tp, node = [], Scenario, data
    for seg in loc:
        if has(node, seg) or (node is MISSING or isinstance(node, dict)) and seg in _fields(tp, node):
            path.append(seg)
            tp, node = _child(tp, seg, node), get(node, seg)
    return tuple(path), tp, node


def has(node, seg) -> bool:
    if isinstance(node, dict):
        return seg in node
    return isinstance(node, list) and type(seg) is int and 0 <= seg < len(node)


def get(node, seg):
    return node[seg] if has(node, seg) else MISSING


def _options(tp) -> list:
    """Concrete alternatives of an annotation (Annotated and unions unwrapped, None dropped)."""
    origin = get_origin(tp)
    if origin is Annotated:
        return _options(get_args(tp)[0])
    if origin in (Union, types.UnionType):
        return [o for a in get_args(tp) for o in _options(a)]
    return [] if tp is type(None) or tp is None else [tp]


def _is_model(tp) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


TAGS = ("dist", "policy")     # the discriminators of the config unions


def tags_of(tp, tag: str) -> list[str]:
    """The values of discriminator ``tag`` among the alternatives of ``tp`` (policy names, ...)."""
    return [o.model_fields[tag].default for o in _options(tp) if _is_model(o) and tag in o.model_fields]


def _pick(tp, node):
    """The alternative of ``tp`` that ``node`` is meant as (by its ``dist`` or ``policy`` tag,
    then its shape): a misspelt key is then checked against the chosen policy's fields."""
    opts = _options(tp)
    for tag in TAGS:
        value = node.get(tag) if isinstance(node, dict) else None
        for o in opts:
            if value is not None and _is_model(o) and tag in o.model_fields and o.model_fields[tag].default == value:
                return o
    for o in opts:
        if isinstance(node, dict) and (_is_model(o) or get_origin(o) is dict):
            return o
        if isinstance(node, list) and get_origin(o) is list:
            return o
    return next((o for o in opts if _is_model(o)), None) if node is MISSING else None


def _fields(tp, node) -> dict:
    model = _pick(tp, node)
    return model.model_fields if _is_model(model) else {}


def _child(tp, seg, node):
    t = _pick(tp, node)
    if _is_model(t):
        field = t.model_fields.get(seg)
        return field.annotation if field else None
    return get_args(t)[-1] if get_origin(t) in (list, dict) and get_args(t) else None


def dotted(path) -> str:
    return ".".join(map(str, path))


def show(v) -> str:
    """A value the way a user wrote it in YAML, short."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, dict):
        return "a mapping"
    if isinstance(v, list):
        return "[]" if not v else f"a list of {len(v)} item{'s' if len(v) > 1 else ''}"
    return repr(v)


def start(tree):
    lc = getattr(tree, "lc", None)
    return (lc.line + 1, lc.col + 1) if lc is not None and lc.line is not None else None
