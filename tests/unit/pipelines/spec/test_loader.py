"""Loader: valid documents load; every bad document gets one SpecError naming file, line, step, key."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from pipelines.errors import SpecError
from pipelines.loader import load_pipeline, load_pipeline_text


def load(text: str) -> object:
    return load_pipeline_text(textwrap.dedent(text), source="p.yaml")


def error_of(text: str) -> SpecError:
    with pytest.raises(SpecError) as info:
        load(text)
    return info.value


MINIMAL = """\
workflow:
  name: demo
  steps:
    - name: a
      type: test_echo
      value: 1
"""


def test_minimal_document_loads() -> None:
    """A workflow with one step loads into models with defaults applied."""
    loaded = load(MINIMAL)
    assert loaded.workflow.name == "demo"  # type: ignore[attr-defined]
    assert loaded.workflow.workspace_dir == "./workspace"  # type: ignore[attr-defined]


def test_unknown_step_type_names_line_step_and_known_types() -> None:
    """An unknown type is rejected with the step's line and the list of known types."""
    err = error_of("""\
        workflow:
          name: demo
          steps:
            - name: first
              type: test_echo
            - name: second
              type: telepathy
        """)
    assert err.line == 6
    assert err.step == "second"
    assert "telepathy" in str(err) and "claude" in str(err)
    assert str(err).startswith("p.yaml:6")


def test_unknown_step_key_names_the_key_and_its_line() -> None:
    """A misspelt step key is an error naming the key, the step and the key's own line."""
    err = error_of("""\
        workflow:
          name: demo
          steps:
            - name: ask
              type: claude
              prompt: hi
              claude_optoins: {max_turns: 2}
        """)
    assert (err.line, err.step, err.key) == (7, "ask", "claude_optoins")
    assert "unknown key" in str(err)


def test_unknown_nested_option_key_is_located() -> None:
    """An unknown key inside claude_options is reported at its own line."""
    err = error_of("""\
        workflow:
          name: demo
          steps:
            - name: ask
              type: claude
              prompt: hi
              claude_options:
                max_turns: 2
                temprature: 0.5
        """)
    assert (err.line, err.step, err.key) == (9, "ask", "temprature")


def test_unknown_root_key_is_an_error() -> None:
    """Keys beside 'workflow' at the root are rejected."""
    err = error_of("workflow:\n  name: d\n  steps: [{name: a, type: test_echo}]\nextra: 1\n")
    assert err.key == "extra" and err.line == 4


def test_unknown_workflow_key_is_an_error() -> None:
    """Keys the workflow does not know are rejected with their line."""
    err = error_of("workflow:\n  name: d\n  stepz: []\n  steps: [{name: a, type: test_echo}]\n")
    assert err.key == "stepz" and err.line == 3


def test_missing_step_type_is_reported() -> None:
    """A step without 'type' gets a message saying so."""
    err = error_of("workflow:\n  name: d\n  steps:\n    - name: a\n      value: 1\n")
    assert "'type'" in str(err) and err.step == "a"


def test_missing_required_key_is_named() -> None:
    """A step type's required key (claude's prompt) is named when missing."""
    err = error_of("workflow:\n  name: d\n  steps:\n    - name: a\n      type: claude\n")
    assert err.key == "prompt" and "missing" in str(err)


def test_several_problems_are_listed_together() -> None:
    """All validation problems are reported in one error."""
    err = error_of("""\
        workflow:
          name: d
          steps:
            - name: a
              type: claude
              bogus: 1
            - name: b
              type: gemini
              prompt: x
              also_bogus: 2
        """)
    text = str(err)
    assert "problems" in text and "bogus" in text and "also_bogus" in text


def test_duplicate_step_names_are_rejected() -> None:
    """Step names are unique across the workflow, loop bodies included."""
    err = error_of("""\
        workflow:
          name: d
          steps:
            - name: a
              type: test_echo
            - name: loop
              type: for_loop
              data_source: [1]
              steps:
                - name: a
                  type: test_echo
        """)
    assert "duplicate step name 'a'" in str(err)


def test_duplicate_yaml_keys_are_rejected() -> None:
    """YAML would keep the last of two equal keys silently; we refuse it."""
    err = error_of("workflow:\n  name: d\n  name: e\n  steps: [{name: a, type: test_echo}]\n")
    assert err.line == 3 and "duplicate key 'name'" in str(err)


def test_yaml_syntax_error_names_the_line() -> None:
    """Broken YAML is a SpecError with the line of the problem."""
    err = error_of("workflow:\n  name: d\n  steps: [\n    - a\n")
    assert err.line is not None and "invalid YAML" in str(err)


