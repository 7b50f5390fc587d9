"""The notebooks are committed clean and parameterised; CI executes them with nbmake.

Execution: ``pytest --nbmake notebooks/`` (a step of ``.ci/run``; each notebook in a fresh
kernel). Here: their shape, so a notebook saved with outputs or without its parameter
cell is caught by the default test run.
"""
import json
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))
EXPECTED = ["01_quickstart.ipynb", "02_policy_ab.ipynb", "03_capacity_plan.ipynb", "04_custom_policy.ipynb",
            "05_calibrate_and_backtest.ipynb"]


def test_the_tutorials_are_there():
    assert [p.name for p in NOTEBOOKS] == EXPECTED


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_clean_and_parameterised(path):
    nb = json.loads(path.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code and all(not c.get("outputs") and c.get("execution_count") is None for c in code), \
        "committed with outputs: clear them (jupyter nbconvert --clear-output --inplace)"
    assert nb["metadata"]["kernelspec"]["name"] == "python3"      # nbmake's default kernel
    params = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(params) == 1 and params[0]["cell_type"] == "code"
    assert "HORIZON" in "".join(params[0]["source"])
    assert nb["cells"][0]["cell_type"] == "markdown"                # a title that says what it shows
    for cell in code:                                             # every cell compiles
        compile("".join(cell["source"]), f"{path.name}", "exec")
