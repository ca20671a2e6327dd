"""The published JSON Schema describes the format and agrees with the loader."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import yaml

from pipelines.spec import STEP_TYPES, json_schema

LIBRARY = Path(__file__).resolve().parents[4] / "pipelines" / "library"


def test_schema_is_valid_json_schema() -> None:
    """The schema itself passes the JSON Schema meta-schema."""
    schema = json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert "workflow" in schema["properties"]


def test_schema_mentions_every_step_type() -> None:
    """Every step type appears in the schema, so editors can complete it."""
    text = json.dumps(json_schema())
    for step_type in STEP_TYPES:
        assert f'"{step_type}"' in text, step_type


def test_library_pipelines_validate_against_the_schema() -> None:
    """Every library pipeline is valid under the published schema too."""
    validator = jsonschema.Draft202012Validator(json_schema())
    files = sorted(LIBRARY.glob("*.yaml"))
    assert len(files) >= 5
    for file in files:
        errors = list(validator.iter_errors(yaml.safe_load(file.read_text())))
        assert not errors, (file.name, errors[:1])


def test_schema_rejects_unknown_keys() -> None:
    """The schema forbids unknown step keys, like the loader."""
    doc = {"workflow": {"name": "d", "steps": [{"name": "a", "type": "test_echo", "bogus": 1}]}}
    assert list(jsonschema.Draft202012Validator(json_schema()).iter_errors(doc))
