"""``capsim run --replications``, ``compare``, ``sweep`` and ``plan``: experiments on the command line."""
from __future__ import annotations

import sys
from pathlib import Path

from capsim.cli.common import BUILTIN, admit, output_dir, say, scenario_of, slo_of_args, slug, write_report
from capsim.results.files import OutputFolder
from capsim.results.text import short_number
from capsim.scenario.loader import Problem, ScenarioError
from capsim.scenario.yaml_io import YAMLProblem as YAMLError

__all__ = ["replications", "compare_cmd", "sweep_cmd", "plan_cmd", "format_sweep"]


def replications(args, scenario, slo, out: Path) -> int:
    from capsim.experiments.replications import replicate
    with OutputFolder(out, overwrite=args.overwrite, command="replications") as folder:
        reps = replicate(scenario, args.replications, args.seed, slo=slo, workers=args.workers, cluster=args.cluster,
                         progress=not args.quiet, keep_first=True, allow_code=args.allow_code, force=True)
        if reps.errors and not reps.summaries:
            folder.discard()
            print(f"{args.file or BUILTIN}: {reps.errors[0]}", file=sys.stderr)
            return 2
        reps.write_into(folder.stage)
        folder.publish("interrupted" if reps.interrupted else "complete")
    say(args, *replications_table(reps, scenario),
        f"wrote      {out / 'replications.csv'}, {out / 'summary.json'} (replications block: every metric), "
        "replication 1's timeseries.csv")
    rc = _failed(f"{len(reps.errors)} of {len(reps.seeds)} replications", reps.errors) or _report(args, out)
    return 130 if reps.interrupted else rc


def replications_table(reps, scenario) -> list[str]:
    from capsim.experiments.compare import HEADLINE
    from capsim.experiments.replications import warmup_note
    stats = reps.stats
    lines = [f"{'scenario':<26} {scenario.name}: {len(reps.summaries)} of {len(reps.seeds)} replications, "
             f"seeds spawned from base seed {reps.base_seed}", f"{'':<26} {warmup_note(scenario)}",
             f"{'metric':<26} {'mean':>12} {'95% CI':>25} {'± half-width':>13} {'n':>3}"]
    for m, (label, unit, _, scale) in HEADLINE.items():
        c = stats.get(m)
        if not c or c["mean"] is None:
            continue
        name = f"{label} ({unit})" if unit else label
        ci = "n/a" if c["ci_low"] is None else f"[{short_number(c['ci_low'] * scale)}, {short_number(c['ci_high'] * scale)}]"
        hw = "n/a" if c["half_width"] is None else short_number(c["half_width"] * scale)
        lines.append(f"{name:<26} {short_number(c['mean'] * scale):>12} {ci:>25} {hw:>13} {c['n']:>3}")
    return lines


def _failed(what: str, errors: list[str]) -> int:
    """1, said on stderr, when some runs failed (the others' results are written)."""
    if not errors:
        return 0
    print(f"capsim: {what} failed; the first: {errors[0]}", file=sys.stderr)
    return 1


def _report(args, out: Path) -> int:
    rc = write_report(out, args.images, quiet=args.quiet, plotly_js=args.plotly_js)
    if args.quiet:
        print(out)
    return rc


def compare_cmd(args) -> int:
    from capsim.experiments.compare import compare
    from capsim.experiments.sweep import policy_hint
    sides = []
    for path, ov in ((args.a, args.overrides + args.overrides_a), (args.b or args.a, args.overrides + args.overrides_b)):
        try:
            sides.append(scenario_of(path, ov))
        except ScenarioError as exc:
            hint = policy_hint(ov, exc.problems)
            raise ScenarioError(exc.problems + ([Problem(path or BUILTIN, message=hint)] if hint else [])) from None
    a, b = sides
    for side, sc in (("A", a), ("B", b)):
        admit(args, sc, f"side {side}")
    sets = lambda ov: "".join(f" + {o}" for o in ov)  # noqa: E731
    label_a = f"{args.a or BUILTIN}{sets(args.overrides + args.overrides_a)}"
    label_b = f"{args.b or args.a or BUILTIN}{sets(args.overrides + args.overrides_b)}"
    out = output_dir(args, Path("capsim-out") / f"{slug(a.name)}-compare")
    with OutputFolder(out, overwrite=args.overwrite, command="compare") as folder:
        result = compare(a, b, args.replications, args.seed, crn=args.crn, slo=slo_of_args(args),
                         workers=args.workers, cluster=args.cluster, progress=not args.quiet,
                         allow_code=args.allow_code, label_a=label_a, label_b=label_b, force=True)
        errors = result.a.errors + result.b.errors
        if errors and not (result.a.summaries and result.b.summaries):
            folder.discard()
            print(f"capsim compare: {errors[0]}", file=sys.stderr)
            return 2
        result.write_into(folder.stage)
        folder.publish("interrupted" if result.interrupted else "complete")
    files = [out / "comparison.json", out / "comparison.csv", out / "a", out / "b"]
    say(args, result.format(), "wrote " + ", ".join(str(f) for f in files)
        + " (a/ and b/: each side's replications and replication 1's curves)")
    rc = _failed(f"{len(errors)} of {2 * args.replications} runs", errors) or _report(args, out)
    return 130 if result.interrupted else rc


