"""The seed's capacity-planning table, recomputed by simulation.

For each load level (light 100 users / 50 rps, medium 500 / 250, heavy 1000 / 500, and
the heavy level's 1.5x weekend and 2x event peaks) find, per plan, the smallest fixed
instance count (1..10) that meets the objectives — average response <= 200 ms and
error rate <= 1% — on the *upper* bound of the 95% interval over the replications, and
the cheapest of those. The error rate counts server errors (5xx-like outcomes), not the
429s of rate limits, unless the scenario says ``slo.count_rejected: true``; the rejected
share is reported beside it. Printed beside the seed's own guesses (1, 3, 6 instances: $7,
$21, $42; the peaks scaled 1.5x and 2x).

The load: the scenario's workload with a flat daily curve, no weekend multiplier, no
events, no open-loop sources, sessions of a constant 5 minutes (so the number of
concurrent users is in steady state from minute 5: Poisson with mean ``users``; each
session is one client for per-client rate limits), ``peak_users = users``; no
autoscaler, schedule or prediction. ``overrides`` (``--set``) are applied after these,
so any of them can be changed. Counts whose CPU demand
(requests/s x mean event-loop CPU per request) reaches what the instances' event loops
can do (``models.instance.loop_capacity``) cannot meet any
latency objective and are skipped without simulation; from the first feasible count
each plan is searched upwards and stops at the first count that passes.

Multi-fidelity (``screen="flow"``): every feasible (plan, count) of a level up to
``max_instances`` runs once in the fast mode (deterministic, no interval: the objectives
on its values); per level the ``confirm``
cheapest passing configurations are then run at the request level with the
replications, and the answer is the cheapest that passes there. ``tried`` holds both,
with their ``fidelity``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from capsim.experiments.replications import Job, run_all, replication_seeds, resolve
from capsim.experiments.parallel import Progress
from capsim.models.instance import loop_capacity
from capsim.results.files import OutputFolder, write_csv, write_json
from capsim.experiments.intervals import clean, mean_ci

__all__ = ["LEVELS", "LEVEL_KEYS", "capacity_plan", "Plan", "cpu_per_request", "judged_error_rate", "ERROR_WORDS"]

# name, concurrent users, the seed's requests/s, the seed's instances and $/month
LEVELS = [("light", 100, 50, 1, 7.0), ("medium", 500, 250, 3, 21.0), ("heavy", 1000, 500, 6, 42.0),
          ("heavy weekend x1.5", 1500, 750, 9, 63.0), ("heavy event x2", 2000, 1000, 12, 84.0)]
LEVEL_KEYS = {"light": 0, "medium": 1, "heavy": 2, "weekend": 3, "event": 4}
ERROR_WORDS = {False: "server error rate", True: "error rate (server errors + 429s)"}


def _mean(d) -> float:
    m = d.mean
    return m() if callable(m) else m


def cpu_per_request(scenario) -> float:
    """Mean event-loop CPU seconds of a session request: the endpoint mix's weighted cpu_pre +
    cpu_post, plus the loop's work per request and per query (``instances.event_loop``)."""
    eps = scenario.workload.endpoints.values()
    loop = scenario.instances.event_loop
    w = sum(e.weight for e in eps)
    per = sum(e.weight * (_mean(e.cpu_pre) + _mean(e.cpu_post) + e.queries * e.db_probability * loop.query_cpu)
              for e in eps) / w
    return per + loop.request_cpu + loop.response_cpu


