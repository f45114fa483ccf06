"""The kernels of a grid are forked from a process that imported their machinery once: each
run still gets a kernel of its own, in the notebook's folder, that stops with its run, with
the interrupts and time limits of any kernel, and none outlives a killed ``nbcellar run``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from click.testing import CliRunner

from nbcellar.cli.main import cli
from tests.conftest import nbcellar_process

pytestmark = pytest.mark.slow


def write(path: Path, *sources: str) -> Path:
    cells = [nbformat.v4.new_code_cell("x = 0", metadata={"tags": ["parameters"]})]
    cells += [nbformat.v4.new_code_cell(s) for s in sources]
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    nbformat.write(nb, path)
    return path


def printed(path: Path) -> str:
    nb = nbformat.read(path, as_version=4)
    return "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))


def alive(pid: int) -> bool:
    """Whether the process runs (a zombie left unreaped counts as alive: nobody cleaned up)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_each_run_has_a_kernel_of_its_own_where_the_notebook_is(tmp_path: Path) -> None:
    (tmp_path / "helper.py").write_text("def double(v):\n    return 2 * v\n")
    nb = write(
        tmp_path / "probe.ipynb",
        "import json, os, sys\nimport helper\nbefore = getattr(json, 'touched', None)\n"
        "json.touched = x",
        "parent = open(f'/proc/{os.getppid()}/cmdline').read().replace('\\0', ' ')\n"
        "print(json.dumps({'x': x, 'double': helper.double(x), 'before': before,\n"
        "    'pid': os.getpid(), 'cwd': os.getcwd(), 'forked': 'forkserver' in parent}))",
    )
    result = CliRunner().invoke(cli, ["run", str(nb), "-p", "x=[1, 2, 3, 4]", "-j", "2"])
    assert result.exit_code == 0, result.output
    assert "Ctrl-C will not work" not in result.output  # nothing of the kernels' own start-up
    runs = [json.loads(printed(p)) for p in sorted((tmp_path / "probe.runs").glob("*.ipynb"))]
    assert [r["double"] for r in runs] == [2, 4, 6, 8]  # a module beside the notebook
    assert {r["before"] for r in runs} == {None}  # no run sees what another did to a module
    assert len({r["pid"] for r in runs}) == 4
    assert {r["cwd"] for r in runs} == {str(tmp_path)}
    assert all(r["forked"] for r in runs)


def test_a_time_limit_stops_a_forked_kernel_and_the_other_runs_go_on(tmp_path: Path) -> None:
    nb = write(tmp_path / "slow.ipynb", "import time\nif x == 2:\n    time.sleep(60)\nprint(x)")
    began = time.monotonic()
    result = CliRunner().invoke(
        cli, ["run", str(nb), "-p", "x=[1, 2, 3]", "-j", "2", "--timeout", "2"]
    )
    assert time.monotonic() - began < 30
    assert result.exit_code == 1
    assert "timed out after 2 s" in result.output
    assert "2 of 3 runs ok" in result.output


