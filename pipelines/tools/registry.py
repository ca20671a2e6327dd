"""The tool protocol and the registry pipelines and LLM tool-use loops look tools up in.

A :class:`Tool` is a plain object with a ``name``, a ``description``, a JSON
Schema of its arguments (``parameters``) and an async ``run``. The registry maps
names to tools and turns them into :class:`~pipelines.providers.base.ToolSpec`
for providers.

Failure semantics: ``run`` returns a JSON-serialisable dict; it raises
``ToolError`` for bad arguments (``invalid_arguments``) or failures, and
``SandboxError`` when a path escapes the workspace. Nothing is retried here:
``ToolError.retryable`` tells the caller whether trying again can help.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Protocol, runtime_checkable

from pipelines.errors import ToolError
from pipelines.providers.base import ToolSpec

from .files import ListFilesTool, ReadFileTool, SearchTool
from .run_tests import RunTestsTool
from .sandbox import Workspace
from .static_analysis import StaticAnalysisTool

__all__ = ["Tool", "ToolRegistry", "default_tools"]


@runtime_checkable
class Tool(Protocol):
    """Something a pipeline step or a model can call by name, inside a workspace."""

    name: str
    description: str
    parameters: Mapping[str, Any]

    async def run(self, args: Mapping[str, Any], workspace: Workspace) -> dict[str, Any]:
        """Do the work; JSON-serialisable result; raises ``ToolError`` or ``SandboxError``."""
        ...


class ToolRegistry:
    """Tools by name. Registering a second tool under a taken name is an error."""

    def __init__(self, tools: Iterable[Tool] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        for tool in tools:
            self.register(tool)

    def register(self, tool: Tool) -> None:
        """Add ``tool``; raises ``ToolError(code="duplicate_tool")`` if its name is taken."""
        if tool.name in self._tools:
            raise ToolError(
                f"a tool named {tool.name!r} is already registered", code="duplicate_tool"
            )
        self._tools[tool.name] = tool

    def get(self, name: str) -> Tool:
        """The tool called ``name``; ``ToolError(code="unknown_tool")`` lists the known ones."""
        try:
            return self._tools[name]
        except KeyError:
            known = ", ".join(self.names()) or "none"
            raise ToolError(
                f"unknown tool {name!r}; known tools: {known}", code="unknown_tool"
            ) from None

    def names(self) -> list[str]:
        """Registered tool names, sorted."""
        return sorted(self._tools)

    def specs(self) -> list[ToolSpec]:
        """One :class:`ToolSpec` per tool, sorted by name, for LLM tool use."""
        return [
            # A deep copy: a provider adapter mutating its schema must not change the tool's.
            ToolSpec(tool.name, tool.description, copy.deepcopy(dict(tool.parameters)))
            for tool in (self._tools[name] for name in self.names())
        ]

    async def run(self, name: str, args: Mapping[str, Any], workspace: Workspace) -> dict[str, Any]:
        """Look ``name`` up and run it: ``get(name).run(args, workspace)``."""
        return await self.get(name).run(args, workspace)

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __iter__(self) -> Iterator[Tool]:
        return iter([self._tools[name] for name in self.names()])

    def __len__(self) -> int:
        return len(self._tools)


def default_tools() -> ToolRegistry:
    """A fresh registry with the built-in tools: static_analysis, read_file, list_files,
    search and run_tests."""
    return ToolRegistry(
        [StaticAnalysisTool(), ReadFileTool(), ListFilesTool(), SearchTool(), RunTestsTool()]
    )
