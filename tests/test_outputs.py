"""Output integrity: strict JSON, atomic files and folders, manifests, symlinks, full disks,
interrupted and killed runs (issue 13 items 3, 8, 9, 12; issue 12 item 3)."""
from __future__ import annotations

import json
import math
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import cli
from capsim.results.files import (MANIFEST, Journal, OutputExists, OutputFolder, check_folder,
                                  read_journal, to_json, write_json, write_text)

ROOT = Path(__file__).resolve().parents[1]
LAUNCH = str(ROOT / "scenarios" / "launch.yaml")
SHORT = ["--set", "horizon=10m", "--set", "warmup=1m"]


# -- strict JSON (item 3: "cost_usd": Infinity) -------------------------------------------------------
def test_the_json_writer_refuses_non_finite_numbers_naming_the_key(tmp_path):
    assert json.loads(to_json({"a": np.float64(1.5), "b": [np.int64(2)], "c": None})) == {"a": 1.5, "b": [2], "c": None}
    for bad, where in (({"cost_usd": math.inf}, "cost_usd"), ({"latency": {"p95": math.nan}}, "latency.p95"),
                       ({"xs": [1.0, -math.inf]}, "xs[1]"), ({"n": np.float32("nan")}, "n")):
        with pytest.raises(ValueError) as info:
            write_json(tmp_path / "s.json", bad)
        assert str(info.value).startswith(f"{tmp_path / 's.json'}: {where} is ") and "non-finite" in str(info.value)
    assert not (tmp_path / "s.json").exists()


# -- atomic files, never through a symlink (item 12) ----------------------------------------------------
def test_a_write_replaces_a_symlink_and_never_its_target(tmp_path):
    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    link = tmp_path / "report.html"
    link.symlink_to(target)
    write_text(link, "<html>")
    assert target.read_text() == "keep me"
    assert not link.is_symlink() and link.read_text() == "<html>"
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_report_does_not_write_through_a_symlinked_report_html(capsys, tmp_path):
    out = tmp_path / "run"
    assert cli(capsys, "run", *SHORT, "--out", str(out), "--quiet")[0] == 0
    target = tmp_path / "elsewhere.txt"
    target.write_text("not capsim's")
    (out / "report.html").unlink()
    (out / "report.html").symlink_to(target)
    assert cli(capsys, "report", str(out))[0] == 0
    assert target.read_text() == "not capsim's" and not (out / "report.html").is_symlink()
    (out / "images").symlink_to(tmp_path)
    code, _, err = cli(capsys, "report", str(out), "--images", "png")
    assert code == 1 and ("symbolic link" in err or "images not written" in err)


# -- atomic folders with a manifest (item 8) ---------------------------------------------------------------
def test_a_folder_is_published_whole_with_a_manifest_of_hashes(tmp_path):
    out = tmp_path / "o"
    with OutputFolder(out) as folder:
        write_text(folder.stage / "summary.json", "{}\n")
        write_text(folder.stage / "a.csv", "x\n1\n")
        assert not out.exists()                            # nothing there until it is complete
    manifest = check_folder(out)
    assert manifest["status"] == "complete" and set(manifest["files"]) == {"summary.json", "a.csv"}
    assert [p.name for p in tmp_path.iterdir()] == ["o"]   # no staging folder left


def test_an_existing_folder_is_kept_unless_overwrite_and_then_replaced_only_when_complete(tmp_path):
    out = tmp_path / "o"
    with OutputFolder(out) as folder:
        write_text(folder.stage / "summary.json", '{"seed": 1}\n')
    with pytest.raises(OutputExists, match="holds an earlier output"):
        OutputFolder(out).open()
    with pytest.raises(RuntimeError):
        with OutputFolder(out, overwrite=True) as folder:
            write_text(folder.stage / "summary.json", '{"seed": 2}\n')
            raise RuntimeError("the run failed half way")
    assert json.loads((out / "summary.json").read_text()) == {"seed": 1}   # the old one, whole
    check_folder(out)
    with OutputFolder(out, overwrite=True) as folder:
        write_text(folder.stage / "summary.json", '{"seed": 2}\n')
    assert json.loads((out / "summary.json").read_text()) == {"seed": 2}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o"]
    empty = tmp_path / "empty"
    empty.mkdir()
    with OutputFolder(empty) as folder:              # an empty folder holds nothing to lose
        write_text(folder.stage / "x.txt", "x")
    check_folder(empty)


@pytest.mark.parametrize("damage, expected", [
    (lambda d: (d / MANIFEST).unlink(), "no manifest.json"),
    (lambda d: (d / "summary.json").write_text("{}"), "summary.json: changed since capsim wrote it"),
    (lambda d: (d / "summary.json").write_text(""), "summary.json: changed since capsim wrote it"),
    (lambda d: (d / "timeseries.csv").unlink(), "timeseries.csv: missing"),
    (lambda d: (d / MANIFEST).write_text("[1, 2]"), "manifest.json: damaged"),
    (lambda d: (d / MANIFEST).write_text('{"files": {"summary.json": {}}}'), "manifest.json: damaged"),
])
def test_report_refuses_a_folder_that_is_not_what_capsim_wrote(capsys, tmp_path, damage, expected):
    """`capsim report` drew 11 of 15 corrupt folders (e.g. `{}` as summary.json) or crashed on them."""
    out = tmp_path / "run"
    assert cli(capsys, "run", *SHORT, "--out", str(out), "--quiet")[0] == 0
    damage(out)
    code, _, err = cli(capsys, "report", str(out))
    assert code == 2 and expected in err, err


