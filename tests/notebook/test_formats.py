"""Reading and writing .ipynb notebooks and percent scripts, and refusing bad input clearly."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from nbcellar.errors import NotebookError
from nbcellar.notebook import Cell, Notebook, read_notebook, reads, write_notebook, writes
from tests.conftest import corpus_notebooks

IPYNB = [p for p in corpus_notebooks() if p.suffix == ".ipynb"]


@pytest.mark.parametrize("path", IPYNB, ids=lambda p: p.name)
def test_ipynb_round_trip_keeps_everything_nbformat_keeps(path: Path, tmp_path: Path) -> None:
    nb = read_notebook(path)
    out = write_notebook(nb, tmp_path / path.name)
    original = nbformat.read(path, as_version=nbformat.NO_CONVERT)
    again = nbformat.read(out, as_version=nbformat.NO_CONVERT)
    assert again == original
    assert read_notebook(out) == nb


@pytest.mark.parametrize("path", IPYNB, ids=lambda p: p.name)
def test_model_exposes_cells_and_outputs(path: Path) -> None:
    nb = read_notebook(path)
    raw = json.loads(path.read_text())
    assert len(nb.cells) == len(raw["cells"])
    for cell, raw_cell in zip(nb.cells, raw["cells"], strict=True):
        assert cell.cell_type == raw_cell["cell_type"]
        source = raw_cell["source"]
        assert cell.source == ("".join(source) if isinstance(source, list) else source)
        assert cell.tags == tuple(raw_cell.get("metadata", {}).get("tags", ()))
        assert len(cell.outputs) == len(raw_cell.get("outputs", []))


def test_corpus_has_at_least_ten_notebooks() -> None:
    assert len(corpus_notebooks()) >= 10


PERCENT = """\
# %% tags=["parameters"]
alpha = 0.1
n = 10

# %% [markdown]
# # Fit
# Some *prose*.

# %%
import math

y = [math.sqrt(i) * alpha for i in range(n)]

# %% tags=["metric", "depends:data/raw.csv"]
total = sum(y)
"""


def test_percent_script_reads_into_cells_with_tags() -> None:
    nb = reads(PERCENT, "percent")
    assert [c.cell_type for c in nb.cells] == ["code", "markdown", "code", "code"]
    assert nb.cells[0].tags == ("parameters",)
    assert nb.cells[3].has_tag("metric")
    assert nb.cells[3].tag_values("depends") == ("data/raw.csv",)
    assert nb.cells[1].source == "# Fit\nSome *prose*."
    assert "import math" in nb.cells[2].source


def test_percent_script_round_trips_to_the_same_text(tmp_path: Path) -> None:
    path = tmp_path / "fit.py"
    path.write_text(PERCENT)
    out = write_notebook(read_notebook(path), tmp_path / "again.py")
    assert out.read_text() == PERCENT


def test_percent_script_cells_get_stable_ids() -> None:
    assert [c.id for c in reads(PERCENT, "percent").cells] == [
        c.id for c in reads(PERCENT, "percent").cells
    ]


def test_percent_script_converts_to_a_valid_ipynb(tmp_path: Path) -> None:
    path = tmp_path / "fit.py"
    path.write_text(PERCENT)
    out = write_notebook(read_notebook(path), tmp_path / "fit.ipynb")
    node = nbformat.read(out, as_version=4)
    nbformat.validate(node)
    assert node.cells[0].metadata["tags"] == ["parameters"]


def test_notebook_without_ids_keeps_its_minor_version(tmp_path: Path) -> None:
    node = nbformat.v4.new_notebook()
    node.nbformat_minor = 4
    node.cells = [nbformat.v4.new_code_cell("x = 1")]
    raw = nbformat.v4.nbjson.JSONWriter().writes(node)
    data = json.loads(raw)
    del data["cells"][0]["id"]
    path = tmp_path / "old.ipynb"
    path.write_text(json.dumps(data))
    nb = read_notebook(path)
    assert nb.nbformat_minor == 4
    assert nb.cells[0].id is None
    out = write_notebook(nb, tmp_path / "old-again.ipynb")
    assert "id" not in json.loads(out.read_text())["cells"][0]


def test_current_notebook_missing_an_id_gets_a_stable_one(tmp_path: Path) -> None:
    data = {
        "nbformat": 4, "nbformat_minor": 5, "metadata": {},
        "cells": [{"cell_type": "code", "metadata": {}, "source": "x = 1",
                   "outputs": [], "execution_count": None}],
    }  # fmt: skip
    path = tmp_path / "noid.ipynb"
    path.write_text(json.dumps(data))
    assert read_notebook(path).cells[0].id == "cell-0"


def test_nbformat_3_notebook_is_upgraded(tmp_path: Path) -> None:
    v3 = nbformat.v3.new_notebook(
        worksheets=[nbformat.v3.new_worksheet(cells=[nbformat.v3.new_code_cell(input="a = 1")])]
    )
    path = tmp_path / "v3.ipynb"
    path.write_text(nbformat.v3.writes_json(v3))
    nb = read_notebook(path)
    assert nb.nbformat == 4
    assert nb.code_cells[0].source == "a = 1"


def test_tags_are_edited_through_metadata() -> None:
    cell = Cell("code", "x = 1").with_tags(["parameters"])
    assert cell.metadata["tags"] == ["parameters"]
    assert cell.with_tags([]).tags == ()


def test_writes_and_reads_are_inverse() -> None:
    nb = Notebook(cells=(Cell("code", "x = 1", id=None), Cell("markdown", "# t", id=None)))
    nb = reads(writes(nb), "ipynb")
    assert [c.source for c in nb.cells] == ["x = 1", "# t"]


BAD_INPUT = [
    ("missing.ipynb", None, "no such file"),
    ("broken.ipynb", '{"cells": [', "not valid JSON (line 1"),
    ("list.ipynb", "[1, 2]", "not a Jupyter notebook"),
    ("plain.ipynb", '{"hello": 1}', "not a Jupyter notebook"),
    ("future.ipynb", '{"nbformat": 5, "nbformat_minor": 0, "cells": []}',
     "nbformat version 5 is not supported"),
    ("invalid.ipynb", '{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, '
     '"cells": [{"cell_type": "code", "source": 3}]}', "not a valid notebook at cells/0"),
    ("binary.ipynb", b"\xff\xfe\x00garbage", "not UTF-8 text"),
    ("data.csv", "a,b\n1,2\n", "unknown notebook format '.csv'"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "content", "message"), BAD_INPUT, ids=[b[0] for b in BAD_INPUT])
def test_bad_input_is_one_clear_error(
    tmp_path: Path, name: str, content: str | bytes | None, message: str
) -> None:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    with pytest.raises(NotebookError) as info:
        read_notebook(path)
    text = str(info.value)
    assert text.startswith(str(path))
    assert message in text
    assert "\n" not in text


def test_directory_is_not_a_notebook(tmp_path: Path) -> None:
    folder = tmp_path / "nb.ipynb"
    folder.mkdir()
    with pytest.raises(NotebookError, match="is a directory"):
        read_notebook(folder)


def test_write_is_atomic_and_leaves_no_temp_files(tmp_path: Path) -> None:
    nb = read_notebook(IPYNB[0])
    write_notebook(nb, tmp_path / "a.ipynb")
    write_notebook(nb, tmp_path / "a.ipynb")
    assert [p.name for p in tmp_path.iterdir()] == ["a.ipynb"]
