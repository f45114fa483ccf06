"""Names a cell reads, writes, deletes and may mutate, found by walking its module-level code.

The walk follows statement order and knows which names are *definitely* bound at each point, so
``x = 1; print(x)`` does not read ``x`` while ``if c: x = 1`` followed by ``print(x)`` does (the
value may come from before the cell). Nested scopes are summarised by :mod:`.scopes` and their
free names count as read where the scope is created.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from nbcellar.analysis.ipython import IPYTHON_NAMES
from nbcellar.analysis.scopes import (
    COMPREHENSIONS,
    DYNAMIC_CALLS,
    NON_MUTATING_CALLS,
    ScopeNode,
    outer_expressions,
    pattern_captures,
    root_name,
    shared_roots,
    summarise_scope,
)

_AT_NAME = re.compile(r"@([A-Za-z_][A-Za-z0-9_]*)")


@dataclass(frozen=True)
class FunctionInfo:
    """A function, lambda or class defined by a cell, seen as the globals it uses when called."""

    name: str
    globals_read: frozenset[str]
    globals_written: frozenset[str] = frozenset()
    globals_mutated: frozenset[str] = frozenset()


@dataclass(frozen=True)
class CallSite:
    """A call through which a cell may change an object in place, as written: the cache, which
    sees the callee at run time, may know that it does not (see nbcellar.cache.purity).

    ``callee`` is the dotted path called (``np.argsort``, ``forest.predict``); ``role`` says
    whether the object is the method's owner or passed as an argument; ``positional`` counts
    the positional arguments (-1 with ``*args``); ``keywords`` names the keyword arguments
    (``**`` for ``**kwargs``). ``resolvable``: the callee's first name holds, at the end of the
    cell, what it held at the call (the cell binds it nowhere, or once, before the call).
    ``text``: the first argument, when it is a string written out (an SQL statement).
    """

    callee: str
    role: str  # "owner", "argument", or "result" (a method of what it returns is called)
    positional: int
    keywords: tuple[str, ...]
    resolvable: bool = False
    text: str | None = None


@dataclass
class NameUse:
    """Mutable accumulator of one cell's name effects; frozen into a CellAnalysis at the end."""

    reads: set[str] = field(default_factory=set)
    writes: set[str] = field(default_factory=set)
    deleted: set[str] = field(default_factory=set)
    mutated: set[str] = field(default_factory=set)
    # Names mutated other than through a call, and the calls through which the others are.
    mutated_directly: set[str] = field(default_factory=set)
    call_sites: dict[str, set[CallSite]] = field(default_factory=dict)
    bind_counts: dict[str, int] = field(default_factory=dict)
    # For each name the cell binds: the outside names whose objects it may share.
    alias_roots: dict[str, set[str]] = field(default_factory=dict)
    imports: set[str] = field(default_factory=set)
    calls: set[str] = field(default_factory=set)
    # Names iterated (``for``, comprehensions) or passed to builtins taken to leave their
    # arguments alone (``list``, ``zip``, ``sorted``): such a call consumes an iterator, and
    # a function of the notebook may shadow the builtin. Callee ("for" for a loop) -> names.
    consumed: dict[str, set[str]] = field(default_factory=dict)
    functions: dict[str, FunctionInfo] = field(default_factory=dict)
    writes_unknown: bool = False
    reads_unknown: bool = False