def test_run_output_folders_are_never_overwritten_silently(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli(capsys, "run", *SHORT, "--quiet")[1] == "capsim-out/launch\n"
    code, out, err = cli(capsys, "run", *SHORT, "--quiet", "--seed", "2")
    assert code == 0 and out == "capsim-out/launch-2\n" and "capsim-out/launch holds an earlier output" in err
    assert json.loads(Path("capsim-out/launch/summary.json").read_text())["seed"] == 1
    code, _, err = cli(capsys, "run", *SHORT, "--out", "capsim-out/launch")
    assert code == 2 and "holds an earlier output" in err and "--overwrite" in err
    assert cli(capsys, "run", *SHORT, "--out", "capsim-out/launch", "--overwrite", "--seed", "3", "--quiet")[0] == 0
    assert json.loads(Path("capsim-out/launch/summary.json").read_text())["seed"] == 3
    check_folder("capsim-out/launch")


def _start(argv, **kw):
    return subprocess.Popen([sys.executable, "-m", "capsim", *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, **kw)


def _wait_for(pred, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return False


def test_a_killed_rerun_leaves_the_previous_folder_whole(capsys, tmp_path):
    """Re-running into a used folder and killing it left seed 2's summary beside seed 1's time series."""
    out = tmp_path / "o"
    assert cli(capsys, "run", *SHORT, "--out", str(out), "--quiet")[0] == 0
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    proc = _start(["run", "--set", "horizon=1d", "--seed", "2", "--out", str(out), "--overwrite"])
    assert _wait_for(lambda: any(tmp_path.glob(".o.*.partial")))
    time.sleep(0.5)
    proc.kill()
    proc.communicate(timeout=30)
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    check_folder(out)
    (partial,) = tmp_path.glob(".o.*.partial")               # what the killed run left: refused by report
    assert cli(capsys, "report", str(partial))[0] == 2
    assert cli(capsys, "run", *SHORT, "--out", str(out), "--overwrite", "--quiet")[0] == 0
    assert not list(tmp_path.glob(".o.*.partial"))           # cleared once a run to the same folder completes


def test_an_interrupted_run_publishes_nothing(capsys, tmp_path):
    out = tmp_path / "o"
    with pytest.raises(KeyboardInterrupt):
        with OutputFolder(out) as folder:
            write_text(folder.stage / "summary.json", "{}")
            raise KeyboardInterrupt
    assert not out.exists() and not list(tmp_path.iterdir())


# -- journals and full disks (item 9) -----------------------------------------------------------------------
def test_a_torn_last_journal_line_is_skipped(tmp_path):
    log = tmp_path / "j.jsonl"
    j = Journal(log)
    j.append({"key": "a", "metrics": {"x": 1.0}})
    j.append({"key": "b", "metrics": {"x": 2.0}})
    log.write_bytes(log.read_bytes() + b'{"key": "c", "metr')
    records, skipped = read_journal(log)
    assert [r["key"] for r in records] == ["a", "b"] and skipped == 1


def _full_disk(limit):
    def limited():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)      # the write fails (EFBIG) instead of killing
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return limited


SWEEP = ["sweep", LAUNCH, "--set", "horizon=5m", "--set", "warmup=1m", "--set", "workload.sessions.peak_users=20",
         "--param", "instances.count=1,2", "-r", "2", "--workers", "1"]


def test_a_full_disk_names_the_file_and_resume_finishes(tmp_path):
    """A full disk during a sweep left a half-written last line, --resume then crashed
    (JSONDecodeError), and 'No space left on device' came without a file name. The disk is
    filled by a file-size limit on the process: its writes fail as on a full disk."""
    out = tmp_path / "sw"
    probe = subprocess.run([sys.executable, "-m", "capsim", *SWEEP, "--out", str(tmp_path / "probe"), "--quiet"],
                           capture_output=True, text=True, timeout=300)
    assert probe.returncode == 0, probe.stderr
    line = len((tmp_path / "probe" / "sweep_points.jsonl").read_text().splitlines()[0]) + 1
    full = subprocess.run([sys.executable, "-m", "capsim", *SWEEP, "--out", str(out)], capture_output=True, text=True,
                          timeout=300, preexec_fn=_full_disk(line + line // 2))   # the 2nd line is cut in half
    assert full.returncode == 1 and "Traceback" not in full.stderr, full.stderr
    (partial,) = tmp_path.glob(".sw.*.partial")            # the finished runs are kept there
    assert f"{partial / 'sweep_points.jsonl'}: File too large" in full.stderr, full.stderr
    assert "rerun with --resume" in full.stderr
    assert not out.exists()
    done = subprocess.run([sys.executable, "-m", "capsim", *SWEEP, "--out", str(out), "--resume"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "resumed: 1 runs taken from" in done.stdout and "skipped 1 unreadable line" in done.stderr
    records, skipped = read_journal(out / "sweep_points.jsonl")
    assert len(records) == 4 and skipped == 0
    check_folder(out)
    assert not list(tmp_path.glob(".sw.*.partial"))


def test_resume_checks_the_folder_it_resumes(capsys, tmp_path):
    out = tmp_path / "sw"
    assert subprocess.run([sys.executable, "-m", "capsim", *SWEEP, "--out", str(out), "--quiet"],
                          capture_output=True, timeout=300).returncode == 0
    (out / "sweep_points.jsonl").write_text("garbage\n")
    code, _, err = cli(capsys, *SWEEP, "--out", str(out), "--resume")
    assert code == 2 and "cannot resume" in err and "sweep_points.jsonl: changed since capsim wrote it" in err
