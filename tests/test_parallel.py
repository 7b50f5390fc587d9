"""Parallel and distributed runs give the serial numbers; progress; Ctrl-C keeps finished work."""
import io
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from capsim.experiments import replicate, sweep
from capsim.scenario.loader import load
from capsim.experiments.parallel import Interrupted, Progress, cluster_address, run_jobs

ROOT = Path(__file__).resolve().parents[1]
LAUNCH = str(ROOT / "scenarios" / "launch.yaml")
TINY = ["horizon=10m", "warmup=2m", "workload.sessions.daily_curve=flat", "workload.sessions.peak_users=60",
        "workload.sessions.session_length=2m"]


def numbers(reps):
    """Every flattened metric of every replication (wall time is the machine's, not the model's)."""
    return [f for f in reps.flat()]


def square(x):
    return x * x


def test_run_jobs_keeps_job_order_in_process_and_in_workers():
    jobs = list(range(7))
    assert run_jobs(square, jobs, workers=1) == [x * x for x in jobs]
    assert run_jobs(square, jobs, workers=2) == [x * x for x in jobs]
    assert run_jobs(square, [], workers=2) == []


def test_parallel_replications_and_sweeps_equal_serial():
    sc = load(LAUNCH, TINY)
    serial = replicate(sc, 4, seed=9, workers=1, progress=False)
    parallel = replicate(sc, 4, seed=9, workers=2, progress=False)
    assert numbers(serial) == numbers(parallel)
    params = {"instances.count": [1, 2]}
    a = sweep(sc, params, 2, seed=9, workers=1, progress=False)
    b = sweep(sc, params, 2, seed=9, workers=2, progress=False)
    pd.testing.assert_frame_equal(a, b)


def test_interrupt_cancels_pending_jobs_and_keeps_finished_ones():
    calls = []

    def stop(i, result):
        calls.append(i)
        raise KeyboardInterrupt

    with pytest.raises(Interrupted) as info:
        run_jobs(time.sleep, [0.01] + [0.5] * 6, workers=2, on_result=stop)
    assert list(info.value.done) == calls and len(calls) == 1
    time.sleep(0.2)
    assert not multiprocessing.active_children()          # the workers were stopped, not left running


class Tty(io.StringIO):
    def isatty(self):
        return True


def test_progress_draws_a_bar_on_a_terminal_and_logs_rate_limited_lines_otherwise():
    log = io.StringIO()
    p = Progress(50, "capsim sweep", stream=log, every=3600)
    for _ in range(50):
        p.update()
    lines = log.getvalue().splitlines()
    assert len(lines) == 2                                  # the first and the last, not 50
    assert lines[-1].startswith("capsim sweep: 50/50 jobs (100%)")
    assert "\r" not in log.getvalue() and "\x1b" not in log.getvalue()   # plain lines in a log
    tty = Tty()
    p = Progress(3, "x", stream=tty)
    for _ in range(3):
        p.update()
    out = tty.getvalue()
    # rich redraws the whole line (carriage return + erase line): no stale characters such as "leftt"
    assert out.count("\r") == out.count("\r\x1b[2K") >= 2 and "3/3 jobs" in out and out.endswith("\n\x1b[?25h")
    quiet = io.StringIO()
    Progress(3, "x", stream=quiet, enabled=False).update()
    assert quiet.getvalue() == ""


def test_a_single_run_reports_simulated_time():
    from capsim.experiments.progress import RunProgress
    log = io.StringIO()
    p = RunProgress(86400.0, stream=log, every=0)
    p(3600.0, 86400.0)
    p(86400.0, 86400.0)
    assert log.getvalue().splitlines() == [log.getvalue().splitlines()[0], "capsim run: simulated 1d of 1d (100%), "
                                           + log.getvalue().splitlines()[1].split("(100%), ")[1]]
    assert log.getvalue().startswith("capsim run: simulated 1h of 1d (4%), ")


def test_cluster_address_from_the_environment(monkeypatch):
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    assert cluster_address() is None
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", "tcp://10.0.0.1:8786")
    assert cluster_address() == "tcp://10.0.0.1:8786"
    assert cluster_address("tcp://127.0.0.1:1") == "tcp://127.0.0.1:1"


def test_dask_cluster_gives_the_serial_numbers():
    distributed = pytest.importorskip("distributed")
    sc = load(LAUNCH, TINY)
    serial = replicate(sc, 4, seed=9, workers=1, progress=False)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        on_dask = replicate(sc, 4, seed=9, cluster=cluster.scheduler_address, progress=False)
    assert numbers(on_dask) == numbers(serial)


def test_ctrl_c_on_the_command_line_writes_partial_results_and_resume_finishes(tmp_path):
    out = tmp_path / "sweep"
    sets = sum((["--set", o] for o in ["horizon=15m", "warmup=2m", "workload.sessions.daily_curve=flat",
                                       "workload.sessions.peak_users=100"]), [])
    cmd = [sys.executable, "-m", "capsim", "sweep", LAUNCH, *sets, "--param", "instances.count=1,2,3,4",
           "-r", "3", "--workers", "2", "--out", str(out)]
    # SIG_DFL for SIGINT in the child: a shell running the tests in the background (nohup, &)
    # leaves SIGINT ignored, the child would inherit that, and Python then never raises Ctrl-C
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    log = out / "sweep_points.jsonl"

    def staged():            # while it runs, the journal is in the staging folder beside out/
        return sum(p.read_text().count("\n") for p in tmp_path.glob(".sweep.*.partial/sweep_points.jsonl"))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and staged() < 1:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)                      # as a terminal's Ctrl-C: the whole group
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "rerun with --resume" in err and "Traceback" not in err
    finished = log.read_text().count("\n")
    assert 1 <= finished < 12
    assert (out / "sweep.csv").exists()
    done = subprocess.run(cmd + ["--resume"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"resumed: {finished} runs taken from" in done.stdout
    assert log.read_text().count("\n") == 12


def test_progress_heartbeat_before_the_first_run_finishes():
    log = io.StringIO()
    p = Progress(4, "capsim compare", stream=log, every=10, heartbeat=0.05)
    p.tick()                                             # too early: nothing
    assert log.getvalue() == ""
    time.sleep(0.06)
    p.tick()
    assert log.getvalue().startswith("capsim compare: 0/4 jobs (0%), ")
    tty = Tty()
    q = Progress(2, "x", stream=tty)
    q.tick()
    assert "x" in tty.getvalue() and "0/2 jobs" in tty.getvalue() and not tty.getvalue().endswith("\n")
    for _ in range(2):
        q.update()
    before = tty.getvalue()
    q.tick()                                             # finished: no more lines
    assert tty.getvalue() == before


def test_a_pool_run_ticks_while_waiting(monkeypatch):
    ticks = []
    monkeypatch.setattr(Progress, "tick", lambda self: ticks.append(self.done))
    sc = load(LAUNCH, ["horizon=3h", "warmup=1m"])
    replicate(sc, 2, seed=3, workers=2, progress=True)
    assert ticks and ticks[0] == 0                        # the wait polls once a second
