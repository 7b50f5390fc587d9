"""``capsim run --replications``, ``compare``, ``sweep`` and ``plan``: experiments on the command line."""
from __future__ import annotations

import sys
from pathlib import Path

from capsim.cli.common import BUILTIN, scenario_of, slo_of_args, slug, write_report
from capsim.results.text import short_number
from capsim.scenario.loader import ScenarioError, load

__all__ = ["replications", "compare_cmd", "sweep_cmd", "plan_cmd", "format_sweep"]


def replications(args, scenario, slo, out: Path) -> int:
    from capsim.experiments.compare import HEADLINE
    from capsim.experiments.replications import replicate
    reps = replicate(scenario, args.replications, args.seed, slo=slo, workers=args.workers, cluster=args.cluster,
                     progress=not args.quiet, keep_first=True, allow_code=args.allow_code)
    if reps.errors and not reps.summaries:
        print(f"{args.file or BUILTIN}: {reps.errors[0]}", file=sys.stderr)
        return 2
    reps.write(out)
    if args.quiet:
        print(out)
    else:
        stats = reps.stats
        print(f"{'scenario':<26} {scenario.name}: {len(reps.summaries)} of {len(reps.seeds)} replications, "
              f"seeds spawned from base seed {reps.base_seed}")
        from capsim.experiments.replications import warmup_note
        print(f"{'':<26} {warmup_note(scenario)}")
        print(f"{'metric':<26} {'mean':>12} {'95% CI':>25} {'± half-width':>13} {'n':>3}")
        for m, (label, unit, _, scale) in HEADLINE.items():
            c = stats.get(m)
            if not c or c["mean"] is None:
                continue
            name = f"{label} ({unit})" if unit else label
            ci = "n/a" if c["ci_low"] is None else f"[{short_number(c['ci_low'] * scale)}, {short_number(c['ci_high'] * scale)}]"
            hw = "n/a" if c["half_width"] is None else short_number(c["half_width"] * scale)
            print(f"{name:<26} {short_number(c['mean'] * scale):>12} {ci:>25} {hw:>13} {c['n']:>3}")
        print(f"wrote      {out / 'replications.csv'}, {out / 'summary.json'} (replications block: every metric), "
              f"replication 1's timeseries.csv")
    rc = write_report(out, args.images, quiet=args.quiet)
    return 130 if reps.interrupted else rc


def compare_cmd(args) -> int:
    from capsim.experiments.compare import compare
    from capsim.experiments.sweep import policy_hint
    sides = []
    for path, ov in ((args.a, args.overrides + args.overrides_a), (args.b or args.a, args.overrides + args.overrides_b)):
        try:
            sides.append(load(path, ov))
        except ScenarioError as exc:
            for problem in exc.problems:
                print(problem, file=sys.stderr)
            hint = policy_hint(ov, exc.problems)
            if hint:
                print(hint, file=sys.stderr)
            return 2
    a, b = sides
    sets = lambda ov: "".join(f" + {o}" for o in ov)  # noqa: E731
    label_a = f"{args.a}{sets(args.overrides + args.overrides_a)}"
    label_b = f"{args.b or args.a}{sets(args.overrides + args.overrides_b)}"
    result = compare(a, b, args.replications, args.seed, crn=args.crn, slo=slo_of_args(args), workers=args.workers,
                     cluster=args.cluster, progress=not args.quiet, allow_code=args.allow_code,
                     label_a=label_a, label_b=label_b)
    errors = result.a.errors + result.b.errors
    if errors and not (result.a.summaries and result.b.summaries):
        print(f"capsim compare: {errors[0]}", file=sys.stderr)
        return 2
    print(result.format())
    out = Path(args.out) if args.out else Path("capsim-out") / f"{slug(a.name)}-compare"
    files = result.write(out)
    print("wrote " + ", ".join(str(f) for f in files) + " (a/ and b/: each side's replications and replication 1's "
          "curves)")
    rc = write_report(out, args.images)
    return 130 if result.interrupted else rc


