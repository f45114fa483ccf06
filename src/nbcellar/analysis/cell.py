"""Analysis of one cell: a normalised code hash and the names it reads, writes and may mutate."""

from __future__ import annotations

import ast
import sys
import tokenize
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from io import StringIO
from typing import NewType

from nbcellar.analysis.ipython import expose_magics, python_source
from nbcellar.analysis.names import CallSite, FunctionInfo, module_names

CodeHash = NewType("CodeHash", str)

ANALYSIS_VERSION = 1
_SALT = f"nbcellar-analysis-{ANALYSIS_VERSION}|py{sys.version_info[0]}.{sys.version_info[1]}|"


@dataclass(frozen=True)
class CellAnalysis:
    """Everything nbcellar knows about a cell's source without running it.

    ``reads`` are names loaded before the cell binds them (so their values come from earlier
    cells); ``writes`` every name the cell may bind or delete; ``mutated`` names whose existing
    objects the cell may change in place. ``functions`` describes the functions and classes the
    cell defines by the globals their bodies use when called.
    """

    code_hash: CodeHash
    reads: frozenset[str] = frozenset()
    writes: frozenset[str] = frozenset()
    deleted: frozenset[str] = frozenset()
    mutated: frozenset[str] = frozenset()
    # Of ``mutated``, the names changed (if at all) only by calls: through which ones.
    call_mutations: Mapping[str, frozenset[CallSite]] = field(default_factory=dict, hash=False)
    # For each name the cell binds: the outside names whose objects it may share.
    alias_roots: Mapping[str, frozenset[str]] = field(default_factory=dict, hash=False)
    imports: frozenset[str] = frozenset()
    calls: frozenset[str] = frozenset()
    # Names iterated or passed to builtins that leave containers alone, by callee ("for":
    # iterated): they change only if they are iterators, or the builtin is shadowed.
    consumed: Mapping[str, frozenset[str]] = field(default_factory=dict, hash=False)
    functions: Mapping[str, FunctionInfo] = field(default_factory=dict, hash=False)
    magics: frozenset[str] = frozenset()
    writes_unknown: bool = False
    reads_unknown: bool = False
    silent: bool = False
    syntax_error: str | None = None
    # Names bound only by the cell's top-level imports, and not used by it: what each is
    # (``module`` for ``import module``, ``module:attr`` for ``from module import attr``); its
    # version follows from that.
    imported: Mapping[str, str] = field(default_factory=dict, hash=False)
    # The pipeline tasks the cell reads with ``nbcellar.upstream("name")`` (see
    # nbcellar.pipeline): outside inputs of its key; ``upstream_unknown``: a call whose task
    # name is not a literal.
    upstreams: frozenset[str] = frozenset()
    upstream_unknown: bool = False


def _hash_text(text: str) -> CodeHash:
    import xxhash

    return CodeHash(xxhash.xxh3_128_hexdigest((_SALT + text).encode("utf-8")))


def ends_with_semicolon(source: str) -> bool:
    """True when IPython would not display the cell's value (its last token is ``;``)."""
    if ";" not in source:
        return False
    last = None
    skip = {tokenize.NEWLINE, tokenize.NL, tokenize.COMMENT, tokenize.ENDMARKER, tokenize.DEDENT}
    try:
        for token in tokenize.generate_tokens(StringIO(source).readline):
            if token.type not in skip:
                last = token
    except (tokenize.TokenError, SyntaxError):
        return False
    return last is not None and last.string == ";"