def sweep_cmd(args) -> int:
    from capsim.experiments.sweep import JOURNAL, sweep
    params = _params(args.param)
    base = scenario_of(args.file, args.overrides)   # the file itself must be valid
    admit(args, base, args.file or BUILTIN)
    out = output_dir(args, Path("capsim-out") / f"{slug(base.name)}-sweep")
    try:
        table = sweep(args.file, params, args.replications, args.seed, overrides=args.overrides, out=out,
                      resume=args.resume, overwrite=args.overwrite, slo=slo_of_args(args), workers=args.workers,
                      cluster=args.cluster, progress=not args.quiet, allow_code=args.allow_code, force=args.force,
                      screen=args.screen, confirm=args.confirm, rank=args.rank)
    except OSError as exc:                  # a full disk: the journal of the finished runs is kept
        print(f"capsim: {exc.filename}: {exc.strerror or exc}", file=sys.stderr)
        print(f"capsim sweep: the runs that finished are kept; make room and rerun with --resume (--out {out})",
              file=sys.stderr)
        return 1
    a = table.attrs
    if args.screen:
        say(args, f"screened {a['screen']['point'].nunique()} points in the fast mode ({a['screen_seconds']:.1f} s), "
                  f"ranked by {', '.join(a['rank'])} (points the fast mode flagged, valid False, after the others):", format_sweep(a["screen"], list(params), extra=["rank", "valid", "confirmed"]),
            f"\nconfirmed the best {len(a['confirmed'])} at the request level, {args.replications} replications each "
            f"({a['confirm_seconds']:.1f} s):")
    say(args, format_sweep(table, list(params)))
    if a.get("jobs_resumed"):
        say(args, f"resumed: {a['jobs_resumed']} runs taken from {out / JOURNAL}, {a['jobs_run']} run now")
    say(args, f"wrote {out / 'sweep.csv'}" + (f", {out / 'sweep.parquet'}" if (out / "sweep.parquet").exists() else "")
        + f", {out / JOURNAL}" + (f", {out / 'sweep_screen.csv'}" if args.screen else ""))
    rc = _report(args, out)
    if a.get("interrupted"):
        print("interrupted: the table holds the runs that finished; rerun with --resume to complete it", file=sys.stderr)
        return 130
    return _sweep_failures(table) or rc


def _params(args_param: list[str]) -> dict:
    from capsim.experiments.sweep import parse_value, split_values
    params = {}
    for arg in args_param:
        key, sep, text = arg.partition("=")
        if not sep or not key.strip():
            raise ScenarioError([Problem(f"--param {arg}", message="expected PATH=V1,V2,..., e.g. instances.count=1,2,3")])
        try:
            params[key.strip()] = [parse_value(v) for v in split_values(text)]
        except YAMLError as exc:
            raise ScenarioError([Problem(f"--param {arg}", message=str(exc))]) from None
    return params


def _sweep_failures(table) -> int:
    """2 when points did not validate, 1 when runs failed (said on stderr), else 0."""
    a = table.attrs
    invalid, failed = a.get("points_invalid", 0), a.get("runs_failed", 0)
    if not (invalid or failed):
        return 0
    points = table["point"].nunique()
    print(f"capsim sweep: {invalid} of {points} points did not validate, {failed} runs failed "
          "(the error column of sweep.csv says why)", file=sys.stderr)
    return 2 if invalid else 1


SHORT_LABELS = {"monthly_cost_usd": "cost $/month", "latency_ms.mean": "latency mean ms",
                "latency_ms.p95": "latency p95 ms", "server_error_rate": "server errors %",
                "rejected_rate": "rejected (429) %", "slo.violation_minutes": "SLO violation min"}


def format_sweep(table, params: list[str], extra: list[str] | None = None) -> str:
    """One line per point: its parameters and the headline metrics' mean ± half-width (and ``extra`` columns)."""
    import pandas as pd
    from capsim.experiments.compare import HEADLINE
    show = ["monthly_cost_usd", "latency_ms.mean", "latency_ms.p95", "server_error_rate", "rejected_rate",
            "slo.violation_minutes"]
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
    out = output_dir(args, Path("capsim-out") / f"{slug(base.name)}-plan")
    with OutputFolder(out, overwrite=args.overwrite, command="plan") as folder:
        result = capacity_plan(args.file, overrides=args.overrides, levels=levels, plans=plans,
                               max_instances=args.max_instances,
                               replications=args.replications, seed=args.seed, measured=args.horizon,
                               warmup=args.warmup, latency_mean_ms=args.latency_ms, error_rate=args.error_rate,
                               workers=args.workers, cluster=args.cluster, progress=not args.quiet, force=args.force,
                               screen=args.screen, confirm=args.confirm)
        result.write_into(folder.stage)
        folder.publish("interrupted" if result.interrupted else "complete")
    say(args, result.format(), "wrote " + ", ".join(str(out / f) for f in ("plan.csv", "plan_tried.csv", "plan.json")))
    rc = _failed(f"{len(result.errors)} runs", result.errors) or _report(args, out)
    return 130 if result.interrupted else rc