@pytest.mark.parametrize("text", ["", "# only a comment\n", "- a\n- b\n", "just text\n", "42\n"])
def test_non_mapping_or_empty_documents_are_rejected(text: str) -> None:
    """Empty documents and documents that are not a mapping are SpecErrors."""
    with pytest.raises(SpecError):
        load_pipeline_text(text, source="p.yaml")


def test_reference_to_missing_step_in_previous_response() -> None:
    """previous_response naming an unknown step is caught at load time."""
    err = error_of("""\
        workflow:
          name: d
          steps:
            - name: ask
              type: claude
              prompt:
                - type: previous_response
                  step: nowhere
        """)
    assert err.step == "ask" and "missing step 'nowhere'" in str(err)
    assert err.line == 8


def test_reference_to_missing_step_in_template() -> None:
    """{{steps.x}} naming an unknown step is caught at load time."""
    err = error_of("""\
        workflow:
          name: d
          steps:
            - name: echo
              type: test_echo
              value: "{{steps.ghost.text}}"
        """)
    assert err.step == "echo" and "missing step 'ghost'" in str(err)


def test_condition_naming_unknown_name_is_rejected() -> None:
    """A condition naming neither a step, input nor variable is an error."""
    err = error_of("""\
        workflow:
          name: d
          steps:
            - name: echo
              type: test_echo
              condition: "mystery.count > 0"
        """)
    assert err.key == "condition" and "mystery" in str(err)


def test_malformed_condition_is_rejected_at_load() -> None:
    """A syntax error in a condition is reported with the step and key."""
    err = error_of("""\
        workflow:
          name: d
          steps:
            - name: echo
              type: test_echo
              condition: "1 >"
        """)
    assert err.key == "condition" and err.step == "echo"


def test_undeclared_gemini_function_is_rejected() -> None:
    """Gemini functions must be declared in the root gemini_functions."""
    err = error_of("""\
        workflow:
          name: d
          steps:
            - name: g
              type: gemini
              prompt: hi
              functions: [lookup]
        """)
    assert "lookup" in str(err)


def test_file_ops_without_required_keys_is_rejected() -> None:
    """file_ops copy needs source and destination."""
    err = error_of("""\
        workflow:
          name: d
          steps:
            - name: f
              type: file_ops
              operation: copy
              source: a.txt
        """)
    assert "destination" in str(err) and err.step == "f"


def test_missing_file_is_a_spec_error(tmp_path: Path) -> None:
    """A missing pipeline file is a SpecError naming the file."""
    with pytest.raises(SpecError) as info:
        load_pipeline(tmp_path / "nope.yaml")
    assert "nope.yaml" in str(info.value)


def test_non_utf8_file_is_a_spec_error(tmp_path: Path) -> None:
    """Bytes that are not UTF-8 give a SpecError, not a UnicodeDecodeError."""
    path = tmp_path / "bad.yaml"
    path.write_bytes(b"workflow:\n  name: \xff\xfe\n")
    with pytest.raises(SpecError, match="UTF-8"):
        load_pipeline(path)


def test_alias_bomb_is_refused() -> None:
    """A billion-laughs document is refused instead of exhausting memory."""
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        refs = ", ".join([f"*a{i - 1}"] * 10)
        lines.append(f"a{i}: &a{i} [{refs}]")
    with pytest.raises(SpecError, match="too large"):
        load_pipeline_text("\n".join(lines) + "\n", source="bomb.yaml")


def test_step_names_with_dots_are_rejected() -> None:
    """Step names must be addressable in templates, so '.' is not allowed."""
    err = error_of("workflow:\n  name: d\n  steps:\n    - name: a.b\n      type: test_echo\n")
    assert "'.'" in str(err)


def test_pipeline_step_needs_exactly_one_source() -> None:
    """A pipeline step with both pipeline_file and inline pipeline is rejected."""
    err = error_of("""\
        workflow:
          name: d
          steps:
            - name: n
              type: pipeline
              pipeline_file: x.yaml
              pipeline:
                name: inner
                steps: [{name: i, type: test_echo}]
        """)
    assert "exactly one" in str(err)


def test_invalid_output_schema_is_rejected_at_load() -> None:
    """An output_schema that is not a valid JSON Schema is a load error at its line."""
    err = error_of("""\
        workflow:
          name: d
          steps:
            - name: ask
              type: claude
              prompt: hi
              output_schema:
                type: object
                properties:
                  severity:
        """)
    assert err.step == "ask" and err.key == "output_schema"
    assert "properties/severity" in str(err)
