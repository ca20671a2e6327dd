"""Mechanical fixes for findings whose repair needs no judgement.

Used when no LLM is available (the offline provider), and to check an LLM's
proposals against: each fixer turns one finding into an edit of the file's
lines, or declines. Supported: ``E711`` (``== None``), ``F401`` (an unused
single-name import), ``EL004`` (a mutable default argument) and ``EL005``
(``eval`` → ``ast.literal_eval``). Everything else is left to the model.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable

from actors.agents.models import Finding

__all__ = ["FIXABLE_RULES", "fix_file"]

Fixer = Callable[[list[str], Finding, ast.Module], str | None]


def _fix_e711(lines: list[str], finding: Finding, _tree: ast.Module) -> str | None:
    index = (finding.line or 0) - 1
    new = re.sub(r"!=\s*None\b", "is not None", lines[index])
    new = re.sub(r"==\s*None\b", "is None", new)
    if new == lines[index]:
        return None
    lines[index] = new
    return "compare to None with `is`"


def _fix_f401(lines: list[str], finding: Finding, _tree: ast.Module) -> str | None:
    index = (finding.line or 0) - 1
    if not re.fullmatch(r"\s*(import \w+|from [\w.]+ import \w+)\s*(#.*)?\n?", lines[index]):
        return None  # multi-name imports need a judgement about which name goes
    lines[index] = ""
    return "remove the unused import"


def _function_at(tree: ast.Module, line: int) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and (
            node.lineno <= line <= (node.body[0].lineno - 1 if node.body else node.lineno)
        ):
            return node
    return None


def _fix_el004(lines: list[str], finding: Finding, tree: ast.Module) -> str | None:
    func = _function_at(tree, finding.line or 0)
    if func is None:
        return None
    args = func.args
    positional = [*args.posonlyargs, *args.args]
    pairs = list(
        zip(positional[len(positional) - len(args.defaults) :], args.defaults, strict=True)
    )
    pairs += [(a, d) for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True) if d]
    mutable = [
        (arg, default)
        for arg, default in pairs
        if isinstance(default, ast.List | ast.Dict | ast.Set) and default.lineno == finding.line
    ]
    if not mutable:
        return None
    arg, default = mutable[0]
    row = default.lineno - 1
    line = lines[row]
    literal = line[default.col_offset : default.end_col_offset]
    lines[row] = line[: default.col_offset] + "None" + line[default.end_col_offset :]
    body = func.body
    first = body[1] if len(body) > 1 and _is_docstring(body[0]) else body[0]
    indent = re.match(r"\s*", lines[first.lineno - 1]).group(0)  # type: ignore[union-attr]
    guard = f"{indent}if {arg.arg} is None:\n{indent}    {arg.arg} = {literal}\n"
    lines[first.lineno - 1] = guard + lines[first.lineno - 1]
    return f"default `{arg.arg}` to None and create the {literal} inside the function"


def _is_docstring(node: ast.stmt) -> bool:
    return (
        isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    )


def _fix_el005(lines: list[str], finding: Finding, tree: ast.Module) -> str | None:
    index = (finding.line or 0) - 1
    new = re.sub(r"(?<![\w.])eval\(", "ast.literal_eval(", lines[index], count=1)
    if new == lines[index]:
        return None
    lines[index] = new
    imports_ast = any(
        isinstance(n, ast.Import) and any(a.name == "ast" for a in n.names) for n in tree.body
    )
    if not imports_ast:
        first_import = next(
            (n.lineno for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)), None
        )
        row = (first_import or 1) - 1
        lines[row] = "import ast\n" + lines[row]
    return "parse the literal with ast.literal_eval instead of eval"


_FIXERS: dict[str, Fixer] = {
    "E711": _fix_e711,
    "F401": _fix_f401,
    "EL004": _fix_el004,
    "EL005": _fix_el005,
}
FIXABLE_RULES = frozenset(_FIXERS)


def fix_file(text: str, findings: list[Finding]) -> tuple[str, list[tuple[Finding, str]]]:
    """``text`` with every fixable finding fixed, and the (finding, what was done) pairs.

    Fixes are applied bottom-up so earlier line numbers stay valid; a finding whose
    line no longer says what the rule expects is skipped.
    """
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return text, []
    lines = text.splitlines(keepends=True)
    done: list[tuple[Finding, str]] = []
    ordered = sorted(
        (f for f in findings if f.rule in _FIXERS and f.line and f.line <= len(lines)),
        key=lambda f: f.line or 0,
        reverse=True,
    )
    for finding in ordered:
        what = _FIXERS[finding.rule or ""](lines, finding, tree)
        if what:
            done.append((finding, what))
    done.reverse()
    return "".join(lines), done
