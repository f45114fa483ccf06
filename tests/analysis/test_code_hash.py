"""The normalised code hash: blind to form, sensitive to meaning."""

from __future__ import annotations

import sys

import pytest

from nbcellar.analysis import code_hash
from nbcellar.analysis.cell import _SALT

SAME = [
    ("x = 1", "x=1"),
    ("x = 1", "x = 1  # set x"),
    ("x = 1\ny = 2", "x = 1\n\n\n# spacer\ny = 2\n"),
    ("s = 'text'", 's = "text"'),
    ("s = '''a'''", "s = 'a'"),
    ("f(a, b)", "f(\n    a,\n    b,\n)"),
    ("x = (1 + 2)", "x = 1 + 2"),
    ("x = 1", "x = 1;"),
    ("plt.plot(y)", "plt.plot(y);"),
    ("d = {'a': 1, 'b': 2}", "d = {\n  'a': 1,\n  'b': 2\n}"),
    ("def f(a):\n    return a", "def f(a):\n\n    # doc-free\n    return a\n"),
    ("if a:\n    b = 1", "if a:\n        b = 1"),
    ("x = 0x10", "x = 16"),
    ("x = 1_000", "x = 1000"),
    ("%time y = f()", "%time y=f()"),
    ("%%capture out\nprint(1)", "%%capture out\nprint( 1 )\n# tail comment"),
    ("x = 1\\\n  + 2", "x = 1 + 2"),
    ("import os, sys", "import os, sys  # stdlib"),
]

DIFFERENT = [
    ("x = 1", "x = 2"),
    ("x = 1", "y = 1"),
    ("x = 1", "x = 1.0"),
    ("s = 'a'", "s = 'b'"),
    ("f(a, b)", "f(b, a)"),
    ("x = a + b * c", "x = (a + b) * c"),
    ("def f(a):\n    return a", "def f(a):\n    '''Doc.'''\n    return a"),
    ("if a:\n    b = 1\nc = 2", "if a:\n    b = 1\n    c = 2"),
    ("x = [1, 2]", "x = (1, 2)"),
    ("import numpy as np", "import numpy as npy"),
    ("%time y = f()", "y = f()"),
    ("%time y = f()", "%timeit y = f()"),
    ("%timeit -n 1 y = f()", "%timeit -n 2 y = f()"),
    ("!ls", "!ls -l"),
    ("x = 1", "x = 1\ny"),
    ("a is b", "a == b"),
    ("print(x)", "print(x, end='')"),
    ("%%bash\necho a\n", "%%bash\necho b\n"),
]


@pytest.mark.parametrize(("a", "b"), SAME)
def test_same_meaning_same_hash(a: str, b: str) -> None:
    assert code_hash(a) == code_hash(b)


@pytest.mark.parametrize(("a", "b"), DIFFERENT)
def test_different_meaning_different_hash(a: str, b: str) -> None:
    assert code_hash(a) != code_hash(b)


def test_hash_is_salted_with_the_python_minor_version() -> None:
    assert f"py{sys.version_info[0]}.{sys.version_info[1]}" in _SALT


def test_hash_is_a_stable_hex_digest() -> None:
    digest = code_hash("x = 1")
    assert len(digest) == 32
    int(digest, 16)
    assert digest == code_hash("x = 1")


def test_syntax_errors_still_hash_by_source() -> None:
    assert code_hash("def (:") == code_hash("def (:")
    assert code_hash("def (:") != code_hash("def ):")


def _plain_python_cells() -> list[str]:
    from nbcellar.analysis.ipython import python_source
    from nbcellar.notebook import read_notebook
    from tests.conftest import corpus_notebooks

    cells = [c.source for p in corpus_notebooks() for c in read_notebook(p).code_cells]
    return [s for s in cells if python_source(s) == s]


@pytest.mark.parametrize("source", _plain_python_cells(), ids=lambda s: s.splitlines()[0][:30])
def test_corpus_cells_hash_the_same_after_reformatting(source: str) -> None:
    import ast

    reformatted = ast.unparse(ast.parse(source))
    commented = "\n\n".join(f"{line}  # note" if line.strip() else line
                            for line in source.splitlines())  # fmt: skip
    assert code_hash(reformatted) == code_hash(source)
    if commented.strip() and not any(ch in source for ch in "\"'\\"):
        assert code_hash(commented) == code_hash(source)
