"""Sandboxed tools that pipelines and LLM tool-use loops run inside a workspace.

:class:`Workspace` confines paths; :class:`ToolRegistry` maps names to
:class:`Tool` objects; :func:`default_tools` holds the built-ins
(``static_analysis``, ``read_file``, ``list_files``, ``search``, ``run_tests``).
Analysis results are lists of :class:`Finding`.
"""

from __future__ import annotations

from .files import ListFilesTool, ReadFileTool, SearchTool
from .findings import SEVERITIES, Finding, Severity, summarize
from .registry import Tool, ToolRegistry, default_tools
from .run_tests import RunTestsTool
from .sandbox import Workspace
from .static_analysis import StaticAnalysisTool

__all__ = [
    "SEVERITIES",
    "Finding",
    "ListFilesTool",
    "ReadFileTool",
    "RunTestsTool",
    "SearchTool",
    "Severity",
    "StaticAnalysisTool",
    "Tool",
    "ToolRegistry",
    "Workspace",
    "default_tools",
    "summarize",
]
