"""The ``run_tests`` tool: run pytest on the workspace in a subprocess with a deadline.

pytest runs as ``python -m pytest`` from our interpreter, with the workspace root
as working directory, ``PYTHONDONTWRITEBYTECODE=1`` and the cache plugin off, so
a run leaves no ``__pycache__`` or ``.pytest_cache`` behind. On timeout the whole
process group is killed and the result says ``timed_out: true``.

Extra ``args`` are allow-listed, because pytest options can load plugins or
write files (``-p``, ``--basetemp``, ``--junitxml``): only ``-k EXPR`` (or
``-kEXPR``), clusters of ``-x``/``-q``/``-v`` (``-xq``, ``-vv``) and test paths
(optionally with ``::node`` ids) that resolve inside the workspace.

A failing suite is a *result* (``passed: false``), not an error; ``ToolError``
is raised only for bad arguments or when pytest cannot run at all
(``pytest_unavailable``).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from typing import Any

from pipelines.errors import ToolError

from ._args import invalid_argument, validate_arguments
from ._proc import run_process
from .sandbox import Workspace

__all__ = ["PYTEST_COMMAND", "RunTestsTool", "parse_counts"]

# The command prefix; tests may replace it.
PYTEST_COMMAND: tuple[str, ...] = (sys.executable, "-m", "pytest")
OUTPUT_TAIL_CHARS = 4000

# What `python -m missing_module` prints, and nothing else (a failing test's own
# ModuleNotFoundError appears inside pytest's report, never alone).
_MODULE_MISSING = re.compile(r"[^\n]*: No module named \S+")
_FLAG_CLUSTER = re.compile(r"-[xqv]+")
_COUNT = re.compile(r"(\d+) (passed|failed|errors?|skipped)\b")
# pytest's last line: "==== 1 failed, 2 passed in 0.12s ====" or, with -q, without the rules.
_SUMMARY = re.compile(
    r"\b(passed|failed|errors?|skipped|deselected|xfailed|xpassed|no tests ran)\b.* in [\d.]+s"
)


class RunTestsTool:
    """``run_tests``: pytest over a path of the workspace; returns pass/fail and counts."""

    name = "run_tests"
    description = (
        "Run the workspace's pytest suite (or a path inside it) with a timeout. Extra "
        "args may be -k EXPR, -x, -q, -v (and clusters like -xq) or test paths inside "
        "the workspace. Returns {passed, exit_code, timed_out, counts: {passed, failed, "
        "error, skipped}, output_tail}."
    )
    parameters: Mapping[str, Any] = {
        "type": "object",
        "properties": {
            "path": {"type": "string", "default": "."},
            "timeout_s": {"type": "number", "exclusiveMinimum": 0, "maximum": 3600, "default": 120},
            "args": {"type": "array", "items": {"type": "string"}, "default": []},
        },
        "additionalProperties": False,
    }

    async def run(self, args: Mapping[str, Any], workspace: Workspace) -> dict[str, Any]:
        """Run pytest; raises ``ToolError`` for bad args or when pytest cannot start."""
        params = validate_arguments(self.name, self.parameters, args)
        extra = self._checked_args(params["args"], workspace)
        target = workspace.relative(workspace.resolve(params["path"], must_exist=True))
        argv = [*PYTEST_COMMAND, "-p", "no:cacheprovider", *extra, target]
        env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
        try:
            outcome = await run_process(
                argv,
                cwd=workspace.root,
                timeout_s=float(params["timeout_s"]),
                env=env,
                merge_stderr=True,
                keep_tail=OUTPUT_TAIL_CHARS * 4,  # bytes; generous for multi-byte text
            )
        except OSError as exc:
            raise ToolError(f"cannot start pytest: {exc}", code="pytest_unavailable") from exc
        output = outcome.stdout.decode("utf-8", errors="replace")
        if outcome.exit_code == 1 and _MODULE_MISSING.fullmatch(output.strip()):
            raise ToolError(
                f"pytest is not installed for {PYTEST_COMMAND[0]}", code="pytest_unavailable"
            )
        return {
            "passed": outcome.exit_code == 0,
            "exit_code": outcome.exit_code,
            "timed_out": outcome.timed_out,
            "counts": parse_counts(output),
            "output_tail": output[-OUTPUT_TAIL_CHARS:],
        }

    def _checked_args(self, extra: list[str], workspace: Workspace) -> list[str]:
        checked: list[str] = []
        expect_keyword = False
        for item in extra:
            if expect_keyword:
                checked.append(item)
                expect_keyword = False
            elif item == "-k":
                checked.append(item)
                expect_keyword = True
            elif item.startswith("-k") or _FLAG_CLUSTER.fullmatch(item):
                checked.append(item)
            elif item.startswith("-"):
                raise invalid_argument(
                    self.name, "args", f"option {item!r} is not allowed (only -k, -x, -q, -v)"
                )
            else:
                file_part, sep, node = item.partition("::")
                rel = workspace.relative(workspace.resolve(file_part, must_exist=True))
                checked.append(f"{rel}{sep}{node}")
        if expect_keyword:
            raise invalid_argument(self.name, "args", "-k needs an expression after it")
        return checked


def parse_counts(output: str) -> dict[str, int]:
    """Counts from pytest's final summary line; zeros when there is none (e.g. killed)."""
    counts = {"passed": 0, "failed": 0, "error": 0, "skipped": 0}
    for line in reversed(output.splitlines()):
        if _SUMMARY.search(line):
            for number, kind in _COUNT.findall(line):
                key = "error" if kind.startswith("error") else kind
                counts[key] += int(number)
            break
    return counts
