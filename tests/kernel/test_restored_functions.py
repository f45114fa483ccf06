"""Functions and classes of restored cells, in an IPython shell restarted then run all: they
work, read the live globals, and show their cell's source in tracebacks, ``inspect`` and the
debugger, as when their cells ran."""

from __future__ import annotations

import linecache
import re

from tests.kernel.conftest import CellRun, Session

CELLS = [
    "scale = 2",
    """\
from dataclasses import dataclass
import functools

@dataclass(frozen=True)
class Point:
    x: int
    def scaled(self):
        return self.x * scale

def logged(func):
    @functools.wraps(func)
    def wrapper(*args):
        return ("logged", func(*args))
    return wrapper

@logged
def area(r):
    return r * r * scale

@functools.lru_cache
def cube(x):
    return x ** 3 * scale

def check(v):
    limit = 10 * scale
    if v > limit:
        raise ValueError(f"{v} is over {limit}")
    return v

handlers = {"area": area, "cube": cube, "check": check, "half": lambda v: v * scale / 2}

class Plugin:
    registry = {}
    name = None
    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        Plugin.registry[cls.name] = cls.__name__

cube(1)
""",
    "p = Point(3)\nclass CSV(Plugin):\n    name = 'csv'\nreader = CSV()\nscaled = p.scaled",
]
AFTER = "scale = 5"
CHECK = (
    "(repr(p), p == Point(3), scaled(), handlers['area'](2), handlers['cube'](1),"
    " handlers['cube'](2), handlers['half'](2), Plugin.registry, isinstance(reader, Plugin))"
)
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def forget_cells() -> None:
    """Drop the cells' lines from linecache, as a new kernel process has none."""
    for name in [n for n in linecache.cache if n.startswith("<ipython-input-")]:
        del linecache.cache[name]


SOURCE_CELLS = [
    "scale = 2",
    """\
def check(v):
    limit = 10 * scale
    if v > limit:
        raise ValueError(f"{v} is over {limit}")
    return v

handlers = {"check": check}
""",
]


def restart_and_run_all(session: Session, cells: list[str]) -> list[CellRun]:
    session.run_all(cells)
    session.start()
    forget_cells()
    runs = session.run_all(cells)
    assert [r.outcome.status for r in runs if r.outcome] == ["restored"] * len(cells)
    return runs


def test_restored_functions_and_classes_work_and_read_the_live_globals(
    session: Session,
) -> None:
    restart_and_run_all(session, CELLS)
    session.run(AFTER)
    restored = session.run(CHECK)
    session.start(cached=False)
    session.run_all([*CELLS, AFTER])
    fresh = session.run(CHECK)
    assert restored.success
    assert restored.result == fresh.result


def test_a_traceback_from_a_restored_function_shows_its_cell_lines(session: Session) -> None:
    restart_and_run_all(session, SOURCE_CELLS)
    raised = session.run("handlers['check'](100)")
    text = ANSI.sub("", raised.stdout)
    assert "ValueError: 100 is over 20" in text
    assert re.search(r"-+> +\d+ +raise ValueError\(f\"\{v\} is over \{limit\}\"\)", text)
    assert "limit = 10 * scale" in text


def test_inspect_help_and_the_debugger_find_the_source_of_restored_functions(
    session: Session,
) -> None:
    restart_and_run_all(session, SOURCE_CELLS)
    shown = session.run("import inspect\nprint(inspect.getsource(handlers['check']))")
    assert shown.stdout.startswith("def check(v):\n    limit = 10 * scale\n")
    asked = session.run("check??")
    assert 'raise ValueError(f"{v} is over {limit}")' in ANSI.sub("", asked.stdout)
    # What %debug does: the debugger at the frame that raised, listing its lines.
    listed = session.run(
        "import io, pdb, sys\n"
        "try:\n    check(100)\nexcept ValueError:\n    tb = sys.exc_info()[2]\n"
        "debugger = pdb.Pdb(stdin=io.StringIO('down\\nlist\\nquit\\n'), stdout=sys.stdout)\n"
        "debugger.use_rawinput = False\n"
        "debugger.reset()\n"
        "debugger.interaction(None, tb)"
    )
    assert 'raise ValueError(f"{v} is over {limit}")' in listed.stdout
    assert "if v > limit:" in listed.stdout
