"""Genesis: a new pipeline from a request, drafted by an LLM, validated, repaired, saved.

:func:`generate_pipeline` asks the provider for a pipeline document as structured
output (``output_schema`` = :data:`GENESIS_SCHEMA`, the common subset of the
format), validates the answer with the real loader plus Genesis's own checks
(known tools, declared inputs), and on failure sends the validator's messages
back with the draft, for up to ``max_repairs`` repair rounds. Offline (the
``offline`` provider, or a chain that fell back to it) no model drafts anything:
the pipeline comes from a tested template for the request's type.

:func:`save_generated` writes the pipeline into a library directory, never over
an existing file, and records its first version with DNA origin ``genesis``.

Failure semantics: a draft that is still invalid after the last repair raises
:class:`~pipelines.errors.GenesisError` (a ``ConfigError``) listing the last
errors; provider failures raise :class:`~pipelines.errors.ProviderError`
unchanged; store failures propagate from :func:`save_generated` after the file
is written (registering the library again records it).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pipelines._genesis_schema import GENESIS_SCHEMA, SYSTEM_PROMPT, TOOLS
from pipelines._genesis_templates import KINDS, classify, template
from pipelines.dna import BUILTIN_LIBRARY, find_pipeline, record_version
from pipelines.errors import ConfigError, GenesisError, SpecError
from pipelines.expressions import parse, references
from pipelines.loader import LoadedPipeline, load_pipeline_text
from pipelines.providers.base import CompletionRequest, Provider
from pipelines.references import condition_expressions
from pipelines.spec import iter_steps
from pipelines.templates import template_expressions
from store.base import Store
from store.models import PipelineDna, PipelineVersion

__all__ = [
    "GENESIS_SCHEMA",
    "KINDS",
    "GenesisResult",
    "GenesisRound",
    "SavedPipeline",
    "check_pipeline",
    "classify",
    "generate_pipeline",
    "save_generated",
    "slugify",
    "to_yaml",
]

MAX_DRAFT_TOKENS = 8192


@dataclass(frozen=True, slots=True)
class GenesisRound:
    """One draft: its YAML and what the validator said (empty: valid)."""

    number: int
    yaml_text: str
    errors: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class GenesisResult:
    """A valid generated pipeline and how it came to be.

    ``rounds`` counts drafts (1: the first one was valid; templates take one
    round); ``history`` holds every round, the last one valid. ``drafted_by`` is
    ``"llm"`` or ``"template"``; ``kind`` is the request's type.
    """

    request: str
    name: str
    yaml_text: str
    pipeline: LoadedPipeline
    rounds: int
    history: tuple[GenesisRound, ...]
    drafted_by: str
    kind: str
    provider: str
    model: str | None
    cost_usd: float = 0.0
    origin: str = "genesis"

    @property
    def round_errors(self) -> list[list[str]]:
        """The validator's errors of each round, in order (the last is empty)."""
        return [list(r.errors) for r in self.history]


@dataclass(frozen=True, slots=True)
class SavedPipeline:
    """Where :func:`save_generated` put a pipeline, and the version it recorded."""

    path: Path
    name: str
    version: PipelineVersion


# ------------------------------------------------------------------ YAML and checks


class _Dumper(yaml.SafeDumper):
    """Block style for multi-line strings, so prompts stay readable in the file."""

    def ignore_aliases(self, data: Any) -> bool:
        return True  # a shared sub-schema is written out each time: no &id001 anchors


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def to_yaml(data: Any, *, header: str = "") -> str:
    """``data`` as YAML (keys in their order); ``header`` becomes leading comment lines."""
    body = yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
    comment = "".join(f"# {line}".rstrip() + "\n" for line in header.splitlines())
    return comment + body


def slugify(request: str, *, max_length: int = 48) -> str:
    """A pipeline name from free text: lower-case words joined by ``_``."""
    words = re.findall(r"[a-z0-9]+", request.lower())
    slug = "_".join(words)[:max_length].strip("_")
    if not slug:
        return "generated_pipeline"
    return slug if slug[0].isalpha() else f"p_{slug}"


