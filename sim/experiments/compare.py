"""A/B comparison of two scenarios with common random numbers.

Replication i of A and of B run with the same seed (``replication_seeds(base, R)``), so
they see the same users, sessions, requests and service-time draws, and the paired
difference B - A carries only the effect of what differs between them. Per metric:
A's mean, B's mean, the mean difference with a paired-t 95% interval and p-value, and a
plain-language verdict. ``crn=False`` gives B independent seeds (spawned from
``[base, 1]``) and uses Welch's unpaired test, to show what CRN buys.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from capsim.experiments.replications import Job, Replications, independent_seeds, replication_seeds, warmup_note, run_all
from capsim.experiments.parallel import Progress
from capsim.results.files import OutputFolder, write_csv, write_json
from capsim.scenario.slo import SLOConfig
from capsim.results.text import short_number
from capsim.experiments.intervals import clean, paired_diff, unpaired_diff

__all__ = ["compare", "Comparison", "HEADLINE", "verdict"]

ALPHA = 0.05
# metric, label, unit, (lower word, higher word), value scale for the sentence
HEADLINE = {
    "monthly_cost_usd": ("monthly cost", "$/month", None, 1.0),
    "instance_hours": ("instance-hours", "h", ("fewer", "more"), 1.0),
    "latency_ms.mean": ("latency mean", "ms", ("lower", "higher"), 1.0),
    "latency_ms.p95": ("latency p95", "ms", ("lower", "higher"), 1.0),
    "latency_ms.p99": ("latency p99", "ms", ("lower", "higher"), 1.0),
    "server_error_rate": ("server error rate", "%", ("lower", "higher"), 100.0),
    "rejected_rate": ("rejected (429) share", "%", ("lower", "higher"), 100.0),
    "slo.violation_minutes": ("SLO-violation minutes", "min", ("fewer", "more"), 1.0),
    "slo.alerts_fired": ("alerts fired", "", ("fewer", "more"), 1.0),
}


def verdict(metric: str, d: dict) -> str:
    """One sentence about B - A for ``metric`` from its difference record."""
    if d.get("diff") is None:
        return "no data"
    if d["diff"] == 0 and d["ci_low"] == 0 and d["ci_high"] == 0:
        return "no difference (identical in every replication)"
    if d.get("p_value") is None:
        return "too few replications to tell"
    if d["p_value"] >= ALPHA:
        return "no significant difference"
    label, unit, words, scale = HEADLINE.get(metric, (metric, "", ("lower", "higher"), 1.0))
    less = d["diff"] < 0
    x = abs(d["diff"]) * scale
    lo, hi = sorted((abs(d["ci_low"]) * scale, abs(d["ci_high"]) * scale))
    ci = f"(95% CI {short_number(lo)}–{short_number(hi)})"
    if metric == "monthly_cost_usd":
        return f"B costs ${x:.2f}/month {'less' if less else 'more'} (95% CI {lo:.2f}–{hi:.2f})"
    if metric in ("server_error_rate", "rejected_rate"):
        return f"B's {label} is {short_number(x)} percentage points {'lower' if less else 'higher'} {ci}"
    if metric == "instance_hours":
        return f"B uses {short_number(x)} instance-hours {'fewer' if less else 'more'} {ci}"
    if metric == "slo.violation_minutes":
        return f"B spends {short_number(x)} min {'less' if less else 'more'} in SLO violation {ci}"
    if metric == "slo.alerts_fired":
        return f"B fires {x:g} {'fewer' if less else 'more'} alerts {ci}"
    sfx = f" {unit}" if unit else ""
    return f"B's {label} is {short_number(x)}{sfx} {words[0] if less else words[1]} {ci}"


@dataclass
class Comparison:
    a: Replications
    b: Replications
    crn: bool
    label_a: str = "A"
    label_b: str = "B"

    @property
    def interrupted(self) -> bool:
        return self.a.interrupted or self.b.interrupted

    def metrics(self) -> dict[str, dict]:
        """Per metric (headline ones first): a, b, diff, ci_low, ci_high, half_width, p_value, n, verdict."""
        fa, fb = self.a.flat(), self.b.flat()
        names = list(dict.fromkeys(list(HEADLINE) + [k for f in fa + fb if f for k in f]))
        out = {}
        for m in names:
            xa = [f.get(m) if f else None for f in fa]
            xb = [f.get(m) if f else None for f in fb]
            if all(v is None for v in xa + xb):
                continue
            d = paired_diff(xa, xb) if self.crn else unpaired_diff(xa, xb)
            out[m] = {**d, "verdict": verdict(m, d)}
        return out

    def table(self) -> pd.DataFrame:
        return pd.DataFrame([{"metric": m, **v} for m, v in self.metrics().items()])

    def write(self, out, overwrite: bool = False) -> list[Path]:
        """``comparison.json``, ``comparison.csv`` and each side's replications in ``a/`` and ``b/``,
        written whole or not at all (``capsim.results.files.OutputFolder``)."""
        out = Path(out)
        with OutputFolder(out, overwrite=overwrite, command="compare") as folder:
            self.write_into(folder.stage)
        return [out / "comparison.json", out / "comparison.csv", out / "a", out / "b"]

    def write_into(self, folder) -> None:
        """The files of ``write`` in ``folder`` (part of an output folder being written)."""
        out = Path(folder)
        doc = {"a": self.label_a, "b": self.label_b, "replications": len(self.a.seeds),
               "common_random_numbers": self.crn, "seeds_a": self.a.seeds, "seeds_b": self.b.seeds,
               "test": "paired t" if self.crn else "Welch t", "confidence": 0.95,
               "warmup": warmup_note(self.a.scenario), "interrupted": self.interrupted,
               "metrics": self.metrics()}
        write_json(out / "comparison.json", clean(doc))
        write_csv(out / "comparison.csv", self.table())
        self.a.write_into(out / "a")
        self.b.write_into(out / "b")

    def format(self) -> str:
        """The headline metrics as a text table."""
        ms = self.metrics()
        how = ("common random numbers: replication i of A and B share seed i, paired t-test" if self.crn
               else "independent seeds for B (no CRN), Welch t-test")
        lines = [f"A: {self.label_a}", f"B: {self.label_b}",
                 f"{len(self.a.seeds)} replications (base seed {self.a.base_seed}); {how}",
                 warmup_note(self.a.scenario), ""]
        head = f"{'metric':<28} {'A':>10} {'B':>10} {'B - A':>10}  {'95% CI':<21} {'p-value':>8}  verdict"
        lines += [head, "-" * len(head)]
        for m in HEADLINE:
            if m not in ms:
                continue
            d, (label, unit, _, scale) = ms[m], HEADLINE[m]
            name = f"{label} ({unit})" if unit else label
            f = lambda v: "n/a" if v is None else short_number(v * scale)  # noqa: E731
            ci = "n/a" if d["ci_low"] is None else f"[{f(d['ci_low'])}, {f(d['ci_high'])}]"
            p = "n/a" if d["p_value"] is None else ("<0.001" if d["p_value"] < 0.001 else f"{d['p_value']:.3f}")
            diff = "n/a" if d["diff"] is None else ("+" if d["diff"] > 0 else "") + f(d["diff"])
            lines.append(f"{name:<28} {f(d['a']):>10} {f(d['b']):>10} {diff:>10}  {ci:<21} {p:>8}  {d['verdict']}")
        return "\n".join(lines)


def compare(a, b, replications: int = 5, seed: int | None = None, *, crn: bool = True,
            slo: SLOConfig | None = None, workers: int | None = None, cluster=None, progress: bool = True,
            allow_code: bool = False, label_a: str | None = None, label_b: str | None = None,
            policy_a=None, policy_b=None, force: bool = False) -> Comparison:
    """Run A and B ``replications`` times each (one pool of 2R jobs) and compare them.

    ``policy_a`` / ``policy_b``: a custom autoscaling policy object (as ``capsim.run(policy=...)``)
    used on that side instead of its scenario's. Worker processes must be able to import
    its class: for a class defined in a notebook or script, pass ``workers=1``.
    """
    base = int(seed if seed is not None else a.seed)
    seeds_a = replication_seeds(base, replications)
    seeds_b = seeds_a if crn else independent_seeds(base, replications)
    jobs = [Job(sc, s, slo, keep_rows=i == 0, allow_code=allow_code, policy=pol, keep_series=True,
                force=force)   # replication 1 keeps its curves
            for sc, seeds, pol in ((a, seeds_a, policy_a), (b, seeds_b, policy_b)) for i, s in enumerate(seeds)]
    outputs, interrupted = run_all(jobs, workers, cluster, Progress(len(jobs), "capsim compare", enabled=progress))
    ra = Replications(a, base, seeds_a, outputs[:replications], interrupted, "A")
    rb = Replications(b, base, seeds_b, outputs[replications:], interrupted, "B")
    return Comparison(ra, rb, crn, label_a or a.name, label_b or b.name)
