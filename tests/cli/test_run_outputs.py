"""``nbcellar run`` and cells whose errors the notebook expects, as nbclient reads them."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from click.testing import CliRunner

from nbcellar.cli.main import cli

pytestmark = pytest.mark.slow


def test_a_cell_tagged_raises_exception_shows_its_error_and_the_run_goes_on(
    tmp_path: Path,
) -> None:
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell("x = 41"),
            nbformat.v4.new_code_cell("raise ValueError('expected')"),
            nbformat.v4.new_code_cell("print(x + 1)"),
        ]
    )
    nb.cells[1].metadata["tags"] = ["raises-exception"]
    source = tmp_path / "expects.ipynb"
    nbformat.write(nb, source)
    for attempt in ("first run", "cached re-run"):
        result = CliRunner().invoke(cli, ["run", str(source)])
        assert result.exit_code == 0, f"{attempt}: {result.output}"
        assert "ValueError" in result.stdout  # (in the table: the cell ran, and raised)
        # The raising cell runs again each time: what it did before raising is not kept.
        assert "without starting a kernel" not in result.stdout
        executed = nbformat.read(tmp_path / "expects.out.ipynb", as_version=4)
        assert executed.cells[1].outputs[0]["ename"] == "ValueError"
        assert executed.cells[2].outputs[0]["text"] == "42\n"


def test_an_untagged_cell_that_raises_still_stops_the_run(tmp_path: Path) -> None:
    nb = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell("1 / 0"), nbformat.v4.new_code_cell("print('after')")]
    )
    source = tmp_path / "fails.ipynb"
    nbformat.write(nb, source)
    result = CliRunner().invoke(cli, ["run", str(source)])
    assert result.exit_code == 1
    assert "ZeroDivisionError" in result.output
    executed = nbformat.read(tmp_path / "fails.out.ipynb", as_version=4)
    assert executed.cells[1].outputs == []


def test_a_cell_printing_100000_lines_is_restored_with_every_line(tmp_path: Path) -> None:
    """Streams are joined once, as nbclient joins them, not line by line (that was quadratic:
    50 s to restore what took 3 s to print)."""
    source = tmp_path / "loud.py"
    loud = ("# %%\nimport sys\nfor i in range(100_000):\n    print(i)\n"
            "    if i % 10_000 == 0:\n        print('at', i, file=sys.stderr)\n")  # fmt: skip
    source.write_text(loud + "# %%\nafter = 1\n")
    first = CliRunner().invoke(cli, ["run", str(source)])
    assert first.exit_code == 0, first.output
    ran = nbformat.read(tmp_path / "loud.out.ipynb", as_version=4).cells[0].outputs
    source.write_text(loud + "# %%\nafter = 2\n")  # a kernel, and the loud cell restored in it
    again = CliRunner().invoke(cli, ["run", str(source)])
    assert again.exit_code == 0, again.output
    assert "1 of 2 cells ran, 1 restored" in again.stdout
    restored = nbformat.read(tmp_path / "loud.out.ipynb", as_version=4).cells[0].outputs

    def streams(outputs: list[dict[str, str]]) -> dict[str, str]:
        joined: dict[str, str] = {}
        for output in outputs:
            joined[output["name"]] = joined.get(output["name"], "") + output["text"]
        return joined

    assert streams(restored) == streams(ran)
    assert streams(ran)["stdout"] == "".join(f"{i}\n" for i in range(100_000))
    assert len(restored) <= len(ran)  # joined as nbclient joins adjacent streams
