"""IPython syntax: turn cell source into plain Python, and magics into code the analysis can see.

IPython's own input transformer rewrites ``%magic``, ``!cmd``, ``x = !cmd`` and ``x?`` into calls
on ``get_ipython()``. Magics that run Python code (``%time``, ``%timeit``, ``%prun``, ``%%capture``)
would hide that code inside a string, so :func:`expose_magics` parses it back into the tree, wrapped
in a marker that keeps the magic's name and options in the normalised hash.
"""

from __future__ import annotations

import ast
import re
import shlex
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

MARKER = "__ipython_magic__"
"""Name of the call that stands for a magic in the rewritten tree; never reported as a read."""

IPYTHON_NAMES = frozenset({"get_ipython", MARKER})

# Magics whose argument (line magics) or body (cell magics) is Python code run in the user
# namespace, with the getopt specification of the options that precede the code.
_CODE_LINE_MAGICS = {"time": "", "timeit": "n:r:tcp:qo", "prun": "D:l:rs:T:q"}
_CODE_CELL_MAGICS = {"time": "", "timeit": "n:r:tcp:qo", "prun": "D:l:rs:T:q", "capture": ""}
# %timeit runs its code inside a function of its own: what it binds does not reach the namespace.
_PRIVATE_SCOPE_MAGICS = frozenset({"timeit"})
_HELP_MAGICS = frozenset({"pinfo", "pinfo2", "pdef", "pdoc", "psource", "pfile"})
# Magics that may bind names nbcellar cannot see: they run files or reset the namespace.
_UNKNOWN_WRITE_MAGICS = frozenset({"run", "reset", "reset_selective", "load_ext_and_run"})

_ESCAPES = re.compile(r"[%!?]|^[ \t]*[/;,]|^[ \t]*(>>>|In \[)", re.MULTILINE)
_DOLLAR = re.compile(r"(?<!\$)\$([A-Za-z_]\w*)")
_BRACES = re.compile(r"(?<!\{)\{([^{}]+)\}(?!\})")


def python_source(source: str) -> str:
    """The plain Python IPython would run for ``source`` (unchanged if it has no IPython syntax)."""
    first_line = source.lstrip("\r\n")[:1]
    if first_line not in (" ", "\t") and not _ESCAPES.search(source):
        return source
    return str(_transformer().transform_cell(source))


@lru_cache(maxsize=1)
def _transformer() -> Any:
    from IPython.core.inputtransformer2 import TransformerManager

    return TransformerManager()


@dataclass
class MagicEffects:
    """What the magics of one cell do to the namespace beyond the code they expose."""

    reads: set[str] = field(default_factory=set)
    writes: set[str] = field(default_factory=set)
    writes_unknown: bool = False
    reads_unknown: bool = False
    magics: set[str] = field(default_factory=set)


def _string_arg(call: ast.Call, index: int) -> str | None:
    if len(call.args) > index:
        arg = call.args[index]
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            return arg.value
    return None


def _ipython_method(node: ast.AST) -> str | None:
    """``"run_line_magic"`` for ``get_ipython().run_line_magic(...)``, and so on; else None."""
    if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
        return None
    owner = node.func.value
    if (
        isinstance(owner, ast.Call)
        and isinstance(owner.func, ast.Name)
        and owner.func.id == "get_ipython"
        and not owner.args
    ):
        return node.func.attr
    return None


def split_options(line: str, spec: str) -> tuple[list[str], str]:
    """Split getopt-style options (``spec`` as in getopt) from the code that follows them."""
    options: list[str] = []
    rest = line.lstrip()
    while rest.startswith("-") and len(rest) > 1 and rest[1] != " ":
        flag = rest[1]
        if flag not in spec:
            break
        takes_value = spec[spec.index(flag) + 1 : spec.index(flag) + 2] == ":"
        token, _, rest = rest.partition(" ")
        if takes_value and len(token) == 2:
            value, _, rest = rest.lstrip().partition(" ")
            token = f"{token} {value}"
        options.append(token)
        rest = rest.lstrip()
    return options, rest


def interpolated_names(text: str) -> set[str]:
    """Names IPython reads when it expands ``$name`` and ``{expr}`` in a magic or shell line."""
    names = set(_DOLLAR.findall(text))
    for expr in _BRACES.findall(text):
        try:
            tree = ast.parse(expr.strip(), mode="eval")
        except SyntaxError:
            continue
        names.update(n.id for n in ast.walk(tree) if isinstance(n, ast.Name))
    return names


def _parse_body(code: str) -> list[ast.stmt] | None:
    try:
        return ast.parse(code).body
    except SyntaxError:
        return None


