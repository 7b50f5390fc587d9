"""Scenario files: YAML 1.2 in, a validated ``Scenario`` out, or every problem with its place.

``load(path, overrides)`` reads the file (bounded: ``capsim.scenario.yaml_io``) with
ruamel.yaml's round-trip loader (mappings and sequences keep their line and column),
applies ``--set dotted.path=value`` overrides, then validates. An empty file is an
error; the built-in scenario is ``load_builtin(overrides)``. Each pydantic error becomes a ``Problem`` placed at its YAML line and column
(``capsim.scenario.problems``).
"""
from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from capsim.scenario.problems import MISSING, Problem, ScenarioError, dotted, get, position, problems_of, show, start
from capsim.models.endpoints import DEFAULT_ENDPOINTS
from capsim.scenario.artillery import is_script, read_script, script_scenario, script_source
from capsim.scenario.config import Scenario
from capsim.scenario.slo import SLOConfig
from capsim.scenario.yaml_io import YAMLProblem, plain, read_bounded, read_plain, read_tree

__all__ = ["load", "load_text", "load_builtin", "load_slo", "Problem", "ScenarioError", "BUILTIN"]

BUILTIN = "<built-in scenario>"
EMPTY = ("the file is empty: expected scenario fields such as 'horizon: 1d' (an empty file is not the "
         "built-in scenario: leave the file out for that)")


class _Bad(Exception):
    def __init__(self, path: str, message: str):
        super().__init__(message)
        self.path, self.message = path, message


# -- reading -----------------------------------------------------------------------
def load(path, overrides: list[str] | None = None) -> Scenario:
    """Read, override and validate the scenario file at ``path``."""
    return load_text(_read(path), str(path), overrides, base=Path(path).parent)


def _read(path) -> str:
    """A YAML file's text (at most yaml_io.MAX_BYTES), or a ScenarioError naming it."""
    name, p = str(path), Path(path)
    if p.is_dir():
        raise ScenarioError([Problem(name, message="is a directory, expected a scenario YAML file")])
    try:
        return read_bounded(p)
    except FileNotFoundError:
        raise ScenarioError([Problem(name, message="no such file")]) from None
    except YAMLProblem as exc:
        raise ScenarioError([Problem(name, message=exc.message)]) from None
    except OSError as exc:
        raise ScenarioError([Problem(name, message=f"cannot read: {exc.strerror or exc}")]) from None


def load_builtin(overrides: list[str] | None = None) -> Scenario:
    """The built-in scenario (``Scenario()``, the seed's launch), with ``overrides`` applied and checked."""
    return _validate(None, {}, BUILTIN, overrides)


def load_text(text: str, filename: str = "<scenario>", overrides: list[str] | None = None,
              base: Path | None = None) -> Scenario:
    """Like ``load`` for YAML text. Empty text (or only comments) is an error: the built-in
    scenario is ``load_builtin``. Files the scenario names (``workload.trace.file``,
    ``workload.artillery``) are relative to ``base`` (default: the current folder); those
    given by ``overrides`` to the current folder. An Artillery script (top-level ``config``
    and ``scenarios``) is read as a scenario of its own."""
    tree = _parse(text, filename)
    if tree is None:
        raise ScenarioError([Problem(filename, 1, 1, message=EMPTY)])
    return _validate(tree, plain(tree), filename, overrides, base)


def _validate(tree, data, filename: str, overrides: list[str] | None, base: Path | None = None) -> Scenario:
    if not isinstance(data, dict):
        line, col = start(tree) or (1, 1)
        raise ScenarioError([Problem(filename, line, col, message="expected a mapping of scenario fields "
                                     f"(name: ..., horizon: ...) at the top level, got {show(data)}")])
    if is_script(data):
        data = script_scenario(tree, data, filename, list(DEFAULT_ENDPOINTS))
    if base is not None:
        _resolve_files(data, Path(base))
    problems, origins = _apply_all(data, overrides or [], filename)
    _expand_artillery(data, filename)
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        problems += problems_of(exc, data, tree, filename, origins)
    if problems:
        raise ScenarioError(sorted(problems, key=lambda p: _order(p, overrides or [])))
    return scenario


def _order(p: Problem, overrides: list[str]) -> tuple:
    """File problems by position, then override problems in command-line order."""
    if p.override is not None:
        return (1, overrides.index(p.override), 0, 0)
    return (0, p.line is None, p.line or 0, p.col or 0)


def _parse(text: str, filename: str):
    try:
        return read_tree(text)   # round trip, YAML 1.2, bounded
    except YAMLProblem as exc:
        raise ScenarioError([Problem(filename, exc.line, exc.col, message=exc.message)]) from None


