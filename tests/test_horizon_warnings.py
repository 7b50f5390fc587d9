"""``capsim validate`` names what is timed outside the run [start, start + horizon), at its FILE:LINE:COL."""
from __future__ import annotations

import pytest

from capsim.scenario import load_text
from capsim.scenario.checks import warnings
from capsim.scenario.placing import leading_path, places
from tests.helpers import cli

HEAD = "name: t\nhorizon: 1d\nrate_limit: null\n"          # Monday 2026-01-05 00:00 to Tuesday 00:00


def _write(tmp_path, text: str) -> str:
    path = tmp_path / "s.yaml"
    path.write_text(HEAD + text)
    return str(path)


def _warnings(capsys, *argv) -> list[str]:
    code, out, err = cli(capsys, "validate", *argv)
    assert code == 0 and out.endswith("ok\n") and err == "", (out, err)
    return [line for line in out.splitlines() if line.startswith("warning: ")]


def _about(lines: list[str], fragment: str) -> list[str]:
    return [line for line in lines if fragment in line]


def test_an_event_after_the_horizon_is_named_at_its_line(tmp_path, capsys):
    path = _write(tmp_path, "workload:\n  sessions:\n    events:\n"
                            "      - {name: open, start: 2h, duration: 1h}\n"
                            "      - {name: tournament, start: 5d18h, duration: 4h, multiplier: 2.0}\n")
    found = _warnings(capsys, path)
    assert len(found) == 1
    line = found[0]
    assert line.startswith(f"warning: {path}:8:9: workload.sessions.events[1]: event 'tournament' starts at "
                           "Sat 2026-01-10 18:00 (t = 5.75d)")
    assert "Mon 2026-01-05 00:00 to Tue 2026-01-06 00:00 (horizon 1d)" in line and "never happens" in line
    assert "horizon > 5.75d" in line


def test_an_event_at_exactly_the_horizon_never_happens_one_just_inside_does(tmp_path, capsys):
    path = _write(tmp_path, "workload:\n  sessions:\n    events:\n"
                            "      - {name: last, start: 86399, duration: 1h}\n"
                            "      - {name: late, start: 2026-01-06T00:00:00, duration: 1h}\n")
    found = _warnings(capsys, path)
    assert [w.split(": ")[2] for w in found] == ["workload.sessions.events[1]"]


def test_an_event_that_starts_before_the_run_happens_only_in_part(tmp_path, capsys):
    path = _write(tmp_path, "workload:\n  start: 2026-01-10T00:00:00\n  sessions:\n    events:\n"
                            "      - {name: overnight, start: 2026-01-09T22:00:00, duration: 4h}\n"
                            "      - {name: friday, start: 2026-01-09T12:00:00, duration: 1h}\n")
    found = _warnings(capsys, path)
    assert len(found) == 2
    assert f"{path}:8:9: workload.sessions.events[0]: event 'overnight' starts at Fri 2026-01-09 22:00 (t = -2h)" \
        in found[0] and "only its part from Sat 2026-01-10 00:00 on happens" in found[0]
    assert "events[1]: event 'friday'" in found[1] and "so it never happens" in found[1]


def test_load_test_phases_and_sources_past_the_horizon(tmp_path, capsys):
    path = _write(tmp_path, "workload:\n  sessions: null\n  open_loop:\n"
                            "    - name: artillery\n      start: 23h\n      phases:\n"
                            "        - {name: Warm up, duration: 30m, arrivalRate: 10/s}\n"
                            "        - {name: Sustained load, duration: 30m, arrivalRate: 50/s}\n"
                            "        - {name: Peak load, duration: 60s, arrivalRate: 100/s}\n"
                            "    - name: late\n      start: 2d\n      rate: 5/s\n"
                            "    - name: steps\n      schedule: [{at: 0s, rate: 1/s}, {at: 25h, rate: 2/s}]\n")
    found = _warnings(capsys, path)
    assert len(found) == 3
    peak = _about(found, "Peak load")
    assert peak and peak[0].startswith(f"warning: {path}:12:11: workload.open_loop[0].phases[2]: load-test phase "
                                       "'Peak load' of 'artillery' starts at Tue 2026-01-06 00:00 (t = 1d)")
    late = _about(found, "'late'")
    assert late and late[0].startswith(f"warning: {path}:13:7: workload.open_loop[1]: open-loop source 'late' "
                                       "starts at Wed 2026-01-07 00:00 (t = 2d)")
    step = _about(found, "rate step 1")
    assert step and step[0].startswith(f"warning: {path}:17:39: workload.open_loop[2].schedule[1]: ")


