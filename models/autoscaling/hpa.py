"""Kubernetes HorizontalPodAutoscaler (autoscaling/v2), as restated in
``shared/reference/autoscaling.md`` and checked against cases from the Kubernetes tests.

Pure functions (the replica calculator and the two normalisations) come first; ``HPA``
wires them into the policy protocol. Facts carried over from upstream
(``replica_calculator.go``, ``horizontal.go``):

- utilisation is truncated to an integer percent (average values to an integer in the
  metric's unit: we pass rps in milli-requests/s, as Kubernetes uses milli-units);
- the first sync seeds the recommendation history with the current count, so nothing
  scales down within the scale-down window after the start;
- a recommendation counts while younger than its window, a scale event while younger than
  the policy period (``age < window``; the legacy code also keeps one exactly as old as the
  window, which real syncs, drifting late, almost never produce);
- no usable sample for any metric, or some metric without one while the others would
  scale down: no opinion (Kubernetes keeps the count).

Readiness per metric, as Kubernetes' ``groupPods``: a Pending pod (our booting instance,
never ready yet) is *unready* for every metric; a Running pod that is not Ready (our
instance restarting after a crash) is unready only for CPU, and for memory and
requests per second counts with its sample (or, without one, as missing). The CPU
initialization period is kept: while an instance is younger than
``cpu_initialization_period``, its CPU sample also counts as unready until a full
``window`` has passed since it became ready (the readiness-delay rule for pods that were
never ready is not modelled). Samples of pods that do not exist, external/object metrics,
scale-to-zero and separate up/down tolerances are left out. Float noise below 1e-9 is
forgiven in ceil/floor/trunc (10 + 10 % gives 11 where Go's float64 gives 12).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Optional, Sequence

from pydantic import BaseModel, ConfigDict, Field

from capsim.models.autoscaling.base import Decision, Observation
from capsim.models.autoscaling.fixed import Bounded
from capsim.models.units import Count, Duration, Positive, PositiveDuration, Real

__all__ = ["PodSample", "resource_replicas", "average_value_replicas", "normalize_legacy",
           "Rules", "DEFAULT_SCALE_UP", "DEFAULT_SCALE_DOWN", "stabilize", "rate_limit",
           "HPAMetric", "HPAScalingPolicy", "HPAScalingRules", "HPABehavior", "HPAConfig", "HPA"]

LEGACY_WINDOW = 300.0   # --horizontal-pod-autoscaler-downscale-stabilization
_max, _min = max, min   # the normalisers take ``min`` / ``max`` arguments, as upstream


def _ceil(x: float) -> int:
    return math.ceil(round(x, 9))


def _floor(x: float) -> int:
    return math.floor(round(x, 9))


# ---------------------------------------------------------------- replica calculator
@dataclass(frozen=True)
class PodSample:
    request: float               # cores, or any unit shared with usage
    usage: float | None          # None: no sample (missing)
    ready: bool = True
    phase: str = "Running"       # Pending, Running, Succeeded, Failed, ...
    deleting: bool = False


def _unready(p: PodSample, cpu: bool) -> bool:
    """Kubernetes' ``groupPods``: Pending is unready for every metric; a Running pod that is
    not Ready only for CPU, and only when it has a sample (without one it is missing)."""
    return p.phase == "Pending" or (cpu and not p.ready and p.usage is not None)


def _calculate(current: int, pods: Sequence[PodSample], measure, target: float,
               fallback, tol: float, cpu: bool) -> tuple[int, float] | None:
    """Steps 1-4 (and 5) for any metric: (proposal, measured value), None without samples.
    ``cpu``: readiness counts (the CPU resource metric); otherwise only the phase does.

    ``measure(pairs)`` gives the truncated metric of (usage, request) pairs;
    ``fallback(request)`` the usage a missing pod counts with on a scale-down."""
    live = [p for p in pods if not p.deleting and p.phase != "Failed"]
    unready = [p for p in live if _unready(p, cpu)]
    rest = [p for p in live if not _unready(p, cpu)]
    missing = [p for p in rest if p.usage is None]
    counted = [(p.usage, p.request) for p in rest if p.usage is not None]
    if not counted:
        return None
    value = measure(counted)
    r = value / target
    within = lambda x: 1 - tol <= x <= 1 + tol   # noqa: E731
    up_with_unready = bool(unready) and r > 1
    if not up_with_unready and not missing:
        return (current if within(r) else _ceil(r * len(counted))), value
    if r < 1:
        counted += [(fallback(p.request), p.request) for p in missing]
    elif r > 1:
        counted += [(0.0, p.request) for p in missing]
    if up_with_unready:
        counted += [(0.0, p.request) for p in unready]
    r2 = measure(counted) / target
    if within(r2) or (r < 1 < r2) or (r > 1 > r2):
        return current, value
    n = _ceil(r2 * len(counted))
    if (r2 < 1 and n > current) or (r2 > 1 and n < current):
        return current, value
    return n, value


def _utilization(pairs) -> float:
    total = sum(q for _, q in pairs)
    if total <= 0:
        raise ValueError("requests sum to 0: utilisation is undefined")
    return float(_floor(100 * sum(u for u, _ in pairs) / total))


def _average(pairs) -> float:
    return float(_floor(sum(u for u, _ in pairs) / len(pairs)))


def _resource(current, pods, target_pct, tolerance, resource: str = "cpu"):
    return _calculate(current, pods, _utilization, target_pct,
                      lambda req: req * max(100.0, target_pct) / 100, tolerance, resource == "cpu")


def _plain(current, pods, target_value, tolerance):
    return _calculate(current, pods, _average, target_value, lambda _: target_value, tolerance, False)


def resource_replicas(current: int, pods: list[PodSample], target_utilization_pct: float,
                      tolerance: float = 0.1, resource: str = "cpu") -> int:
    """Proposal for a utilisation target (percent of request) of ``resource`` (``cpu``:
    readiness counts; ``memory``: only the phase). ValueError without samples."""
    out = _resource(current, pods, target_utilization_pct, tolerance, resource)
    if out is None:
        raise ValueError("no metrics for the targeted pods (pods might be unready)")
    return out[0]


def average_value_replicas(current: int, pods: list[PodSample], target_value: float,
                           tolerance: float = 0.1) -> int:
    """Proposal for an average-value (Pods) metric: each pod's ``usage`` is its value (e.g.
    milli-rps; None = missing, ``request`` unused). Readiness does not count, only the phase."""
    out = _plain(current, pods, target_value, tolerance)
    if out is None:
        raise ValueError("no metrics for the targeted pods (pods might be unready)")
    return out[0]


# ---------------------------------------------------------------- normalisation
def normalize_legacy(current: int, proposal: int, now: float, history: list[tuple[float, int]],
                     min: int, max: int, window: float = LEGACY_WINDOW) -> int:  # noqa: A002
    """No ``behavior``: the highest proposal of the last ``window`` s (this one included;
    ``history`` holds (time, proposal)), within [min, min(max, max(2 * current, 4))].
    The caller appends (now, proposal) to ``history``."""
    stabilized = _max([proposal] + [r for t, r in history if now - t < window])
    upper = _min(max, _max(2 * current, 4))
    return _max(min, _min(upper, stabilized))


@dataclass(frozen=True)
class Rules:
    """One direction of ``behavior``; policies are (``Pods``|``Percent``, value, period_s)."""
    stabilization_window_s: float = 0.0
    select_policy: str = "Max"                          # Max, Min or Disabled
    policies: tuple[tuple[str, float, float], ...] = ()


DEFAULT_SCALE_UP = Rules(0.0, "Max", (("Pods", 4, 15.0), ("Percent", 100, 15.0)))
DEFAULT_SCALE_DOWN = Rules(LEGACY_WINDOW, "Max", (("Percent", 100, 15.0),))


def stabilize(current: int, proposal: int, recommendations: list[tuple[float, int]],
              up: Rules, down: Rules) -> int:
    """Raise ``current`` to the lowest proposal of the scale-up window, then lower it to the
    highest of the scale-down window; ``recommendations`` are past (age_s, proposal)."""
    low = _min([proposal] + [r for age, r in recommendations if age < up.stabilization_window_s])
    high = _max([proposal] + [r for age, r in recommendations if age < down.stabilization_window_s])
    return _min(_max(current, low), high)


def _changed(events: list[tuple[float, int]], period: float) -> int:
    return sum(abs(c) for age, c in events if age < period)


def _limit(rules: Rules, current: int, events_up, events_down, up: bool) -> int:
    """The furthest count ``rules`` allow in one direction (``current`` when Disabled)."""
    if rules.select_policy == "Disabled" or not rules.policies:
        return current
    limits = []
    for kind, value, period in rules.policies:
        base = current - _changed(events_up, period) + _changed(events_down, period)
        if kind == "Pods":
            limits.append(int(base + value if up else base - value))
        elif up:
            limits.append(_ceil(base * (1 + value / 100)))
        else:
            limits.append(int(round(base * (1 - value / 100), 9)))
    most_change = rules.select_policy != "Min"
    return _max(limits) if most_change == up else _min(limits)


def rate_limit(current: int, stabilized: int, events_up: list[tuple[float, int]],
               events_down: list[tuple[float, int]], up: Rules, down: Rules,
               min: int, max: int) -> int:  # noqa: A002
    """Hold ``stabilized`` to the scale-up/down policies and [min, max]. Events are
    (age_s, replicas changed), the scale-down ones as positive counts removed."""
    result = stabilized
    if stabilized > current:
        result = _min(stabilized, _max(_limit(up, current, events_up, events_down, True), current))
    elif stabilized < current:
        result = _max(stabilized, _min(_limit(down, current, events_up, events_down, False), current))
    return _max(min, _min(max, result))


# ---------------------------------------------------------------- configuration
class HPAMetric(BaseModel):
    """One metric target; the largest proposal over the metrics wins."""
    model_config = ConfigDict(frozen=True, extra="forbid")
    type: Literal["cpu", "memory", "rps"] = Field(description="what to track")
    target: Positive = Field(description="cpu, memory: average utilisation in percent of the "
                          "plan (e.g. 70); rps: average requests per second per instance (e.g. 50)")


class HPAScalingPolicy(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    type: Literal["Pods", "Percent"] = Field(description="change by a number of instances or a percentage")
    value: Count = Field(description="instances, or percent of the count at the period's start")
    period: PositiveDuration = Field(le=1800, description="the change allowed within this long")


class HPAScalingRules(BaseModel):
    """``behavior.scaleUp`` / ``scaleDown``; an unset field takes that direction's default."""
    model_config = ConfigDict(frozen=True, extra="forbid")
    stabilization_window: Optional[Duration] = Field(
        None, le=3600, description="use the lowest (up) / highest (down) proposal of this long; default 0 s up, 300 s down")
    select_policy: Optional[Literal["Max", "Min", "Disabled"]] = Field(
        None, description="Max: the policy allowing the most change (default); Min: the least; Disabled: never scale this way")
    policies: Optional[list[HPAScalingPolicy]] = Field(
        None, min_length=1, description="default up: Pods 4 and Percent 100 per 15 s; down: Percent 100 per 15 s")

    def rules(self, default: Rules) -> Rules:
        return Rules(
            default.stabilization_window_s if self.stabilization_window is None else self.stabilization_window,
            self.select_policy or default.select_policy,
            default.policies if self.policies is None
            else tuple((p.type, p.value, p.period) for p in self.policies))


