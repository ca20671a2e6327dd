"""Our own Python checks (rules ``EL0xx``), run on the ``ast`` of each file.

They cover what ruff does not, or what we want stated in review language:

=======  ========  ==========================================================
rule     severity  meaning
=======  ========  ==========================================================
EL000    error     the file does not parse (syntax error, NUL byte, unreadable)
EL001    warning   broad ``except:`` / ``except Exception`` / ``BaseException``
                   whose handler never re-raises: the error is swallowed
EL002    warning   file or network I/O not inside a ``try`` with a handler
EL003    info      function longer than ``max_function_lines``
EL004    error     mutable default argument (shared between calls)
EL005    error     ``eval``/``exec``: runs arbitrary code
=======  ========  ==========================================================

EL002 is a heuristic: it sees only the call site, not whether a caller handles
the error. It recognises ``open``/``io.open``/``codecs.open``, ``json.load``-style
file readers, ``Path.read_text``/``write_text``/``read_bytes``/``write_bytes``,
``.open()`` on something path-like, ``requests``/``httpx`` requests, ``urlopen``
and socket connections. Code in a ``with`` block whose context manager was
already reported is not reported again (one finding per unguarded block), and
test files are exempt (a test wants I/O errors to fail loudly).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator

from .findings import Finding, Severity

__all__ = ["RULES", "check_source", "is_test_file"]

RULES: dict[str, tuple[Severity, str]] = {
    "EL000": ("error", "file does not parse"),
    "EL001": ("warning", "broad except swallows the error"),
    "EL002": ("warning", "I/O without error handling"),
    "EL003": ("info", "function too long"),
    "EL004": ("error", "mutable default argument"),
    "EL005": ("error", "eval/exec runs arbitrary code"),
}

_BROAD = frozenset({"Exception", "BaseException"})
_IO_FUNCTIONS = frozenset(
    {
        "open",
        "io.open",
        "codecs.open",
        "os.open",
        "json.load",
        "pickle.load",
        "marshal.load",
        "tomllib.load",
        "urlopen",
        "urllib.request.urlopen",
        "urllib.request.urlretrieve",
        "socket.socket",
        "socket.create_connection",
        "socket.create_server",
        "socket.getaddrinfo",
        "socket.gethostbyname",
    }
)
_HTTP_CLIENTS = frozenset({"requests", "httpx"})
_HTTP_METHODS = frozenset({"get", "post", "put", "patch", "delete", "head", "options", "request"})
_PATH_IO_METHODS = frozenset({"read_text", "write_text", "read_bytes", "write_bytes"})
_MUTABLE_FACTORIES = frozenset(
    {"list", "dict", "set", "bytearray", "defaultdict", "OrderedDict", "deque", "Counter"}
)
_MUTABLE_LITERALS = (ast.List, ast.Dict, ast.Set, ast.ListComp, ast.DictComp, ast.SetComp)
_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)
_FILE_RISK = "missing file, permissions, bad content"
_NETWORK_RISK = "connection errors, timeouts"
_EXEC_BUILTINS = frozenset({"eval", "exec", "builtins.eval", "builtins.exec"})


def is_test_file(rel: str) -> bool:
    """Whether a workspace-relative path is test code (looser rules apply)."""
    parts = rel.split("/")
    name = parts[-1]
    return (
        name.startswith("test_")
        or name.endswith("_test.py")
        or name == "conftest.py"
        or any(part in {"tests", "test"} for part in parts[:-1])
    )


def check_source(source: bytes, rel: str, *, max_function_lines: int) -> list[Finding]:
    """Run every EL rule on one file's bytes; a parse failure yields one EL000 finding."""
    try:
        tree = ast.parse(source, filename=rel)
    except SyntaxError as exc:
        line = exc.lineno or 1
        return [_finding(rel, line, exc.offset or 0, "EL000", f"syntax error: {exc.msg}")]
    except (ValueError, RecursionError, MemoryError) as exc:  # NUL bytes, absurd nesting
        return [_finding(rel, 1, 0, "EL000", f"cannot parse: {exc}")]
    checker = _Checker(rel, max_function_lines, is_test_file(rel))
    checker.visit(tree)
    return checker.findings


def _finding(rel: str, line: int, column: int, rule: str, message: str) -> Finding:
    return Finding(rel, line, rule, RULES[rule][0], message, column=column, source="ast")


