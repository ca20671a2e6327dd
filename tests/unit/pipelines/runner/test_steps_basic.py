"""test_echo, set_variable, tool, data_transform and file_ops steps."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipelines.errors import SandboxError, StepFailed

from .conftest import RunPipeline


async def test_test_echo_returns_value_and_merges_mappings(run_yaml: RunPipeline) -> None:
    """test_echo returns its value; a mapping's keys are addressable directly."""
    results = await run_yaml("""\
        workflow:
          name: t
          steps:
            - name: e
              type: test_echo
              value: {n: 2, tags: [a]}
        """)
    assert results["e"]["value"] == {"n": 2, "tags": ["a"]}
    assert results["e"]["n"] == 2 and results["e"]["success"] is True


async def test_test_echo_fail_stops_the_run_naming_step_and_type(run_yaml: RunPipeline) -> None:
    """A failing step raises StepFailed naming the step and its type."""
    with pytest.raises(StepFailed) as info:
        await run_yaml("""\
            workflow:
              name: t
              steps:
                - name: boom
                  type: test_echo
                  fail: true
                  message: planned failure
            """)
    assert info.value.step == "boom" and info.value.step_type == "test_echo"
    assert "planned failure" in str(info.value) and "boom" in str(info.value)


async def test_set_variable_renders_and_later_steps_read_state(run_yaml: RunPipeline) -> None:
    """Variables keep their rendered types and are readable via state.x and bare names."""
    results = await run_yaml("""\
        workflow:
          name: t
          global_vars: {team: core}
          steps:
            - name: v
              type: set_variable
              variables:
                total: "{{add(2, 3)}}"
                label: "team {{global_vars.team}}"
            - name: read
              type: test_echo
              condition: "total == 5"
              value: "{{state.label}} has {{total}}"
        """)
    assert results["v"]["variables"] == {"total": 5, "label": "team core"}
    assert results["read"]["value"] == "team core has 5"


async def test_tool_step_runs_a_registered_tool(run_yaml: RunPipeline, tmp_path: Path) -> None:
    """A tool step runs the tool inside the workspace and returns its structured output."""
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "m.py").write_text("def f(x=[]):\n    return x\n")
    results = await run_yaml("""\
        workflow:
          name: t
          steps:
            - name: scan
              type: tool
              tool: static_analysis
              args: {path: m.py, include_ruff: false}
        """)
    rules = [(f["file"], f["line"], f["rule"]) for f in results["scan"]["findings"]]
    assert ("m.py", 1, "EL004") in rules


async def test_unknown_tool_fails_the_step(run_yaml: RunPipeline) -> None:
    """Naming an unregistered tool fails with the known tool names."""
    with pytest.raises(StepFailed, match="static_analysis"):
        await run_yaml("""\
            workflow:
              name: t
              steps:
                - name: x
                  type: tool
                  tool: teleport
            """)


async def test_data_transform_filters_sorts_and_aggregates(run_yaml: RunPipeline) -> None:
    """data_transform applies its operations in order to the rendered input."""
    results = await run_yaml("""\
        workflow:
          name: t
          steps:
            - name: src
              type: test_echo
              value:
                items:
                  - {file: a.py, severity: error, score: 3}
                  - {file: b.py, severity: info, score: 1}
                  - {file: c.py, severity: error, score: 5}
            - name: worst
              type: data_transform
              input_source: "{{steps.src.items}}"
              operations:
                - {operation: filter, condition: "severity == 'error'"}
                - {operation: sort, field: score, order: desc}
              output_field: errors
            - name: total
              type: data_transform
              input_source: "{{steps.worst.errors}}"
              operations:
                - {operation: aggregate, function: sum, field: score, as: total}
        """)
    assert [i["file"] for i in results["worst"]["errors"]] == ["c.py", "a.py"]
    assert results["total"]["result"] == {"total": 8}


async def test_file_ops_copy_list_convert_validate_delete(
    run_yaml: RunPipeline, tmp_path: Path
) -> None:
    """file_ops performs each operation inside the workspace."""
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "data.csv").write_text("a,b\n1,2\n")
    results = await run_yaml("""\
        workflow:
          name: t
          steps:
            - {name: cp, type: file_ops, operation: copy, source: data.csv, destination: backup/}
            - {name: conv, type: file_ops, operation: convert, source: data.csv, destination: data.json, format: csv_to_json}
            - name: check
              type: file_ops
              operation: validate
              files: [{path: data.json, min_size: 2}]
            - {name: ls, type: file_ops, operation: list, pattern: "*", recursive: true}
            - {name: rm, type: file_ops, operation: delete, source: backup}
        """)
    assert json.loads((ws / "data.json").read_text()) == [{"a": "1", "b": "2"}]
    assert results["check"]["valid"] is True
    assert "backup/data.csv" in results["ls"]["files"]
    assert not (ws / "backup").exists()


async def test_file_ops_validate_failure_names_the_file(run_yaml: RunPipeline) -> None:
    """A failed validation fails the step and names the missing file."""
    with pytest.raises(StepFailed, match=r"missing\.txt"):
        await run_yaml("""\
            workflow:
              name: t
              steps:
                - name: v
                  type: file_ops
                  operation: validate
                  files: [{path: missing.txt}]
            """)


async def test_file_ops_cannot_escape_the_workspace(run_yaml: RunPipeline, tmp_path: Path) -> None:
    """Copying to a path outside the workspace is a SandboxError and writes nothing."""
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "a.txt").write_text("x")
    with pytest.raises(SandboxError):
        await run_yaml("""\
            workflow:
              name: t
              steps:
                - {name: cp, type: file_ops, operation: copy, source: a.txt, destination: ../stolen.txt}
            """)
    assert not (tmp_path / "stolen.txt").exists()
