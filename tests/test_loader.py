"""Scenario files: loading, overrides, and problems reported with FILE:LINE:COL and path."""
import re
from pathlib import Path

import pytest

from capsim.scenario.loader import EMPTY, Problem, ScenarioError, load, load_text
from capsim.scenario.config import Scenario

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "scenarios"


def problems(text, overrides=(), name="s.yaml"):
    with pytest.raises(ScenarioError) as info:
        load_text(text, name, list(overrides))
    assert "Traceback" not in str(info.value)
    return [str(p) for p in info.value.problems]


def only(text, overrides=()):
    found = problems(text, overrides)
    assert len(found) == 1, found
    return found[0]


# -- valid files ------------------------------------------------------------------------
def test_launch_file_is_the_built_in_default():
    assert load(SCENARIOS / "launch.yaml") == Scenario()


def test_loadtest_file_is_the_artillery_test():
    sc = load(SCENARIOS / "loadtest.yaml")
    assert sc.workload.sessions is None and sc.horizon == 420 and sc.warmup == 0
    (src,) = sc.workload.open_loop
    assert src.flow == ["health", "toybox"]
    assert [(p.name, p.duration, p.arrivalRate) for p in src.phases] == [
        ("Warm up", 60, 10), ("Sustained load", 300, 50), ("Peak load", 60, 100)]


@pytest.mark.parametrize("path", sorted(SCENARIOS.rglob("*.yaml")), ids=lambda p: p.name)
def test_every_scenario_file_loads(path):
    load(path)


@pytest.mark.parametrize("name", sorted(str(p.relative_to(SCENARIOS)) for p in SCENARIOS.rglob("*.yaml")))
def test_scenario_files_point_at_the_schema(name):
    """yaml-language-server resolves a relative $schema against the YAML file's folder."""
    path = SCENARIOS / name
    first = path.read_text().splitlines()[0]
    m = re.fullmatch(r"# yaml-language-server: \$schema=(\S+)", first)
    assert m, first
    assert (path.parent / m.group(1)).resolve() == (SCENARIOS / "capsim.schema.json").resolve()


@pytest.mark.parametrize("name", sorted(str(p.relative_to(SCENARIOS)) for p in SCENARIOS.rglob("*.yaml")))
def test_scenario_files_satisfy_the_json_schema(name):
    import json

    import jsonschema
    from ruamel.yaml import YAML
    from capsim.scenario.yaml_io import plain as _plain
    schema = json.loads((SCENARIOS / "capsim.schema.json").read_text())
    jsonschema.validate(_plain(YAML().load((SCENARIOS / name).read_text())), schema)


def test_empty_or_comment_only_file_is_an_error_and_the_built_in_has_its_own_door():
    """An empty file used to validate "ok" and run the default scenario (issue 13 item 4, issue 12 item 8)."""
    from capsim.scenario.loader import load_builtin
    for text in ("", "# nothing yet\n", "---\n", "\n\n  # a comment\n"):
        assert problems(text, name="e.yaml") == [f"e.yaml:1:1: {EMPTY}"]
    assert load_builtin() == Scenario() and load_builtin(["instances.count=2"]).instances.count == 2


def test_yaml_1_2_and_human_units():
    sc = load_text("name: no\nhorizon: 2h\nwarmup: 1e3\ndatabase: {pool: {acquire_timeout: 500ms}}\n")
    assert (sc.name, sc.horizon, sc.warmup, sc.database.pool.acquire_timeout) == ("no", 7200, 1000, 0.5)


# -- overrides -----------------------------------------------------------------------------
def test_overrides_apply():
    sc = load(SCENARIOS / "launch.yaml", ["instances.count=3", "workload.sessions.peak_users=500",
                                          "database.pool.acquire_timeout=500ms", "workload.sessions.events=[]",
                                          "workload.open_loop.0.rate=50/s", "name=x"])
    assert sc.instances.count == 3 and sc.workload.sessions.peak_users == 500
    assert sc.database.pool.acquire_timeout == 0.5 and sc.workload.sessions.events == []
    assert sc.workload.open_loop[0].rate == 50 and sc.name == "x"


