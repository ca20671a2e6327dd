"""Loops and nested pipelines."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from pipelines.errors import NestingError, StepFailed

from .conftest import RunPipeline


async def test_for_loop_binds_iterator_in_sub_steps(run_yaml: RunPipeline) -> None:
    """{{loop.<iterator>}}, loop.index and the iteration's own sub-step results work (fix)."""
    results = await run_yaml("""\
        workflow:
          name: t
          steps:
            - name: each
              type: for_loop
              iterator: file
              data_source: [a.py, b.py]
              steps:
                - {name: first, type: test_echo, value: "{{loop.file}}#{{loop.index}}"}
                - {name: second, type: test_echo, value: "after {{steps.first.value}}"}
        """)
    iterations = results["each"]["results"]
    assert [it["second"]["value"] for it in iterations] == ["after a.py#0", "after b.py#1"]
    assert results["each"]["iterations"] == 2


async def test_nested_for_loops_see_parent_binding(run_yaml: RunPipeline) -> None:
    """An inner loop reads the outer iterator through its name and loop.parent."""
    results = await run_yaml("""\
        workflow:
          name: t
          steps:
            - name: outer
              type: for_loop
              iterator: x
              data_source: [1, 2]
              steps:
                - name: inner
                  type: for_loop
                  iterator: y
                  data_source: [10]
                  steps:
                    - {name: pair, type: test_echo, value: "{{loop.parent.x}}-{{loop.y}}"}
        """)
    values = [it["inner"]["results"][0]["pair"]["value"] for it in results["outer"]["results"]]
    assert values == ["1-10", "2-10"]


async def test_parallel_for_loop_overlaps_iterations(run_yaml: RunPipeline) -> None:
    """parallel: true runs iterations concurrently, bounded by max_parallel, order kept."""
    started = time.perf_counter()
    results = await run_yaml("""\
        workflow:
          name: t
          steps:
            - name: each
              type: for_loop
              data_source: [1, 2, 3, 4]
              parallel: true
              max_parallel: 4
              steps:
                - {name: wait, type: test_echo, delay_s: 0.05, value: "{{loop.item}}"}
        """)
    assert time.perf_counter() - started < 0.15
    assert [it["wait"]["value"] for it in results["each"]["results"]] == [1, 2, 3, 4]


async def test_for_loop_break_on_error_false_collects_failures(run_yaml: RunPipeline) -> None:
    """With break_on_error false, failed iterations are reported and the loop goes on."""
    results = await run_yaml("""\
        workflow:
          name: t
          steps:
            - name: each
              type: for_loop
              data_source: [1, 2, 3]
              break_on_error: false
              steps:
                - {name: maybe, type: test_echo, fail: "{{loop.item == 2}}", value: ok}
        """)
    loop = results["each"]
    assert loop["success"] is False and loop["iterations"] == 3
    assert loop["failed"][0]["index"] == 1


async def test_for_loop_break_on_error_stops(run_yaml: RunPipeline) -> None:
    """By default a failing iteration fails the loop step."""
    with pytest.raises(StepFailed):
        await run_yaml("""\
            workflow:
              name: t
              steps:
                - name: each
                  type: for_loop
                  data_source: [1, 2]
                  steps:
                    - {name: boom, type: test_echo, fail: true}
            """)


async def test_for_loop_break_condition(run_yaml: RunPipeline) -> None:
    """break_condition stops the loop after the iteration where it holds."""
    results = await run_yaml("""\
        workflow:
          name: t
          steps:
            - name: each
              type: for_loop
              data_source: [1, 2, 3, 4]
              break_condition: "loop.item >= 2"
              steps:
                - {name: e, type: test_echo, value: "{{loop.item}}"}
        """)
    assert results["each"]["iterations"] == 2 and results["each"]["stopped_at"] == 1


async def test_for_loop_over_too_many_items_is_refused(run_yaml: RunPipeline) -> None:
    """More items than max_iterations is an error, not a silent truncation."""
    with pytest.raises(Exception, match="max_iterations"):
        await run_yaml("""\
            workflow:
              name: t
              steps:
                - name: each
                  type: for_loop
                  data_source: [1, 2, 3]
                  max_iterations: 2
                  steps: [{name: e, type: test_echo}]
            """)


async def test_while_loop_runs_until_condition_false(run_yaml: RunPipeline) -> None:
    """while_loop repeats while its condition holds, reading variables set in the body."""
    results = await run_yaml("""\
        workflow:
          name: t
          steps:
            - {name: init, type: set_variable, variables: {n: 0}}
            - name: grow
              type: while_loop
              condition: "n < 3"
              max_iterations: 10
              steps:
                - {name: inc, type: set_variable, variables: {n: "{{add(state.n, 1)}}"}}
            - {name: final, type: test_echo, value: "{{state.n}}"}
        """)
    assert results["grow"]["iterations"] == 3 and results["final"]["value"] == 3
    assert results["grow"]["max_iterations_reached"] is False


