"""Pydantic models of the ``data_transform`` step's operations.

One model per operation, told apart by its ``operation`` key
(:data:`TransformOperation` is the discriminated union). The models only check
shape; :func:`pipelines.runner.transforms.apply_operations` gives them meaning.

Besides the brief's forms, a few pipeline_ex spellings load unchanged:

- ``filter`` may pair ``field`` with ``condition``; the field's value is then
  bound to the name ``value`` while the condition runs.
- ``map`` with ``field`` and ``mapping`` translates that field's values
  (pipeline_ex's ``{"1": "high"}``); ``mapping`` alone renames keys.
- ``join`` accepts pipeline_ex's ``join_key`` (the key on both sides).
- ``aggregate`` also knows ``first``, ``last`` and ``unique``, and defaults to ``sum``.

Validators raise :class:`ValueError` (pydantic turns it into a validation error,
which the loader reports as :class:`pipelines.errors.SpecError` with its location).
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal, Self

from pydantic import Field, field_validator, model_validator

from pipelines.spec._base import StrictModel

__all__ = [
    "AGGREGATE_FUNCTIONS",
    "FILTER_OPERATORS",
    "AggregateOperation",
    "FilterOperation",
    "GroupByOperation",
    "JoinOperation",
    "LimitOperation",
    "MapOperation",
    "SortOperation",
    "TransformOperation",
    "UniqueOperation",
]

FilterOperator = Literal["==", "!=", ">", "<", ">=", "<=", "contains", "in"]
AggregateFunction = Literal["sum", "average", "count", "min", "max", "first", "last", "unique"]

FILTER_OPERATORS: tuple[str, ...] = ("==", "!=", ">", "<", ">=", "<=", "contains", "in")
AGGREGATE_FUNCTIONS: tuple[str, ...] = (
    "sum",
    "average",
    "count",
    "min",
    "max",
    "first",
    "last",
    "unique",
)


class FilterOperation(StrictModel):
    """Keep the items for which ``condition`` holds, or ``field op value`` holds.

    ``value`` may be a template; the runner renders it once per run of the operation.
    """

    operation: Literal["filter"]
    condition: str | None = None
    field: str | None = None
    op: FilterOperator | None = None
    value: Any = None

    @model_validator(mode="after")
    def _one_form(self) -> Self:
        # `value: null` is a legitimate operand, so "was it given" is read from the set fields.
        has_value = "value" in self.model_fields_set
        if self.condition is not None:
            if self.op is not None or has_value:
                msg = "filter takes either 'condition' or 'field'/'op'/'value', not both"
                raise ValueError(msg)
            return self
        if self.field is None or self.op is None or not has_value:
            msg = "filter needs 'condition', or all of 'field', 'op' and 'value'"
            raise ValueError(msg)
        return self


class MapOperation(StrictModel):
    """Rewrite each item, in one of four forms.

    - ``expression`` with ``field``: set that field to the expression's value;
      without ``field``: replace the item by it (for lists of scalars).
    - ``mapping`` alone: rename keys (``{old: new}``).
    - ``mapping`` with ``field``: translate that field's values (pipeline_ex).
    - ``fields``: keep only these keys.
    """

    operation: Literal["map"]
    field: str | None = None
    expression: str | None = None
    mapping: dict[str, Any] | None = None
    fields: list[str] | None = None

    @field_validator("mapping", mode="before")
    @classmethod
    def _keys_as_text(cls, value: Any) -> Any:
        # YAML reads `1: high` with an int key; values are matched by their JSON text.
        if isinstance(value, dict):
            return {k if isinstance(k, str) else json.dumps(k): v for k, v in value.items()}
        return value

    @model_validator(mode="after")
    def _one_form(self) -> Self:
        forms = [f for f in (self.expression, self.mapping, self.fields) if f is not None]
        if len(forms) != 1:
            msg = (
                "map needs exactly one of 'expression' (with 'field'), "
                "'mapping' (key renames) or 'fields' (keys to keep)"
            )
            raise ValueError(msg)
        if self.fields is not None and self.field is not None:
            msg = "map with 'fields' takes no 'field'"
            raise ValueError(msg)
        if self.mapping is not None and self.field is None:
            bad = [k for k, v in self.mapping.items() if not isinstance(v, str)]
            if bad:
                msg = f"map 'mapping' renames keys, so its values must be strings (not {bad[0]!r})"
                raise ValueError(msg)
        return self


class AggregateOperation(StrictModel):
    """Reduce a list to ``{as: value}``; ``as`` defaults to the function's name.

    With ``field``, the field's values are reduced (missing or null ones skipped);
    without, the items themselves.
    """

    operation: Literal["aggregate"]
    function: AggregateFunction = "sum"
    field: str | None = None
    as_: str | None = Field(
        default=None, validation_alias="as", serialization_alias="as", min_length=1
    )

    @property
    def key(self) -> str:
        """The key of the result: ``as``, else the function's name."""
        return self.as_ or self.function


class GroupByOperation(StrictModel):
    """Turn a list into ``{field value: [items]}``; a non-string value keys by its JSON text."""

    operation: Literal["group_by"]
    field: str


class SortOperation(StrictModel):
    """Sort a list by ``field`` (stable; nulls last in either order)."""

    operation: Literal["sort"]
    field: str
    order: Literal["asc", "desc"] = "asc"


class JoinOperation(StrictModel):
    """Attach to each item the first ``right_source`` item whose key matches.

    ``left_field`` and ``right_field`` name the keys; pipeline_ex's ``join_key``
    names both, and either side defaults to the other. With ``as`` the match is
    nested under that key, else its fields are merged in (right wins, as in
    pipeline_ex). ``how: left`` (default, as pipeline_ex) keeps unmatched items;
    ``inner`` drops them.
    """

    operation: Literal["join"]
    right_source: Any
    left_field: str | None = None
    right_field: str | None = None
    join_key: str | None = None
    as_: str | None = Field(
        default=None, validation_alias="as", serialization_alias="as", min_length=1
    )
    how: Literal["inner", "left"] = "left"

    @model_validator(mode="after")
    def _has_keys(self) -> Self:
        if self.left_field is None and self.right_field is None and self.join_key is None:
            msg = "join needs 'left_field' and 'right_field' (or pipeline_ex's 'join_key')"
            raise ValueError(msg)
        return self

    @property
    def left_key(self) -> str:
        """The key read from each input item."""
        # _has_keys guarantees one of the three is set, so "" is never returned.
        return self.left_field or self.join_key or self.right_field or ""

    @property
    def right_key(self) -> str:
        """The key read from each ``right_source`` item."""
        return self.right_field or self.join_key or self.left_field or ""


class LimitOperation(StrictModel):
    """Ours: keep the first ``count`` items."""

    operation: Literal["limit"]
    count: int = Field(ge=0)


class UniqueOperation(StrictModel):
    """Ours: drop items whose ``field`` (or whole value) was seen before; first one wins."""

    operation: Literal["unique"]
    field: str | None = None


TransformOperation = Annotated[
    FilterOperation
    | MapOperation
    | AggregateOperation
    | GroupByOperation
    | SortOperation
    | JoinOperation
    | LimitOperation
    | UniqueOperation,
    Field(discriminator="operation"),
]
