"""Artillery 2 scripts read directly: ``capsim run test/scaling-test.yml``, or ``workload.artillery``.

A script's ``config.phases`` become one open-loop source with evenly spaced arrivals (as
Artillery 2 spaces them; a phase's ``mode: poisson`` gives ``arrivals: poisson``), and its
``scenarios`` become that source's weighted ``flows`` (``weight``, default 1). Flow steps:
``get``/``post``/``put``/``patch``/``delete``/``head``/``options`` with a ``url`` (one request to
the endpoint the URL maps to) and ``think`` (seconds; a pause). A URL maps to an endpoint by
``routes`` (URL path -> endpoint), else to the last segment of its path that names an endpoint
(``/api/v1/toybox?x=1`` -> ``toybox``); a URL that maps to none is an error listing it.

Artillery 1.x scripts listed a scenario's steps under ``requests:``; Artillery 2 rejects that
key (it wants ``flow:``), so capsim rejects it too, at its line, with the fix. Other step kinds
(``loop``, ``function``, ``log``, ...) and phase keys (``maxVusers``) are errors: capsim does
not model them. The rest of ``config`` (``target``, ``http``, plugins, ``payload``) is ignored.
"""
from __future__ import annotations

from pathlib import Path


from capsim.scenario.problems import Problem, ScenarioError, start
from capsim.scenario.yaml_io import YAMLProblem, plain, read_bounded, read_tree

__all__ = ["is_script", "script_source", "script_scenario", "read_script", "METHODS", "url_endpoint"]

METHODS = ("get", "post", "put", "patch", "delete", "head", "options")
PHASE_KEYS = {"name", "duration", "arrivalRate", "rampTo", "arrivalCount", "pause", "mode"}
DRAIN = 30.0          # seconds simulated after the last phase, for the last users to finish


def is_script(data) -> bool:
    """An Artillery script: top-level ``config`` and ``scenarios`` (no capsim scenario has them)."""
    return isinstance(data, dict) and "config" in data and "scenarios" in data


def _where(tree, path) -> tuple[int | None, int | None]:
    node, pos = tree, start(tree)
    for seg in path:
        lc = getattr(node, "lc", None)
        try:
            child = node[seg]
        except (KeyError, IndexError, TypeError):
            break
        if lc is not None:
            line, col = lc.item(seg) if isinstance(node, list) else lc.key(seg)
            pos = (line + 1, col + 1)
        node = child
    return pos or (None, None)


class _Reader:
    def __init__(self, tree, filename: str, routes: dict[str, str], endpoints: list[str]):
        self.tree, self.file, self.routes, self.endpoints = tree, filename, routes, endpoints
        self.problems: list[Problem] = []
        self.unmapped: dict[str, tuple] = {}

    def bad(self, path, message: str) -> None:
        line, col = _where(self.tree, path)
        self.problems.append(Problem(self.file, line, col, ".".join(str(p) for p in path), message))

    def phases(self, data) -> tuple[list[dict], str]:
        config = data.get("config") if isinstance(data, dict) else None
        phases = config.get("phases") if isinstance(config, dict) else None
        if not isinstance(phases, list) or not phases:
            self.bad(("config",), "expected config.phases: a list of phases (duration + arrivalRate, ...)")
            return [], "even"
        out, modes = [], set()
        for i, ph in enumerate(phases):
            if not isinstance(ph, dict):
                self.bad(("config", "phases", i), "expected a phase mapping, e.g. {duration: 60, arrivalRate: 10}")
                continue
            for key in ph:
                if key not in PHASE_KEYS:
                    self.bad(("config", "phases", i, key), f"capsim does not model the phase key {key!r} "
                             f"(expected some of {sorted(PHASE_KEYS)})")
            modes.add("poisson" if ph.get("mode") == "poisson" else "even")
            out.append({k: v for k, v in ph.items() if k in PHASE_KEYS and k != "mode"})
        if len(modes) > 1:
            self.bad(("config", "phases"), "expected the same mode in every phase (capsim spaces a whole "
                     "source's arrivals one way): all poisson or none")
        return out, modes.pop() if modes else "even"

    def flows(self, data) -> list[dict]:
        scenarios = data.get("scenarios")
        if not isinstance(scenarios, list) or not scenarios:
            self.bad(("scenarios",), "expected scenarios: a list of {name, weight, flow: [...]}")
            return []
        return [f for i, one in enumerate(scenarios) if (f := self.flow(one, i)) is not None]

    def flow(self, sc, i: int) -> dict | None:
        where = ("scenarios", i)
        if not isinstance(sc, dict):
            self.bad(where, "expected a scenario mapping with a flow")
            return None
        if "requests" in sc:
            self.bad(where + ("requests",), "Artillery 2 rejects the 1.x key 'requests:' (this script would not "
                     "run); rename it to 'flow:' (the steps stay as they are)")
            return None
        steps = sc.get("flow")
        if not isinstance(steps, list) or not steps:
            self.bad(where, "expected flow: a list of steps (- get: {url: /path}, - think: 1)")
            return None
        flow = [x for j, st in enumerate(steps) if (x := self.step(st, where + ("flow", j))) is not None]
        weight = sc.get("weight", 1)
        if not isinstance(weight, (int, float)) or isinstance(weight, bool) or weight < 0:
            self.bad(where + ("weight",), f"expected a number >= 0, got {weight!r}")
            weight = 0
        return {"name": str(sc.get("name", i)), "weight": weight, "flow": flow}

    def step(self, step, where):
        """An endpoint name or {think: s}; a step's other keys (headers, capture, ...) change no cost."""
        kinds = [k for k in step if k in METHODS or k == "think"] if isinstance(step, dict) else []
        if len(kinds) != 1:
            other = [k for k in step if k not in METHODS] if isinstance(step, dict) else []
            what = f"capsim does not model the step {other[0]!r}; " if other and not kinds else ""
            self.bad(where, f"{what}expected one step such as {{get: {{url: /api/v1/health}}}} or {{think: 2}}")
            return None
        kind = kinds[0]
        spec = step[kind]
        if kind == "think":
            return {"think": spec}
        url = spec.get("url") if isinstance(spec, dict) else None
        if not isinstance(url, str):
            self.bad(where + (kind,), "expected a request with a url, e.g. {url: /api/v1/health}")
            return None
        name = url_endpoint(url, self.routes, self.endpoints)
        if name is None:
            self.unmapped.setdefault(url, where + (kind,))
        return name

    def check_urls(self) -> None:
        for url, where in self.unmapped.items():
            self.bad(where, f"the URL {url!r} maps to no endpoint; map it in workload.artillery.routes "
                     f"(URL path -> endpoint) or name an endpoint after one of its path segments "
                     f"(endpoints: {', '.join(self.endpoints)})")