async def test_while_loop_hard_cap(run_yaml: RunPipeline) -> None:
    """A condition that never turns false stops at max_iterations and says so."""
    results = await run_yaml("""\
        workflow:
          name: t
          steps:
            - name: forever
              type: while_loop
              condition: "true"
              max_iterations: 4
              steps: [{name: e, type: test_echo}]
        """)
    assert results["forever"]["iterations"] == 4
    assert results["forever"]["max_iterations_reached"] is True


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


async def test_nested_pipeline_file_with_inputs_and_outputs(
    run_yaml: RunPipeline, tmp_path: Path
) -> None:
    """A pipeline step with inputs returns {result: ...}; outputs pick and rename values."""
    _write(
        tmp_path / "child.yaml",
        """\
workflow:
  name: child
  steps:
    - name: double
      type: test_echo
      value: {score: "{{multiply(inputs.n, 2)}}"}
""",
    )
    results = await run_yaml(
        """\
        workflow:
          name: parent
          steps:
            - name: call
              type: pipeline
              pipeline_file: child.yaml
              inputs: {n: 21}
            - name: picked
              type: pipeline
              pipeline_file: child.yaml
              inputs: {n: 2}
              outputs:
                - double
                - {path: double.score, as: quality}
            - {name: use, type: test_echo, value: "{{steps.call.result.double.score}}"}
        """,
        base_dir=tmp_path,
    )
    assert results["call"]["result"]["double"]["score"] == 42
    assert results["picked"]["result"]["quality"] == 4
    assert results["use"]["value"] == 42


async def test_inline_nested_pipeline(run_yaml: RunPipeline) -> None:
    """An inline pipeline runs with its own step namespace."""
    results = await run_yaml("""\
        workflow:
          name: parent
          steps:
            - name: inline
              type: pipeline
              pipeline:
                name: inner
                steps:
                  - {name: x, type: test_echo, value: 5}
        """)
    assert results["inline"]["x"]["value"] == 5


async def test_circular_nested_pipeline_is_an_error(run_yaml: RunPipeline, tmp_path: Path) -> None:
    """a.yaml -> b.yaml -> a.yaml is refused with the chain in the message."""
    _write(
        tmp_path / "a.yaml",
        "workflow:\n  name: a\n  steps:\n    - {name: tob, type: pipeline, pipeline_file: b.yaml}\n",
    )
    _write(
        tmp_path / "b.yaml",
        "workflow:\n  name: b\n  steps:\n    - {name: toa, type: pipeline, pipeline_file: a.yaml}\n",
    )
    with pytest.raises(NestingError, match="circular nested pipeline") as info:
        await run_yaml(
            """\
            workflow:
              name: top
              steps:
                - {name: start, type: pipeline, pipeline_file: a.yaml}
            """,
            base_dir=tmp_path,
        )
    assert "a.yaml -> " in str(info.value)


async def test_nested_depth_limit(run_yaml: RunPipeline, tmp_path: Path) -> None:
    """Nesting deeper than config.max_depth is refused."""
    for i in range(4):
        _write(
            tmp_path / f"l{i}.yaml",
            f"workflow:\n  name: l{i}\n  steps:\n    - {{name: n, type: pipeline, pipeline_file: l{i + 1}.yaml, config: {{max_depth: 2}}}}\n",
        )
    _write(tmp_path / "l4.yaml", "workflow:\n  name: l4\n  steps: [{name: e, type: test_echo}]\n")
    with pytest.raises(NestingError, match="max_depth=2"):
        await run_yaml(
            """\
            workflow:
              name: top
              steps:
                - {name: n, type: pipeline, pipeline_file: l0.yaml, config: {max_depth: 2}}
            """,
            base_dir=tmp_path,
        )


async def test_max_total_steps_caps_the_run(run_yaml: RunPipeline) -> None:
    """resource_limits.max_total_steps counts loop iterations and stops a runaway run."""
    with pytest.raises(NestingError, match="max_total_steps=5"):
        await run_yaml("""\
            workflow:
              name: t
              resource_limits: {max_total_steps: 5}
              steps:
                - name: each
                  type: for_loop
                  data_source: [1, 2, 3, 4, 5, 6]
                  steps: [{name: e, type: test_echo}]
            """)


async def test_nested_failure_names_outer_step(run_yaml: RunPipeline, tmp_path: Path) -> None:
    """A failure inside a nested pipeline fails the outer step, naming both pipelines."""
    _write(
        tmp_path / "bad.yaml",
        "workflow:\n  name: bad\n  steps:\n    - {name: x, type: test_echo, fail: true}\n",
    )
    with pytest.raises(StepFailed) as info:
        await run_yaml(
            """\
            workflow:
              name: top
              steps:
                - {name: outer, type: pipeline, pipeline_file: bad.yaml}
            """,
            base_dir=tmp_path,
        )
    assert info.value.step == "outer" and "bad" in str(info.value)
