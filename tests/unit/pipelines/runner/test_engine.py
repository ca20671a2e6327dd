"""Runner behaviour around steps: conditions, timeouts, retries, output files, sandbox, inputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipelines.errors import ConfigError, SandboxError, StepFailed, TemplateError
from pipelines.testing import FakeProvider

from .conftest import FakeSleep, RunPipeline


async def test_false_condition_skips_with_reason(run_yaml: RunPipeline) -> None:
    """A skipped step's result is {success: true, skipped: true, reason}."""
    results = await run_yaml("""\
        workflow:
          name: t
          steps:
            - {name: a, type: test_echo, value: {count: 0}}
            - {name: b, type: test_echo, condition: "a.count > 0", value: x}
            - {name: c, type: test_echo, condition: "{{not b.skipped}}", value: y}
            - name: d
              type: test_echo
              condition: {or: ["a.count > 5", {not: "b.skipped"}]}
        """)
    assert results["b"] == {"success": True, "skipped": True, "reason": "condition was false"}
    assert results["c"]["skipped"] is True and results["d"]["skipped"] is True


async def test_list_condition_means_all(run_yaml: RunPipeline) -> None:
    """A list condition holds only when every entry holds."""
    results = await run_yaml("""\
        workflow:
          name: t
          steps:
            - {name: a, type: test_echo, value: {n: 3, tags: [x, y]}}
            - {name: b, type: test_echo, condition: ["a.n between 1 and 5", "a.tags contains 'x'"], value: ok}
            - {name: c, type: test_echo, condition: ["a.n > 1", "a.n > 4"], value: no}
        """)
    assert results["b"]["value"] == "ok" and results["c"]["skipped"] is True


async def test_step_timeout_fails_with_timeout_code(run_yaml: RunPipeline) -> None:
    """A step exceeding timeout_s fails with code timeout, naming the step."""
    with pytest.raises(StepFailed) as info:
        await run_yaml("""\
            workflow:
              name: t
              steps:
                - {name: slow, type: test_echo, delay_s: 5, timeout_s: 0.05}
            """)
    assert info.value.code == "timeout" and info.value.step == "slow"


async def test_defaults_timeout_applies_to_every_step(run_yaml: RunPipeline) -> None:
    """defaults.timeout_seconds is applied to steps without their own (fix: always applied)."""
    with pytest.raises(StepFailed, match="slow"):
        await run_yaml("""\
            workflow:
              name: t
              defaults: {timeout_seconds: 0.05}
              steps:
                - {name: slow, type: test_echo, delay_s: 5}
            """)


async def test_step_retry_with_backoff(
    run_yaml: RunPipeline, fake: FakeProvider, sleeper: FakeSleep
) -> None:
    """retry.attempts re-runs a failing step with doubling backoff."""
    from pipelines.errors import ProviderError

    fake.push(
        ProviderError("x", code="server_error", retryable=True),
        ProviderError("x", code="server_error", retryable=True),
        "third time",
    )
    results = await run_yaml("""\
        workflow:
          name: t
          steps:
            - {name: ask, type: claude, prompt: hi, retry: {attempts: 3, backoff_s: 0.5}}
        """)
    assert results["ask"]["text"] == "third time" and sleeper.waits == [0.5, 1.0]


async def test_config_errors_are_not_retried(run_yaml: RunPipeline, sleeper: FakeSleep) -> None:
    """An unresolved template is a user error: no retry, TemplateError naming step and expression."""
    with pytest.raises(TemplateError) as info:
        await run_yaml("""\
            workflow:
              name: t
              steps:
                - {name: a, type: test_echo, value: {x: 1}}
                - {name: b, type: test_echo, value: "{{steps.a.missing}}", retry: {attempts: 3}}
            """)
    assert "b" in str(info.value) and "steps.a.missing" in str(info.value)
    assert sleeper.waits == []


async def test_continue_on_error_records_failure(run_yaml: RunPipeline) -> None:
    """continue_on_error keeps going and records {success: false, error}."""
    results = await run_yaml("""\
        workflow:
          name: t
          steps:
            - {name: bad, type: test_echo, fail: true, continue_on_error: true}
            - {name: next, type: test_echo, value: "ran", condition: "not bad.success"}
        """)
    assert results["bad"]["success"] is False and results["bad"]["error"]["code"] == "test_failure"
    assert results["next"]["value"] == "ran"