@dataclass
class Plan:
    """Every configuration looked at, and the answer per level."""
    tried: list[dict] = field(default_factory=list)
    answer: list[dict] = field(default_factory=list)
    settings: dict = field(default_factory=dict)
    interrupted: bool = False
    errors: list[str] = field(default_factory=list)    # runs that failed (their configurations count as not passing)

    def format(self) -> str:
        s = self.settings
        lines = [f"objectives: average response <= {s['latency_mean_ms']:g} ms and {s['error_rate_counts']} <= "
                 f"{100 * s['error_rate']:g}% on the upper 95% CI bound over {s['replications']} replications "
                 f"(the seed's success criteria are stricter: error rate < 0.01%, uptime > 99.9%)",
                 f"load: flat daily curve, constant 5m sessions, {s['measured']} measured after {s['warmup']} warm-up; "
                 f"{s['request_rate']:g} requests/s per user; ~{1000 * s['cpu_per_request']:.2f} ms CPU per request"
                 + (" (warm-up shorter than the sessions: concurrency still ramping up)" if s["warmup_s"] < 300 else ""),
                 ""]
        sc = s.get("screen")
        if sc:
            lines.insert(2, f"multi-fidelity: {sc['screened']} configurations screened in the fast mode "
                            f"({sc['screen_seconds']:.1f} s), the {sc['confirm']} cheapest passing per level confirmed "
                            f"at the request level ({sc['confirmed']} configurations, {sc['confirm_seconds']:.1f} s)")
        plans = s["plans"]
        head = f"{'level':<20} {'users':>5} {'rps':>5}  {'seed guess':<16}" + "".join(f" {p:<14}" for p in plans) \
            + "  cheapest"
        lines += [head, "-" * len(head)]
        for a in self.answer:
            cells = "".join(f" {self._cell(a['by_plan'].get(p)):<14}" for p in plans)
            best = a["cheapest"]
            best_text = f"{best['count']} x {best['plan']}  ${best['monthly_cost_usd']:.0f}/month" if best \
                else f"none within {s['max_instances']} instances"
            lines.append(f"{a['level']:<20} {a['users']:>5} {a['rps']:>5.0f}  "
                         f"{a['seed_instances']:>2} x std ${a['seed_cost']:<6.0f}{cells}  {best_text}")
        return "\n".join(lines)

    @staticmethod
    def _cell(r) -> str:
        if r is None:
            return "-"
        if r.get("count") is None:
            return "none" if not r.get("open") else "(unfinished)"
        return f"{r['count']} (${r['monthly_cost_usd']:.0f})"

    def write(self, out, overwrite: bool = False) -> list[Path]:
        """``plan.csv``, ``plan_tried.csv`` and ``plan.json``, written whole or not at all."""
        out = Path(out)
        with OutputFolder(out, overwrite=overwrite, command="plan") as folder:
            self.write_into(folder.stage)
        return [out / "plan.csv", out / "plan_tried.csv", out / "plan.json"]

    def write_into(self, folder) -> None:
        """The files of ``write`` in ``folder`` (part of an output folder being written)."""
        out = Path(folder)
        order = {a["level"]: i for i, a in enumerate(self.answer)}
        tried = sorted(self.tried, key=lambda t: (order.get(t["level"], 0), self.settings["plans"].index(t["plan"]),
                                                  t["count"]))
        cols = ["level", "users", "plan", "count", "monthly_cost_usd", "passed", "latency_mean_ms",
                "latency_mean_ms_ci_high", "error_rate", "error_rate_ci_high", "rejected_rate", "n", "note"] + (
                    ["fidelity", "valid"] if self.settings.get("screen") else [])
        write_csv(out / "plan_tried.csv", pd.DataFrame(tried, columns=cols))
        rows = []
        for a in self.answer:
            row = {k: a[k] for k in ("level", "users", "rps", "seed_rps", "seed_instances", "seed_cost")}
            for p, r in a["by_plan"].items():
                row[f"{p}_count"], row[f"{p}_monthly_cost_usd"] = r.get("count"), r.get("monthly_cost_usd")
            best = a["cheapest"] or {}
            row.update(cheapest_plan=best.get("plan"), cheapest_count=best.get("count"),
                       cheapest_monthly_cost_usd=best.get("monthly_cost_usd"))
            rows.append(row)
        write_csv(out / "plan.csv", pd.DataFrame(rows))
        write_json(out / "plan.json", clean({"settings": self.settings, "levels": self.answer, "tried": self.tried}))