@lru_cache(maxsize=4096)
def analyze_cell(source: str) -> CellAnalysis:
    """Analyse one code cell's source (IPython syntax allowed). Pure and cached by source."""
    python = python_source(source)
    try:
        tree = ast.parse(python)
    except SyntaxError as exc:
        where = f"line {exc.lineno}" if exc.lineno else "unknown line"
        return CellAnalysis(
            code_hash=_hash_text("syntax-error|" + source.strip()),
            syntax_error=f"{exc.msg} ({where})",
        )
    tree, effects = expose_magics(tree)
    use = module_names(tree)
    reads = use.reads | (effects.reads - use.writes)
    writes = use.writes | effects.writes
    return CellAnalysis(
        code_hash=_hash_text(ast.dump(tree, annotate_fields=False, include_attributes=False)),
        reads=frozenset(reads),
        writes=frozenset(writes),
        deleted=frozenset(use.deleted),
        mutated=frozenset(use.mutated),
        call_mutations={
            name: frozenset(sites)
            for name, sites in use.call_sites.items()
            if name in use.mutated and name not in use.mutated_directly
        },
        alias_roots={n: frozenset(r) for n, r in use.alias_roots.items()},
        imports=frozenset(use.imports),
        calls=frozenset(use.calls),
        consumed={callee: frozenset(names) for callee, names in use.consumed.items()},
        functions=dict(use.functions),
        magics=frozenset(effects.magics),
        writes_unknown=use.writes_unknown or effects.writes_unknown,
        reads_unknown=use.reads_unknown or effects.reads_unknown,
        silent=ends_with_semicolon(source),
        imported=imported_names(tree),
        upstreams=frozenset(n for n in upstream_calls(tree) if n is not None),
        upstream_unknown=None in upstream_calls(tree),
    )


def upstream_calls(tree: ast.AST) -> list[str | None]:
    """The task names of the ``<module>.upstream("name")`` calls in ``tree`` (None for a call
    whose name is not a string literal)."""
    found: list[str | None] = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "upstream"
            and isinstance(node.func.value, ast.Name)
        ):
            first = node.args[0] if node.args else None
            literal = isinstance(first, ast.Constant) and isinstance(first.value, str)
            found.append(first.value if literal else None)  # type: ignore[union-attr]
    return found


_NAMED_BINDINGS = (
    ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.ExceptHandler, ast.MatchAs,
    ast.MatchStar,
)  # fmt: skip


def imported_names(tree: ast.Module) -> dict[str, str]:
    """The names bound by top-level ``import`` statements, and neither bound nor used anywhere
    else in the cell."""
    found: dict[str, str] = {}
    top = {id(node) for node in tree.body if isinstance(node, ast.Import | ast.ImportFrom)}
    other: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom) and id(node) not in top:
            other.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.Name):  # (used by the cell: what it does with the module
            other.add(node.id)  # may change the module's state, so the cell's run versions it)
        elif isinstance(node, _NAMED_BINDINGS) and node.name:
            other.add(node.name)
    for node in tree.body:
        if isinstance(node, ast.Import):
            for alias in node.names:
                bound = alias.asname or alias.name.split(".")[0]
                found[bound] = alias.name if alias.asname else f"{alias.name}!"
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                if alias.name != "*":
                    found[alias.asname or alias.name] = f"{node.module}:{alias.name}"
    counts: dict[str, int] = {}
    for node in tree.body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            for alias in node.names:
                bound = alias.asname or alias.name.split(".")[0]
                counts[bound] = counts.get(bound, 0) + 1
    return {n: what for n, what in found.items() if n not in other and counts.get(n) == 1}


def code_hash(source: str) -> CodeHash:
    """The normalised hash of a cell: blind to comments, blank lines, formatting, quote style."""
    return analyze_cell(source).code_hash


def made_from(source: str, roots: Iterable[str]) -> frozenset[str]:
    """The names the cell binds by top-level statements reading ``roots`` or names so bound
    before them (``path = os.path.join(tmp.name, "x")`` is made from ``tmp``): a coarse flow
    of values through the cell, statement by statement, blind to what calls do."""
    try:
        tree = ast.parse(python_source(source))
    except SyntaxError:
        return frozenset()
    tainted = set(roots)
    found: set[str] = set()
    for statement in tree.body:
        loaded = {n.id for n in ast.walk(statement) if isinstance(n, ast.Name)
                  and isinstance(n.ctx, ast.Load)}  # fmt: skip
        if not loaded & tainted:
            continue
        bound = {n.id for n in ast.walk(statement) if isinstance(n, ast.Name)
                 and isinstance(n.ctx, ast.Store)}  # fmt: skip
        for node in ast.walk(statement):
            named = getattr(node, "name", None) if isinstance(node, _NAMED_BINDINGS) else None
            if isinstance(named, str):
                bound.add(named)
        tainted |= bound
        found |= bound
    return frozenset(found - set(roots))