def check_pipeline(yaml_text: str, *, source: str) -> tuple[LoadedPipeline | None, list[str]]:
    """Validate ``yaml_text`` with the loader, then Genesis's own checks.

    Returns the loaded pipeline (``None`` if invalid) and the problems found:
    the loader's message (file, line, step and key), unknown tools, and
    ``{{inputs.x}}`` references to inputs the workflow does not declare.
    """
    try:
        loaded = load_pipeline_text(yaml_text, source=source)
    except SpecError as exc:
        return None, [exc.message]
    problems: list[str] = []
    workflow = loaded.workflow
    for step in iter_steps(workflow.steps):
        tool = getattr(step, "tool", None)
        if getattr(step, "type", None) == "tool" and tool not in TOOLS:
            problems.append(
                f"{source}: step {step.name!r}: unknown tool {tool!r}; known: {', '.join(TOOLS)}"
            )
        fields = step.model_dump(by_alias=True, exclude_none=True, exclude={"steps", "condition"})
        expressions = [*template_expressions(fields), *condition_expressions(step.condition)]
        undeclared = sorted(
            {
                ref[1]
                for expression in expressions
                for ref in references(parse(expression))
                if len(ref) > 1 and ref[0] == "inputs" and ref[1] not in workflow.inputs
            }
        )
        if undeclared:
            problems.append(
                f"{source}: step {step.name!r}: uses undeclared inputs {undeclared}; "
                "declare them under workflow.inputs"
            )
    return (None if problems else loaded), problems


def _document(data: Any, name: str) -> tuple[Any, list[str]]:
    """The answer as a pipeline document named ``name``, or why it is not one."""
    if isinstance(data, Mapping) and "workflow" not in data and "steps" in data:
        data = {"workflow": dict(data)}  # a bare workflow: a common slip, not worth a round
    if not isinstance(data, Mapping) or not isinstance(data.get("workflow"), Mapping):
        return data, ['the answer must be a JSON object {"workflow": {...}}']
    workflow = {**data["workflow"], "name": name}
    return {**data, "workflow": workflow}, []


# ------------------------------------------------------------------ generation


def _first_prompt(request: str, name: str) -> str:
    return (
        f"Design a pipeline for this request.\nRequest: {request}\n"
        f"Name the workflow {name!r}. Answer with the JSON object only."
    )


def _repair_prompt(request: str, name: str, yaml_text: str, errors: Sequence[str]) -> str:
    listed = "\n".join(f"- {e}" for e in errors)
    return (
        f"{_first_prompt(request, name)}\n\nYour previous draft does not validate. "
        f"The validator reported:\n{listed}\n\nThe draft, as YAML:\n{yaml_text}\n"
        "Fix every problem and answer with the complete corrected JSON object."
    )


def _header(request: str, drafted_by: str) -> str:
    return f"Generated by `elexirion generate` ({drafted_by}) for the request:\n{request}"


def _from_template(request: str, name: str, provider: str, model: str | None) -> GenesisResult:
    kind = classify(request)
    text = to_yaml(template(kind, request, name), header=_header(request, f"template {kind}"))
    loaded, errors = check_pipeline(text, source=f"{name}.yaml")
    if loaded is None:  # a template bug, not the user's: say so plainly
        raise GenesisError(
            f"the offline {kind!r} template does not validate", rounds=1, errors=errors
        )
    return GenesisResult(
        request=request,
        name=name,
        yaml_text=text,
        pipeline=loaded,
        rounds=1,
        history=(GenesisRound(1, text, ()),),
        drafted_by="template",
        kind=kind,
        provider=provider,
        model=model,
    )


