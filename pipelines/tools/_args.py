"""Argument validation shared by every tool: JSON Schema check, then defaults.

Tools publish their arguments as a JSON Schema (``parameters``) because that is
what LLM tool use speaks; the same schema is the single source of truth for
validation here, so the model and the runner can never disagree.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match

from pipelines.errors import ToolError

__all__ = ["invalid_argument", "validate_arguments"]


def validate_arguments(tool: str, schema: Mapping[str, Any], args: object) -> dict[str, Any]:
    """Check ``args`` against ``schema`` and return a copy with defaults filled in.

    Raises ``ToolError(code="invalid_arguments")`` naming the offending argument.
    """
    if not isinstance(args, Mapping):
        raise ToolError(
            f"tool {tool!r}: arguments must be an object, got {type(args).__name__}",
            code="invalid_arguments",
        )
    validator = Draft202012Validator(schema)
    error = best_match(validator.iter_errors(dict(args)))
    if error is not None:
        raise invalid_argument(tool, _argument_name(error, schema, args), error.message)
    filled = dict(args)
    for name, spec in schema.get("properties", {}).items():
        if name not in filled and "default" in spec:
            filled[name] = spec["default"]
    return filled


def invalid_argument(tool: str, argument: str, why: str) -> ToolError:
    """The error a tool raises for a bad argument value it checks itself."""
    return ToolError(f"tool {tool!r}: argument {argument!r}: {why}", code="invalid_arguments")


def _argument_name(
    error: ValidationError, schema: Mapping[str, Any], args: Mapping[str, Any]
) -> str:
    if error.absolute_path:
        return ".".join(str(part) for part in error.absolute_path)
    if error.validator == "required":
        missing = [name for name in schema.get("required", []) if name not in args]
        return ", ".join(missing) or "?"
    if error.validator == "additionalProperties":
        known = set(schema.get("properties", {}))
        unknown = sorted(str(name) for name in args if name not in known)
        return ", ".join(unknown) or "?"
    return "?"
