"""Reading and writing .ipynb notebooks and percent scripts, and refusing bad input clearly."""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest

from nbcellar.errors import NotebookError
from nbcellar.notebook import Cell, Notebook, read_notebook, reads, write_notebook, writes
from nbcellar.notebook.conformance import NotebookFormatWarning
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
    with pytest.warns(NotebookFormatWarning, match="'id' is a required property"):
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
     '"cells": [{"cell_type": "code", "source": 3}]}', "not a readable notebook: cells/0 has no"),
    ("damaged_v3.ipynb", '{"nbformat": 3, "nbformat_minor": 0, "worksheets": 7}',
     "cannot read this nbformat 3 notebook"),
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


# --- Notebooks as they are found in the wild -------------------------------------------------
# Jupyter and nbclient open notebooks that break nbformat's schema: nbformat logs the error and
# reads on. nbcellar reads them too, says so in one warning, and writes back every field.


def jupyter_notebook() -> dict[str, Any]:
    """A small valid nbformat 4.5 notebook, as Jupyter saves one."""
    return {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "language_info": {"name": "python", "version": "3.12.0"},
        },
        "cells": [
            {"id": "title", "cell_type": "markdown", "metadata": {},
             "source": ["# Title\n", "![plot](attachment:p.png)"],
             "attachments": {"p.png": {"image/png": "iVBORw0KGgo="}}},
            {"id": "load", "cell_type": "code", "metadata": {"tags": ["setup"]},
             "execution_count": 1, "source": ["x = 20\n", "print(x)"],
             "outputs": [{"output_type": "stream", "name": "stdout", "text": ["20\n"]}]},
            {"id": "show", "cell_type": "code", "metadata": {}, "execution_count": 2,
             "source": "x * 2 + 2",
             "outputs": [{"output_type": "execute_result", "execution_count": 2, "metadata": {},
                          "data": {"text/plain": ["42"]}}]},
            {"id": "note", "cell_type": "raw", "metadata": {}, "source": "raw text"},
        ],
    }  # fmt: skip


Edit = Callable[[dict[str, Any]], object]


def _set(path: str, value: object) -> Edit:
    """An edit setting the field at ``path`` (``cells/1/metadata/tags``) to ``value``."""
    *parents, last = path.split("/")

    def edit(nb: dict[str, Any]) -> None:
        node: Any = nb
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        node[int(last) if isinstance(node, list) else last] = value

    return edit


def _drop(path: str) -> Edit:
    *parents, last = path.split("/")

    def edit(nb: dict[str, Any]) -> None:
        node: Any = nb
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        del node[last]

    return edit


def _drop_ids(nb: dict[str, Any]) -> None:
    for cell in nb["cells"]:
        del cell["id"]


def _append_output(output: dict[str, Any]) -> Edit:
    return lambda nb: nb["cells"][2]["outputs"].append(output)


WIDGETS = {"application/vnd.jupyter.widget-state+json": {
    "state": {"a1": {"model_name": "IntSliderModel", "model_module": "@jupyter-widgets/controls",
                     "model_module_version": "2.0.0", "state": {"value": 3}}},
    "version_major": 2, "version_minor": 0}}  # fmt: skip

