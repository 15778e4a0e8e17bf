"""``notebooks/sweep.ipynb`` runs top to bottom and prints its conclusions.

The notebook reads its sizes from the environment, so the test runs it small: 60 runs per
point, 4 grid points and a Sobol' base sample of 8.
"""

from __future__ import annotations

import os
import re

import pytest
from helpers_results import REPO

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOK = REPO / "notebooks" / "sweep.ipynb"
SMALL = {"SIM_NOTEBOOK_RUNS": "60", "SIM_NOTEBOOK_POINTS": "4", "SIM_NOTEBOOK_SOBOL_N": "8"}


@pytest.fixture(scope="module")
def executed():
    """The notebook after execution, run in its own folder with the small sizes."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    saved = {k: os.environ.get(k) for k in SMALL}
    os.environ.update(SMALL)  # the kernel inherits the environment when it starts
    try:
        client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                         resources={"metadata": {"path": str(NOTEBOOK.parent)}})
        client.execute()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    nb.metadata["test_saved_environment"] = saved
    return nb


def outputs(nb, kind: str) -> list[dict]:
    return [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])
            if o.output_type == kind]


def printed(nb) -> str:
    return "".join(o.text for o in outputs(nb, "stream") if o.name == "stdout")


@pytest.mark.slow
def test_notebook_runs_without_errors(executed):
    assert outputs(executed, "error") == []
    for cell in executed.cells:
        if cell.cell_type == "code":
            assert cell.get("execution_count"), "every code cell ran"
    # the small sizes were set for the kernel only: the environment is as it was
    saved = executed.metadata["test_saved_environment"]
    assert {k: os.environ.get(k) for k in SMALL} == saved


@pytest.mark.slow
def test_notebook_prints_its_conclusions(executed):
    text = printed(executed)
    assert "P(lapse) falls from" in text
    assert "The input with the largest total effect" in text
    lapse = re.search(r"P\(lapse\) falls from (\d+)% \(β = ([\d.]+)\) to (\d+)% \(β = ([\d.]+)\)",
                      text)
    assert lapse, text
    rigid, flexible = int(lapse.group(1)), int(lapse.group(3))
    assert (float(lapse.group(2)), float(lapse.group(4))) == (0.5, 2.0)  # the swept range
    assert rigid > flexible, "a more flexible United States makes a lapse less likely"
    top = re.search(r"largest total effect on P\(lapse\) is (\S+) ", text)
    assert top and top.group(1) in ("sides.united_states.topics.start.concession",
                                    "climate.concession_sensitivity", "climate.equilibrium")


@pytest.mark.slow
def test_notebook_used_the_small_sizes_and_drew_its_plots(executed):
    assert "US on START: opening" in printed(executed)
    images = [o for o in outputs(executed, "display_data") if "image/png" in o.get("data", {})]
    assert len(images) >= 4  # agreement curve, two sweeps, sensitivity
    tables = [o for o in outputs(executed, "execute_result") if "text/html" in o.get("data", {})]
    # the START sweep table has one row per grid point: 4 with SIM_NOTEBOOK_POINTS=4
    start_table = tables[0]["data"]["text/html"]
    assert "start.p_interim_taken" in start_table
    assert start_table.count("<tr") == 1 + 4  # the header and one row per point