class HPABehavior(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    scale_up: HPAScalingRules = Field(default_factory=HPAScalingRules, description="scale-up rules")
    scale_down: HPAScalingRules = Field(default_factory=HPAScalingRules, description="scale-down rules")


class HPAConfig(Bounded):
    """Kubernetes HPA v2 (see the module text). ``min_instances`` / ``max_instances`` are
    the base bounds; the policy normalises against the effective bounds in each
    Observation (which scheduled actions may move)."""
    policy: Literal["hpa"] = "hpa"
    sync_period: PositiveDuration = Field(15.0, description="time between evaluations (--horizontal-pod-autoscaler-sync-period)")
    tolerance: Real(ge=0, lt=1) = Field(0.1, description="no change while the metric is within this fraction of the target")
    metrics: list[HPAMetric] = Field(default_factory=lambda: [HPAMetric(type="cpu", target=70)],
                                     min_length=1, description="targets; the largest proposal wins")
    behavior: Optional[HPABehavior] = Field(
        None, description="scaling rules; unset: the legacy 300 s scale-down stabilisation and the 2x/4 scale-up cap")
    window: PositiveDuration = Field(60.0, description="metrics averaged over this long: stands in for metrics-server's ~60 s resolution")
    cpu_initialization_period: Duration = Field(
        300.0, description="a younger instance's CPU counts only once a full window has passed since it became ready")

    def build(self) -> HPA:
        return HPA(self)


# ---------------------------------------------------------------- the policy
def _phase(view) -> str:
    """A managed instance never ready yet is booting: Kubernetes' Pending."""
    return "Pending" if not view.ready and view.since_ready is None else "Running"


class HPA:
    """Keeps the recommendation history and the scale events of one run.

    Scale events: a change this policy asks for is recorded when decided (like the
    controller, which records its own rescale); any other change of ``obs.current`` (a
    scheduled action, a request the controller did not carry out in full) is recorded at
    the evaluation that first sees it (a shortfall thus shows up as an opposite change that
    cancels ours within the policy periods). ``record_event`` adds one by hand; do not also
    report changes ``decide`` will see: they would count twice."""

    def __init__(self, config: HPAConfig):
        self.config = config
        self.interval, self.window = config.sync_period, config.window
        b = config.behavior
        self.up = b.scale_up.rules(DEFAULT_SCALE_UP) if b else None
        self.down = b.scale_down.rules(DEFAULT_SCALE_DOWN) if b else None
        self.recommendations: list[tuple[float, int]] = []   # (time, proposal)
        self.events: list[tuple[float, int]] = []            # (time, signed change)
        self._expected: int | None = None                    # the count we expect to see next
        self._seeded = False

    def record_event(self, now: float, change: int) -> None:
        if change:
            self.events.append((now, int(change)))

    def decide(self, obs: Observation) -> Decision | None:
        if obs.current <= 0 or not obs.instances:
            return None
        if self._expected is not None and obs.current != self._expected:
            self.record_event(obs.now, obs.current - self._expected)
        self._expected = obs.current
        self._forget(obs.now)
        if not self._seeded:   # the first sync remembers the current count as a proposal
            self.recommendations.append((obs.now, obs.current))
            self._seeded = True
        lo, hi = obs.min_instances, obs.max_instances
        if not lo <= obs.current <= hi:
            desired = _max(lo, _min(hi, obs.current))
            return self._act(obs, desired, f"hpa: {obs.current} outside [{lo}, {hi}] -> {desired}", {})
        results = [(m, self._propose(m, obs)) for m in self.config.metrics]
        valid = [(m, out) for m, out in results if out is not None]
        if not valid or (len(valid) < len(results) and _max(n for _, (n, _) in valid) < obs.current):
            return None   # Kubernetes keeps the count on a failed (or partly failed downward) read
        proposal = _max(n for _, (n, _) in valid)
        desired = self._normalize(obs, proposal)
        self.recommendations.append((obs.now, proposal))
        parts, metrics = [], {}
        for m, (n, value) in valid:
            shown = f"{value:g}/s" if m.type == "rps" else f"{value:.0f}%"
            goal = f"{m.target:g}/s" if m.type == "rps" else f"{m.target:g}%"
            parts.append(f"{m.type} {shown} vs target {goal} -> {n}")
            metrics.update({m.type: value, f"{m.type}_replicas": float(n)})
        metrics.update(proposal=float(proposal), desired=float(desired))
        reason = "hpa: " + "; ".join(parts) + (f"; normalised to {desired}" if desired != proposal else "")
        return self._act(obs, desired, reason, metrics)

    def _act(self, obs: Observation, desired: int, reason: str, metrics: dict) -> Decision:
        if desired != obs.current:
            self.record_event(obs.now, desired - obs.current)
            self._expected = desired
        return Decision(desired, reason, metrics)

    def _forget(self, now: float) -> None:
        rules = [r for r in (self.up, self.down) if r is not None]
        keep = _max([LEGACY_WINDOW] + [r.stabilization_window_s for r in rules])
        period = _max([15.0] + [p[2] for r in rules for p in r.policies])
        self.recommendations = [(t, r) for t, r in self.recommendations if now - t < keep]
        self.events = [(t, c) for t, c in self.events if now - t < period]

    def _ready(self, view, kind: str) -> bool:
        fresh = (kind == "cpu" and view.age < self.config.cpu_initialization_period
                 and view.since_ready is not None and view.since_ready < self.window)
        return view.ready and not fresh

    def _propose(self, m: HPAMetric, obs: Observation) -> tuple[int, float] | None:
        tol = self.config.tolerance
        if m.type == "rps":   # milli-units, as Kubernetes averages quantities
            pods = [PodSample(1.0, None if v.rps is None else v.rps * 1000, v.ready, _phase(v)) for v in obs.instances]
            out = _plain(obs.current, pods, m.target * 1000, tol)
            return None if out is None else (out[0], out[1] / 1000)
        pods = [PodSample(1.0, getattr(v, m.type), self._ready(v, m.type), _phase(v)) for v in obs.instances]
        return _resource(obs.current, pods, m.target, tol, m.type)

    def _normalize(self, obs: Observation, proposal: int) -> int:
        now, lo, hi = obs.now, obs.min_instances, obs.max_instances
        if self.up is None:
            return normalize_legacy(obs.current, proposal, now, self.recommendations, lo, hi)
        ages = [(now - t, r) for t, r in self.recommendations]
        stabilized = stabilize(obs.current, proposal, ages, self.up, self.down)
        ups = [(now - t, c) for t, c in self.events if c > 0]
        downs = [(now - t, -c) for t, c in self.events if c < 0]
        return rate_limit(obs.current, stabilized, ups, downs, self.up, self.down, lo, hi)