def capacity_plan(scenario=None, *, overrides: list[str] | None = None, levels=LEVELS, plans=None,
                  max_instances: int = 10, replications: int = 3, seed: int | None = None,
                  measured: float | str = 600.0, warmup: float | str = 300.0, latency_mean_ms: float = 200.0,
                  error_rate: float = 0.01, workers: int | None = None, cluster=None,
                  progress: bool = True, force: bool = False, screen: str | None = None, confirm: int = 3) -> Plan:
    """Search the cheapest passing configuration per level (see the module docstring).

    ``measured`` and ``warmup``: seconds or durations such as ``"10m"``."""
    from capsim.models.units import parse_duration
    from capsim.models.units import human_duration
    measured, warmup = (parse_duration(v) if isinstance(v, str) else float(v) for v in (measured, warmup))
    fixed = [  # the plan's load; the user's --set come after, so they can change any of it
        "autoscaler=null", "schedule=null", "predictive=null", "workload.open_loop=[]",
        "workload.sessions.daily_curve=flat", "workload.sessions.weekend_multiplier=1",
        "workload.sessions.events=[]", "workload.sessions.session_length=5m",
        f"horizon={measured + warmup}", f"warmup={warmup}"] + list(overrides or [])
    base_sc = resolve(scenario, fixed)
    plans = list(plans or base_sc.pricing.plans)
    cpu = cpu_per_request(base_sc)
    rate = base_sc.workload.sessions.request_rate
    base_seed = int(seed if seed is not None else base_sc.seed)
    seeds = replication_seeds(base_seed, replications)
    result = Plan(settings={"latency_mean_ms": latency_mean_ms, "error_rate": error_rate,
                            "replications": replications, "base_seed": base_seed, "seeds": seeds,
                            "measured": human_duration(measured), "warmup": human_duration(warmup), "warmup_s": warmup,
                            "request_rate": rate, "cpu_per_request": cpu, "plans": plans,
                            "max_instances": max_instances, "count_rejected": base_sc.slo.count_rejected,
                            "error_rate_counts": ERROR_WORDS[base_sc.slo.count_rejected]})
    # one search per (level, plan): the next count to try, or done
    searches = []
    for name, users, seed_rps, seed_n, seed_cost in levels:
        for p in plans:
            plan = base_sc.pricing.plans[p]
            per = loop_capacity(base_sc.instances, plan)
            demand = users * rate * cpu
            first = max(1, math.floor(demand / per) + 1)
            for n in range(1, min(first, max_instances + 1)):
                result.tried.append({"level": name, "users": users, "plan": p, "count": n,
                                     "monthly_cost_usd": n * plan.usd_per_month, "passed": False,
                                     "note": f"skipped: CPU demand {demand:.2f} s/s >= {n * per:g} event-loop seconds/s"})
            searches.append({"level": name, "users": users, "plan": p, "count": first, "open": first <= max_instances,
                             "found": None})
    if screen is not None:
        return _screened(result, searches, scenario, fixed, seeds, levels, max_instances,
                         (latency_mean_ms, error_rate, base_sc.slo.count_rejected), (workers, cluster, progress, force),
                         screen, confirm)
    while any(s["open"] for s in searches):
        batch = sorted((s for s in searches if s["open"]), key=lambda s: -s["users"])   # longest jobs first
        jobs = []
        for s in batch:
            sc = resolve(scenario, fixed + [f"workload.sessions.peak_users={s['users']}",
                                            f"instances.count={s['count']}", f"instances.plan={s['plan']}"])
            jobs += [Job(sc, sd, force=force) for sd in seeds]
        outputs, stopped = run_all(jobs, workers, cluster, Progress(len(jobs), f"capsim plan ({len(batch)} configurations)",
                                                                 enabled=progress))
        result.errors += [o["error"] for o in outputs if o and "error" in o]
        for k, s in enumerate(batch):
            outs = outputs[k * replications:(k + 1) * replications]
            if stopped and any(o is None for o in outs):
                continue
            rec = _judge(s, outs, latency_mean_ms, error_rate, base_sc.slo.count_rejected)
            result.tried.append(rec)
            if rec["passed"]:
                s["open"], s["found"] = False, rec
            else:
                s["count"] += 1
                s["open"] = s["count"] <= max_instances
        if stopped:
            result.interrupted = True
            break
    _answer(result, searches, levels, rate)
    return result


def _answer(result: Plan, searches: list[dict], levels, rate: float) -> None:
    for name, users, seed_rps, seed_n, seed_cost in levels:
        by_plan = {s["plan"]: (s["found"] or {"count": None, "open": s["open"]}) for s in searches if s["level"] == name}
        found = [f for f in by_plan.values() if f.get("count")]
        best = min(found, key=lambda f: (f["monthly_cost_usd"], f["count"])) if found else None
        result.answer.append({"level": name, "users": users, "rps": users * rate, "seed_rps": seed_rps,
                              "seed_instances": seed_n, "seed_cost": seed_cost, "by_plan": by_plan,
                              "cheapest": best and {k: best[k] for k in ("plan", "count", "monthly_cost_usd",
                                                                          "latency_mean_ms_ci_high",
                                                                          "error_rate_ci_high")}})