class _Checker(ast.NodeVisitor):
    """One pass over a module; ``findings`` collects what the rules report."""

    def __init__(self, rel: str, max_lines: int, is_test: bool) -> None:
        self.rel = rel
        self.max_lines = max_lines
        self.is_test = is_test
        self.findings: list[Finding] = []
        # > 0 while inside a try body that has a handler, or a with block already reported.
        self._guarded = 0
        self._seen_io_lines: set[int] = set()

    def _add(self, node: ast.AST, rule: str, message: str) -> None:
        line = getattr(node, "lineno", 1)
        column = getattr(node, "col_offset", -1) + 1
        self.findings.append(_finding(self.rel, line, column, rule, message))

    # ----------------------------------------------------------------- structure

    def visit_Try(self, node: ast.Try | ast.TryStar) -> None:
        guarded = 1 if node.handlers else 0
        self._guarded += guarded
        self._visit_all(node.body)
        self._guarded -= guarded
        for handler in node.handlers:
            self.visit(handler)
        self._visit_all(node.orelse)
        self._visit_all(node.finalbody)

    def visit_TryStar(self, node: ast.TryStar) -> None:
        self.visit_Try(node)

    def visit_With(self, node: ast.With | ast.AsyncWith) -> None:
        reported = False
        for item in node.items:
            before = len(self.findings)
            self.visit(item)
            reported |= any(f.rule == "EL002" for f in self.findings[before:])
        self._guarded += int(reported)
        self._visit_all(node.body)
        self._guarded -= int(reported)

    def visit_AsyncWith(self, node: ast.AsyncWith) -> None:
        self.visit_With(node)

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        length = (node.end_lineno or node.lineno) - node.lineno + 1
        if length > self.max_lines:
            self._add(
                node,
                "EL003",
                f"function `{node.name}` is {length} lines long (limit {self.max_lines}); "
                "split it into smaller functions",
            )
        self._check_defaults(node.args)
        self._visit_all(node.decorator_list)
        self.visit(node.args)
        if node.returns is not None:
            self.visit(node.returns)
        # The body runs later, when the function is called: an enclosing try does not guard it.
        saved, self._guarded = self._guarded, 0
        self._visit_all(node.body)
        self._guarded = saved

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> None:
        self.visit_FunctionDef(node)

    def visit_Lambda(self, node: ast.Lambda) -> None:
        self._check_defaults(node.args)
        saved, self._guarded = self._guarded, 0
        self.generic_visit(node)
        self._guarded = saved

    # --------------------------------------------------------------------- rules

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        broad = _broad_name(node.type)
        if broad is not None and not _reraises(node.body):
            if broad == "":
                message = (
                    "bare `except:` swallows every error, even KeyboardInterrupt and "
                    "SystemExit; catch the specific exceptions or re-raise"
                )
            else:
                message = (
                    f"`except {broad}` swallows the error without re-raising; catch the "
                    "specific exceptions you expect or re-raise"
                )
            self._add(node, "EL001", message)
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        name = _dotted(node.func)
        if name in _EXEC_BUILTINS:
            short = name.rsplit(".", 1)[-1]
            self._add(
                node,
                "EL005",
                f"`{short}()` executes arbitrary code; parse the input instead "
                "(int(), json.loads(), ast.literal_eval())",
            )
        if not self.is_test and not self._guarded and node.lineno not in self._seen_io_lines:
            what = _io_call(node, name)
            if what is not None:
                self._seen_io_lines.add(node.lineno)
                risk = _NETWORK_RISK if "network" in what else _FILE_RISK
                self._add(
                    node,
                    "EL002",
                    f"{what} can fail ({risk}) and is not inside a try/except; "
                    "handle the error or document that callers must",
                )
        self.generic_visit(node)

    def _check_defaults(self, args: ast.arguments) -> None:
        for default in [*args.defaults, *(d for d in args.kw_defaults if d is not None)]:
            kind = _mutable_kind(default)
            if kind is not None:
                self._add(
                    default,
                    "EL004",
                    f"mutable default argument ({kind}) is created once and shared by every "
                    "call; default to None and create it inside the function",
                )

    def _visit_all(self, nodes: list[ast.stmt] | list[ast.expr]) -> None:
        for child in nodes:
            self.visit(child)


def _dotted(node: ast.expr) -> str | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def _broad_name(node: ast.expr | None) -> str | None:
    """'' for a bare except, the broad class name if one is caught, else None."""
    if node is None:
        return ""
    if isinstance(node, ast.Tuple):
        for element in node.elts:
            found = _broad_name(element)
            if found:
                return found
        return None
    name = _dotted(node)
    if name is not None and name.rsplit(".", 1)[-1] in _BROAD and name.count(".") <= 1:
        return name.rsplit(".", 1)[-1]
    return None


def _reraises(body: list[ast.stmt]) -> bool:
    return any(isinstance(node, ast.Raise) for node in _walk_same_scope(body))


def _walk_same_scope(body: list[ast.stmt]) -> Iterator[ast.AST]:
    # A raise inside a nested def/class/lambda does not run when the handler does.
    stack: list[ast.AST] = [node for node in body if not isinstance(node, _SCOPES)]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(
            child for child in ast.iter_child_nodes(node) if not isinstance(child, _SCOPES)
        )


def _io_call(node: ast.Call, name: str | None) -> str | None:
    """A short description of the I/O this call does, or None if it is not I/O."""
    if name in _IO_FUNCTIONS:
        network = name.startswith(("socket.", "urllib.")) or name == "urlopen"
        return f"network call `{name}()`" if network else f"`{name}()`"
    if name is not None and "." in name:
        module, _, method = name.rpartition(".")
        if module in _HTTP_CLIENTS and method in _HTTP_METHODS:
            return f"network call `{name}()`"
    func = node.func
    if isinstance(func, ast.Attribute):
        if func.attr in _PATH_IO_METHODS:
            return f"`.{func.attr}()`"
        if func.attr == "open" and _looks_like_path(func.value):
            return "`.open()`"
    return None


def _looks_like_path(node: ast.expr) -> bool:
    if isinstance(node, ast.Call):
        callee = _dotted(node.func)
        return callee is not None and callee.rsplit(".", 1)[-1] in {"Path", "PurePath"}
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
        return True  # base / "name": pathlib's join operator
    name = _dotted(node)
    if name is None:
        return False
    last = name.rsplit(".", 1)[-1].lower()
    return "path" in last or "file" in last


def _mutable_kind(node: ast.expr) -> str | None:
    if isinstance(node, _MUTABLE_LITERALS):
        return {
            ast.List: "list",
            ast.Dict: "dict",
            ast.Set: "set",
            ast.ListComp: "list",
            ast.DictComp: "dict",
            ast.SetComp: "set",
        }[type(node)]
    if isinstance(node, ast.Call):
        callee = _dotted(node.func)
        if callee is not None and callee.rsplit(".", 1)[-1] in _MUTABLE_FACTORIES:
            return f"{callee.rsplit('.', 1)[-1]}()"
    return None
