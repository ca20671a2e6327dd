"""Binding a run's inputs to the workflow's declared ``inputs``."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pipelines.errors import ConfigError
from pipelines.spec import Workflow

__all__ = ["bind_inputs", "coerce_cli_inputs"]

_CHECKS: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list, tuple),
    "object": (dict,),
}


def bind_inputs(workflow: Workflow, given: Mapping[str, Any]) -> dict[str, Any]:
    """Check ``given`` against the declared inputs, applying defaults.

    Undeclared inputs pass through (pipeline_ex workflows declare none); declared
    ones are type-checked. Raises ``ConfigError`` naming the input.
    """
    bound = dict(given)
    for name, spec in workflow.inputs.items():
        if name not in bound:
            if spec.required and spec.default is None:
                raise ConfigError(
                    f"pipeline {workflow.name!r} needs input {name!r} ({spec.type})"
                    + (f": {spec.description}" if spec.description else "")
                )
            bound[name] = spec.default
            continue
        value = bound[name]
        expected = _CHECKS.get(spec.type)
        wrong_bool = isinstance(value, bool) and spec.type in ("integer", "number")
        if expected and (not isinstance(value, expected) or wrong_bool):
            raise ConfigError(
                f"input {name!r} must be {spec.type}, got {type(value).__name__} {value!r:.60}"
            )
    return bound


def coerce_cli_inputs(workflow: Workflow, raw: Mapping[str, str]) -> dict[str, Any]:
    """Turn ``--input k=v`` strings into values: declared non-string inputs and
    undeclared values that look like JSON numbers, lists or objects are parsed."""
    values: dict[str, Any] = {}
    for name, text in raw.items():
        spec = workflow.inputs.get(name)
        if spec is not None and spec.type == "string":
            values[name] = text
            continue
        try:
            values[name] = json.loads(text)
        except ValueError:
            if spec is not None and spec.type not in ("string", "any"):
                raise ConfigError(
                    f"input {name!r} must be {spec.type}; {text!r} does not parse"
                ) from None
            values[name] = text
    return values