# (what the file carries, the edit, the start of the warning's first problem or None when the
# notebook is valid, the fields that writing it back adds)
IN_THE_WILD: list[tuple[str, Edit, str | None, tuple[str, ...]]] = [
    ("kernelspec without name", _drop("metadata/kernelspec/name"),
     "metadata/kernelspec: 'name' is a required property", ()),
    ("kernelspec without display_name", _drop("metadata/kernelspec/display_name"),
     "metadata/kernelspec: 'display_name' is a required property", ()),
    ("kernelspec null", _set("metadata/kernelspec", None),
     "metadata/kernelspec: None is not of type 'object'", ()),
    ("language_info missing", _drop("metadata/language_info"), None, ()),
    ("language_info without name", _set("metadata/language_info", {"version": "3.12"}),
     "metadata/language_info: 'name' is a required property", ()),
    ("cell ids in a 4.4 file", _set("nbformat_minor", 4),
     "cells/0: Additional properties are not allowed ('id' was unexpected) (and 3 more)", ()),
    ("cell ids in a 4.0 file", _set("nbformat_minor", 0),
     "cells/0: Additional properties are not allowed ('id' was unexpected) (and 3 more)", ()),
    ("4.5 file without cell ids", _drop_ids, "cells/0: 'id' is a required property",
     ("cells/0/id", "cells/1/id", "cells/2/id", "cells/3/id")),
    ("cell id used twice", _set("cells/2/id", "load"),
     "cells/2/id: 'load' is also the id of cells/1", ()),
    ("cell id with spaces and accents", _set("cells/1/id", "load data/é"),
     "cells/1/id: 'load data/é' does not match", ()),
    ("cell id too long", _set("cells/1/id", "x" * 80), "cells/1/id: 'xxxx", ()),
    ("cell id null", _set("cells/1/id", None), "cells/1/id: None is not of type 'string'", ()),
    ("code cell without execution_count", _drop("cells/1/execution_count"),
     "cells/1: 'execution_count' is a required property", ("cells/1/execution_count",)),
    ("code cell without outputs", _drop("cells/1/outputs"),
     "cells/1: 'outputs' is a required property", ("cells/1/outputs",)),
    ("output without metadata", _drop("cells/2/outputs/0/metadata"),
     "cells/2/outputs/0: 'metadata' is a required property", ()),
    ("execute_result without execution_count", _drop("cells/2/outputs/0/execution_count"),
     "cells/2/outputs/0: 'execution_count' is a required property", ()),
    ("source as one string", _set("cells/1/source", "x = 20\nprint(x)"), None, ()),
    ("stream text as one string", _set("cells/1/outputs/0/text", "20\n"), None, ()),
    ("nbformat_minor from the future", _set("nbformat_minor", 99), None, ()),
    ("nbformat_minor missing", _drop("nbformat_minor"),
     "the top level: 'nbformat_minor' is a required property", ("nbformat_minor",)),
    ("unknown top-level field", _set("generator", {"tool": "exporter", "version": 2}),
     "the top level: Additional properties are not allowed ('generator' was unexpected)", ()),
    ("unknown cell field", _set("cells/1/collapsed_by_tool", True),
     "cells/1: Additional properties are not allowed ('collapsed_by_tool' was unexpected)", ()),
    ("unknown output field", _set("cells/1/outputs/0/transient", {"display_id": "d1"}),
     "cells/1/outputs/0: Additional properties are not allowed ('transient' was unexpected)", ()),
    ("markdown cell with outputs", _set("cells/0/outputs", []),
     "cells/0: Additional properties are not allowed ('outputs' was unexpected)", ()),
    ("raw cell with execution_count", _set("cells/3/execution_count", 4),
     "cells/3: Additional properties are not allowed ('execution_count' was unexpected)", ()),
    ("code cell with attachments", _set("cells/1/attachments", {"q.png": {"image/png": "AA=="}}),
     "cells/1: Additional properties are not allowed ('attachments' was unexpected)", ()),
    ("widget state in metadata", _set("metadata/widgets", WIDGETS), None, ()),
    ("widget view output", _append_output({"output_type": "display_data", "metadata": {},
     "data": {"application/vnd.jupyter.widget-view+json": {"model_id": "a1", "version_major": 2,
              "version_minor": 0}, "text/plain": "IntSlider(value=3)"}}), None, ()),
    ("cell metadata of the wrong type", _set("cells/1/metadata/collapsed", "yes"),
     "cells/1/metadata/collapsed: 'yes' is not of type 'boolean'", ()),
    ("tags as one string", _set("cells/1/metadata/tags", "setup"),
     "cells/1/metadata/tags: 'setup' is not of type 'array'", ()),
    ("unknown output type", _append_output({"output_type": "progress", "value": 1}),
     "cells/2/outputs/1: output_type 'progress' is not valid under any", ()),
    ("error output without traceback",
     _append_output({"output_type": "error", "ename": "E", "evalue": "v"}),
     "cells/2/outputs/1: 'traceback' is a required property", ()),
    ("execution_count as a string", _set("cells/1/execution_count", "1"),
     "cells/1/execution_count: '1' is not of type 'integer', 'null'", ()),
    ("markdown source null", _set("cells/0/source", None),
     "cells/0/source: None is not valid under any", ()),
    ("unknown cell type", _set("cells/3/cell_type", "heading"),
     "cells/3: cell_type 'heading' is not valid under any", ()),
]  # fmt: skip


def _fields(node: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every leaf of a notebook's JSON with its path, text given as lines read as one string."""
    if isinstance(node, list) and node and all(isinstance(s, str) for s in node):
        yield path, "".join(node)
    elif isinstance(node, dict | list) and node:
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, value in items:
            yield from _fields(value, f"{path}/{key}" if path else str(key))
    else:
        yield path, node


def _wild(tmp_path: Path, edit: Edit) -> tuple[Path, dict[str, Any]]:
    data = jupyter_notebook()
    edit(data)
    path = tmp_path / "wild.ipynb"
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False), encoding="utf-8")
    return path, data