def _resolve_files(data: dict, base: Path) -> None:
    """Relative file names inside the scenario, made relative to the scenario file's folder."""
    wl = data.get("workload")
    if not isinstance(wl, dict):
        return
    trace, art = wl.get("trace"), wl.get("artillery")
    if isinstance(trace, dict) and isinstance(trace.get("file"), str) and not Path(trace["file"]).is_absolute():
        trace["file"] = str(base / trace["file"])
    if isinstance(art, str) and not Path(art).is_absolute():
        wl["artillery"] = str(base / art)
    elif isinstance(art, dict) and isinstance(art.get("script"), str) and not Path(art["script"]).is_absolute():
        art["script"] = str(base / art["script"])


def _expand_artillery(data: dict, filename: str) -> None:
    """``workload.artillery``: the script's phases and flows become one more open-loop source."""
    wl = data.get("workload")
    if not isinstance(wl, dict) or wl.get("artillery") is None:
        return
    ref = wl.pop("artillery")
    ref = {"script": ref} if isinstance(ref, str) else ref
    if not isinstance(ref, dict) or not isinstance(ref.get("script"), str):
        raise ScenarioError([Problem(filename, path="workload.artillery",
                                     message=f"expected FILE or {{script: FILE, routes: ..., arrivals: ...}}, got {show(ref)}")])
    extra = set(ref) - {"script", "routes", "arrivals"}
    if extra:
        raise ScenarioError([Problem(filename, path="workload.artillery",
                                     message=f"unknown keys {sorted(extra)}; expected script, routes, arrivals")])
    path = Path(ref["script"])
    tree, script = read_script(path)
    endpoints = list(wl["endpoints"]) if isinstance(wl.get("endpoints"), dict) else list(DEFAULT_ENDPOINTS)
    if not is_script(script):
        raise ScenarioError([Problem(str(path), message="expected an Artillery script (config: with phases, scenarios:)")])
    source = script_source(tree, script, str(path), endpoints, ref.get("routes"), ref.get("arrivals"))
    loops = wl.setdefault("open_loop", [])
    if isinstance(loops, list):
        loops.append(source)


# -- overrides -----------------------------------------------------------------------
def _apply_all(data: dict, overrides: list[str], filename: str):
    problems, origins = [], []
    for arg in overrides:
        try:
            origins.append((_apply(data, arg), arg))
        except _Bad as exc:
            problems.append(Problem(filename, path=exc.path, message=exc.message, override=arg))
    return problems, origins


def _apply(data: dict, arg: str) -> tuple:
    key, sep, text = arg.partition("=")
    parts = key.strip().split(".")
    if not sep or "" in parts:
        raise _Bad("", "expected dotted.path=value, e.g. database.pool.max=30")
    value = _override_value(text)
    node, path = data, []
    for part, nxt in zip(parts, parts[1:] + [None]):
        seg = _segment(node, part, path)
        if nxt is None:
            _put(node, seg, value)
        else:
            child = get(node, seg)
            if child is MISSING or child is None:
                child = [] if nxt.isdigit() else {}
                _put(node, seg, child)
            elif not isinstance(child, (dict, list)):
                raise _Bad(dotted(path + [seg]), f"expected a mapping or list to set {nxt!r} in, got {show(child)}")
            node = child
        path.append(seg)
    return tuple(path)


def _override_value(text: str):
    try:
        return read_plain(text)
    except YAMLProblem as exc:
        where = f" (column {exc.col})" if exc.col else ""
        syntax = "YAML syntax error: "
        if exc.message.startswith(syntax):
            raise _Bad("", f"YAML syntax error in the value{where}: {exc.message[len(syntax):]}") from None
        raise _Bad("", f"in the value{where}: {exc.message}") from None


def _segment(node, part: str, path: list):
    if isinstance(node, list):
        if not part.isdigit() or int(part) > len(node):
            raise _Bad(dotted(path), f"expected a list index from 0 to {len(node)}, got {part!r}")
        return int(part)
    return int(part) if part.isdigit() and int(part) in node else part


def _put(node, seg, value) -> None:
    if isinstance(node, list) and seg == len(node):
        node.append(value)
    else:
        node[seg] = value


# -- SLO files -----------------------------------------------------------------------
def load_slo(path) -> SLOConfig:
    """An SLOConfig from a YAML file: the ``slo`` mapping itself, or a file with a top-level ``slo:``."""
    name = str(path)
    tree = _parse(_read(path), name)
    if tree is None:
        raise ScenarioError([Problem(name, 1, 1, message="the file is empty: expected objectives, thresholds "
                                                          "or alerts")])
    if isinstance(tree, dict) and "slo" in tree:
        tree = tree["slo"]
    try:
        return SLOConfig.model_validate(plain(tree) if tree is not None else {})
    except ValidationError as exc:
        out = []
        for e in exc.errors(include_url=False):
            loc = tuple(p for p in e["loc"] if p != "for_") + (("for",) if "for_" in e["loc"] else ())
            line, col = position(tree, loc) or (None, None)
            got = f", got {show(e['input'])}" if "input" in e and not isinstance(e["input"], dict) else ""
            out.append(Problem(name, line, col, dotted(loc), e["msg"].replace("Value error, ", "") + got))
        raise ScenarioError(out) from None