def test_scheduled_actions_that_never_occur(tmp_path, capsys):
    path = _write(tmp_path, "autoscaler: {policy: threshold, min_instances: 1, max_instances: 4}\n"
                            "schedule:\n  actions:\n"
                            "    - {at: '02:00', max_instances: 2}\n"          # every day: occurs
                            "    - {at: 'Sat 18:00', min_instances: 3}\n"      # a Monday-only run: never
                            "    - {at: 'Mon-Fri 18:00', min_instances: 2}\n"  # occurs on Monday
                            "    - {at: 36h, max_instances: 3}\n"              # once, after the end
                            "    - {at: 2026-01-05T12:00:00, max_instances: 4}\n")
    found = _warnings(capsys, path)
    assert [w.split(": ")[1] for w in found] == [f"{path}:8:7", f"{path}:10:7"]
    assert "schedule.actions[1]: scheduled action at Sat 18:00 never occurs" in found[0]
    assert "schedule.actions[3]: scheduled action at 36h never occurs" in found[1] or \
        "schedule.actions[3]: scheduled action at 129600" in found[1]


def test_the_scheduled_policys_own_actions_and_faults(tmp_path, capsys):
    path = _write(tmp_path, "autoscaler:\n  policy: scheduled\n  min_instances: 1\n  max_instances: 4\n"
                            "  actions: [{at: 'Sun 12:00', desired: 2}]\n"
                            "faults:\n  crashes: [{at: 30h}]\n"
                            "  database_outages: [{start: 1h, duration: 10m}, {start: 1d, duration: 10m}]\n")
    found = _warnings(capsys, path)
    assert len(found) == 3
    assert _about(found, "autoscaler.actions[0]: scheduled action at Sun 12:00 never occurs")
    assert _about(found, "faults.crashes[0]: crash starts at Tue 2026-01-06 06:00 (t = 1.25d)")
    outage = _about(found, "faults.database_outages[1]: database outage starts at")
    assert outage and outage[0].startswith(f"warning: {path}:11:")


def test_an_override_that_moves_the_horizon_or_the_event_is_named(tmp_path, capsys):
    path = _write(tmp_path, "workload:\n  sessions:\n    events: [{name: sat, start: 5d18h, duration: 4h}]\n")
    assert len(_warnings(capsys, path)) == 1
    assert _warnings(capsys, path, "--set", "horizon=7d") == []
    moved = _warnings(capsys, path, "--set", "horizon=7d", "--set", "workload.sessions.events.0.start=8d")
    assert len(moved) == 1 and moved[0].startswith(
        "warning: --set workload.sessions.events.0.start=8d: workload.sessions.events[0]: event 'sat'")


def test_strict_makes_them_errors_at_their_place(tmp_path, capsys):
    path = _write(tmp_path, "workload:\n  sessions:\n    events: [{name: sat, start: 5d18h, duration: 4h}]\n")
    code, out, err = cli(capsys, "validate", path, "--strict")
    assert code == 2 and out == ""
    assert err.startswith(f"{path}:6:14: error (--strict): workload.sessions.events[0]: event 'sat'")


def test_the_built_in_scenario_and_an_event_inside_warn_about_nothing_timed():
    assert not [w for w in warnings(load_text(HEAD + "workload: {sessions: {events: [{start: 1h, duration: 1h}]}}\n"))
                if "starts at" in w or "never occurs" in w]


def test_leading_path_and_places_without_a_file():
    assert leading_path("workload.open_loop[0].phases[2]: x: y") == ("workload", "open_loop", 0, "phases", 2)
    assert leading_path("autoscaler.cpu_up: 70% CPU") == ("autoscaler", "cpu_up")
    assert leading_path("no path here") is None
    assert places(["autoscaler.cpu_up: x", "free text"], None, ["autoscaler.cpu_up=0.5"]) == \
        ["--set autoscaler.cpu_up=0.5", None]


@pytest.mark.parametrize("name", ["fullscale", "growth", "launch", "loadtest", "week"])
def test_shipped_scenarios_time_everything_inside_their_runs(capsys, name):
    found = _warnings(capsys, f"scenarios/{name}.yaml")
    assert not [w for w in found if "starts at" in w or "never occurs" in w], found


def test_a_dated_action_with_a_time_zone_against_a_naive_start_is_an_error_at_its_line(tmp_path, capsys):
    """Found by the timing check: such an action used to pass validate and fail the run."""
    path = _write(tmp_path, "schedule:\n  actions:\n    - {at: '2026-01-05T12:00:00+00:00', min_instances: 2}\n")
    code, out, err = cli(capsys, "validate", path)
    assert code == 2 and out == ""
    assert err.startswith(f"{path}:6:12: schedule.actions.0.at: 2026-01-05T12:00:00+00:00 and workload.start "
                          "2026-01-05T00:00:00: expected both with a time zone or both without")
