"""The names an expression can see while a pipeline runs.

A :class:`Scope` is an immutable snapshot: the runner builds a new one (with
:meth:`Scope.child`) when a step finishes, a variable is set or a loop moves on.
:meth:`Scope.resolve` gives the value of the first identifier of a path:

* ``steps``, ``inputs``, ``global_vars``, ``state`` and ``loop`` name those maps;
* any other name is looked up in ``state``, then ``loop``, then ``steps``;
* a step declared in the workflow (``known_steps``) that has not run is ``None``
  (an error in strict mode, used by templates);
* anything else raises :class:`~pipelines.errors.ConditionError`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pipelines.errors import ConditionError

__all__ = ["ROOTS", "Scope"]

ROOTS = frozenset({"steps", "inputs", "global_vars", "state", "loop"})
"""Names that address a whole map of the scope."""


@dataclass(frozen=True)
class Scope:
    """What expressions read: step results, inputs, globals, variables, loop bindings."""

    steps: Mapping[str, Any] = field(default_factory=dict)
    """Results of the steps run so far, by step name."""
    inputs: Mapping[str, Any] = field(default_factory=dict)
    global_vars: Mapping[str, Any] = field(default_factory=dict)
    state: Mapping[str, Any] = field(default_factory=dict)
    """Variables set by ``set_variable`` steps."""
    loop: Mapping[str, Any] = field(default_factory=dict)
    """Current loop bindings: ``{iterator: item, "index": i, "item": item, "parent": {...}}``."""
    known_steps: frozenset[str] = frozenset()
    """Every step name declared anywhere in the workflow, run or not."""

    def child(self, **changes: Any) -> Scope:
        """A copy with ``changes`` applied (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)

    def root(self, name: str) -> Mapping[str, Any]:
        """The map a root name (one of :data:`ROOTS`) addresses."""
        value: Mapping[str, Any] = getattr(self, name)
        return value

    def resolve(self, name: str, *, strict: bool = False) -> Any:
        """The value of the bare identifier ``name``.

        Raises :class:`ConditionError` for an unknown name, and in strict mode
        for a declared step that has not run.
        """
        if name in ROOTS:
            return self.root(name)
        if name in self.state:
            return self.state[name]
        if name in self.loop:
            return self.loop[name]
        if name in self.steps or name in self.known_steps:
            return self.step(name, strict=strict)
        raise ConditionError(f"unknown name {name!r}: not a step, variable or loop binding")

    def step(self, name: str, *, strict: bool = False) -> Any:
        """The result of step ``name``; ``None`` if declared but not run (error if ``strict``)."""
        if name in self.steps:
            return self.steps[name]
        if name in self.known_steps:
            if strict:
                raise ConditionError(f"step {name!r} has not run")
            return None
        raise ConditionError(f"unknown step {name!r}")