class _ModuleWalker:
    def __init__(self) -> None:
        self.use = NameUse()
        self.defined: set[str] = set()
        # For each name bound by the cell: the outside names whose objects it may share.
        self.aliases: dict[str, set[str]] = {}

    # -- name events -------------------------------------------------------------------------

    def load(self, name: str) -> None:
        if name not in self.defined and name not in IPYTHON_NAMES:
            self.use.reads.add(name)

    def resolve(self, roots: Iterable[str]) -> set[str]:
        """Outside names behind ``roots``: a name the cell bound stands for what it shares."""
        resolved: set[str] = set()
        for root in roots:
            if root in self.aliases:
                resolved |= self.aliases[root]
                if root not in self.defined:
                    resolved.add(root)
            else:
                resolved.add(root)
        return resolved

    def bind(self, name: str, roots: Iterable[str] = (), definite: bool = True) -> None:
        roots = self.resolve(roots)
        self.use.bind_counts[name] = self.use.bind_counts.get(name, 0) + 1
        self.use.writes.add(name)
        self.use.deleted.discard(name)
        if definite:
            self.defined.add(name)
            self.aliases[name] = set(roots)
        else:
            self.aliases.setdefault(name, set()).update(roots)
        self.use.functions.pop(name, None)

    def unbind(self, name: str) -> None:
        self.use.bind_counts[name] = self.use.bind_counts.get(name, 0) + 2  # never resolvable
        self.use.writes.add(name)
        self.use.deleted.add(name)
        self.defined.discard(name)
        self.aliases.pop(name, None)
        self.use.functions.pop(name, None)

    def mutate(self, name: str | None, site: CallSite | None = None) -> None:
        if name is None or name in IPYTHON_NAMES:
            return
        names = {name}
        if name in self.aliases:
            names = set(self.aliases[name])
            if name not in self.defined:
                names.add(name)
        self.use.mutated |= names
        if site is None:
            self.use.mutated_directly |= names
        else:
            for each in names:
                self.use.call_sites.setdefault(each, set()).add(site)

    # -- expressions -------------------------------------------------------------------------

    def expr(self, node: ast.AST | None, conditional: bool = False) -> None:
        if node is None:
            return
        if isinstance(node, ast.Name):
            if isinstance(node.ctx, ast.Load):
                self.load(node.id)
        elif isinstance(node, ast.NamedExpr):
            self.expr(node.value, conditional)
            self.bind(node.target.id, shared_roots(node.value), definite=not conditional)
        elif isinstance(node, ast.BoolOp):
            self.expr(node.values[0], conditional)
            for value in node.values[1:]:
                self.expr(value, conditional=True)
        elif isinstance(node, ast.IfExp):
            self.expr(node.test, conditional)
            self.expr(node.body, conditional=True)
            self.expr(node.orelse, conditional=True)
        elif isinstance(node, (ast.Lambda, *COMPREHENSIONS)):
            self.scope(node)
        elif isinstance(node, ast.Call):
            self.call(node, conditional)
        else:
            for child in ast.iter_child_nodes(node):
                self.expr(child, conditional)

    def call(self, node: ast.Call, conditional: bool) -> None:
        self.expr(node.func, conditional)
        for arg in node.args:
            self.expr(arg, conditional)
        for keyword in node.keywords:
            self.expr(keyword.value, conditional)
        if isinstance(node.func, ast.Name):
            self.use.calls.add(node.func.id)
            if (node.func.id in DYNAMIC_CALLS and not (node.func.id == "vars" and node.args)) or (
                node.func.id == "dir" and not node.args and not node.keywords
            ):  # (dir() lists the whole namespace; vars(obj) an object's attributes)
                self.use.reads_unknown = self.use.writes_unknown = True
        self.string_references(node)
        sites = {role: self.site(node, role) for role in ("owner", "argument")}
        if isinstance(node.func, ast.Attribute):
            # A method of what a method returned (``conn.execute(q).fetchone()``): the root
            # changes unless what the inner call returns is known to be a new object.
            inner = node.func.value
            owner = sites["owner"]
            if owner is None and isinstance(inner, ast.Call):
                owner = self.site(inner, "result")
            self.mutate(root_name(inner), owner)
        if isinstance(node.func, ast.Name) and node.func.id in NON_MUTATING_CALLS:
            passed = set().union(*(shared_roots(a) for a in node.args))
            passed |= set().union(*(shared_roots(k.value) for k in node.keywords))
            self.consume(node.func.id, passed)
            return
        for arg in node.args:
            for name in shared_roots(arg):
                self.mutate(name, sites["argument"])
        for keyword in node.keywords:
            for name in shared_roots(keyword.value):
                self.mutate(name, sites["argument"])

    def site(self, node: ast.Call, role: str) -> CallSite | None:
        """The call ``node`` as a site through which a name may change (None when its callee
        is not a dotted name)."""
        callee = dotted_name(node.func)
        if callee is None:
            return None
        # (resolvable is settled once the whole cell is walked: see module_names)
        positional = -1 if any(isinstance(a, ast.Starred) for a in node.args) else len(node.args)
        keywords = tuple(k.arg or "**" for k in node.keywords)
        first = node.args[0] if node.args else None
        text = (
            first.value
            if isinstance(first, ast.Constant) and isinstance(first.value, str)
            else None
        )
        head = callee.split(".")[0]
        return CallSite(callee, role, positional, keywords, head in self.defined, text)

    def consume(self, callee: str, roots: Iterable[str]) -> None:
        names = {n for n in self.resolve(roots) if n not in IPYTHON_NAMES}
        if names:
            self.use.consumed.setdefault(callee, set()).update(names)

    def string_references(self, node: ast.Call) -> None:
        """``df.query("a > @limit")``, ``df.eval(...)``, ``pd.eval(...)``: ``@name`` reads a
        variable by name from inside a string."""
        if not (isinstance(node.func, ast.Attribute) and node.func.attr in ("query", "eval")):
            return
        for arg in node.args[:1]:
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                for name in _AT_NAME.findall(arg.value):
                    self.load(name)

    def scope(self, node: ScopeNode) -> FunctionInfo:
        """A nested scope created here: outer parts run now, its free names are read now."""
        for outer in outer_expressions(node):
            self.expr(outer)
        summary = summarise_scope(node)
        own = getattr(node, "name", None)  # a function may call itself: its name is bound by then
        for name in sorted(summary.free - {own}):
            self.load(name)
        for name in summary.walrus_targets:
            self.bind(name, definite=False)
        if summary.dynamic:
            self.use.reads_unknown = True
        for name in summary.global_mutates:
            if isinstance(node, (ast.Lambda, *COMPREHENSIONS)):
                self.mutate(name)  # a comprehension runs now; a lambda is mostly passed on
        if isinstance(node, COMPREHENSIONS) and node.generators:  # its first iterable, here
            self.consume("for", shared_roots(node.generators[0].iter))
        for decorator in getattr(node, "decorator_list", ()):
            # @registry.register, @app.route: the decorator's owner takes the function in.
            callee = dotted_name(decorator) if isinstance(decorator, ast.Attribute) else None
            if callee is not None:
                site = CallSite(callee, "owner", 1, (), callee.split(".")[0] in self.defined)
                self.mutate(root_name(decorator), site)
        if isinstance(node, COMPREHENSIONS):
            self.use.calls |= summary.calls
            self.use.writes |= summary.global_writes
        label = "<lambda>"
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            label = node.name
        return FunctionInfo(
            name=label,
            globals_read=summary.free,
            globals_written=summary.global_writes,
            globals_mutated=summary.global_mutates,
        )

    # -- assignment targets ------------------------------------------------------------------

    def target(self, node: ast.expr, roots: set[str], definite: bool = True) -> None:
        if isinstance(node, ast.Name):
            self.bind(node.id, roots, definite)
        elif isinstance(node, ast.Tuple | ast.List):
            for element in node.elts:
                self.target(element, roots, definite)
        elif isinstance(node, ast.Starred):
            self.target(node.value, roots, definite)
        elif isinstance(node, ast.Attribute):
            self.expr(node.value)
            self.mutate(root_name(node))
        elif isinstance(node, ast.Subscript) and _is_namespace_call(node.value):
            # globals()["name"] = value binds a name nbcellar cannot read off the code
            self.expr(node.slice)
            self.use.writes_unknown = True
        elif isinstance(node, ast.Subscript):
            self.expr(node.value)
            self.expr(node.slice)
            self.mutate(root_name(node))

    # -- statements --------------------------------------------------------------------------

    def block(self, statements: Iterable[ast.stmt]) -> None:
        for statement in statements:
            self.stmt(statement)

    def branch(self, statements: Iterable[ast.stmt], start: set[str]) -> set[str]:
        """Walk a block that may or may not run; return what is defined at its end."""
        self.defined = set(start)
        self.block(statements)
        return self.defined

    def stmt(self, node: ast.stmt) -> None:
        handler = getattr(self, "stmt_" + type(node).__name__, None)
        if handler is not None:
            handler(node)
        else:  # Expr, Return, Raise, Assert, Pass, Break, Continue, Global, Nonlocal
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.expr):
                    self.expr(child)

    def stmt_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        info = self.scope(node)
        self.bind(node.name)
        self.use.functions[node.name] = info

    stmt_AsyncFunctionDef = stmt_FunctionDef

    def stmt_ClassDef(self, node: ast.ClassDef) -> None:
        info = self.scope(node)
        # The class body runs now; what it mutates is mutated by this cell.
        for name in info.globals_mutated:
            self.mutate(name)
        self.bind(node.name)
        self.use.functions[node.name] = info

    def stmt_Assign(self, node: ast.Assign) -> None:
        lambda_info = self.scope(node.value) if isinstance(node.value, ast.Lambda) else None
        if lambda_info is None:
            self.expr(node.value)
        roots = shared_roots(node.value)
        for target in node.targets:
            self.target(target, roots)
        names = [t.id for t in node.targets if isinstance(t, ast.Name)]
        if lambda_info is not None:
            for name in names:  # f = lambda: ... is a function named f
                self.use.functions[name] = replace(lambda_info, name=name)

    def stmt_AugAssign(self, node: ast.AugAssign) -> None:
        if isinstance(node.target, ast.Name):
            name = node.target.id
            self.load(name)
            self.expr(node.value)
            self.mutate(name)
            roots = self.aliases.get(name, set()) if name in self.defined else set()
            self.bind(name, roots | shared_roots(node.value), definite=True)
        else:
            self.expr(node.value)
            self.target(node.target, set())

    def stmt_AnnAssign(self, node: ast.AnnAssign) -> None:
        self.expr(node.annotation)
        if node.value is not None:
            self.expr(node.value)
            self.target(node.target, shared_roots(node.value))
        elif not isinstance(node.target, ast.Name):
            self.expr(node.target)

    def stmt_Delete(self, node: ast.Delete) -> None:
        for target in node.targets:
            self.delete(target)

    def delete(self, node: ast.expr) -> None:
        if isinstance(node, ast.Name):
            self.unbind(node.id)
        elif isinstance(node, ast.Tuple | ast.List):
            for element in node.elts:
                self.delete(element)
        else:
            self.target(node, set())

    def stmt_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.use.imports.add(alias.name)
            self.bind(alias.asname or alias.name.split(".")[0])

    def stmt_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = "." * node.level + (node.module or "")
        self.use.imports.add(module)
        for alias in node.names:
            if alias.name == "*":
                self.use.writes_unknown = True
            else:
                self.bind(alias.asname or alias.name)

    def stmt_If(self, node: ast.If) -> None:
        self.expr(node.test)
        start = set(self.defined)
        after_body = self.branch(node.body, start)
        after_else = self.branch(node.orelse, start)
        self.defined = after_body & after_else

    def stmt_For(self, node: ast.For | ast.AsyncFor) -> None:
        self.expr(node.iter)
        self.consume("for", shared_roots(node.iter))
        start = set(self.defined)
        self.defined = set(start)
        self.target(node.target, shared_roots(node.iter))
        self.block(node.body)
        self.branch(node.orelse, start)
        self.defined = start

    stmt_AsyncFor = stmt_For

    def stmt_While(self, node: ast.While) -> None:
        self.expr(node.test)
        start = set(self.defined)
        self.branch(node.body, start)
        self.branch(node.orelse, start)
        self.defined = start

    def stmt_With(self, node: ast.With | ast.AsyncWith) -> None:
        for item in node.items:
            self.expr(item.context_expr)
            if item.optional_vars is not None:
                self.target(item.optional_vars, shared_roots(item.context_expr))
        self.block(node.body)

    stmt_AsyncWith = stmt_With

    def stmt_Try(self, node: ast.Try) -> None:
        start = set(self.defined)
        self.block(node.body)
        self.block(node.orelse)
        ends = [self.defined]
        for handler in node.handlers:
            self.defined = set(start)
            self.expr(handler.type)
            if handler.name:
                self.bind(handler.name)
            self.block(handler.body)
            if handler.name:  # Python deletes the name when the handler ends
                self.unbind(handler.name)
            ends.append(self.defined)
        self.defined = set.intersection(*ends)
        self.block(node.finalbody)

    stmt_TryStar = stmt_Try

    def stmt_Match(self, node: ast.Match) -> None:
        self.expr(node.subject)
        roots = shared_roots(node.subject)
        start = set(self.defined)
        for case in node.cases:
            self.defined = set(start)
            for part in ast.walk(case.pattern):
                if isinstance(part, ast.MatchValue | ast.MatchClass):
                    self.expr(part.value if isinstance(part, ast.MatchValue) else part.cls)
                elif isinstance(part, ast.MatchMapping):
                    for key in part.keys:
                        self.expr(key)
            for name in sorted(pattern_captures(case.pattern)):
                self.bind(name, roots)
            self.expr(case.guard)
            self.block(case.body)
        self.defined = start

    def stmt_TypeAlias(self, node: ast.AST) -> None:
        name = getattr(node, "name", None)
        self.expr(getattr(node, "value", None))
        if isinstance(name, ast.Name):
            self.bind(name.id)


