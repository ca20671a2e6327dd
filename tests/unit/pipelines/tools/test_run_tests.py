"""run_tests: pass, fail, timeout (process group killed), counts and argument allow-list."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from pipelines.errors import SandboxError, ToolError
from pipelines.tools import RunTestsTool, Workspace
from pipelines.tools import run_tests as run_tests_module

PASSING = """\
import pytest


def test_one():
    assert 1 + 1 == 2


def test_two():
    assert "a".upper() == "A"


@pytest.mark.skip(reason="not today")
def test_skipped():
    pass
"""

FAILING = """\
import pytest


@pytest.fixture
def broken():
    raise RuntimeError("fixture exploded")


def test_ok():
    assert True


def test_bad():
    assert 1 == 2


def test_uses_broken(broken):
    pass
"""


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return Workspace(tmp_path / "suite", create=True)


def write(ws: Workspace, rel: str, source: str) -> None:
    path = ws.root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(source, encoding="utf-8")


async def run(ws: Workspace, **args: Any) -> dict[str, Any]:
    result: dict[str, Any] = await RunTestsTool().run(args, ws)
    json.dumps(result)  # must be JSON-serialisable
    return result


async def test_passing_suite(ws: Workspace) -> None:
    """A green suite reports passed, exit code 0 and its counts."""
    write(ws, "tests/test_ok.py", PASSING)
    result = await run(ws)
    assert result["passed"] is True
    assert result["exit_code"] == 0
    assert result["timed_out"] is False
    assert result["counts"] == {"passed": 2, "failed": 0, "error": 0, "skipped": 1}
    assert "2 passed, 1 skipped" in result["output_tail"]


async def test_failing_suite(ws: Workspace) -> None:
    """A red suite is a result, not an error: passed false with failed and error counts."""
    write(ws, "test_bad.py", FAILING)
    result = await run(ws)
    assert result["passed"] is False
    assert result["exit_code"] == 1
    assert result["counts"] == {"passed": 1, "failed": 1, "error": 1, "skipped": 0}
    assert "assert 1 == 2" in result["output_tail"]


async def test_run_leaves_no_bytecode_or_cache(ws: Workspace) -> None:
    """PYTHONDONTWRITEBYTECODE and no cacheprovider: the workspace stays clean."""
    write(ws, "tests/test_ok.py", PASSING)
    await run(ws)
    leftovers = [p.name for p in ws.root.rglob("*") if p.name in {"__pycache__", ".pytest_cache"}]
    assert leftovers == []


async def test_timeout_kills_the_process_group(ws: Workspace) -> None:
    """On timeout the result says timed_out, and the suite's own children are killed too."""
    pid_file = ws.root / "child.pid"
    write(
        ws,
        "test_slow.py",
        "import subprocess, sys, time\n\n\ndef test_sleeps():\n"
        "    child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)'])\n"
        f"    open({str(pid_file)!r}, 'w').write(str(child.pid))\n"
        "    time.sleep(60)\n",
    )
    # Long enough for pytest to start and spawn the child on a loaded 2-core machine
    # (1 s was not: the child had not been started when the timeout hit).
    result = await run(ws, timeout_s=6)
    assert result["timed_out"] is True
    assert result["passed"] is False
    assert result["exit_code"] is None
    child = int(pid_file.read_text(encoding="utf-8"))
    await wait_until_dead(child)


async def wait_until_dead(pid: int) -> None:
    """Wait (bounded) for pid to exit: a pidfd becomes readable when the process dies."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return  # already gone and reaped
    exited = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_reader(fd, exited.set)
    try:
        async with asyncio.timeout(5):
            await exited.wait()
    finally:
        loop.remove_reader(fd)
        os.close(fd)


async def test_no_tests_collected(ws: Workspace) -> None:
    """An empty suite is not a pass (pytest exit code 5)."""
    result = await run(ws)
    assert result["passed"] is False
    assert result["exit_code"] == 5


async def test_allowed_args_and_node_ids(ws: Workspace) -> None:
    """-k, -x/-q/-v clusters and node ids inside the workspace are passed to pytest."""
    write(ws, "tests/test_ok.py", PASSING)
    result = await run(ws, args=["-k", "one", "-xq", "-vv"])
    assert result["counts"]["passed"] == 1
    result = await run(ws, args=["-ktwo", "tests/test_ok.py::test_two"], path="tests")
    assert result["counts"]["passed"] == 1
    assert result["passed"] is True


@pytest.mark.parametrize(
    "args",
    [["-p", "evil"], ["--junitxml=out.xml"], ["-s"], ["-xp", "evil"], ["-k"], ["--basetemp=/tmp"]],
)
async def test_disallowed_args(ws: Workspace, args: list[str]) -> None:
    """Options outside the allow-list raise ToolError(invalid_arguments) naming 'args'."""
    with pytest.raises(ToolError) as info:
        await run(ws, args=args)
    assert info.value.code == "invalid_arguments"
    assert "'args'" in str(info.value)


async def test_test_paths_stay_inside(ws: Workspace, tmp_path: Path) -> None:
    """Test paths outside the workspace raise SandboxError; missing ones not_found."""
    with pytest.raises(SandboxError):
        await run(ws, args=[str(tmp_path)])
    with pytest.raises(SandboxError):
        await run(ws, path="..")
    with pytest.raises(ToolError) as info:
        await run(ws, args=["tests/test_missing.py"])
    assert info.value.code == "not_found"


@pytest.mark.parametrize(
    ("args", "argument"),
    [({"timeout_s": 0}, "timeout_s"), ({"args": "-x"}, "args"), ({"args": [1]}, "args.0")],
)
async def test_invalid_arguments(ws: Workspace, args: dict[str, Any], argument: str) -> None:
    """Schema violations raise ToolError(invalid_arguments) naming the argument."""
    with pytest.raises(ToolError) as info:
        await RunTestsTool().run(args, ws)
    assert info.value.code == "invalid_arguments"
    assert repr(argument) in str(info.value)


async def test_pytest_missing(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    """A pytest that cannot be run raises ToolError(pytest_unavailable)."""
    monkeypatch.setattr(
        run_tests_module, "PYTEST_COMMAND", (sys.executable, "-m", "no_such_pytest")
    )
    with pytest.raises(ToolError) as info:
        await run(ws)
    assert info.value.code == "pytest_unavailable"
    monkeypatch.setattr(run_tests_module, "PYTEST_COMMAND", ("/nonexistent/python",))
    with pytest.raises(ToolError) as info:
        await run(ws)
    assert info.value.code == "pytest_unavailable"


async def test_module_error_inside_a_test_is_a_failure(ws: Workspace) -> None:
    """A test failing with ModuleNotFoundError is a failed result, not pytest_unavailable."""
    write(ws, "test_imp.py", "def test_imp():\n    import no_such_module_xyz\n")
    result = await run(ws)
    assert result["counts"]["failed"] == 1


@pytest.mark.parametrize(
    ("line", "counts"),
    [
        ("==== 3 passed, 1 warning in 0.10s ====", {"passed": 3}),
        ("1 failed, 2 passed, 2 errors in 1.2s", {"failed": 1, "passed": 2, "error": 2}),
        ("==== no tests ran in 0.01s ====", {}),
        ("", {}),
    ],
)
def test_parse_counts(line: str, counts: dict[str, int]) -> None:
    """The summary line is parsed into the four counts, zero when absent."""
    expected = {"passed": 0, "failed": 0, "error": 0, "skipped": 0, **counts}
    assert run_tests_module.parse_counts(f"collected\n{line}\n") == expected