def test_overrides_index_existing_list_items_and_fill_null_sections():
    sc = load(SCENARIOS / "loadtest.yaml", ["workload.open_loop.0.phases.1.arrivalRate=3000/m",
                                            "workload.sessions.peak_users=5"])
    assert sc.workload.open_loop[0].phases[1].arrivalRate == 50
    assert sc.workload.sessions.peak_users == 5 and sc.workload.sessions.daily_curve == "gaming"


def test_override_problems_name_the_override():
    assert only("name: x\n", ["database.pool.max=0"]) == (
        "--set database.pool.max=0: database.pool.max: Input should be greater than or equal to 1, got 0")
    assert only("name: x\n", ["database.poool.max=3"]) == (
        "--set database.poool.max=3: database.poool: unknown key 'poool'; did you mean 'pool'?")


def test_bad_override_paths():
    assert only("name: x\n", ["database.pool.max"]) == "--set database.pool.max: expected dotted.path=value, e.g. database.pool.max=30"
    assert only("name: x\n", ["a..b=1"]).startswith("--set a..b=1: expected dotted.path=value")
    assert only("horizon: 1h\n", ["horizon.x=1"]) == "--set horizon.x=1: horizon: expected a mapping or list to set 'x' in, got '1h'"
    assert only("name: x\n", ["workload.open_loop.3.rate=1"]) == (
        "--set workload.open_loop.3.rate=1: workload.open_loop: expected a list index from 0 to 0, got '3'")


def test_bad_override_values():
    assert only("name: x\n", ["instances.count=many"]) == "--set instances.count=many: instances.count: expected an integer, got 'many'"
    assert only("name: x\n", ["workload.sessions.events=[oops"]).startswith(
        "--set workload.sessions.events=[oops: YAML syntax error in the value (column 6): ")


def test_override_problems_come_with_the_file_problems():
    found = problems("instances:\n  count: 0\n", ["database.pool.max=0"])
    assert found == ["s.yaml:2:10: instances.count: Input should be greater than or equal to 1, got 0",
                     "--set database.pool.max=0: database.pool.max: Input should be greater than or equal to 1, got 0"]


# -- file problems --------------------------------------------------------------------------
def test_missing_file(tmp_path):
    with pytest.raises(ScenarioError) as info:
        load(tmp_path / "nope.yaml")
    assert str(info.value) == f"{tmp_path / 'nope.yaml'}: no such file"


def test_directory(tmp_path):
    with pytest.raises(ScenarioError) as info:
        load(tmp_path)
    assert str(info.value) == f"{tmp_path}: is a directory, expected a scenario YAML file"


def test_broken_yaml():
    assert only("name: x\nworkload:\n  sessions: {peak_users: 5\n") == (
        "s.yaml:4:1: YAML syntax error: expected ',' or '}', but got '<stream end>'")
    assert only("name: a\nname: b\n").startswith("s.yaml:2:1: YAML syntax error: found duplicate key \"name\"")


def test_top_level_must_be_a_mapping():
    assert only("- a\n- b\n") == ("s.yaml:1:1: expected a mapping of scenario fields (name: ..., horizon: ...) "
                                  "at the top level, got a list of 2 items")
    assert only("just words\n").endswith("at the top level, got 'just words'")


def test_wrong_type():
    assert only("# c\ninstances:\n  count: three\n") == "s.yaml:3:10: instances.count: expected an integer, got 'three'"
    assert only("workload:\n  sessions: 5\n") == "s.yaml:2:13: workload.sessions: expected a mapping, got 5"


def test_unknown_key_with_suggestion():
    assert only("database:\n  poool:\n    max: 3\n") == "s.yaml:2:3: database.poool: unknown key 'poool'; did you mean 'pool'?"


def test_unknown_key_without_close_match_lists_valid_keys():
    assert only("metrics: {zzz: 1}\n") == "s.yaml:1:11: metrics.zzz: unknown key 'zzz'; expected one of interval"


