"""Parameter sweeps: a grid of scenario overrides, each point run with replications.

``sweep(scenario, {"instances.count": [1, 2], "autoscaler": [None, {...}]}, replications=3)``
returns a tidy pandas DataFrame, one row per point and metric. Values are applied as
``--set path=value`` overrides (a whole mapping replaces a whole section), validated in
this process (a point that fails validation gets its error in its row), then run as
independent jobs (``capsim.experiments.parallel``) with the replication seeds of the base seed: the
same seeds at every point, so points are compared with common random numbers.
"""
from __future__ import annotations

import hashlib
import io
import itertools
import json
import sys
from pathlib import Path

import pandas as pd

from capsim.experiments.replications import Job, base_seed_of, run_all, replication_seeds, resolve
from capsim.experiments.parallel import Progress
from capsim.results.files import IncompleteFolder, Journal, OutputFolder, check_folder, read_journal, \
    staging_folders, write_bytes, write_csv
from capsim.scenario.slo import SLOConfig
from capsim.experiments.intervals import clean, flatten, mean_ci, metrics_of

__all__ = ["sweep", "split_values", "parse_value", "write_sweep", "sweep_files", "policy_hint", "STAT_COLUMNS",
           "JOURNAL", "RANK", "screen_order"]

STAT_COLUMNS = ["mean", "ci_low", "ci_high", "half_width", "n"]
RANK = ["slo.violation_minutes", "monthly_cost_usd"]   # screening: fewest SLO-violation minutes, then cheapest


def split_values(text: str) -> list[str]:
    """``100,250`` -> ['100', '250']; commas inside {...}, [...] or quotes do not split."""
    parts, depth, quote, cur = [], 0, None, ""
    for ch in text:
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(cur.strip())
            cur = ""
            continue
        cur += ch
    parts.append(cur.strip())
    return parts


def parse_value(text: str):
    """A YAML 1.2 value: '100' -> 100, 'hpa' -> 'hpa', '{policy: hpa}' -> {'policy': 'hpa'}."""
    from capsim.scenario.yaml_io import read_plain
    return read_plain(text)


def policy_hint(overrides: list[str], problems) -> str | None:
    """Switching ``autoscaler.policy`` alone keeps the old policy's fields: say how to replace the section."""
    if any(o.replace(" ", "").startswith("autoscaler.policy=") for o in overrides) and \
            any("unknown key" in str(p) for p in problems):
        return ("hint: a new autoscaler.policy keeps the other policy's fields; replace the whole section, "
                "e.g. 'autoscaler={policy: hpa, min_instances: 1, max_instances: 10}'")
    return None


def _column(values: list):
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return values
    return [v if isinstance(v, str) else json.dumps(v) for v in values]


def _key(scenario, seed: int, slo: SLOConfig | None) -> str:
    """What a run's result depends on: the point's validated scenario, the SLO override and the seed."""
    text = f"{scenario.model_dump_json()}|{slo.model_dump_json() if slo else ''}|{seed}"
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def screen_order(table: pd.DataFrame, rank: list[str]) -> list[int]:
    """Points of a (screening) table best first: by each ``rank`` metric ascending (``-name``:
    descending), points the fast mode flagged invalid after the valid ones, failed points last."""
    wide = table.dropna(subset=["metric"]).pivot_table(index="point", columns="metric", values="mean",
                                                        aggfunc="first")
    keys = []
    for point in sorted(table["point"].unique()):
        row = wide.loc[point] if point in wide.index else None
        if row is None:
            keys.append(((2,), point))
            continue
        valid = row.get("fidelity.valid", 1.0)
        vals = []
        for r in rank:
            sign, name = (-1, r[1:]) if r.startswith("-") else (1, r)
            v = row.get(name)
            vals.append(float("inf") if v is None or v != v else sign * float(v))
        keys.append(((0 if valid == 1.0 else 1, *vals), point))
    return [int(p) for _, p in sorted(keys)]