def _is_namespace_call(node: ast.expr) -> bool:
    """``globals()`` (or ``locals()`` / ``vars()`` at module level, the same dict)."""
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in ("globals", "locals", "vars")
        and not node.args
        and not node.keywords
    )


def module_names(tree: ast.Module) -> NameUse:
    """Walk a parsed cell and return what it reads, writes, deletes and may mutate."""
    walker = _ModuleWalker()
    walker.block(tree.body)
    use = walker.use
    # Functions the cell defines and also calls act on their globals now.
    for name in sorted(use.calls & use.functions.keys()):
        info = use.functions[name]
        use.writes |= info.globals_written
        for mutated in info.globals_mutated:
            walker.mutate(mutated)
    use.writes -= IPYTHON_NAMES
    use.calls -= IPYTHON_NAMES
    use.alias_roots = {n: set(r) for n, r in walker.aliases.items() if r and n in use.writes}
    # A call's first name is known at the end of the cell if the cell never binds it, or binds
    # it once, before the call (recorded then as ``resolvable``).
    for name, sites in use.call_sites.items():
        use.call_sites[name] = {
            replace(site, resolvable=_known_at_end(site, use)) for site in sites
        }
    use.functions = {k: v for k, v in use.functions.items() if k in use.writes}
    return use


def _known_at_end(site: CallSite, use: NameUse) -> bool:
    head = site.callee.split(".")[0]
    if head not in use.writes:
        return True
    return use.bind_counts.get(head, 0) == 1 and site.resolvable


def dotted_name(node: ast.expr) -> str | None:
    """``a.b.c`` for a chain of attributes on a name; None for anything else."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return ".".join([node.id, *reversed(parts)])


__all__ = ["CallSite", "FunctionInfo", "NameUse", "module_names"]
