"""What a cluster worker runs: a run's spec, executed where the notebook's folder may not be
(another machine), the project's modules shipped in the spec."""

from __future__ import annotations

import json
from pathlib import Path

from nbcellar.runs.launch import RunOptions, plan_runs
from nbcellar.runs.worker import execute_spec, make_spec, project_files

NOTEBOOK = """\
# %% tags=["parameters"]
x = 2

# %%
import helpers
from shapes.area import square
print(helpers.twice(x), square(x))
"""


def test_a_worker_without_the_notebooks_folder_imports_the_shipped_project_modules(
    tmp_path: Path,
) -> None:
    project = tmp_path / "project"
    (project / "shapes").mkdir(parents=True)
    (project / "helpers.py").write_text("def twice(v):\n    return 2 * v\n")
    (project / "shapes" / "__init__.py").write_text("")
    (project / "shapes" / "area.py").write_text("def square(v):\n    return v * v\n")
    (project / "calc.py").write_text(NOTEBOOK)
    options = RunOptions()
    plan = plan_runs(project / "calc.py", [{"x": 7}], options)
    files = project_files(plan)
    assert sorted(files) == ["helpers.py", "shapes/__init__.py", "shapes/area.py"]
    spec = json.loads(json.dumps(make_spec(plan.runs[0], plan, options, None, files)))
    project.rename(tmp_path / "gone")  # as on a machine that does not have it
    answer = execute_spec(spec)
    assert answer["status"] == "ok", answer["cells"]
    cells = json.loads(answer["notebook"])["cells"]
    printed = "".join(
        "".join(o.get("text", ""))
        for c in cells if c["cell_type"] == "code" for o in c["outputs"]
    )  # fmt: skip
    assert printed.strip() == "14 49"


def test_a_worker_keeps_the_next_kernel_ready_for_at_most_two_projects(tmp_path: Path) -> None:
    """Runs on a worker take a kernel started ahead (the pool of their kernel name, folder
    and environment); a worker serving a third project stops the kernel it kept for the one
    it used least recently."""
    import nbcellar.runs.worker as worker

    pools = []
    try:
        for name in ("a", "b", "a", "c"):
            folder = tmp_path / name
            folder.mkdir(exist_ok=True)
            (folder / "calc.py").write_text("# %%\nprint(6 * 7)\n")
            options = RunOptions()
            plan = plan_runs(folder / "calc.py", [{}], options)
            answer = execute_spec(make_spec(plan.runs[0], plan, options, None), worker="w1")
            assert answer["status"] == "ok", answer["cells"]
            pools.append(next(p for k, p in worker._WARM.items() if k[1] == str(folder)))
        kept = {key[1] for key in worker._WARM}
        assert kept == {str(tmp_path / "a"), str(tmp_path / "c")}  # b, least recently used
        assert pools[0] is pools[2]  # the same project: the same pool, its kernel ready
        assert pools[1]._closed
    finally:
        worker._close_warm()
