"""Table-driven tests of what a cell reads, writes and may mutate, one construct per row."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from nbcellar.analysis import analyze_cell


@dataclass(frozen=True)
class Case:
    source: str
    reads: set[str]
    writes: set[str]
    mutated: set[str]


def case(name: str, source: str, reads: str = "", writes: str = "", mutated: str = "") -> object:
    return pytest.param(
        Case(source, set(reads.split()), set(writes.split()), set(mutated.split())), id=name
    )


CASES = [
    # -- plain assignment and reads -----------------------------------------------------------
    case("assign-literal", "x = 1", writes="x"),
    case("assign-from-name", "y = x", reads="x", writes="y"),
    case("read-after-bind", "x = 1\ny = x + 1", writes="x y"),
    case("read-before-bind", "y = x + 1\nx = 2", reads="x", writes="x y"),
    case("self-reference", "x = x + 1", reads="x", writes="x"),
    case("chained-assign", "a = b = c", reads="c", writes="a b"),
    case("tuple-unpack", "a, b = pair", reads="pair", writes="a b"),
    case("nested-unpack", "(a, [b, c]) = nested", reads="nested", writes="a b c"),
    case("starred-unpack", "first, *rest = items", reads="items", writes="first rest"),
    case("swap", "a, b = b, a", reads="a b", writes="a b"),
    case("annotated-assign", "n: int = size", reads="int size", writes="n"),
    case("annotation-only", "n: int", reads="int"),
    case("expression-statement", "x", reads="x"),
    case("attribute-read", "v = obj.attr", reads="obj", writes="v"),
    case("subscript-read", "v = table[key]", reads="key table", writes="v"),
    case(
        "f-string",
        "label = f'{name}: {value:.{digits}f}'",
        reads="digits name value",
        writes="label",
    ),
    case("conditional-expression", "v = a if cond else b", reads="a b cond", writes="v"),
    case("boolean-ops", "ok = a and b or c", reads="a b c", writes="ok"),
    case("slice-read", "part = seq[lo:hi]", reads="hi lo seq", writes="part"),
    # -- augmented assignment -------------------------------------------------------------------
    case("augassign-name", "total += x", reads="total x", writes="total", mutated="total"),
    case("augassign-fresh", "t = 0\nt += x", reads="x", writes="t"),
    case("augassign-item", "counts[key] += 1", reads="counts key", mutated="counts"),
    case("augassign-attr", "model.steps += 1", reads="model", mutated="model"),
    # -- walrus ---------------------------------------------------------------------------------
    case("walrus", "if (n := len(data)) > 3:\n    y = n", reads="data len", writes="n y"),
    case(
        "walrus-in-comprehension",
        "vals = [y := f(v) for v in data]",
        reads="data f",
        writes="vals y",
    ),
    case("walrus-conditional", "ok = a or (b := 2)\nc = b", reads="a b", writes="ok b c"),
    # -- comprehensions -------------------------------------------------------------------------
    case("list-comp", "sq = [v * v for v in values]", reads="values", writes="sq"),
    case("list-comp-free-name", "sc = [v * k for v in values]", reads="k values", writes="sc"),
    case("list-comp-no-leak", "sq = [i for i in r]\nz = i", reads="i r", writes="sq z"),
    case("dict-comp", "d = {k: v for k, v in pairs}", reads="pairs", writes="d"),
    case("set-comp", "s = {w.lower() for w in words}", reads="words", writes="s"),
    case("generator", "g = (x for x in xs if x > lim)", reads="lim xs", writes="g"),
    case("nested-comp", "m = [[r * c for c in cols] for r in rows]", reads="cols rows", writes="m"),
    case("comp-condition", "e = [x for x in xs if pred(x)]", reads="pred xs", writes="e"),
    # -- lambdas --------------------------------------------------------------------------------
    case("lambda-param", "f = lambda v: v + 1", writes="f"),
    case("lambda-free", "f = lambda v: v * scale", reads="scale", writes="f"),
    case("lambda-default", "f = lambda v=base: v", reads="base", writes="f"),
    case(
        "lambda-in-call", "s = sorted(xs, key=lambda t: t[col])", reads="col sorted xs", writes="s"
    ),
    # -- functions ------------------------------------------------------------------------------
    case("def-simple", "def f(a):\n    return a", writes="f"),
    case("def-global-read", "def f(a):\n    return a * scale", reads="scale", writes="f"),
    case("def-local-shadows", "def f():\n    x = 1\n    return x", writes="f"),
    case("def-default-arg", "def f(a=default):\n    return a", reads="default", writes="f"),
    case("def-decorator", "@cache\ndef f():\n    pass", reads="cache", writes="f"),
    case("def-annotation", "def f(a: Model) -> Out:\n    pass", reads="Model Out", writes="f"),
    case(
        "def-kwonly-varargs",
        "def f(*args, k=kd, **kw):\n    return args, k, kw",
        reads="kd",
        writes="f",
    ),
    case(
        "def-nested-closure",
        "def outer():\n    v = 1\n    def inner():\n        return v + w\n    return inner",
        reads="w",
        writes="outer",
    ),
    case(
        "def-nonlocal",
        "def outer():\n    n = 0\n    def inc():\n        nonlocal n\n"
        "        n += 1\n    return inc",
        writes="outer",
    ),
    case("def-global-write", "def reset():\n    global counter\n    counter = 0", writes="reset"),
    case(
        "def-global-write-called",
        "def reset():\n    global counter\n    counter = 0\nreset()",
        writes="reset counter",
    ),
    case(
        "def-mutates-global-called",
        "def add(v):\n    log.append(v)\nadd(1)",
        reads="log",
        writes="add",
        mutated="log",
    ),
    case("def-after-binding", "scale = 2\ndef f(a):\n    return a * scale", writes="scale f"),
    case(
        "def-recursive", "def fact(n):\n    return 1 if n < 2 else n * fact(n - 1)", writes="fact"
    ),
    case(
        "async-def", "async def fetch():\n    return await source()", reads="source", writes="fetch"
    ),
    case("def-then-call", "def f():\n    return g()\nr = f()", reads="g", writes="f r"),
    # -- classes --------------------------------------------------------------------------------
    case("class-simple", "class A:\n    pass", writes="A"),
    case("class-bases", "class A(Base, metaclass=Meta):\n    pass", reads="Base Meta", writes="A"),
    case("class-body-read", "class A:\n    size = default_size", reads="default_size", writes="A"),
    case("class-body-local", "class A:\n    a = 1\n    b = a + 1", writes="A"),
    case(
        "class-method-global",
        "class A:\n    def m(self):\n        return self.k * factor",
        reads="factor",
        writes="A",
    ),
    case(
        "class-scope-invisible",
        "class A:\n    k = 1\n    def m(self):\n        return k",
        reads="k",
        writes="A",
    ),
    case(
        "class-decorator", "@dataclass\nclass P:\n    x: int = 0", reads="dataclass int", writes="P"
    ),
    # -- imports --------------------------------------------------------------------------------
    case("import", "import numpy", writes="numpy"),
    case("import-as", "import numpy as np", writes="np"),
    case("import-dotted", "import os.path", writes="os"),
    case("from-import", "from math import sqrt, pi as PI", writes="sqrt PI"),
    case("from-import-star", "from math import *"),
    case("import-then-use", "import numpy as np\nz = np.zeros(3)", writes="np z"),
    # -- for / while / with ---------------------------------------------------------------------
    case("for-target", "for i in range(n):\n    acc = i", reads="n range", writes="i acc"),
    case(
        "for-tuple-target",
        "for k, v in d.items():\n    out[k] = v",
        reads="d out",
        writes="k v",
        mutated="d out",
    ),
    case("for-else", "for i in xs:\n    pass\nelse:\n    done = True", reads="xs", writes="i done"),
    case(
        "for-body-not-definite",
        "for i in xs:\n    last = i\ny = last",
        reads="last xs",
        writes="i last y",
    ),
    case("while", "while n > 0:\n    n = n - 1", reads="n", writes="n"),
    case(
        "with-as",
        "with open(path) as fh:\n    text = fh.read()",
        reads="open path",
        writes="fh text",
    ),
    case("with-multiple", "with a as x, b as y:\n    pass", reads="a b", writes="x y"),
    # -- if / try / match -----------------------------------------------------------------------
    case("if-both-branches", "if c:\n    v = 1\nelse:\n    v = 2\nw = v", reads="c", writes="v w"),
    case("if-one-branch", "if c:\n    v = 1\nw = v", reads="c v", writes="v w"),
    case(
        "try-except-as",
        "try:\n    r = f()\nexcept ValueError as e:\n    msg = str(e)",
        reads="ValueError f str",
        writes="r e msg",
    ),
    case("try-finally", "try:\n    r = f()\nfinally:\n    done = 1", reads="f", writes="r done"),
    case(
        "try-else",
        "try:\n    a = 1\nexcept E:\n    a = 2\nelse:\n    b = a\nc = a",
        reads="E",
        writes="a b c",
    ),
    case(
        "match-class-pattern",
        "match p:\n    case Point(x=px, y=0):\n        r = px",
        reads="Point p",
        writes="px r",
    ),
    case(
        "match-sequence",
        "match cmd:\n    case [op, *args]:\n        pass",
        reads="cmd",
        writes="op args",
    ),
    case(
        "match-mapping",
        "match ev:\n    case {'k': val, **rest}:\n        pass",
        reads="ev",
        writes="val rest",
    ),
    case(
        "match-value",
        "match c:\n    case Color.RED:\n        hit = 1",
        reads="Color c",
        writes="hit",
    ),
    case(
        "match-as-guard",
        "match v:\n    case int() as n if n > lim:\n        pass",
        reads="int lim v",
        writes="n",
    ),
    # -- del -------------------------------------------------------------------------------------
    case("del-name", "del x", writes="x"),
    case("del-item", "del cache[key]", reads="cache key", mutated="cache"),
    case("del-attr", "del obj.attr", reads="obj", mutated="obj"),
    case("del-multiple", "del a, b", writes="a b"),
    # -- mutation --------------------------------------------------------------------------------
    case("method-call", "items.append(4)", reads="items", mutated="items"),
    case("method-call-chain", "df.loc[0].update(u)", reads="df u", mutated="df u"),
    case("subscript-store", "df['c'] = df['a'] * 2", reads="df", mutated="df"),
    case("attribute-store", "model.coef = w", reads="model w", mutated="model"),
    case("nested-subscript-store", "grid[i][j] = 0", reads="grid i j", mutated="grid"),
    case("passed-to-call", "shuffle(deck)", reads="deck shuffle", mutated="deck"),
    case("passed-as-keyword", "fit(data=train)", reads="fit train", mutated="train"),
    case("passed-in-list", "consume([a, b])", reads="a b consume", mutated="a b"),
    case("pure-builtin-call", "n = len(items)", reads="items len", writes="n"),
    case("print-does-not-mutate", "print(state)", reads="print state"),
    case("local-object-mutation", "acc = []\nacc.append(1)", writes="acc"),
    case("alias-mutation", "b = a\nb.append(1)", reads="a", writes="b", mutated="a"),
    case(
        "alias-through-subscript",
        "row = table[0]\nrow.append(1)",
        reads="table",
        writes="row",
        mutated="table",
    ),
    case(
        "loop-alias-mutation",
        "for row in rows:\n    row.append(0)",
        reads="rows",
        writes="row",
        mutated="rows",
    ),
    case("numpy-inplace", "arr *= 2", reads="arr", writes="arr", mutated="arr"),
    case("mutate-then-rebind", "xs.sort()\nxs = []", reads="xs", writes="xs", mutated="xs"),
    # -- dynamic ---------------------------------------------------------------------------------
    case("exec", "exec(code)", reads="code exec", mutated="code"),
    case("globals-write", "globals()['x'] = 1"),
    case("globals-write-computed", "globals()[f'v{i}'] = i", reads="i"),
    # -- IPython syntax ---------------------------------------------------------------------------
    case("line-magic-time", "%time x = f(a)", reads="a f", writes="x", mutated="a"),
    case("line-magic-timeit-private", "%timeit -n 1 -r 1 y = g(b)", reads="b g", mutated="b"),
    case("cell-magic-time", "%%time\nfor i in r:\n    s = i", reads="r", writes="i s"),
    case("cell-magic-timeit-setup", "%%timeit s = make()\nuse(s)", reads="make use"),
    case("cell-magic-capture", "%%capture out\nprint(msg)", reads="msg print", writes="out"),
    case("cell-magic-capture-flags", "%%capture --no-stderr cap\nv = 1", writes="cap v"),
    case("prun", "%prun r = work(n)", reads="n work", writes="r", mutated="n"),
    case(
        "shell",
        "!ls -l",
    ),
    case("shell-interpolation", "!cp {src} $dst", reads="dst src"),
    case("shell-capture", "files = !ls *.csv", writes="files"),
    case("help", "obj?", reads="obj"),
    case("help-attribute", "np.mean??", reads="np"),
    case("magic-then-code", "%matplotlib inline\nplt.plot(xs)", reads="plt xs", mutated="plt xs"),
    case("magic-interpolation", "%cd {folder}", reads="folder"),
    case("bash-cell-magic", "%%bash\necho $HOME\n"),
    case("expression-magic", "t = %time compute()", reads="compute", writes="t"),
    case("magic-in-function", "def f():\n    %time z = 1\n    return z", writes="f"),
    case(
        "store-read",
        "%store -r",
    ),
    case("store-save", "%store model", reads="model"),
]


@pytest.mark.parametrize("expected", CASES)
def test_names_of_cell(expected: Case) -> None:
    result = analyze_cell(expected.source)
    assert result.syntax_error is None
    assert set(result.reads) == expected.reads, "reads"
    assert set(result.writes) == expected.writes, "writes"
    assert set(result.mutated) == expected.mutated, "mutated"


def test_table_is_large_enough() -> None:
    assert len(CASES) >= 80


@pytest.mark.parametrize(
    ("source", "writes_unknown", "reads_unknown"),
    [
        ("from math import *", True, False),
        ("%run helper.py", True, False),
        ("%run -i helper.py", True, True),
        ("%reset -f", True, False),
        ("%store -r", True, False),
        ("exec(code)", True, True),
        ("v = eval(expr)", True, True),
        ("x = 1", False, False),
        ("def f():\n    return globals()", False, True),
        ("globals()['x'] = 1", True, False),
        ("for i in range(3):\n    globals()[f'v{i}'] = i", True, False),
    ],
)
def test_unknown_effects_are_flagged(
    source: str, writes_unknown: bool, reads_unknown: bool
) -> None:
    result = analyze_cell(source)
    assert result.writes_unknown is writes_unknown
    assert result.reads_unknown is reads_unknown


def test_deleted_names_are_reported_and_rebinding_clears_them() -> None:
    assert analyze_cell("del a, b\nb = 1").deleted == {"a"}
    assert analyze_cell("try:\n    f()\nexcept E as err:\n    pass").deleted == {"err"}


def test_functions_report_the_globals_their_bodies_use() -> None:
    result = analyze_cell(
        "def predict(X):\n    return model.predict(X) * scale + helper(X)\n"
        "def bump():\n    global calls\n    calls += 1\n    history.append(calls)\n"
        "norm = lambda v: v / total\n"
        "class Net:\n    def forward(self, x):\n        return x @ weights\n"
    )
    fns = result.functions
    assert set(fns) == {"predict", "bump", "norm", "Net"}
    assert fns["predict"].globals_read == {"model", "scale", "helper"}
    assert fns["bump"].globals_read == {"calls", "history"}
    assert fns["bump"].globals_written == {"calls"}
    assert fns["bump"].globals_mutated == {"calls", "history"}
    assert fns["norm"].globals_read == {"total"}
    assert fns["Net"].globals_read == {"weights"}


def test_functions_rebound_in_the_same_cell_are_not_reported() -> None:
    assert set(analyze_cell("def f():\n    return a\nf = 3").functions) == set()


def test_imports_are_listed_with_their_full_module_names() -> None:
    result = analyze_cell("import os.path\nfrom .local import thing\nimport numpy as np")
    assert result.imports == {"os.path", ".local", "numpy"}


def test_magics_used_are_listed() -> None:
    result = analyze_cell("%matplotlib inline\n!ls\n%time x = 1")
    assert result.magics == {"matplotlib", "!", "time"}


def test_syntax_error_is_reported_not_raised() -> None:
    result = analyze_cell("def broken(:\n    pass")
    assert result.syntax_error is not None
    assert "line 1" in result.syntax_error
    assert result.reads == frozenset()
    assert result.writes == frozenset()


@pytest.mark.parametrize(
    ("source", "silent"),
    [
        ("x", False),
        ("x;", True),
        ("x;  # quiet", True),
        ("plt.plot(y);\n", True),
        ("s = 'a;'", False),
        ("for i in r:\n    f(i);\n", True),
    ],
)
def test_trailing_semicolon_marks_a_silent_cell(source: str, silent: bool) -> None:
    assert analyze_cell(source).silent is silent


def test_a_method_of_what_a_method_returns_changes_the_root_through_that_call() -> None:
    sites = analyze_cell("n = conn.execute('SELECT 1').fetchone()[0]").call_mutations["conn"]
    assert {(s.callee, s.role, s.text) for s in sites} == {
        ("conn.execute", "owner", "SELECT 1"),
        ("conn.execute", "result", "SELECT 1"),
    }
