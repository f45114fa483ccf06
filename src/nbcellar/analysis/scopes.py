"""Free names of nested scopes: function, lambda, class and comprehension bodies.

Nested scopes are summarised without flow sensitivity: which names they read from outside, which
module globals they assign (``global`` declarations), which outside objects they may mutate.
Calling code decides what those names mean at the point where the scope is created.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

# Builtins that never change the objects passed to them; a call to one is not a mutation.
NON_MUTATING_CALLS = frozenset(
    {
        "abs", "all", "any", "ascii", "bin", "bool", "bytes", "callable", "chr", "complex",
        "dict", "dir", "display", "divmod", "enumerate", "filter", "float", "format",
        "frozenset", "getattr", "hasattr", "hash", "hex", "id", "int", "isinstance",
        "issubclass", "iter", "len", "list", "map", "max", "min", "oct", "open", "ord", "pow",
        "print", "range", "repr", "reversed", "round", "set", "slice", "sorted", "str", "sum",
        "tuple", "type", "zip", "__ipython_magic__",
    }
)  # fmt: skip
DYNAMIC_CALLS = frozenset({"exec", "eval", "globals", "locals", "vars"})


def _of_an_object(call: ast.Call) -> bool:
    """``vars(obj)``: an object's attributes, not a namespace of the code's."""
    return isinstance(call.func, ast.Name) and call.func.id == "vars" and bool(call.args)


ScopeNode = (
    ast.FunctionDef
    | ast.AsyncFunctionDef
    | ast.Lambda
    | ast.ClassDef
    | ast.ListComp
    | ast.SetComp
    | ast.DictComp
    | ast.GeneratorExp
)
COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)


@dataclass(frozen=True)
class ScopeSummary:
    """What a nested scope needs from, and may do to, the scopes around it."""

    free: frozenset[str]
    global_writes: frozenset[str]
    global_mutates: frozenset[str]
    walrus_targets: frozenset[str]
    calls: frozenset[str]
    dynamic: bool


def root_name(node: ast.AST) -> str | None:
    """The variable an attribute/subscript/method chain starts from: ``a`` for ``a.b[0].c()``."""
    while True:
        if isinstance(node, ast.Name):
            return node.id
        if isinstance(node, ast.Attribute | ast.Subscript | ast.Starred):
            node = node.value
        elif isinstance(node, ast.Call):
            node = node.func
        else:
            return None


def shared_roots(node: ast.AST | None) -> set[str]:
    """Names whose objects the value of ``node`` may be, or contain (aliasing, conservatively)."""
    if node is None:
        return set()
    if isinstance(node, ast.Name | ast.Attribute | ast.Subscript | ast.Starred):
        name = root_name(node)
        return {name} if name else set()
    if isinstance(node, ast.List | ast.Tuple | ast.Set):
        return set().union(*(shared_roots(e) for e in node.elts))
    if isinstance(node, ast.Dict):
        return set().union(*(shared_roots(v) for v in node.values))
    if isinstance(node, ast.IfExp):
        return shared_roots(node.body) | shared_roots(node.orelse)
    if isinstance(node, ast.NamedExpr):
        return shared_roots(node.value)
    if isinstance(node, ast.Call):
        if isinstance(node.func, ast.Name) and node.func.id in NON_MUTATING_CALLS:
            return set()
        roots = set().union(*(shared_roots(a) for a in node.args))
        roots |= set().union(*(shared_roots(k.value) for k in node.keywords))
        if isinstance(node.func, ast.Attribute):
            roots |= shared_roots(node.func.value)
        return roots
    return set()


def call_mutation_roots(node: ast.Call) -> set[str]:
    """Names a call may change in place: its method's owner and every argument passed."""
    roots: set[str] = set()
    if isinstance(node.func, ast.Attribute):
        owner = root_name(node.func.value)
        if owner:
            roots.add(owner)
    if isinstance(node.func, ast.Name) and node.func.id in NON_MUTATING_CALLS:
        return roots
    for arg in node.args:
        roots |= shared_roots(arg)
    for keyword in node.keywords:
        roots |= shared_roots(keyword.value)
    return roots


def pattern_captures(pattern: ast.pattern) -> set[str]:
    """Names bound by a ``match`` pattern."""
    names: set[str] = set()
    for node in ast.walk(pattern):
        if isinstance(node, ast.MatchAs | ast.MatchStar) and node.name:
            names.add(node.name)
        elif isinstance(node, ast.MatchMapping) and node.rest:
            names.add(node.rest)
    return names


def argument_names(args: ast.arguments) -> set[str]:
    names = {a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)}
    if args.vararg:
        names.add(args.vararg.arg)
    if args.kwarg:
        names.add(args.kwarg.arg)
    return names


def outer_expressions(node: ScopeNode) -> list[ast.expr]:
    """Parts of a scope-creating node that run in the enclosing scope, not inside the new one."""
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
        args = node.args
        outer: list[ast.expr] = [*args.defaults, *(d for d in args.kw_defaults if d is not None)]
        if not isinstance(node, ast.Lambda):
            outer += node.decorator_list
            for arg in (*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg):
                if arg is not None and arg.annotation is not None:
                    outer.append(arg.annotation)
            if node.returns is not None:
                outer.append(node.returns)
        return outer
    if isinstance(node, ast.ClassDef):
        return [*node.decorator_list, *node.bases, *(k.value for k in node.keywords)]
    return [node.generators[0].iter]