async def generate_pipeline(
    request: str,
    provider: Provider,
    *,
    model: str | None = None,
    max_repairs: int = 3,
    name: str | None = None,
    on_round: Callable[[GenesisRound], None] | None = None,
) -> GenesisResult:
    """Draft, validate and repair a pipeline for ``request``; returns the valid result.

    ``name`` defaults to a slug of the request. ``on_round`` is called after each
    draft is checked (progress output). Raises ``GenesisError`` when the draft is
    still invalid after ``max_repairs`` repair rounds, ``ProviderError`` when the
    provider fails, ``ConfigError`` for an empty request, ``ValueError`` for a negative
    ``max_repairs``.
    """
    if not request.strip():
        raise ConfigError("the request is empty: say what the pipeline should do")
    if max_repairs < 0:
        raise ValueError(f"max_repairs must be >= 0, got {max_repairs}")
    name = name or slugify(request)
    if provider.name == "offline":
        return _from_template(request, name, "offline", None)
    prompt = _first_prompt(request, name)
    history: list[GenesisRound] = []
    cost = 0.0
    for number in range(1, max_repairs + 2):
        completion = await provider.complete(
            CompletionRequest.from_prompt(
                prompt,
                system=SYSTEM_PROMPT,
                model=model,
                max_tokens=MAX_DRAFT_TOKENS,
                output_schema=GENESIS_SCHEMA,
            )
        )
        cost += completion.cost_usd
        if completion.provider == "offline":  # the chain fell back: no model drafted this
            return _from_template(request, name, "offline", completion.model)
        data = completion.data if completion.data is not None else _parse(completion.text)
        document, errors = _document(data, name)
        text = to_yaml(document, header=_header(request, f"{completion.provider} draft"))
        loaded = None
        if not errors:
            loaded, errors = check_pipeline(text, source=f"{name}.yaml")
        history.append(GenesisRound(number, text, tuple(errors)))
        if on_round is not None:
            on_round(history[-1])
        if loaded is not None:
            return GenesisResult(
                request=request,
                name=name,
                yaml_text=text,
                pipeline=loaded,
                rounds=number,
                history=tuple(history),
                drafted_by="llm",
                kind=classify(request),
                provider=completion.provider,
                model=completion.model,
                cost_usd=cost,
            )
        prompt = _repair_prompt(request, name, text, errors)
    raise GenesisError(
        f"no valid pipeline after {len(history)} rounds (1 draft + {max_repairs} repairs)",
        rounds=len(history),
        errors=list(history[-1].errors),
    )


def _parse(text: str) -> Any:
    # A provider without structured output may wrap the JSON in a code fence.
    fenced = re.search(r"```(?:json)?\s*(.*?)```", text, re.DOTALL)
    try:
        return json.loads(fenced.group(1) if fenced else text)
    except ValueError:
        return None


# ------------------------------------------------------------------ saving


def _rename(result: GenesisResult, name: str) -> str:
    data = yaml.safe_load(result.yaml_text)
    data["workflow"]["name"] = name
    header: list[str] = []
    for line in result.yaml_text.splitlines():  # keep the leading comment block
        if not line.startswith("#"):
            break
        header.append(line[2:])
    return to_yaml(data, header="\n".join(header))


def _create_exclusive(path: Path, text: str) -> bool:
    """Write ``text`` to ``path`` atomically unless ``path`` exists; ``False`` if it did."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp, path)  # fails if the name is taken: never replaces a file
        except FileExistsError:
            return False
        return True
    finally:
        Path(tmp).unlink(missing_ok=True)


async def save_generated(
    result: GenesisResult,
    library_dir: Path,
    store: Store,
    *,
    parents: Sequence[PipelineDna] = (),
) -> SavedPipeline:
    """Write ``<library_dir>/<name>.yaml`` and record its version (DNA origin ``genesis``).

    A name already used by a file in ``library_dir`` or the built-in library, or
    by a lineage in the store, gets a numeric suffix (``name_2``), in the file
    name and in the workflow's ``name``. Generation 0 without ``parents``, else
    one past the latest parent. Raises ``OSError`` when the directory cannot be
    written, store errors when the version cannot be recorded.
    """
    for index in range(1, 1000):
        name = result.name if index == 1 else f"{result.name}_{index}"
        taken = find_pipeline(name, [BUILTIN_LIBRARY, library_dir]) is not None
        if taken or await store.latest_pipeline_version(name) is not None:
            continue
        text = result.yaml_text if name == result.name else _rename(result, name)
        path = library_dir / f"{name}.yaml"
        if await asyncio.to_thread(_create_exclusive, path, text):
            version = await record_version(store, name, text, origin="genesis", parents=parents)
            return SavedPipeline(path, name, version)
    raise GenesisError(
        f"no free name for {result.name!r} in {library_dir}", rounds=result.rounds, errors=[]
    )