def sweep(scenario, params: dict[str, list], replications: int = 3, seed: int | None = None, *,
          overrides: list[str] | None = None, out=None, resume: bool = False, overwrite: bool = False,
          slo: SLOConfig | None = None, workers: int | None = None, cluster=None, progress: bool = True,
          allow_code: bool = False, on_result=None, force: bool = False, screen: str | None = None,
          confirm: int = 3, rank: list[str] | None = None) -> pd.DataFrame:
    """Run the grid of ``params`` (dotted path -> values) with replications; a tidy table.

    One row per point and metric: the parameter columns, ``point``, ``metric``, ``mean``,
    ``ci_low``, ``ci_high``, ``half_width``, ``n``, ``error`` (a point whose overrides do
    not validate, or whose runs fail, gets one row with its error). With ``out``, the
    output folder is written whole (``capsim.results.files.OutputFolder``): finished
    (point, replication) results go to its ``sweep_points.jsonl`` as they come, then
    ``sweep.csv`` (and ``sweep.parquet`` with pyarrow); when interrupted, what finished
    (``table.attrs["interrupted"]``). ``resume=True`` skips the runs in ``out``'s journal
    (a complete or interrupted folder, checked against its manifest) and in the journals of
    runs that were killed before they could publish; ``overwrite=True`` replaces ``out``.

    ``screen="flow"``: multi-fidelity. Every point runs once in the fast mode (``fidelity:
    flow``, deterministic), points are ordered by ``rank`` (default ``RANK``: fewest
    SLO-violation minutes, then the cheapest; fast-mode runs flagged invalid after the
    valid ones), and only the best ``confirm`` run at the request level with
    ``replications``. The table holds the confirmed points; ``table.attrs["screen"]`` the
    screening table (also ``out/sweep_screen.csv``), ``attrs["confirmed"]`` their points.
    """
    if screen is not None:
        return _screened(scenario, params, replications, seed, dict(
            overrides=overrides, out=out, resume=resume, overwrite=overwrite, slo=slo, workers=workers,
            cluster=cluster, progress=progress, allow_code=allow_code, on_result=on_result, force=force),
            screen, confirm, rank or RANK)
    return _sweep(scenario, params, replications, seed, overrides=overrides, out=out, resume=resume,
                  overwrite=overwrite, slo=slo, workers=workers, cluster=cluster, progress=progress,
                  allow_code=allow_code, on_result=on_result, force=force)


def _sweep(scenario, params, replications, seed, *, overrides, out, resume, overwrite, slo, workers, cluster,
           progress, allow_code, on_result, force, only: list[int] | None = None, extra: dict | None = None):
    """The sweep; ``only``: run just these points; ``extra``: more tables written into ``out`` (name -> frame)."""
    from capsim.scenario.problems import ScenarioError
    names = list(params)
    points = [dict(zip(names, combo)) for combo in itertools.product(*(params[n] for n in names))]
    scenarios, errors = [], {}
    for i, point in enumerate(points):
        ov = list(overrides or []) + [f"{k}={json.dumps(v)}" for k, v in point.items()]
        try:
            scenarios.append(resolve(scenario, ov))
        except ScenarioError as exc:
            scenarios.append(None)
            hint = policy_hint(ov, exc.problems)
            errors[i] = "; ".join([str(p) for p in exc.problems] + ([hint] if hint else []))
    ok = next((s for s in scenarios if s is not None), None)
    base = base_seed_of(ok, seed) if ok is not None else int(seed or 0)
    seeds = replication_seeds(base, replications)
    folder = OutputFolder(out, overwrite=overwrite or resume, command="sweep", keep=(JOURNAL,)) \
        if out is not None else None
    done: dict[str, dict] = _resumed(folder) if resume and folder is not None else {}
    journal = None
    if folder is not None:
        journal = Journal(folder.open() / JOURNAL)
        for rec in done.values():
            journal.append(rec)
    try:
        if only is not None:
            scenarios = [sc if i in only else None for i, sc in enumerate(scenarios)]
            errors = {i: e for i, e in errors.items() if i in only}
        table = _run_grid(points, names, scenarios, errors, seeds, done, journal, slo, (allow_code, force), workers,
                          cluster, progress, on_result)
        if only is not None:
            attrs = dict(table.attrs)
            table = table[table["point"].isin(only)].reset_index(drop=True)
            table.attrs.update(attrs)
        table.attrs.update(base_seed=base)
        if folder is not None:
            sweep_files(table, folder.stage)
            for name, frame in (extra or {}).items():
                write_csv(folder.stage / name, frame)
            folder.publish("interrupted" if table.attrs["interrupted"] else "complete")
    except BaseException:
        if folder is not None:
            folder.discard()
        raise
    return table


JOURNAL = "sweep_points.jsonl"


def _resumed(folder: OutputFolder) -> dict[str, dict]:
    """Finished runs from the folder's journal (checked against its manifest) and from the
    journals that killed runs left in their staging folders; failed runs are tried again."""
    logs = []
    out = folder.out
    if out.is_dir() and any(out.iterdir()):
        try:
            check_folder(out)
        except IncompleteFolder as exc:
            raise IncompleteFolder(f"cannot resume: {exc}") from None
        logs.append(out / JOURNAL)
    logs += [p / JOURNAL for p in staging_folders(out)]
    done: dict[str, dict] = {}
    for log in logs:
        if not log.is_file():
            continue
        records, skipped = read_journal(log)
        if skipped:
            print(f"capsim sweep: {log}: skipped {skipped} unreadable line(s) (a run cut short); those runs are "
                  "done again", file=sys.stderr)
        for rec in records:
            if isinstance(rec.get("key"), str) and isinstance(rec.get("metrics"), dict):
                done[rec["key"]] = rec
    return done