class _Collector(ast.NodeVisitor):
    """Collects the names used in one scope's own body; nested scopes are summarised recursively."""

    def __init__(self, in_comprehension: bool) -> None:
        self.in_comprehension = in_comprehension
        self.loads: set[str] = set()
        self.stores: set[str] = set()
        self.declared_global: set[str] = set()
        self.declared_nonlocal: set[str] = set()
        self.mutation_roots: set[str] = set()
        self.calls: set[str] = set()
        self.dynamic = False
        self.walrus: set[str] = set()
        self.nested: list[ScopeSummary] = []

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load):
            self.loads.add(node.id)
        else:
            self.stores.add(node.id)

    def visit_Global(self, node: ast.Global) -> None:
        self.declared_global.update(node.names)

    def visit_Nonlocal(self, node: ast.Nonlocal) -> None:
        self.declared_nonlocal.update(node.names)

    def visit_NamedExpr(self, node: ast.NamedExpr) -> None:
        if self.in_comprehension:
            self.walrus.add(node.target.id)
        else:
            self.stores.add(node.target.id)
        self.visit(node.value)

    def _nested(self, node: ScopeNode) -> None:
        for expr in outer_expressions(node):
            self.visit(expr)
        summary = summarise_scope(node)
        self.nested.append(summary)
        if self.in_comprehension:
            self.walrus |= summary.walrus_targets
        else:
            self.stores |= summary.walrus_targets
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            self.stores.add(node.name)

    visit_FunctionDef = _nested
    visit_AsyncFunctionDef = _nested
    visit_ClassDef = _nested
    visit_Lambda = _nested
    visit_ListComp = _nested
    visit_SetComp = _nested
    visit_DictComp = _nested
    visit_GeneratorExp = _nested

    def visit_Call(self, node: ast.Call) -> None:
        self.generic_visit(node)
        if isinstance(node.func, ast.Name):
            self.calls.add(node.func.id)
            self.dynamic |= node.func.id in DYNAMIC_CALLS and not _of_an_object(node)
        self.mutation_roots |= call_mutation_roots(node)

    def _mutating_target(self, target: ast.expr) -> None:
        if isinstance(target, ast.Attribute | ast.Subscript):
            name = root_name(target)
            if name:
                self.mutation_roots.add(name)

    def visit_Assign(self, node: ast.Assign) -> None:
        for target in node.targets:
            for part in ast.walk(target):
                if isinstance(part, ast.expr):
                    self._mutating_target(part)
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self._mutating_target(node.target)
        if isinstance(node.target, ast.Name):
            self.loads.add(node.target.id)
            self.mutation_roots.add(node.target.id)
        self.generic_visit(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self._mutating_target(node.target)
        self.generic_visit(node)

    def visit_Delete(self, node: ast.Delete) -> None:
        for target in node.targets:
            self._mutating_target(target)
        self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.stores.add(alias.asname or alias.name.split(".")[0])

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        for alias in node.names:
            if alias.name != "*":
                self.stores.add(alias.asname or alias.name)

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        if node.name:
            self.stores.add(node.name)
        self.generic_visit(node)

    def visit_match_case(self, node: ast.match_case) -> None:
        self.stores |= pattern_captures(node.pattern)
        self.generic_visit(node)


def summarise_scope(node: ScopeNode) -> ScopeSummary:
    """Summarise a function, lambda, class body or comprehension as seen from outside it."""
    is_comprehension = isinstance(node, COMPREHENSIONS)
    collector = _Collector(in_comprehension=is_comprehension)
    params: set[str] = set()
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
        params = argument_names(node.args)
        body: list[ast.AST] = [node.body] if isinstance(node, ast.Lambda) else list(node.body)
    elif isinstance(node, ast.ClassDef):
        body = list(node.body)
    else:
        first, *rest = node.generators
        body = [first.target, *first.ifs, *rest]
        if isinstance(node, ast.DictComp):
            body += [node.key, node.value]
        else:
            body.append(node.elt)
    for part in body:
        collector.visit(part)

    nested_free = set().union(*(s.free for s in collector.nested))
    nested_writes = set().union(*(s.global_writes for s in collector.nested))
    nested_mutates = set().union(*(s.global_mutates for s in collector.nested))
    explicit = collector.declared_global | collector.declared_nonlocal
    local = (params | collector.stores) - explicit
    if isinstance(node, ast.ClassDef):
        # A class body's names are not visible from the methods defined in it.
        free = (collector.loads - local) | nested_free
    else:
        free = (collector.loads | nested_free) - local
    mutates = ((collector.mutation_roots - local) | nested_mutates) - collector.declared_nonlocal
    return ScopeSummary(
        free=frozenset(free),
        global_writes=frozenset((collector.stores & collector.declared_global) | nested_writes),
        global_mutates=frozenset(mutates),
        walrus_targets=frozenset(collector.walrus) if is_comprehension else frozenset(),
        calls=frozenset(collector.calls.union(*(s.calls for s in collector.nested))),
        dynamic=collector.dynamic or any(s.dynamic for s in collector.nested),
    )
