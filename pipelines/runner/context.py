"""The state one run carries from step to step.

A :class:`RunState` holds the results, variables and sandbox of one pipeline level
(a nested pipeline gets its own); loop iterations get a child state whose results
and local variables are layered over the parent's with ``ChainMap``, so sub-steps
see ``{{steps.<sub-step>}}`` of their own iteration without copying.
"""

from __future__ import annotations

from collections import ChainMap
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pipelines.errors import NestingError
from pipelines.expressions import Scope
from pipelines.providers.base import Usage
from pipelines.spec import Workflow
from pipelines.tools import Workspace

__all__ = ["RunState", "RunTotals"]


@dataclass(slots=True)
class RunTotals:
    """Counters shared by a run and every nested pipeline and loop inside it."""

    steps_run: int = 0
    max_total_steps: int = 100_000
    cost_usd: float = 0.0
    usage: Usage = field(default_factory=Usage)
    llm_calls: int = 0

    def charge_step(self, name: str) -> None:
        """Count one step; raises ``NestingError`` past ``max_total_steps``."""
        self.steps_run += 1
        if self.steps_run > self.max_total_steps:
            msg = (
                f"step {name!r} would exceed max_total_steps={self.max_total_steps} "
                "for this run (nested pipelines and loop iterations included)"
            )
            raise NestingError(msg)

    def charge_llm(self, cost_usd: float, usage: Usage) -> None:
        self.llm_calls += 1
        self.cost_usd += cost_usd
        self.usage = self.usage + usage


@dataclass(slots=True)
class RunState:
    """One pipeline level of a run."""

    workflow: Workflow
    run_id: str
    inputs: Mapping[str, Any]
    results: MutableMapping[str, Any]
    variables: MutableMapping[str, Any]
    workspace: Workspace
    output_dir: Path
    base_dir: Path
    known_steps: frozenset[str]
    totals: RunTotals
    depth: int = 0
    stack: tuple[str, ...] = ()
    loop: Mapping[str, Any] = field(default_factory=dict)

    def scope(self) -> Scope:
        """The names templates and conditions see right now."""
        return Scope(
            steps=self.results,
            inputs=self.inputs,
            global_vars=self.workflow.global_vars,
            state=self.variables,
            loop=self.loop,
            known_steps=self.known_steps,
        )

    def iteration(self, bindings: Mapping[str, Any]) -> RunState:
        """A child state for one loop iteration: own results and local variables."""
        return replace(
            self,
            results=ChainMap({}, *_layers(self.results)),
            variables=ChainMap({}, *_layers(self.variables)),
            loop=bindings,
        )

    def set_variable(self, name: str, value: Any, *, scope: str) -> None:
        """``global``/``session`` write to the run's variables, ``loop``/``local`` to this layer."""
        if scope in ("loop", "local") or not isinstance(self.variables, ChainMap):
            self.variables[name] = value
        else:
            self.variables.maps[-1][name] = value

    def enter(self, identity: str, *, max_depth: int) -> None:
        """Guard a nested pipeline: no cycles, no depth beyond ``max_depth``."""
        if identity in self.stack:
            chain = " -> ".join((*self.stack, identity))
            raise NestingError(f"circular nested pipeline: {chain}")
        if self.depth + 1 > max_depth:
            raise NestingError(
                f"nested pipeline {identity!r} exceeds max_depth={max_depth} "
                f"(chain: {' -> '.join(self.stack)})"
            )


def _layers(mapping: MutableMapping[str, Any]) -> list[MutableMapping[str, Any]]:
    # Flatten nested ChainMaps so maps[-1] is always the run's own dict.
    return list(mapping.maps) if isinstance(mapping, ChainMap) else [mapping]