def sweep_cmd(args) -> int:
    from capsim.experiments.sweep import parse_value, split_values, sweep
    params = {}
    for arg in args.param:
        key, sep, text = arg.partition("=")
        if not sep or not key.strip():
            print(f"capsim sweep: --param {arg!r}: expected PATH=V1,V2,..., e.g. instances.count=1,2,3", file=sys.stderr)
            return 2
        try:
            params[key.strip()] = [parse_value(v) for v in split_values(text)]
        except Exception as exc:   # a YAML syntax error in a value
            print(f"capsim sweep: --param {arg!r}: {exc}", file=sys.stderr)
            return 2
    base = scenario_of(args.file, args.overrides)   # the file itself must be valid
    out = Path(args.out) if args.out else Path("capsim-out") / f"{slug(base.name)}-sweep"
    table = sweep(args.file, params, args.replications, args.seed, overrides=args.overrides, out=out,
                  resume=args.resume, slo=slo_of_args(args), workers=args.workers, cluster=args.cluster,
                  progress=not args.quiet, allow_code=args.allow_code, screen=args.screen, confirm=args.confirm,
                  rank=args.rank)
    if args.screen:
        a = table.attrs
        print(f"screened {a['screen']['point'].nunique()} points in the fast mode ({a['screen_seconds']:.1f} s), "
              f"ranked by {', '.join(a['rank'])}:")
        print(format_sweep(a["screen"], list(params), extra=["rank", "confirmed"]))
        print(f"\nconfirmed the best {len(a['confirmed'])} at the request level, {args.replications} replications each "
              f"({a['confirm_seconds']:.1f} s):")
    print(format_sweep(table, list(params)))
    a = table.attrs
    if a.get("jobs_resumed"):
        print(f"resumed: {a['jobs_resumed']} runs taken from {out / 'sweep_points.jsonl'}, {a['jobs_run']} run now")
    print(f"wrote {out / 'sweep.csv'}" + (f", {out / 'sweep.parquet'}" if (out / "sweep.parquet").exists() else "")
          + f", {out / 'sweep_points.jsonl'}" + (f", {out / 'sweep_screen.csv'}" if args.screen else ""))
    rc = write_report(out, args.images)
    if a.get("interrupted"):
        print("interrupted: the table holds the runs that finished; rerun with --resume to complete it", file=sys.stderr)
        return 130
    return rc


SHORT_LABELS = {"monthly_cost_usd": "cost $/month", "latency_ms.mean": "latency mean ms",
                "latency_ms.p95": "latency p95 ms", "error_rate": "error %", "slo.violation_minutes": "SLO violation min"}


def format_sweep(table, params: list[str], extra: list[str] | None = None) -> str:
    """One line per point: its parameters and the headline metrics' mean ± half-width (and ``extra`` columns)."""
    import pandas as pd
    from capsim.experiments.compare import HEADLINE
    show = ["monthly_cost_usd", "latency_ms.mean", "latency_ms.p95", "error_rate", "slo.violation_minutes"]
    rows, errors = [], []
    for _, g in table.groupby("point", sort=True):
        first = g.iloc[0]
        row = {p: first[p] for p in params}
        row.update({c: first[c] for c in extra or []})
        by = g.dropna(subset=["metric"]).set_index("metric")
        for m in show:
            label, unit, _, scale = HEADLINE[m]
            cell = "n/a"
            if m in by.index and by.loc[m, "mean"] == by.loc[m, "mean"]:
                hw = by.loc[m, "half_width"]
                cell = short_number(by.loc[m, "mean"] * scale) + ("" if hw != hw or hw is None else f" ± {short_number(hw * scale)}")
            row[SHORT_LABELS[m]] = cell
        if isinstance(first["error"], str) and first["error"]:
            errors.append(f"point {first['point']} (" + ", ".join(f"{p}={first[p]}" for p in params)
                          + f"): {first['error']}")
        rows.append(row)
    return "\n".join([pd.DataFrame(rows).to_string(index=False)] + errors)


def plan_cmd(args) -> int:
    from capsim.experiments.plan import capacity_plan
    from capsim.experiments.plan import LEVEL_KEYS, LEVELS
    plans = [p.strip() for p in args.plans.split(",")] if args.plans else None
    base = scenario_of(args.file, args.overrides)
    wanted = [w.strip() for w in args.levels.split(",")] if args.levels else list(LEVEL_KEYS)
    unknown = [p for p in plans or [] if p not in base.pricing.plans] + [w for w in wanted if w not in LEVEL_KEYS]
    if unknown:
        print(f"capsim plan: unknown {', '.join(map(repr, unknown))}; plans: {', '.join(base.pricing.plans)}; "
              f"levels: {', '.join(LEVEL_KEYS)}", file=sys.stderr)
        return 2
    levels = [LEVELS[LEVEL_KEYS[w]] for w in wanted]
    result = capacity_plan(args.file, overrides=args.overrides, levels=levels, plans=plans,
                           max_instances=args.max_instances,
                           replications=args.replications, seed=args.seed, measured=args.horizon,
                           warmup=args.warmup, latency_mean_ms=args.latency_ms, error_rate=args.error_rate,
                           workers=args.workers, cluster=args.cluster, progress=not args.quiet, screen=args.screen,
                           confirm=args.confirm)
    print(result.format())
    out = Path(args.out) if args.out else Path("capsim-out") / f"{slug(base.name)}-plan"
    print("wrote " + ", ".join(str(f) for f in result.write(out)))
    rc = write_report(out, args.images)
    return 130 if result.interrupted else rc