def _read_warning(path: Path) -> tuple[Notebook, list[str]]:
    """The notebook at ``path`` and every warning of reading it (none filtered as repeated)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        nb = read_notebook(path)
    return nb, [str(w.message) for w in caught if issubclass(w.category, NotebookFormatWarning)]


@pytest.mark.parametrize(
    ("edit", "problem", "added"),
    [pytest.param(*case[1:], id=case[0]) for case in IN_THE_WILD],
)
def test_notebook_jupyter_opens_is_read_and_written_back_with_every_field(
    tmp_path: Path, edit: Edit, problem: str | None, added: tuple[str, ...]
) -> None:
    path, data = _wild(tmp_path, edit)
    with warnings.catch_warnings():  # Jupyter and nbclient read it (nbformat warns, logs)
        warnings.simplefilter("ignore")
        nbformat.reads(path.read_text(), as_version=4)
    nb, shown = _read_warning(path)
    if problem is None:
        assert shown == []
    else:
        assert len(shown) == 1, shown  # one line for the notebook, however many cells stray
        assert "\n" not in shown[0]
        assert shown[0].startswith(f"{path}: does not follow the nbformat 4.")
        assert f"schema at {problem}" in shown[0]
    out = write_notebook(nb, tmp_path / "again.ipynb")
    before = dict(_fields(data))
    after = dict(_fields(json.loads(out.read_text())))
    assert {k: v for k, v in after.items() if k in before} == before
    assert sorted(set(after) - set(before)) == sorted(added)


def test_tags_written_as_one_string_are_that_tag() -> None:
    assert Cell("code", "", metadata={"tags": "parameters"}).tags == ("parameters",)


def _nbformat_reads(text: str) -> None:
    nbformat.reads(text, as_version=4)  # as Jupyter's server and nbclient read a notebook


def _nbformat_writes(text: str) -> None:
    nbformat.writes(nbformat.reader.reads(text))


def _code_source_null(nb: dict[str, Any]) -> None:
    nb["cells"][1]["source"] = None


# What Jupyter cannot open (nbformat's read fails), or cannot save (nbformat's writer fails):
# (what the file carries, the edit, the tool that fails on it too, the error's problem)
UNREADABLE: list[tuple[str, Edit, Callable[[str], None], str]] = [
    ("cell without metadata", _drop("cells/1/metadata"), _nbformat_reads,
     "cells/1 has no 'metadata' object"),
    ("notebook without metadata", _drop("metadata"), _nbformat_reads,
     "it has no 'metadata' object"),
    ("notebook without cells", _drop("cells"), _nbformat_reads, "it has no 'cells' list"),
    ("attachments null", _set("cells/0/attachments", None), _nbformat_reads,
     "cells/0/attachments is not an object of attachments"),
    ("outputs null", _set("cells/1/outputs", None), _nbformat_reads,
     "cells/1/outputs is not a list"),
    ("nbformat_minor a string", _set("nbformat_minor", "5"), _nbformat_reads,
     "'nbformat_minor' is '5', not a number"),
    ("output without output_type", _append_output({"name": "stdout", "text": "x"}),
     _nbformat_writes, "cells/2/outputs/1 has no 'output_type'"),
    ("cell without cell_type", _drop("cells/3/cell_type"), _nbformat_writes,
     "cells/3 has no 'cell_type'"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("edit", "fails_too", "problem"),
    [pytest.param(*case[1:], id=case[0]) for case in UNREADABLE],
)
def test_notebook_jupyter_cannot_open_is_one_clear_error(
    tmp_path: Path, edit: Edit, fails_too: Callable[[str], None], problem: str
) -> None:
    path, _ = _wild(tmp_path, edit)
    with pytest.raises(Exception):  # noqa: B017,PT011 (nbformat raises many kinds)
        fails_too(path.read_text())
    with pytest.raises(NotebookError) as info:
        read_notebook(path)
    assert str(info.value).startswith(f"{path}: not a readable notebook: {problem} (")
    assert "\n" not in str(info.value)


def test_code_cell_without_source_text_is_refused_as_nbclient_cannot_run_it(
    tmp_path: Path,
) -> None:
    path, _ = _wild(tmp_path, _code_source_null)
    with pytest.raises(NotebookError, match="cells/1 is a code cell without text in 'source'"):
        read_notebook(path)


@pytest.mark.slow
@pytest.mark.parametrize(
    "edit", [pytest.param(case[1], id=case[0]) for case in IN_THE_WILD if case[2] is not None]
)
def test_notebook_jupyter_opens_runs_in_a_kernel_and_keeps_its_fields(
    tmp_path: Path, private_store: Path, edit: Edit
) -> None:
    from nbcellar.runs.execute import execute_notebook

    path, data = _wild(tmp_path, edit)
    nb, _ = _read_warning(path)
    # as `nbcellar run` does: cached, each cell given to nbclient's own cell execution
    result = execute_notebook(nb, cwd=tmp_path, store_root=private_store)
    assert [c.status for c in result.cells] == ["ran", "ran"]
    out = write_notebook(result.notebook, tmp_path / "wild.out.ipynb")
    written = json.loads(out.read_text())
    assert "".join(written["cells"][1]["outputs"][0]["text"]) == "20\n"
    # Running replaces outputs and execution counts and adds to the cells' metadata (timings,
    # nbcellar's status); every field the file had stays as it was.
    ran = re.compile(r"cells/[12]/(outputs|execution_count)\b")
    after = dict(_fields(written))
    lost = {
        k: v
        for k, v in _fields(data)
        if not ran.match(k)
        and after.get(k, "(missing)") != v
        and not (v == {} and any(a.startswith(k + "/") for a in after))  # filled in
    }
    assert lost == {}