def _run_grid(points, names, scenarios, errors, seeds, done, journal, slo, code_force, workers, cluster,
              progress, on_result) -> pd.DataFrame:
    allow_code, force = code_force
    todo, keys = [], {}
    for i, sc in enumerate(scenarios):
        for r, s in enumerate(seeds):
            if sc is None:
                continue
            k = _key(sc, s, slo)
            keys[(i, r)] = k
            if k not in done:
                todo.append((i, r, k, Job(sc, s, slo, allow_code=allow_code, force=force)))

    def record(j, result):
        i, r, k, job = todo[j]
        rec = {"key": k, "point": i, "params": points[i], "replication": r + 1, "seed": job.seed,
               "metrics": clean(metrics_of(flatten(result["summary"]))) if "summary" in result else None,
               "error": result.get("error")}
        done[k] = rec
        if journal is not None:
            journal.append(rec)
        if on_result is not None:
            on_result(j, result)

    _, interrupted = run_all([t[3] for t in todo], workers, cluster,
                             Progress(len(todo), "capsim sweep", enabled=progress), record)
    table = _tidy(points, names, seeds, keys, done, errors)
    table.attrs.update(interrupted=interrupted, jobs_run=sum(1 for t in todo if t[2] in done),
                       jobs_resumed=len(keys) - len(todo), points_invalid=len(errors),
                       runs_failed=sum(1 for k in keys.values() if k in done and done[k].get("error")))
    return table


def _screened(scenario, params, replications, seed, options: dict, screen: str, confirm: int,
              rank: list[str]) -> pd.DataFrame:
    """Screen every point in ``screen`` fidelity, confirm the best ``confirm`` at the request level."""
    import time
    if screen != "flow":
        raise ValueError(f"screen: expected 'flow', got {screen!r}")
    overrides = list(options.pop("overrides") or [])
    t0 = time.perf_counter()
    flow = _sweep(scenario, params, 1, seed, **{**options, "out": None, "resume": False, "on_result": None},
                  overrides=overrides + ["fidelity=flow"])
    t1 = time.perf_counter()
    order = screen_order(flow, rank)
    chosen = order[:confirm]
    valid = flow[flow["metric"] == "fidelity.valid"].set_index("point")["mean"] == 1.0
    flow = flow.assign(rank=flow["point"].map({p: i + 1 for i, p in enumerate(order)}),
                       valid=flow["point"].map(valid.to_dict()).fillna(False).astype(bool),
                       confirmed=flow["point"].isin(chosen))
    table = _sweep(scenario, params, replications, seed, **options, overrides=overrides + ["fidelity=request"],
                   only=chosen, extra={"sweep_screen.csv": flow})
    table.attrs.update(confirmed=chosen, rank=rank, screen_seconds=round(t1 - t0, 3),
                       confirm_seconds=round(time.perf_counter() - t1, 3), screen=flow)
    return table


def _tidy(points, names, seeds, keys, done, errors) -> pd.DataFrame:
    rows = []
    for i, point in enumerate(points):
        recs = [done[keys[(i, r)]] for r in range(len(seeds)) if (i, r) in keys and keys[(i, r)] in done]
        fails = [rec["error"] for rec in recs if rec.get("error")]
        flat = [rec["metrics"] for rec in recs if rec.get("metrics") is not None]
        err = errors.get(i) or (fails[0] if fails else None)
        metrics = list(dict.fromkeys(k for f in flat for k in f))
        if not metrics:
            rows.append({**point, "point": i, "metric": None, **dict.fromkeys(STAT_COLUMNS), "error": err})
        for m in metrics:
            rows.append({**point, "point": i, "metric": m, **mean_ci([f.get(m) for f in flat]), "error": err})
    df = pd.DataFrame(rows, columns=names + ["point", "metric"] + STAT_COLUMNS + ["error"])
    for n in names:
        df[n] = _column(list(df[n]))
    df["n"] = df["n"].astype("Int64")
    return df


def write_sweep(table: pd.DataFrame, out, overwrite: bool = False) -> list[Path]:
    """A sweep table as an output folder of its own (``sweep.csv``, ``sweep.parquet``)."""
    with OutputFolder(out, overwrite=overwrite, command="sweep") as folder:
        names = [p.name for p in sweep_files(table, folder.stage)]
    return [Path(out) / n for n in names]


def sweep_files(table: pd.DataFrame, folder) -> list[Path]:
    """``sweep.csv`` (and ``sweep.parquet`` when pyarrow is installed) in ``folder``."""
    folder = Path(folder)
    written = [write_csv(folder / "sweep.csv", table)]
    try:
        import pyarrow  # noqa: F401  (only to know whether to-parquet can work)
    except ImportError:
        return written
    buf = io.BytesIO()
    table.to_parquet(buf, index=False)
    written.append(write_bytes(folder / "sweep.parquet", buf.getvalue()))
    return written
