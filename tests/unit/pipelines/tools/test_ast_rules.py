"""Our EL rules on small snippets: what each one flags and what it leaves alone."""

from __future__ import annotations

import textwrap

import pytest

from pipelines.tools._ast_rules import RULES, check_source, is_test_file


def rules_at(source: str, rel: str = "mod.py", max_lines: int = 50) -> list[tuple[int, str]]:
    findings = check_source(textwrap.dedent(source).encode(), rel, max_function_lines=max_lines)
    return [(f.line, f.rule) for f in findings]


@pytest.mark.parametrize(
    "clause",
    [
        "except:",
        "except Exception:",
        "except BaseException as e:",
        "except (ValueError, Exception):",
        "except builtins.Exception:",
    ],
)
def test_el001_broad_except_that_swallows(clause: str) -> None:
    """A broad handler without a raise is EL001 at the except line."""
    source = f"try:\n    x = 1\n{clause}\n    x = 2\n"
    assert rules_at(source) == [(3, "EL001")]


def test_el001_not_for_reraise_or_specific() -> None:
    """Re-raising handlers and specific exception types are not EL001."""
    source = """\
    try:
        x = 1
    except Exception as exc:
        raise RuntimeError("wrapped") from exc
    try:
        x = 1
    except ValueError:
        pass
    try:
        x = 1
    except:
        if x:
            raise
    """
    assert rules_at(source) == []


def test_el001_raise_in_nested_function_does_not_count() -> None:
    """A raise inside a def in the handler does not run with it: still EL001."""
    source = """\
    try:
        x = 1
    except Exception:
        def later():
            raise ValueError
    """
    assert rules_at(source) == [(3, "EL001")]


@pytest.mark.parametrize(
    "call",
    [
        "open('f')",
        "io.open('f')",
        "json.load(fh)",
        "Path('f').read_text()",
        "cfg.write_bytes(b'')",
        "Path('f').open()",
        "(base / 'f').open()",
        "config_path.open()",
        "requests.get(url)",
        "httpx.post(url)",
        "urllib.request.urlopen(url)",
        "socket.create_connection(addr)",
    ],
)
def test_el002_unguarded_io(call: str) -> None:
    """File and network I/O outside a try with a handler is EL002."""
    assert rules_at(f"def f():\n    return {call}\n") == [(2, "EL002")]


def test_el002_not_for_non_io_calls() -> None:
    """Ordinary calls and .open() on non-path things are not EL002."""
    source = """\
    def f(img, d):
        d.get('k')
        json.loads('1')
        img.open()
        webbrowser.open(u)
    """
    assert rules_at(source) == []


def test_el002_guarded_by_try_with_handler() -> None:
    """I/O in a try body that has a handler is not EL002."""
    source = """\
    def f():
        try:
            with open('f') as fh:
                return json.load(fh)
        except OSError:
            return None
    """
    assert rules_at(source) == []


def test_el002_try_finally_does_not_guard() -> None:
    """A try with only finally does not handle the error: still EL002."""
    source = "def f():\n    try:\n        return open('f')\n    finally:\n        pass\n"
    assert rules_at(source) == [(3, "EL002")]


def test_el002_handler_and_else_are_not_guarded() -> None:
    """I/O in the except or else clause is not protected by that try."""
    source = """\
    try:
        x = 1
    except KeyError:
        open('a')
    else:
        open('b')
    """
    assert rules_at(source) == [(4, "EL002"), (6, "EL002")]


def test_el002_function_defined_in_try_is_not_guarded() -> None:
    """A function defined inside a try body runs later: its I/O is EL002."""
    source = "try:\n    def f():\n        return open('f')\nexcept OSError:\n    pass\n"
    assert rules_at(source) == [(3, "EL002")]


def test_el002_one_finding_per_unguarded_with_block() -> None:
    """I/O inside a with block already reported is not reported again."""
    source = "def f():\n    with open('f') as fh:\n        return json.load(fh)\n"
    assert rules_at(source) == [(2, "EL002")]


def test_el002_exempt_in_tests() -> None:
    """Test files may do I/O without handling it."""
    assert rules_at("def test_x():\n    open('f')\n", rel="tests/test_x.py") == []


def test_el003_long_function() -> None:
    """A function longer than the limit is EL003 at its def line; the limit itself is fine."""
    body = "".join(f"    x{i} = {i}\n" for i in range(4))
    source = f"def short():\n{body}\n\nasync def longer():\n{body}    return 1\n"
    assert rules_at(source, max_lines=5) == [(8, "EL003")]


@pytest.mark.parametrize(
    "signature",
    [
        "def f(a, b=[]):",
        "def f(a, b={}):",
        "def f(a, b={1}):",
        "def f(a, *, b=list()):",
        "def f(a, b=collections.defaultdict(list)):",
        "def f(a, b=[i for i in range(3)]):",
    ],
)
def test_el004_mutable_default(signature: str) -> None:
    """List/dict/set literals, comprehensions and factory calls as defaults are EL004."""
    assert rules_at(f"{signature}\n    return b\n") == [(1, "EL004")]


def test_el004_immutable_defaults_are_fine() -> None:
    """None, tuples, frozensets and numbers as defaults are not EL004."""
    assert rules_at("def f(a=None, b=(), c=frozenset(), d=0):\n    return a\n") == []


def test_el004_lambda_default() -> None:
    """Lambda defaults are checked too."""
    assert rules_at("f = lambda a=[]: a\n") == [(1, "EL004")]


def test_el005_eval_and_exec() -> None:
    """eval() and exec() calls are EL005."""
    assert rules_at("x = eval(s)\nexec(code)\ny = literal_eval(s)\n") == [
        (1, "EL005"),
        (2, "EL005"),
    ]


def test_el000_syntax_error_has_line() -> None:
    """A syntax error becomes one EL000 at its line."""
    assert rules_at("a = 1\nb = (\n") == [(2, "EL000")]


def test_every_rule_has_a_severity() -> None:
    """Every EL rule has a documented severity and meaning."""
    assert set(RULES) == {"EL000", "EL001", "EL002", "EL003", "EL004", "EL005"}
    assert all(severity in {"error", "warning", "info"} for severity, _ in RULES.values())


@pytest.mark.parametrize(
    ("rel", "expected"),
    [
        ("tests/test_a.py", True),
        ("pkg/a_test.py", True),
        ("conftest.py", True),
        ("test/helpers.py", True),
        ("src/app.py", False),
        ("contest.py", False),
    ],
)
def test_is_test_file(rel: str, expected: bool) -> None:
    """Test files are recognised by name or by a tests/ directory."""
    assert is_test_file(rel) is expected