async def test_output_to_file_json_and_text(run_yaml: RunPipeline, tmp_path: Path) -> None:
    """output_to_file writes JSON for .json and the text for .md, inside the output dir."""
    results = await run_yaml("""\
        workflow:
          name: t
          steps:
            - {name: a, type: test_echo, value: {k: 1}, output_to_file: "a.json"}
            - {name: b, type: claude, prompt: hi, output_to_file: "reports/b.md"}
        """)
    out = tmp_path / "out"
    assert json.loads((out / "a.json").read_text())["k"] == 1
    assert (out / "reports" / "b.md").read_text() == "fake answer"
    assert results["a"]["output_file"] == str(out / "a.json")


async def test_output_to_file_cannot_escape(run_yaml: RunPipeline, tmp_path: Path) -> None:
    """An output path escaping the output dir is refused and nothing is written."""
    with pytest.raises(SandboxError):
        await run_yaml("""\
            workflow:
              name: t
              steps:
                - {name: a, type: test_echo, value: 1, output_to_file: "../../escaped.json"}
            """)
    assert not list(tmp_path.parent.glob("escaped.json"))
    assert not (tmp_path / "escaped.json").exists()


async def test_file_prompt_part_is_sandboxed(run_yaml: RunPipeline, tmp_path: Path) -> None:
    """A file prompt part pointing outside the workspace (.. or symlink) fails."""
    (tmp_path / "ws").mkdir()
    (tmp_path / "secret.txt").write_text("top secret")
    (tmp_path / "ws" / "link.txt").symlink_to(tmp_path / "secret.txt")
    for path in ("../secret.txt", "link.txt", str(tmp_path / "secret.txt")):
        with pytest.raises(SandboxError):
            await run_yaml(f"""\
                workflow:
                  name: t
                  steps:
                    - name: a
                      type: claude
                      prompt: [{{type: file, path: "{path}"}}]
                """)


async def test_file_prompt_part_reads_with_variables(
    run_yaml: RunPipeline, fake: FakeProvider, tmp_path: Path
) -> None:
    """A file part inside the workspace is read and its {{VAR}} placeholders filled."""
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "p.md").write_text("Review this {{LANG}} code.")
    await run_yaml("""\
        workflow:
          name: t
          steps:
            - name: a
              type: claude
              prompt: [{type: file, path: p.md, variables: {LANG: Python}}]
        """)
    assert fake.requests[0].prompt_text == "Review this Python code."


async def test_declared_inputs_are_checked(run_yaml: RunPipeline) -> None:
    """Missing required inputs and wrong types are ConfigErrors naming the input."""
    text = """\
        workflow:
          name: t
          inputs:
            code: {type: string, required: true}
            n: {type: integer, default: 3}
          steps:
            - {name: a, type: test_echo, value: "{{inputs.code}} {{inputs.n}}"}
        """
    with pytest.raises(ConfigError, match="'code'"):
        await run_yaml(text)
    with pytest.raises(ConfigError, match="'n' must be integer"):
        await run_yaml(text, {"code": "x", "n": "three"})
    results = await run_yaml(text, {"code": "x"})
    assert results["a"]["value"] == "x 3"


async def test_results_are_json_serialisable(run_yaml: RunPipeline) -> None:
    """Every step result of a mixed pipeline survives json.dumps."""
    results = await run_yaml("""\
        workflow:
          name: t
          steps:
            - {name: a, type: test_echo, value: {k: [1, 2]}}
            - {name: b, type: claude, prompt: hi}
            - {name: c, type: for_loop, data_source: [1], steps: [{name: d, type: test_echo}]}
        """)
    assert json.loads(json.dumps(results)) == results


async def test_bad_input_writes_nothing(tmp_path: Path, make_runner) -> None:  # type: ignore[no-untyped-def]
    """A pipeline that fails validation creates no workspace, output or checkpoint files."""
    from pipelines.loader import load_pipeline_text

    before = set(tmp_path.rglob("*"))
    with pytest.raises(ConfigError):
        load_pipeline_text("workflow:\n  name: t\n  steps:\n    - {name: a, type: nope}\n")
    loaded = load_pipeline_text(
        "workflow:\n  name: t\n  inputs: {x: {type: string, required: true}}\n"
        "  checkpoint_enabled: true\n  steps:\n    - {name: a, type: test_echo}\n"
    )
    with pytest.raises(ConfigError):
        await make_runner().run(loaded, {})
    assert set(tmp_path.rglob("*")) == before