def default_ctrl_c() -> None:
    """In the child: Ctrl-C as a terminal's process has it (a suite started in the background
    passes SIGINT on ignored, and Python then never turns it into KeyboardInterrupt)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def sleepy_grid(folder: Path, values: str) -> tuple[subprocess.Popen[bytes], list[int]]:
    """``nbcellar run`` of a grid whose runs write their kernel's pid, then sleep, as a process
    of its own; it and the kernels of the first two runs, once those are running."""
    nb = write(
        folder / "sleepy.ipynb",
        "import os, time, pathlib\npathlib.Path(f'pid-{x}').write_text(str(os.getpid()))\n"
        "time.sleep(120)",
    )
    command = [sys.executable, "-c", "from nbcellar.cli.main import main; main()", "run", str(nb)]
    process = subprocess.Popen(
        [*command, "-p", f"x={values}", "-j", "2"],
        cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        preexec_fn=default_ctrl_c,
    )  # fmt: skip
    files = [folder / "pid-1", folder / "pid-2"]
    deadline = time.monotonic() + 60
    while not all(f.exists() and f.read_text() for f in files):
        assert time.monotonic() < deadline, "the runs did not start"
        time.sleep(0.1)
    return process, [int(f.read_text()) for f in files]


def wait_until_gone(kernels: list[int], why: str) -> None:
    deadline = time.monotonic() + 15
    while any(alive(pid) for pid in kernels):
        assert time.monotonic() < deadline, why
        time.sleep(0.2)


def test_no_kernel_outlives_a_killed_nbcellar_run(tmp_path: Path) -> None:
    process, kernels = sleepy_grid(tmp_path, "[1, 2]")
    assert all(alive(pid) for pid in kernels)
    process.send_signal(signal.SIGKILL)
    process.wait()
    wait_until_gone(kernels, "a kernel outlived its nbcellar run")
    # Its runs do not stay "running" forever: the next look at them says they died.
    listed = CliRunner().invoke(cli, ["runs", "--json"])
    assert listed.exit_code == 0, listed.output
    runs = json.loads(listed.output)
    assert sorted(r["status"] for r in runs) == ["died", "died"]
    assert all(f"pid {process.pid} on this host" in r["error"] for r in runs)


def test_ctrl_c_stops_every_kernel_and_marks_the_runs_cancelled(tmp_path: Path) -> None:
    process, kernels = sleepy_grid(tmp_path, "[1, 2, 3]")
    process.send_signal(signal.SIGINT)  # what the terminal sends on Ctrl-C
    assert process.wait(timeout=30) == 130
    wait_until_gone(kernels, "a kernel outlived the cancelled runs")
    listed = CliRunner().invoke(cli, ["runs", "--json"])
    assert listed.exit_code == 0, listed.output
    assert sorted(r["status"] for r in json.loads(listed.output)) == ["cancelled"] * 3


def test_ctrl_c_in_a_terminal_says_one_line_and_no_kernel_traceback(tmp_path: Path) -> None:
    """A terminal's Ctrl-C reaches every process of its group, kernels included."""
    nb = write(tmp_path / "sleepy.ipynb", "import time\nprint('started', flush=True)\n"
               "time.sleep(120)")  # fmt: skip
    command = [sys.executable, "-c", "from nbcellar.cli.main import main; main()", "run", str(nb)]
    process = subprocess.Popen(
        [*command, "-p", "x=[1, 2]", "-j", "2"], cwd=tmp_path, start_new_session=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=default_ctrl_c,
    )  # fmt: skip
    time.sleep(4)  # kernels started, cells running (or still starting: the same holds)
    os.killpg(process.pid, signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130
    assert "Traceback" not in err
    said = [line for line in err.splitlines() if line.strip()]
    assert said[-1] == "nbcellar: interrupted", err
    assert all(line.startswith("nbcellar: ") for line in said), err


def test_a_timeout_says_one_line_and_no_kernel_traceback(tmp_path: Path) -> None:
    nb = write(tmp_path / "slow.ipynb", "import time\ntime.sleep(60)")
    done = nbcellar_process("run", str(nb), "--timeout", "2", cwd=tmp_path)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [
        f"nbcellar: error: cell [2] of {nb} timed out after 2 s (--timeout) and was "
        f"stopped; see {nb.with_suffix('.out.ipynb')}"
    ]


def test_a_smoke_session_forks_each_notebooks_kernel_into_its_own_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """nbcellar.test keeps a fork server for the session: the single run of each notebook
    gets a forked kernel, in that notebook's folder, importing that folder's modules."""
    import nbcellar

    probe = ("import json, os, helper\n"
             "parent = open(f'/proc/{os.getppid()}/cmdline').read().replace('\\0', ' ')\n"
             "print(json.dumps({'cwd': os.getcwd(), 'helper': helper.NAME,\n"
             "    'forked': 'forkserver' in parent}))")  # fmt: skip
    for name in ("one", "two"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "helper.py").write_text(f"NAME = {name!r}\n")
        write(tmp_path / name / f"{name}.ipynb", probe)
    monkeypatch.chdir(tmp_path)
    results = nbcellar.test(tmp_path, store=tmp_path / ".nbcellar")
    assert [r.status for r in results] == ["passed", "passed"]
    for name in ("one", "two"):
        seen = json.loads(printed(tmp_path / ".nbcellar-smoke" / name / f"{name}.ipynb"))
        assert seen == {"cwd": str(tmp_path / name), "helper": name, "forked": True}