def url_endpoint(url: str, routes: dict[str, str], endpoints) -> str | None:
    path = url.split("?", 1)[0].split("#", 1)[0]
    if "://" in path:
        path = "/" + path.split("://", 1)[1].partition("/")[2]
    if path in routes:
        return routes[path]
    for seg in reversed([s for s in path.split("/") if s]):
        if seg in endpoints:
            return seg
    return None


def read_script(path) -> tuple[object, object]:
    """(round-trip YAML tree, plain data) of an Artillery script, or a ScenarioError; read with
    the scenario files' bounds (size, nesting, alias expansion: ``capsim.scenario.yaml_io``)."""
    name = str(path)
    try:
        text = read_bounded(Path(path))
    except FileNotFoundError:
        raise ScenarioError([Problem(name, message="no such file (an Artillery script)")]) from None
    except YAMLProblem as exc:
        raise ScenarioError([Problem(name, message=exc.message)]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError([Problem(name, message=f"cannot read: {exc}")]) from None
    try:
        tree = read_tree(text)
    except YAMLProblem as exc:
        raise ScenarioError([Problem(name, exc.line, exc.col, message=exc.message)]) from None
    return tree, plain(tree)


def script_source(tree, data, filename: str, endpoints: list[str], routes: dict[str, str] | None = None,
                  arrivals: str | None = None) -> dict:
    """The open-loop source (plain data) a script makes; its ``urls``: endpoint -> the URL requested."""
    reader = _Reader(tree, filename, dict(routes or {}), list(endpoints))
    phases, mode = reader.phases(data)
    flows = reader.flows(data) if isinstance(data, dict) else []
    reader.check_urls()
    if reader.problems:
        raise ScenarioError(reader.problems)
    urls = {}
    for sc in data["scenarios"]:
        for step in sc.get("flow", []):
            for kind in (k for k in step if k in METHODS):
                urls.setdefault(url_endpoint(step[kind]["url"], reader.routes, reader.endpoints), step[kind]["url"])
    source = {"name": f"artillery {Path(filename).name}", "phases": phases, "arrivals": arrivals or mode,
              "flows": flows, "urls": {k: v for k, v in urls.items() if k is not None}}
    return source


def script_scenario(tree, data, filename: str, endpoints: list[str]) -> dict:
    """A capsim scenario (plain data) that runs the script against the default service."""
    source = script_source(tree, data, filename, endpoints)
    from capsim.models.units import parse_duration
    total = 0.0
    for ph in source["phases"]:
        try:
            total += parse_duration(ph.get("pause", ph.get("duration", 0)))
        except ValueError:
            pass                        # the phase's own validation says what is wrong
    scenario = {"name": Path(filename).stem, "description": f"Artillery script {filename}",
                "horizon": total + DRAIN, "warmup": 0, "metrics": {"interval": 10},
                "workload": {"sessions": None, "open_loop": [source]}}
    return scenario
