"""``nbcellar report`` and ``compare`` show what a run logged without unpickling it: a store
that another hand wrote runs none of its code in the reader's process."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from nbcellar.cli.main import cli

NOTEBOOK = """\
# %% tags=["parameters"]
alpha = 1.0

# %%
import pathlib
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import nbcellar


class Planted:
    "Whoever unpickles this touches the marker file."
    def __init__(self):
        self.n = 1

    def __setstate__(self, state):
        pathlib.Path(MARKER).touch()
        self.__dict__.update(state)


frame = pd.DataFrame({"x": [alpha, 2 * alpha], "note": ["<script>alert(1)</script>", "ok"]})
fig, ax = plt.subplots(figsize=(2, 2))
ax.plot([0, 1], [0, alpha])
nbcellar.log(table=frame, curve=fig, mse=np.float64(alpha / 4),
             scores={"a": np.float32(alpha), 3: "three"}, planted=Planted())
"""


def cli_ok(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args), terminal_width=200)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_read_commands_show_logged_values_without_unpickling_them(
    tmp_path: Path, private_store: Path
) -> None:
    marker = tmp_path / "unpickled"
    notebook = tmp_path / "exp.py"
    notebook.write_text(NOTEBOOK.replace("MARKER", repr(str(marker))))
    cli_ok("run", str(notebook), "-p", "alpha=1,2")
    marker.unlink(missing_ok=True)  # the run's own kernel may have (its own code)

    report = tmp_path / "report.html"
    cli_ok("report", "-o", str(report))
    page = report.read_text()
    assert page.count("<h3>table</h3>") == 1
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page  # the frame's text, escaped
    assert "<script" not in page
    assert page.count("data:image/png;base64,") >= 2  # the two figures, drawn when logged
    assert ">0.25</td>" in page  # numpy numbers as numbers, the best marked
    assert "<td>0.5</td>" in page
    assert "Planted object at" in page  # the planted value as its repr
    terminal = cli_ok("compare", "--key", "table", "--key", "scores", "--key", "planted")
    assert "<script>alert(1)</script>" in terminal  # pandas' text of the frame
    assert "three" in terminal
    listed = json.loads(cli_ok("runs", "--json"))
    assert [r["values"]["mse"] for r in listed] == [0.25, 0.5]
    assert not marker.exists()  # neither command unpickled anything

    # In Python, a user's own choice, the values are the objects themselves.
    import nbcellar

    runset = nbcellar.runs(grid="last")
    assert type(runset.runs[0].history("table")[0]).__name__ == "DataFrame"
    assert type(runset.runs[0].history("planted")[0]).__name__ == "Planted"
    assert marker.exists()
