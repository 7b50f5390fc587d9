"""Scenario files: YAML 1.2 in, a validated ``Scenario`` out, or every problem with its place.

``load(path, overrides)`` reads the file with ruamel.yaml's round-trip loader (mappings
and sequences keep their line and column), applies ``--set dotted.path=value``
overrides, then validates. Each pydantic error becomes a ``Problem`` placed at its YAML line and column
(``capsim.scenario.problems``).
"""
from __future__ import annotations

from pathlib import Path

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from pydantic import ValidationError

from capsim.scenario.problems import MISSING, Problem, ScenarioError, dotted, get, problems_of, show, start
from capsim.models.endpoints import DEFAULT_ENDPOINTS
from capsim.scenario.artillery import is_script, read_script, script_scenario, script_source
from capsim.scenario.config import Scenario
from capsim.scenario.slo import SLOConfig
from capsim.scenario.yaml_io import plain, read_plain

__all__ = ["load", "load_text", "load_slo", "Problem", "ScenarioError"]


class _Bad(Exception):
    def __init__(self, path: str, message: str):
        super().__init__(message)
        self.path, self.message = path, message


# -- reading -----------------------------------------------------------------------
def load(path, overrides: list[str] | None = None) -> Scenario:
    """Read, override and validate the scenario file at ``path``."""
    name, p = str(path), Path(path)
    if p.is_dir():
        raise ScenarioError([Problem(name, message="is a directory, expected a scenario YAML file")])
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError([Problem(name, message="no such file")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError([Problem(name, message=f"cannot read: {exc}")]) from None
    return load_text(text, name, overrides, base=p.parent)


def load_text(text: str, filename: str = "<scenario>", overrides: list[str] | None = None,
              base: Path | None = None) -> Scenario:
    """Like ``load`` for YAML text (empty text: the built-in defaults). Files the scenario
    names (``workload.trace.file``, ``workload.artillery``) are relative to ``base`` (default:
    the current folder); those given by ``overrides`` to the current folder. An Artillery
    script (top-level ``config`` and ``scenarios``) is read as a scenario of its own."""
    tree = _parse(text, filename)
    data = {} if tree is None else plain(tree)
    if not isinstance(data, dict):
        line, col = start(tree) or (None, None)
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
        return YAML().load(text)   # round trip, YAML 1.2
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (None, None)
        raise ScenarioError([Problem(filename, line, col, message=f"YAML syntax error: {exc.problem or exc.context}")]) from None
    except YAMLError as exc:
        raise ScenarioError([Problem(filename, message=f"YAML syntax error: {exc}")]) from None


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
    except YAMLError as exc:
        raise _Bad("", f"YAML syntax error in the value: {getattr(exc, 'problem', None) or exc}") from None


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
    try:
        data = read_plain(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ScenarioError([Problem(name, message="no such file")]) from None
    except YAMLError as exc:
        raise ScenarioError([Problem(name, message=f"YAML syntax error: {exc}")]) from None
    if isinstance(data, dict) and set(data) >= {"slo"}:
        data = data["slo"]
    try:
        return SLOConfig.model_validate(data or {})
    except ValidationError as exc:
        raise ScenarioError([Problem(name, path=".".join(str(p) for p in e["loc"]),
                                     message=e["msg"]) for e in exc.errors(include_url=False)]) from None
