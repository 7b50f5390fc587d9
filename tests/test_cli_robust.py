"""The command line: version and help, one meaning of --quiet, the built-in scenario everywhere,
validate --strict, exit codes when runs fail, --allow-code, SIGTERM and SIGKILL
(issue 12 item 9; issue 13 items 5, 10, 11, 12)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from capsim.cli import main
from tests.helpers import cli
from capsim.results.files import check_folder

ROOT = Path(__file__).resolve().parents[1]
LAUNCH = str(ROOT / "scenarios" / "launch.yaml")
SHORT = ["--set", "horizon=10m", "--set", "warmup=1m"]
FAST = [*SHORT, "--set", "workload.sessions.peak_users=20", "--workers", "1"]


def test_version_and_a_bare_command_print_what_capsim_is(capsys):
    assert main(["--version"]) == 0 and capsys.readouterr().out.startswith("capsim ")
    code, out, _ = cli(capsys)
    assert code == 0 and out.startswith("usage: capsim") and all(c in out for c in ("run", "compare", "validate"))


@pytest.mark.parametrize("command", ["run", "compare", "sweep", "plan", "report", "validate"])
def test_help_has_metavars_and_examples(capsys, command):
    assert main([command, "--help"]) == 0
    out = capsys.readouterr().out
    assert "examples:" in out and f"capsim {command}" in out.split("examples:")[1]
    if command in ("run", "compare", "sweep", "plan"):
        assert "--out DIR" in out and "--set PATH=VALUE" in out and "--quiet" in out and "--force" in out


def test_allow_code_help_says_what_it_accepts(capsys):
    assert main(["run", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "only a class with a decide(obs) method, or a function annotated to return one, is accepted" in text


# -- the built-in scenario and validate --strict ---------------------------------------------------------
def test_validate_and_compare_take_the_built_in_scenario(capsys, tmp_path):
    code, out, err = cli(capsys, "validate", "--set", "instances.count=2")
    assert code == 0 and out.endswith("ok\n") and err == ""
    code, out, _ = cli(capsys, "compare", *FAST, "--set-b", "instances.count=2", "-r", "2", "--out", str(tmp_path / "ab"))
    lines = out.splitlines()
    assert code == 0 and lines[0].startswith("A: <built-in scenario> + horizon=10m")
    assert lines[1].startswith("B: <built-in scenario> + ") and lines[1].endswith("+ instances.count=2")
    assert check_folder(tmp_path / "ab")["command"] == "compare"


def test_validate_strict_makes_warnings_errors_on_stderr(capsys):
    code, out, err = cli(capsys, "validate", LAUNCH)
    assert code == 0 and "warning: " in out
    code, out, err = cli(capsys, "validate", LAUNCH, "--strict")
    assert code == 2 and out == "" and err and all(line.startswith(f"{LAUNCH}: error (--strict): ")
                                                   for line in err.splitlines())
    code, out, err = cli(capsys, "validate", str(ROOT / "scenarios" / "loadtest.yaml"), "--strict")
    assert (code, out, err) == (0, "ok\n", "")


# -- --quiet: only the output folder on stdout --------------------------------------------------------------
def test_quiet_means_the_output_folder_only_everywhere(capsys, tmp_path):
    runs = {"run": ["run", *FAST], "compare": ["compare", *FAST, "-r", "2"],
            "sweep": ["sweep", *FAST, "--param", "instances.count=1,2", "-r", "1"],
            "plan": ["plan", "--levels", "light", "--plans", "standard", "--horizon", "1m", "--warmup", "1m", "-r", "2",
                     "--workers", "1"]}
    for name, argv in runs.items():
        out_dir = tmp_path / name
        code, out, err = cli(capsys, *argv, "--out", str(out_dir), "--quiet")
        assert code == 0 and out == f"{out_dir}\n", (name, out, err)
        assert "jobs" not in err and "simulated" not in err                    # no progress either
    code, out, _ = cli(capsys, "report", str(tmp_path / "run"), "--quiet")
    assert code == 0 and out == f"{tmp_path / 'run'}\n"
    code, out, err = cli(capsys, "validate", LAUNCH, "--quiet")
    assert code == 0 and out == "" and "warning: " in err
    code, out, _ = cli(capsys, "schema", "--out", str(tmp_path / "s.json"), "--quiet")
    assert code == 0 and out == ""


# -- exit codes when runs fail (item 11) -------------------------------------------------------------------------
def test_sweep_exits_non_zero_when_points_fail(capsys, tmp_path):
    code, _, err = cli(capsys, "sweep", *FAST, "--param", "instances.count=1,0", "-r", "1", "--out", str(tmp_path / "a"))
    assert code == 2 and "1 of 2 points did not validate" in err
    code, _, err = cli(capsys, "sweep", *FAST, "--param", "metrics.interval=1m,1us", "-r", "1", "--out", str(tmp_path / "b"))
    assert code == 1 and "0 of 2 points did not validate, 1 runs failed" in err
    table = (tmp_path / "b" / "sweep.csv").read_text()
    assert "too much work" in table
    code, _, err = cli(capsys, "sweep", *FAST, "--param", "metrics.interval=1us,2us", "-r", "1", "--out", str(tmp_path / "c"))
    assert code == 1 and "2 runs failed" in err                              # every run failed: not 0


def test_plan_exits_non_zero_when_runs_fail(capsys, tmp_path):
    code, _, err = cli(capsys, "plan", "--levels", "light", "--plans", "standard", "--horizon", "1m", "-r", "2",
                       "--set", "metrics.interval=1us", "--workers", "1", "--out", str(tmp_path / "p"))
    assert code == 1 and "runs failed; the first: TooMuchWork" in err


@pytest.mark.parametrize("argv, expected", [
    (["plan", "--latency-ms", "nan"], "argument --latency-ms: expected a finite number > 0, got 'nan'"),
    (["plan", "--error-rate", "2"], "argument --error-rate: expected a finite number >= 0 and <= 1, got '2'"),
    (["run", "--seed", "99999999999999999999"], "argument --seed: expected a whole number from 0 to 2^63 - 1"),
    (["run", "-r", "0"], "argument --replications/-r: expected a whole number from 1 to 1000000"),
])
def test_bad_numbers_on_the_command_line_exit_2(capsys, argv, expected):
    code, _, err = cli(capsys, *argv)
    assert code == 2 and expected in err


def test_too_much_work_is_refused_unless_forced(capsys, tmp_path):
    code, _, err = cli(capsys, "run", "--set", "workload.sessions.peak_users=1e9", "--out", str(tmp_path / "x"))
    assert code == 2 and "too much work: about" in err and "--force" in err and not (tmp_path / "x").exists()


# -- --allow-code accepts only a policy (item 12) ---------------------------------------------------------------
@pytest.mark.parametrize("path", ["subprocess:Popen", "os:system", "builtins:print", "tests.test_cli_robust:helper"])
def test_allow_code_refuses_what_is_not_a_policy_and_runs_nothing(capsys, tmp_path, path):
    marker = tmp_path / "ran"
    scenario = tmp_path / "s.yaml"
    params = {"args": ["touch", str(marker)]} if path == "subprocess:Popen" else {}
    scenario.write_text(json.dumps({"horizon": 600, "warmup": 60, "autoscaler": {
        "policy": "custom", "path": path, "params": params}}))
    code, _, err = cli(capsys, "run", str(scenario), "--allow-code", "--out", str(tmp_path / "o"))
    assert code == 2 and "is not a policy class or factory" in err, err
    assert not marker.exists() and not (tmp_path / "o").exists()


def helper():                     # a function, but not annotated to return a policy class
    return None


def test_allow_code_accepts_a_factory_annotated_with_its_policy(tmp_path):
    import capsim
    sc = capsim.Scenario.model_validate({"horizon": 600, "warmup": 60, "autoscaler": {
        "policy": "custom", "path": "tests.test_cli_robust:make_policy", "min_instances": 1, "max_instances": 3}})
    result = capsim.run(sc, allow_code=True)
    assert [(e["from"], e["to"]) for e in result.events] == [(1, 3)]


class FullFleet:
    interval, window = 60.0, 60.0

    def decide(self, obs):
        from capsim.models.autoscaling.base import Decision
        return Decision(obs.max_instances, "full")


def make_policy() -> FullFleet:
    return FullFleet()


# -- signals (item 10) -------------------------------------------------------------------------------------------
def _children(pid: int) -> set[int]:
    try:
        return {int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}
    except OSError:
        return set()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat").read_text() if Path(f"/proc/{pid}/stat").exists() else ""
    return " Z " not in stat                        # a zombie has died


SLOW_SWEEP = ["sweep", LAUNCH, "--set", "horizon=2h", "--set", "warmup=1m", "--param", "instances.count=1,2,3,4",
              "-r", "2", "--workers", "2"]


def _sweep_with_workers(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "capsim", *SLOW_SWEEP, "--out", str(tmp_path / "sw")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(_children(proc.pid)) < 2:
        time.sleep(0.05)
    workers = _children(proc.pid)
    assert len(workers) >= 2, "no workers started"
    return proc, workers


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads worker processes from /proc")
def test_workers_die_with_a_killed_parent(tmp_path):
    proc, workers = _sweep_with_workers(tmp_path)
    proc.kill()
    proc.communicate(timeout=30)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(w) for w in workers):
        time.sleep(0.1)
    assert not any(_alive(w) for w in workers), "workers outlived their parent"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads worker processes from /proc")
def test_sigterm_stops_like_ctrl_c_and_keeps_what_finished(tmp_path):
    proc, workers = _sweep_with_workers(tmp_path)
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143 and "Traceback" not in err, err
    assert "terminated (SIGTERM)" in err
    assert check_folder(tmp_path / "sw")["status"] == "interrupted"
    assert not any(_alive(w) for w in workers)