def _private_scope(body: list[ast.stmt]) -> list[ast.stmt]:
    """``def __ipython_magic__(): body`` and a call: reads and mutations count, bindings do not."""
    args = ast.arguments(
        posonlyargs=[], args=[], vararg=None, kwonlyargs=[], kw_defaults=[], kwarg=None, defaults=[]
    )
    function = ast.FunctionDef(name=MARKER, args=args, body=body or [ast.Pass()], decorator_list=[])
    call = ast.Expr(ast.Call(func=ast.Name(id=MARKER, ctx=ast.Load()), args=[], keywords=[]))
    return [function, call]


def _marker(name: str, options: list[str], args: list[ast.expr]) -> ast.Call:
    return ast.Call(
        func=ast.Name(id=MARKER, ctx=ast.Load()),
        args=[ast.Constant(name), ast.Constant(" ".join(options)), *args],
        keywords=[],
    )


class _MagicExposer(ast.NodeTransformer):
    def __init__(self) -> None:
        self.effects = MagicEffects()

    def visit_Expr(self, node: ast.Expr) -> ast.AST:
        method = _ipython_method(node.value)
        if method in ("run_line_magic", "run_cell_magic"):
            assert isinstance(node.value, ast.Call)
            replaced = self._statement_magic(node.value, method == "run_cell_magic")
            if replaced is not None:
                return replaced
        self.generic_visit(node)
        return node

    def visit_Call(self, node: ast.Call) -> ast.AST:
        method = _ipython_method(node)
        if method is None:
            self.generic_visit(node)
            return node
        name = _string_arg(node, 0) or ""
        if method in ("system", "getoutput"):
            self.effects.magics.add("!")
            self.effects.reads |= interpolated_names(name)
            return node
        if method == "run_line_magic":
            line = _string_arg(node, 1) or ""
            self.effects.magics.add(name)
            if name in _CODE_LINE_MAGICS:
                options, code = split_options(line, _CODE_LINE_MAGICS[name])
                try:
                    expr = ast.parse(code.strip(), mode="eval").body
                except SyntaxError:
                    return node
                return _marker(name, options, [self.visit(expr)])
            self._line_effects(name, line)
        elif method == "run_cell_magic":
            self.effects.magics.add(name)
            self.effects.reads |= interpolated_names(_string_arg(node, 1) or "")
        return node

    def _statement_magic(self, call: ast.Call, cell: bool) -> ast.stmt | None:
        name = _string_arg(call, 0) or ""
        line = _string_arg(call, 1) or ""
        table = _CODE_CELL_MAGICS if cell else _CODE_LINE_MAGICS
        if name not in table:
            return None
        self.effects.magics.add(name)
        options, rest = split_options(line, table[name])
        body: list[ast.stmt] = []
        if cell:
            if name == "capture":
                flags = [t for t in shlex.split(rest) if t.startswith("--")]
                targets = [t for t in shlex.split(rest) if not t.startswith("--")]
                options = flags + targets
                self.effects.writes.update(t for t in targets if t.isidentifier())
            elif rest.strip():  # %%timeit's line is setup code, run before the body
                setup = _parse_body(rest.strip())
                if setup is None:
                    return None
                body.extend(setup)
            code = _string_arg(call, 2) or ""
        else:
            code = rest
        parsed = _parse_body(code)
        if parsed is None:
            return None
        body.extend(parsed)
        if name in _PRIVATE_SCOPE_MAGICS:
            body = _private_scope(body)
        marker = _marker(name, options, [])
        with_node = ast.With(items=[ast.withitem(context_expr=marker)], body=body or [ast.Pass()])
        self.generic_visit(with_node)
        return with_node

    def _line_effects(self, name: str, line: str) -> None:
        if name in _HELP_MAGICS:
            target = line.strip().rstrip("?")
            try:
                tree = ast.parse(target, mode="eval")
            except SyntaxError:
                return
            self.effects.reads.update(n.id for n in ast.walk(tree) if isinstance(n, ast.Name))
            return
        self.effects.reads |= interpolated_names(line)
        if name in _UNKNOWN_WRITE_MAGICS:
            self.effects.writes_unknown = True
            if name == "run" and "-i" in line.split():
                self.effects.reads_unknown = True
        elif name == "store":
            words = line.split()
            if words and words[0] == "-r":
                self.effects.writes_unknown = True
            else:
                self.effects.reads.update(w for w in words if w.isidentifier())
        elif name in ("who", "whos", "who_ls"):
            self.effects.reads_unknown = True


def expose_magics(tree: ast.Module) -> tuple[ast.Module, MagicEffects]:
    """Rewrite IPython calls in ``tree`` so the code run by magics is part of it."""
    exposer = _MagicExposer()
    new_tree = exposer.visit(tree)
    assert isinstance(new_tree, ast.Module)
    return ast.fix_missing_locations(new_tree), exposer.effects
