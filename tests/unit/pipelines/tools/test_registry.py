"""ToolRegistry and the Tool protocol: lookup, specs for LLM tool use, default tools."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from pipelines.errors import ToolError
from pipelines.providers.base import ToolSpec
from pipelines.tools import Tool, ToolRegistry, Workspace, default_tools
from pipelines.tools._args import validate_arguments

DEFAULT_NAMES = ["list_files", "read_file", "run_tests", "search", "static_analysis"]


class EchoTool:
    """A minimal tool for registry tests."""

    name = "echo"
    description = "Echo the text argument."
    parameters: Mapping[str, Any] = {
        "type": "object",
        "properties": {"text": {"type": "string"}},
        "required": ["text"],
        "additionalProperties": False,
    }

    async def run(self, args: Mapping[str, Any], workspace: Workspace) -> dict[str, Any]:
        params = validate_arguments(self.name, self.parameters, args)
        return {"text": params["text"], "root": str(workspace.root)}


def test_default_tools_names() -> None:
    """default_tools holds the five built-in tools."""
    assert default_tools().names() == DEFAULT_NAMES


def test_default_tools_are_tools() -> None:
    """Every built-in satisfies the Tool protocol and has a valid JSON Schema."""
    registry = default_tools()
    for name in registry.names():
        tool = registry.get(name)
        assert isinstance(tool, Tool)
        assert tool.name == name
        Draft202012Validator.check_schema(dict(tool.parameters))


def test_specs_are_tool_specs() -> None:
    """specs() returns JSON-serialisable ToolSpecs, sorted, detached from the tools."""
    registry = default_tools()
    specs = registry.specs()
    assert all(isinstance(spec, ToolSpec) for spec in specs)
    assert [spec.name for spec in specs] == DEFAULT_NAMES
    json.dumps(
        [{"name": s.name, "description": s.description, "parameters": s.parameters} for s in specs]
    )
    specs[0].parameters["properties"].clear()
    assert registry.get(specs[0].name).parameters["properties"]


def test_unknown_tool_lists_known_names() -> None:
    """get() of an unknown name raises ToolError(unknown_tool) listing the known names."""
    with pytest.raises(ToolError) as info:
        default_tools().get("rm_rf")
    assert info.value.code == "unknown_tool"
    assert "rm_rf" in str(info.value)
    for name in DEFAULT_NAMES:
        assert name in str(info.value)


def test_duplicate_registration_fails() -> None:
    """Registering a second tool under a taken name raises ToolError(duplicate_tool)."""
    registry = ToolRegistry([EchoTool()])
    with pytest.raises(ToolError) as info:
        registry.register(EchoTool())
    assert info.value.code == "duplicate_tool"


def test_container_protocol() -> None:
    """The registry supports len, in and iteration in name order."""
    registry = ToolRegistry([EchoTool()])
    assert len(registry) == 1
    assert "echo" in registry
    assert "nope" not in registry
    assert [tool.name for tool in registry] == ["echo"]
    assert ToolRegistry().names() == []


async def test_run_dispatches_by_name(tmp_path: Path) -> None:
    """run(name, args, workspace) calls the named tool with the workspace."""
    registry = ToolRegistry([EchoTool()])
    ws = Workspace(tmp_path)
    result = await registry.run("echo", {"text": "hi"}, ws)
    assert result == {"text": "hi", "root": str(ws.root)}


def test_validation_fills_defaults() -> None:
    """validate_arguments returns a copy with schema defaults filled in."""
    tool = default_tools().get("search")
    params = validate_arguments(tool.name, tool.parameters, {"pattern": "x"})
    assert params == {
        "pattern": "x",
        "path": ".",
        "glob": "**/*",
        "max_results": 200,
        "ignore_case": False,
    }


def test_validation_names_missing_and_unknown_arguments() -> None:
    """Missing and unexpected arguments are named in the ToolError."""
    schema = EchoTool.parameters
    with pytest.raises(ToolError, match="'text'") as info:
        validate_arguments("echo", schema, {})
    assert info.value.code == "invalid_arguments"
    with pytest.raises(ToolError, match="'colour'"):
        validate_arguments("echo", schema, {"text": "a", "colour": "red"})