def test_negative_rate():
    text = "workload:\n  open_loop:\n    - name: a\n      rate: -5/s\n"
    assert only(text) == "s.yaml:4:13: workload.open_loop.0.rate: expected a rate >= 0, got -5/s"


def test_pool_max_zero():
    assert only("database:\n  pool: {max: 0}\n") == (
        "s.yaml:2:15: database.pool.max: Input should be greater than or equal to 1, got 0")


def test_warmup_not_before_horizon():
    assert only("horizon: 10m\nwarmup: 1h\n") == "s.yaml:2:9: warmup: expected less than horizon (600 s), got 3600 s"


def test_lognormal_p99_below_mean_inside_a_distribution():
    text = "workload:\n  endpoints:\n    toybox:\n      cpu_pre: {dist: lognormal, mean: 4ms, p99: 1ms}\n"
    assert only(text) == ("s.yaml:4:7: workload.endpoints.toybox.cpu_pre: "
                          "lognormal needs p99 > mean, got mean=0.004 s, p99=0.001 s")


def test_distribution_tags_are_not_in_the_path():
    text = "workload:\n  endpoints:\n    toybox:\n      cpu_pre:\n        dist: exponential\n        mean: -1\n"
    assert only(text) == "s.yaml:6:15: workload.endpoints.toybox.cpu_pre.mean: expected a duration > 0, got -1 s"
    text = "workload:\n  endpoints:\n    toybox:\n      cpu_post: {dist: exponental, mean: 1ms}\n"
    assert only(text).startswith("s.yaml:4:24: workload.endpoints.toybox.cpu_post.dist: expected one of 'constant'")
    assert only(text).endswith("got 'exponental'; did you mean 'exponential'?")


def test_missing_field_points_at_the_parent_mapping():
    text = "workload:\n  sessions:\n    events:\n      - duration: 1h\n"
    assert only(text) == "s.yaml:4:9: workload.sessions.events.0.start: required field is missing"


def test_model_level_messages_move_their_field_into_the_path():
    text = "workload:\n  open_loop:\n    - rate: 5/s\n      flow: [health, nope]\n"
    assert only(text).startswith("s.yaml:3:7: workload.open_loop.0: unknown endpoint 'nope'")
    assert only("instances:\n  plan: huge\n") == "s.yaml:2:9: instances.plan: expected one of ['pro', 'standard'], got 'huge'"


def test_union_branches_are_merged():
    assert only("workload:\n  sessions:\n    daily_curve: gamin\n") == (
        "s.yaml:3:18: workload.sessions.daily_curve: expected one of 'gaming', 'business' or 'flat' "
        "or a list, got 'gamin'; did you mean 'gaming'?")
    assert only("workload:\n  sessions:\n    daily_curve: [1, x]\n") == (
        "s.yaml:3:22: workload.sessions.daily_curve.1: expected a number, got 'x'")


def test_several_errors_are_all_reported_in_file_order():
    text = ("horizon: soon\n"
            "database:\n  poool: {}\n  pool:\n    max: 0\n"
            "instances:\n  count: x\n")
    assert problems(text) == [
        "s.yaml:1:10: horizon: expected a duration such as 90s, 15m, 2h, 1d, 250ms or a number of seconds, got 'soon'",
        "s.yaml:3:3: database.poool: unknown key 'poool'; did you mean 'pool'?",
        "s.yaml:5:10: database.pool.max: Input should be greater than or equal to 1, got 0",
        "s.yaml:7:10: instances.count: expected an integer, got 'x'",
    ]


def test_problem_formats():
    assert str(Problem("f.yaml", 3, 5, "a.b", "expected x, got y")) == "f.yaml:3:5: a.b: expected x, got y"
    assert str(Problem("f.yaml", message="no such file")) == "f.yaml: no such file"
    assert str(Problem("f.yaml", None, None, "a", "m", override="a=1")) == "--set a=1: a: m"
