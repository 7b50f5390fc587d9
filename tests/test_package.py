"""The installed package: one import name (``capsim``), built-in scenarios and schema as package data."""
from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(out), str(ROOT)], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"could not build a wheel here: {proc.stderr[-300:]}")
    return next(out.glob("capsim-*.whl"))


def test_the_wheel_claims_only_the_capsim_import_name(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert {t for t in tops if not t.startswith("capsim-")} == {"capsim"}


def test_the_wheel_ships_the_scenarios_and_the_schema(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {p.relative_to(ROOT / "scenarios").as_posix() for p in (ROOT / "scenarios").rglob("*")
               if p.suffix in (".yaml", ".json")}
    assert shipped and {f"capsim/scenarios/{n}" for n in shipped} <= names
    assert "capsim/scenarios/capsim.schema.json" in names


def test_capsim_imports_beside_a_users_own_models_module(tmp_path):
    (tmp_path / "models.py").write_text("x = 1\n")
    (tmp_path / "sim.py").write_text("y = 2\n")
    code = "import models, sim, capsim; assert models.x == 1 and sim.y == 2; capsim.run; print('ok')"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


def test_builtin_scenarios_are_found_by_name():
    from capsim import scenarios
    assert "launch" in scenarios.names() and "validation/mm1" in scenarios.names()
    assert scenarios.path("fullscale").is_file() and scenarios.path("fullscale.yaml") == scenarios.path("fullscale")
    with pytest.raises(KeyError, match="expected one of"):
        scenarios.path("nope")
