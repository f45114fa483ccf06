"""``nbcellar run`` on real kernels: outputs saved, errors reported in one line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest
from click.testing import CliRunner

from nbcellar.cli.main import cli
from tests.conftest import nbcellar_process

pytestmark = pytest.mark.slow


def make_notebook(path: Path, *sources: str, kernel: str | None = None) -> Path:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    if kernel:
        nb.metadata["kernelspec"] = {"name": kernel, "display_name": kernel, "language": "python"}
    nbformat.write(nb, path)
    return path


def outputs_of(path: Path) -> list[list[Any]]:
    nb = nbformat.read(path, as_version=4)
    return [c.get("outputs", []) for c in nb.cells if c.cell_type == "code"]


def test_run_executes_every_cell_and_writes_a_normal_notebook(tmp_path: Path) -> None:
    src = make_notebook(tmp_path / "calc.ipynb", "x = 6 * 7", "print('answer', x)", "x + 1")
    result = CliRunner().invoke(cli, ["run", str(src)])
    assert result.exit_code == 0, result.output
    out = tmp_path / "calc.out.ipynb"
    assert "3 of 3 cells ran" in result.stdout
    assert str(out) in result.stdout
    node = nbformat.read(out, as_version=4)
    nbformat.validate(node)
    outputs = outputs_of(out)
    assert outputs[1][0]["text"] == "answer 42\n"
    assert outputs[2][0]["data"] == {"text/plain": "43"}
    assert [c.execution_count for c in node.cells] == [1, 2, 3]


def test_console_script_runs_a_percent_script_into_ipynb(tmp_path: Path) -> None:
    script = tmp_path / "job.py"
    script.write_text("# %%\nimport sys\nvalues = [1, 2, 3]\n\n# %%\nprint(sum(values))\n")
    out = tmp_path / "result.ipynb"
    exe = Path(sys.executable).with_name("nbcellar")
    proc = subprocess.run(
        [str(exe), "run", str(script), "-o", str(out)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert outputs_of(out)[1][0]["text"] == "6\n"


def test_kernel_runs_in_the_notebook_folder(tmp_path: Path) -> None:
    (tmp_path / "data.txt").write_text("from beside the notebook")
    src = make_notebook(tmp_path / "read.ipynb", "print(open('data.txt').read())")
    result = CliRunner().invoke(cli, ["run", str(src), "-o", str(tmp_path / "o.ipynb")])
    assert result.exit_code == 0, result.output
    assert outputs_of(tmp_path / "o.ipynb")[0][0]["text"] == "from beside the notebook\n"


def test_failing_cell_stops_the_run_with_one_line_and_exit_1(tmp_path: Path) -> None:
    src = make_notebook(tmp_path / "bad.ipynb", "a = 1", "a / 0", "print('never')")
    result = CliRunner().invoke(cli, ["run", str(src)])
    assert result.exit_code == 1
    errors = [ln for ln in result.stderr.splitlines() if ln.startswith("nbcellar: error")]
    assert len(errors) == 1
    assert "cell [2]" in errors[0]
    assert "ZeroDivisionError" in errors[0]
    assert "not run" in result.stdout
    outputs = outputs_of(tmp_path / "bad.out.ipynb")
    assert outputs[1][0]["ename"] == "ZeroDivisionError"
    assert outputs[2] == []


def test_allow_errors_runs_every_cell(tmp_path: Path) -> None:
    src = make_notebook(tmp_path / "bad.ipynb", "1 / 0", "print('after')")
    result = CliRunner().invoke(cli, ["run", str(src), "--allow-errors"])
    assert result.exit_code == 0, result.output
    assert outputs_of(tmp_path / "bad.out.ipynb")[1][0]["text"] == "after\n"
    assert "error: ZeroDivisionError" in result.stdout


def test_timeout_stops_a_slow_cell(tmp_path: Path) -> None:
    src = make_notebook(tmp_path / "slow.ipynb", "import time\ntime.sleep(30)")
    result = CliRunner().invoke(cli, ["run", str(src), "--timeout", "1"])
    assert result.exit_code == 1
    assert "timed out after 1 s" in result.stderr


def test_a_cell_over_a_fractional_timeout_is_one_line_without_the_kernels_traceback(
    tmp_path: Path,
) -> None:
    src = make_notebook(tmp_path / "slow.ipynb", "import time\ntime.sleep(30)")
    done = nbcellar_process("run", str(src), "--timeout", "0.5")
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"nbcellar: error: cell [1] of {src} timed out after 1 s (--timeout) and was stopped; "
        f"see {tmp_path / 'slow.out.ipynb'}"
    ]


def test_a_dead_kernel_is_said_as_such(tmp_path: Path) -> None:
    src = make_notebook(
        tmp_path / "die.ipynb", "x = 1", "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)"
    )
    done = nbcellar_process("run", str(src))
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert lines == [
        f"nbcellar: error: the kernel died while cell [2] of {src} ran (killed, or out of "
        f"memory); what ran before it is in {tmp_path / 'die.out.ipynb'}"
    ]


def test_missing_kernel_is_one_line_and_writes_nothing(tmp_path: Path, private_store: Path) -> None:
    src = make_notebook(tmp_path / "r.ipynb", "x <- 1", kernel="no-such-kernel")
    result = CliRunner().invoke(cli, ["run", str(src)])
    assert result.exit_code == 2
    assert result.stderr.strip().count("\n") == 0
    assert "kernel 'no-such-kernel' is not installed" in result.stderr
    assert not (tmp_path / "r.out.ipynb").exists()
    assert not private_store.exists()


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("broken.ipynb", "{not json", "not valid JSON"),
        ("gone.ipynb", None, "no such file"),
        ("notes.txt", "hello", "unknown notebook format"),
    ],
)
def test_bad_notebook_is_one_line_exit_2(
    tmp_path: Path, name: str, content: str | None, message: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    result = CliRunner().invoke(cli, ["run", str(path)])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"nbcellar: error: {path}: ")
    assert message in result.stderr
    assert result.stderr.strip().count("\n") == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ([name] if content is not None else [])


def test_output_may_not_overwrite_the_input(tmp_path: Path) -> None:
    src = make_notebook(tmp_path / "a.ipynb", "x = 1")
    result = CliRunner().invoke(cli, ["run", str(src), "-o", str(src)])
    assert result.exit_code == 2
    assert "overwrite the input" in result.stderr


def test_a_kernel_that_dies_while_starting_is_one_line_with_its_last_words(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    spec = tmp_path / "jupyter" / "kernels" / "broken"
    spec.mkdir(parents=True)
    argv = [sys.executable, "-c", "import sys; sys.exit('no GPU found')", "{connection_file}"]
    (spec / "kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": "broken", "language": "python"})
    )
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    src = make_notebook(tmp_path / "nb.ipynb", "x = 1")
    done = nbcellar_process("run", str(src), "--kernel", "broken", "--no-cache")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "nbcellar: error: the kernel died while it started (kernel broken); its last words: "
        "no GPU found; try it in Jupyter, or see 'jupyter kernelspec list'"
    ]
    assert not (tmp_path / "nb.out.ipynb").exists()
