"""The capsim command: exit codes, messages, generated files, run outputs."""
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from capsim.cli import main
from capsim.scenario.docs import markdown, schema_text
from tests.helpers import cli

ROOT = Path(__file__).resolve().parents[1]
SHORT = ["--set", "horizon=10m", "--set", "warmup=1m"]


run_cli = cli       # capsim ARGV in this process: (exit code, stdout, stderr), never a traceback


def scenario(tmp_path, text, name="s.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


# -- validate ---------------------------------------------------------------------------
def test_validate_ok(capsys):
    assert run_cli(capsys, "validate", str(ROOT / "scenarios" / "loadtest.yaml")) == (0, "ok\n", "")
    code, out, err = run_cli(capsys, "validate", str(ROOT / "scenarios" / "launch.yaml"))
    assert code == 0 and out.endswith("ok\n") and err == ""   # warnings, but valid


@pytest.mark.parametrize("text, expected", [
    ("database:\n  poool: {max: 3}\n", ":2:3: database.poool: unknown key 'poool'; did you mean 'pool'?"),
    ("database:\n  pool:\n    max: 0\n", ":3:10: database.pool.max: Input should be greater than or equal to 1, got 0"),
    ("horizon: 10m\nwarmup: 1h\n", ":2:9: warmup: expected less than horizon (600 s), got 3600 s"),
    ("workload:\n  open_loop:\n    - rate: -5/s\n", ":3:13: workload.open_loop.0.rate: expected a rate >= 0, got -5/s"),
    ("instances: {count: two}\n", ":1:20: instances.count: expected an integer, got 'two'"),
    ("name: [unclosed\n", ":2:1: YAML syntax error: "),
])
def test_validate_reports_file_line_col_and_path(capsys, tmp_path, text, expected):
    path = scenario(tmp_path, text)
    code, out, err = run_cli(capsys, "validate", path)
    assert code == 2 and out == ""
    assert err.startswith(path + expected), err


def test_validate_missing_file_and_directory(capsys, tmp_path):
    assert run_cli(capsys, "validate", str(tmp_path / "no.yaml")) == (2, "", f"{tmp_path / 'no.yaml'}: no such file\n")
    code, _, err = run_cli(capsys, "validate", str(tmp_path))
    assert code == 2 and err == f"{tmp_path}: is a directory, expected a scenario YAML file\n"


def test_validate_reports_every_problem_one_per_line(capsys, tmp_path):
    path = scenario(tmp_path, "horizon: soon\ndatabase:\n  pool: {max: 0}\ninstances: {count: x, plann: pro}\n")
    code, _, err = run_cli(capsys, "validate", path)
    lines = err.splitlines()
    assert code == 2 and len(lines) == 4
    assert [line.split(": ")[1] for line in lines] == ["horizon", "database.pool.max", "instances.count", "instances.plann"]
    assert lines[3].endswith("unknown key 'plann'; did you mean 'plan'?")


def test_validate_applies_and_checks_overrides(capsys):
    launch = str(ROOT / "scenarios" / "launch.yaml")
    assert run_cli(capsys, "validate", launch, "--set", "instances.count=3")[0] == 0
    code, _, err = run_cli(capsys, "validate", launch, "--set", "database.pool.max=0", "--set", "nonsense")
    assert code == 2
    assert err.splitlines() == [
        "--set database.pool.max=0: database.pool.max: Input should be greater than or equal to 1, got 0",
        "--set nonsense: expected dotted.path=value, e.g. database.pool.max=30"]


def test_argparse_errors_exit_2(capsys):
    assert main(["run", "--seed", "-1"]) == 2
    assert main(["frobnicate"]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_module_entry_point_has_no_traceback(tmp_path):
    path = scenario(tmp_path, "database:\n  pool: {max: 0}\n  poool: 1\n")
    proc = subprocess.run([sys.executable, "-m", "capsim", "validate", path], capture_output=True, text=True,
                          cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert len(proc.stderr.splitlines()) == 2


# -- schema and docs ------------------------------------------------------------------------
def test_schema_is_json_schema_and_forbids_unknown_keys(capsys):
    code, out, _ = run_cli(capsys, "schema")
    schema = json.loads(out)
    assert code == 0 and schema["$schema"] == "https://json-schema.org/draft/2020-12/schema" and schema["title"]
    assert schema["additionalProperties"] is False
    assert all(d.get("additionalProperties") is False for d in schema["$defs"].values())
    import jsonschema
    jsonschema.Draft202012Validator.check_schema(schema)


def test_committed_schema_is_up_to_date():
    assert (ROOT / "scenarios" / "capsim.schema.json").read_text() == schema_text(), \
        "regenerate: capsim schema --out scenarios/capsim.schema.json"


def test_committed_docs_are_up_to_date():
    assert (ROOT / "docs" / "scenario-reference.md").read_text() == markdown(), \
        "regenerate: capsim docs --out docs/scenario-reference.md"


def test_docs_cover_every_field(capsys):
    code, out, _ = run_cli(capsys, "docs")
    assert code == 0
    schema = json.loads(schema_text())
    for model in [schema, *schema["$defs"].values()]:
        for field in model["properties"]:
            assert f"| `{field}` |" in out
    assert "| `horizon` | duration | `1d` |" in out


def test_schema_and_docs_write_files(capsys, tmp_path):
    assert run_cli(capsys, "schema", "--out", str(tmp_path / "s.json"))[0] == 0
    assert run_cli(capsys, "docs", "--out", str(tmp_path / "d.md"))[0] == 0
    assert json.loads((tmp_path / "s.json").read_text())["title"]
    code, _, err = run_cli(capsys, "docs", "--out", str(tmp_path / "missing-dir" / "d.md"))
    assert code == 1 and "No such file" in err


# -- run -------------------------------------------------------------------------------------
def run_to(capsys, out_dir, *extra):
    code, out, err = run_cli(capsys, "run", *SHORT, "--out", str(out_dir), *extra)
    assert code == 0, err
    return json.loads((out_dir / "summary.json").read_text()), out


def test_run_writes_summary_and_timeseries(capsys, tmp_path):
    summary, out = run_to(capsys, tmp_path / "o")
    for key in ("scenario", "seed", "simulated_seconds", "wall_seconds", "requests", "server_error_rate", "rejected_rate", "latency_ms",
                "pool", "instances", "instance_hours", "cost_usd"):
        assert key in summary
    assert {"total", "ok", "pool_timeout", "db_refused", "unavailable"} <= set(summary["requests"])
    assert set(summary["latency_ms"]) == {"mean", "p50", "p95", "p99"}
    assert {"wait_p95_ms", "timeouts"} <= set(summary["pool"]) and set(summary["instances"]) == {"mean", "max"}
    assert summary["scenario"] == "launch" and summary["simulated_seconds"] == 600
    ts = pd.read_csv(tmp_path / "o" / "timeseries.csv")
    assert len(ts) == 10 and ts["t_end"].iloc[-1] == 600
    for word in ("launch", "latency", "p95", "cost", "instance-hours", str(tmp_path / "o" / "summary.json")):
        assert word in out


def test_run_file_with_overrides_and_quiet(capsys, tmp_path):
    code, out, _ = run_cli(capsys, "run", str(ROOT / "scenarios" / "loadtest.yaml"), "--set", "horizon=2m",
                           "--quiet", "--out", str(tmp_path / "lt"))
    assert code == 0 and out == f"{tmp_path / 'lt'}\n"
    summary = json.loads((tmp_path / "lt" / "summary.json").read_text())
    assert summary["scenario"] == "loadtest" and summary["simulated_seconds"] == 120


def test_run_bad_input_exits_2(capsys, tmp_path):
    code, out, err = run_cli(capsys, "run", "--set", "horizon=10m", "--out", str(tmp_path / "x"))
    assert code == 2 and err == "<built-in scenario>: warmup: expected less than horizon (600 s), got 1800 s\n"
    assert not (tmp_path / "x").exists()


def test_seed_changes_results_and_reproduces(capsys, tmp_path):
    def strip(s):
        return {k: v for k, v in s.items() if k != "wall_seconds"}
    a, _ = run_to(capsys, tmp_path / "a", "--seed", "7")
    b, _ = run_to(capsys, tmp_path / "b", "--seed", "7")
    c, _ = run_to(capsys, tmp_path / "c", "--seed", "8")
    assert strip(a) == strip(b) and a["seed"] == 7
    assert strip(a) != strip(c) and c["seed"] == 8
    assert (tmp_path / "a" / "timeseries.csv").read_text() == (tmp_path / "b" / "timeseries.csv").read_text()