def _screened(result: Plan, searches, scenario, fixed, seeds, levels, max_instances, limits, running,
              screen, confirm) -> Plan:
    """Fast-mode screening of every (level, plan, count), then request-level confirmation of the best.
    ``limits``: (latency mean ms, error rate, count rejected); ``running``: (workers, cluster, progress, force)."""
    import time
    workers, cluster, progress, force = running
    if screen != "flow":
        raise ValueError(f"screen: expected 'flow', got {screen!r}")
    t0 = time.perf_counter()
    cands = []                                   # (search, count) screened
    for s in searches:
        for n in range(s["count"], max_instances + 1):
            cands.append((s, n))
    jobs = [Job(resolve(scenario, fixed + ["fidelity=flow", f"workload.sessions.peak_users={s['users']}",
                                           f"instances.count={n}", f"instances.plan={s['plan']}"]), seeds[0])
            for s, n in cands]
    outputs, stopped = run_all(jobs, workers, cluster, Progress(len(jobs), f"capsim plan screen ({len(jobs)} "
                                                                "configurations, fast mode)", enabled=progress))
    screened = {}
    for (s, n), out in zip(cands, outputs):
        if out is None:
            continue
        rec = _judge({**s, "count": n}, [out], *limits)
        rec["fidelity"] = "flow"
        rec["valid"] = bool(out.get("summary", {}).get("fidelity", {}).get("valid", False))
        result.tried.append(rec)
        screened[(s["level"], s["plan"], n)] = rec
    t1 = time.perf_counter()
    chosen = []
    for name, *_ in levels:
        ok = sorted((r for (lv, _, _), r in screened.items() if lv == name and r["passed"]),
                    key=lambda r: (r["monthly_cost_usd"], r["count"]))
        chosen += ok[:confirm]
    jobs = [Job(resolve(scenario, fixed + ["fidelity=request", f"workload.sessions.peak_users={r['users']}",
                                           f"instances.count={r['count']}", f"instances.plan={r['plan']}"]), sd, force=force)
            for r in chosen for sd in seeds]
    outputs, stopped2 = run_all(jobs, workers, cluster, Progress(len(jobs), f"capsim plan confirm ({len(chosen)} "
                                                                 "configurations, request level)", enabled=progress))
    R = len(seeds)
    for s in searches:
        s["found"], s["open"] = None, False
    for k, r in enumerate(chosen):
        outs = outputs[k * R:(k + 1) * R]
        if any(o is None for o in outs):
            continue
        rec = _judge(r, outs, *limits)
        rec["fidelity"] = "request"
        result.tried.append(rec)
        s = next(x for x in searches if x["level"] == r["level"] and x["plan"] == r["plan"])
        if rec["passed"] and (s["found"] is None or rec["count"] < s["found"]["count"]):
            s["found"] = rec
    result.interrupted = stopped or stopped2
    result.settings["screen"] = {"fidelity": screen, "confirm": confirm, "screened": len(screened),
                                 "confirmed": len(chosen), "screen_seconds": round(t1 - t0, 2),
                                 "confirm_seconds": round(time.perf_counter() - t1, 2)}
    _answer(result, searches, levels, result.settings["request_rate"])
    return result


def judged_error_rate(summary: dict, count_rejected: bool = False) -> float | None:
    """A run's error rate as the plan judges it: server errors, plus 429s with ``count_rejected``."""
    server, rejected = summary["server_error_rate"], summary["rejected_rate"]
    if server is None or rejected is None:
        return None
    return server + rejected if count_rejected else server


def _judge(s: dict, outs: list[dict], lat_limit: float, err_limit: float, count_rejected: bool) -> dict:
    summaries = [o["summary"] for o in outs if o and "summary" in o]
    lat = mean_ci([x["latency_ms"]["mean"] for x in summaries])
    err = mean_ci([judged_error_rate(x, count_rejected) for x in summaries])
    rejected = mean_ci([x["rejected_rate"] for x in summaries])
    cost = mean_ci([x["monthly_cost_usd"] for x in summaries])
    upper = lambda c: c["ci_high"] if c["ci_high"] is not None else c["mean"]  # noqa: E731
    lat_hi, err_hi = upper(lat), upper(err)
    ok = bool(summaries) and lat_hi is not None and err_hi is not None and lat_hi <= lat_limit and err_hi <= err_limit
    return {"level": s["level"], "users": s["users"], "plan": s["plan"], "count": s["count"],
            "monthly_cost_usd": cost["mean"], "latency_mean_ms": lat["mean"], "latency_mean_ms_ci_high": lat_hi,
            "error_rate": err["mean"], "error_rate_ci_high": err_hi, "rejected_rate": rejected["mean"],
            "n": len(summaries), "passed": ok,
            "note": "; ".join(o["error"] for o in outs if o and "error" in o) or ""}
