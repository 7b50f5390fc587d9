"""An Artillery report (``artillery run --output report.json``): the arrival rate and the
response-time quantiles per period, and what they let capsim fit.

Layouts read:

- Artillery 2: ``aggregate`` and ``intermediate`` (one entry per period, usually 10 s) with
  ``counters`` (``http.requests``, ``http.responses``, ``http.codes.<code>``, ``errors.<name>``,
  ``vusers.created``), ``rates`` and ``summaries`` (or ``histograms``) of ``http.response_time``
  (min, max, mean, median/p50, p75, p90, p95, p99 in milliseconds); a period starts at its
  ``period`` (epoch ms);
- Artillery 1.x: ``intermediate`` entries with ``timestamp`` (the period's end), ``latency``
  (min, max, median, p95, p99), ``rps`` and ``codes``, ``requestsCompleted``.

A report has no server timings, so what separates the handler's CPU from waiting is an
assumption, stated in every note and YAML comment: the quarter of periods with the lowest
request rate saw no queueing; the smallest response time over them is the latency outside
the server (network, HTTP); the rest of their response times is the handler's CPU, all
before any database step. Its distribution is fitted to those periods' quantiles (each
quantile averaged over the periods, weighted by responses) by least squares on log
quantiles among exponential, gamma and lognormal; its mean's interval is the Student t
interval over the periods' means. Artillery rounds response times to whole milliseconds:
below a few milliseconds the fit is coarse.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import optimize, stats

from capsim.calibrate.errors import InputError, InputProblem
from capsim.calibrate.fit import mean_interval
from capsim.models.distributions import Exponential, Gamma, LogNormal

__all__ = ["ArtilleryRun", "read_artillery", "is_artillery", "QuantileFit", "fit_quantiles", "artillery_service",
           "ArtilleryService", "QUANTILES"]

QUANTILES = {"p50": 0.5, "median": 0.5, "p75": 0.75, "p90": 0.9, "p95": 0.95, "p99": 0.99}
RT = "http.response_time"
_Z99 = stats.norm.ppf(0.99)


@dataclass
class ArtilleryRun:
    source: str
    layout: str                     # "2" or "1.x"
    periods: pd.DataFrame           # start (s from the first), seconds, requests, responses, errors, rate, rt_* (s)
    start: datetime | None
    codes: dict = field(default_factory=dict)


def is_artillery(data) -> bool:
    return isinstance(data, dict) and "aggregate" in data and "intermediate" in data


def _num(v, path: str, problems: list, file: str, required: bool = True):
    if isinstance(v, str):               # Artillery 2 writes a period's start as text ("1767636000000")
        try:
            v = float(v)
        except ValueError:
            pass
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        if v is None and not required:
            return float("nan")
        problems.append(InputProblem(file, f"expected a number, got {json.dumps(v)[:40]}", None, path))
        return float("nan")
    return float(v)


def _rt(entry: dict, path: str, file: str, problems: list, keys: tuple) -> dict:
    for key in keys:
        block = entry.get(key)
        if isinstance(block, dict) and RT in block:
            s, p = block[RT], f"{path}.{key}[\"{RT}\"]"
            if not isinstance(s, dict):
                problems.append(InputProblem(file, f"expected a mapping of statistics, got {json.dumps(s)[:40]}", None, p))
                return {}
            return {k: _num(s.get(k), f"{p}.{k}", problems, file, required=False) / 1000.0
                    for k in ("min", "max", "mean", *QUANTILES) if k in s}
    return {}


def _v2(data: dict, file: str, problems: list) -> tuple[list[dict], dict]:
    rows, codes = [], {}
    for i, e in enumerate(data["intermediate"]):
        path = f"$.intermediate[{i}]"
        if not isinstance(e, dict):
            problems.append(InputProblem(file, "expected a mapping (one period)", None, path))
            continue
        c = e.get("counters", {})
        if not isinstance(c, dict):
            problems.append(InputProblem(file, f"expected a mapping, got {json.dumps(c)[:40]}", None, f"{path}.counters"))
            continue
        start = _num(e.get("period", e.get("firstCounterAt")), f"{path}.period", problems, file) / 1000.0
        last = max(_num(e.get(k), f"{path}.{k}", problems, file, required=False)
                   for k in ("lastCounterAt", "lastMetricAt")) / 1000.0
        errors = sum(v for k, v in c.items() if k.startswith("errors.") and isinstance(v, (int, float)))
        for k, v in c.items():
            if k.startswith("http.codes."):
                codes[k[11:]] = codes.get(k[11:], 0) + v
        rows.append({"start": start, "last": last, "requests": _num(c.get("http.requests", 0), f"{path}.counters"
                     f"[\"http.requests\"]", problems, file), "responses": float(c.get("http.responses", 0) or 0),
                     "errors": float(errors), "vusers": float(c.get("vusers.created", 0) or 0),
                     **{f"rt_{k}": v for k, v in _rt(e, path, file, problems, ("summaries", "histograms")).items()}})
    return rows, codes


def _v1(data: dict, file: str, problems: list) -> tuple[list[dict], dict]:
    rows, codes = [], {}
    for i, e in enumerate(data["intermediate"]):
        path = f"$.intermediate[{i}]"
        if not isinstance(e, dict) or "timestamp" not in e:
            problems.append(InputProblem(file, "expected a mapping with timestamp (one period)", None, path))
            continue
        try:
            end = pd.Timestamp(e["timestamp"]).timestamp()
        except (ValueError, TypeError):
            problems.append(InputProblem(file, f"expected an ISO time, got {e['timestamp']!r}", None, f"{path}.timestamp"))
            continue
        lat = e.get("latency") or {}
        for k, v in (e.get("codes") or {}).items():
            codes[str(k)] = codes.get(str(k), 0) + v
        n = _num(e.get("requestsCompleted", 0), f"{path}.requestsCompleted", problems, file)
        rt = {f"rt_{k}": _num(lat.get(k), f"{path}.latency.{k}", problems, file, required=False) / 1000.0
              for k in ("min", "max", "median", "p95", "p99") if k in lat}
        rows.append({"end": end, "requests": n, "responses": n, "errors": float(sum((e.get("errors") or {}).values())),
                     "vusers": float(e.get("scenariosCreated", 0) or 0), **rt})
    if rows:
        ends = np.array([r["end"] for r in rows])
        step = float(np.median(np.diff(ends))) if len(ends) > 1 else 10.0
        for r in rows:
            r["start"], r["last"] = r["end"] - step, r.pop("end")
    return rows, codes


def read_artillery(path) -> ArtilleryRun:
    path = Path(path)
    file = str(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError.one(file, "no such file") from None
    except json.JSONDecodeError as exc:
        raise InputError.one(file, f"expected JSON: {exc.msg}", exc.lineno, f"column {exc.colno}") from None
    if not is_artillery(data):
        raise InputError.one(file, "expected an Artillery report: a mapping with aggregate and intermediate", None, "$")
    if not isinstance(data["intermediate"], list) or not data["intermediate"]:
        raise InputError.one(file, "expected a list of periods (run Artillery with --output)", None, "$.intermediate")
    problems: list[InputProblem] = []
    v1 = isinstance(data["aggregate"], dict) and "latency" in data["aggregate"]
    rows, codes = (_v1 if v1 else _v2)(data, file, problems)
    if problems:
        raise InputError(problems[:10])
    f = pd.DataFrame(rows).sort_values("start").reset_index(drop=True)
    step = (f.start.shift(-1) - f.start)
    usual = float(step.median()) if step.notna().any() else 10.0
    # the last period: to its last counter, rounded up to whole seconds, at most the usual period
    tail = np.minimum(np.ceil((f["last"] - f.start).fillna(usual)), usual)
    f["seconds"] = step.fillna(tail).clip(lower=1.0)
    origin = float(f.start.iloc[0])
    f["start"] = f.start - origin
    f["rate"] = f.requests / f.seconds
    if "rt_median" in f and "rt_p50" not in f:
        f["rt_p50"] = f.rt_median
    start = datetime.fromtimestamp(origin, tz=timezone.utc) if origin > 1e8 else None
    return ArtilleryRun(file, "1.x" if v1 else "2", f.drop(columns=["last"]), start, codes)


# -- fitting a distribution to quantiles ------------------------------------------------------
@dataclass(frozen=True)
class QuantileFit:
    dist: object
    family: str
    mean: float
    mean_ci: tuple[float, float]
    periods: int
    responses: int
    rmse: dict                                      # family -> RMS error of log quantiles

    def describe(self) -> str:
        lo, hi = self.mean_ci
        return (f"{self.family} (least squares on log quantiles among {', '.join(sorted(self.rmse))}), from "
                f"{self.responses} responses in {self.periods} periods, mean {self.mean:.6g} s "
                f"[95% CI {lo:.6g}, {hi:.6g}], RMS log error {self.rmse[self.family]:.3f}")


def _family(name: str, params):
    if name == "exponential":
        (m,) = np.exp(params)
        return stats.expon(scale=m), Exponential(mean=float(m))
    a, scale = np.exp(params)
    if name == "gamma":
        return stats.gamma(a, scale=scale), Gamma(mean=float(a * scale), cv=float(1 / math.sqrt(a)))
    s = min(a, _Z99 * 0.999)
    return stats.lognorm(s, scale=scale), LogNormal(mean=float(scale * math.exp(s * s / 2)),
                                                     p99=float(scale * math.exp(s * _Z99)))


def fit_quantiles(ps: np.ndarray, qs: np.ndarray, mean: float) -> tuple[object, str, dict]:
    """(capsim distribution, family, RMS log error per family) fitted to quantiles ``qs`` at ``ps``."""
    ok = qs > 0
    ps, lq = ps[ok], np.log(qs[ok])
    if len(ps) == 0:
        raise ValueError("no quantile above zero")
    starts = {"exponential": [math.log(mean)], "gamma": [0.0, math.log(mean)], "lognormal": [math.log(0.5),
                                                                                           math.log(mean)]}
    out, rmse = {}, {}
    for name, x0 in starts.items():
        if len(x0) > len(ps):
            continue

        def err(params, name=name):
            frozen, _ = _family(name, params)
            return np.log(np.maximum(frozen.ppf(ps), 1e-12)) - lq
        res = optimize.least_squares(err, x0)
        frozen, dist = _family(name, res.x)
        out[name], rmse[name] = dist, float(np.sqrt(np.mean(err(res.x) ** 2)))
    best = min(rmse, key=lambda k: (rmse[k] - (0.01 if k == "exponential" else 0.0)))   # ties: the simpler
    return out[best], best, rmse


@dataclass
class ArtilleryService:
    cpu: QuantileFit
    outside: float
    quiet: pd.DataFrame             # the low-rate periods behind the fit
    notes: list[str] = field(default_factory=list)


def artillery_service(run: ArtilleryRun) -> ArtilleryService:
    """The handler's CPU and the latency outside the server, from the quietest quarter of periods."""
    p = run.periods
    p = p[(p.responses > 0) & p.get("rt_min", pd.Series(np.nan, index=p.index)).notna()]
    if p.empty:
        raise InputError.one(run.source, "no period with responses and http.response_time statistics", None,
                             "$.intermediate")
    quiet = p[p.rate <= p.rate.quantile(0.25)]
    outside = float(quiet.rt_min.min())
    cols = [c for c in (f"rt_{k}" for k in ("p50", "p75", "p90", "p95", "p99")) if c in quiet]
    w = quiet.responses.to_numpy()
    ps = np.array([QUANTILES[c[3:]] for c in cols])
    qs = np.array([np.average(quiet[c].to_numpy() - outside, weights=w) for c in cols])
    means = (quiet.rt_mean - outside).to_numpy() if "rt_mean" in quiet else np.array([qs[0]])
    mean = float(np.average(means, weights=w)) if "rt_mean" in quiet else float(qs[0])
    dist, family, rmse = fit_quantiles(ps, qs, max(mean, 1e-4))
    ci = mean_interval(means) if len(means) >= 2 else (float("nan"), float("nan"))
    fit = QuantileFit(dist, family, dist.mean, ci, len(quiet), int(w.sum()), rmse)
    notes = [f"latency outside the server = {outside * 1e3:.1f} ms: the smallest response time in the {len(quiet)} "
             f"periods with the lowest request rate (<= {quiet.rate.max():.4g}/s; assumed: no queueing there, and "
             f"the fastest response is all fixed cost)",
             f"cpu_pre: {fit.describe()} (assumed: the rest of those periods' response times is the handler's CPU; "
             f"no server timings, so no database split; Artillery's whole milliseconds make short times coarse)"]
    return ArtilleryService(fit, outside, quiet, notes)
