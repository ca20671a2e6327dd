"""The ``offline`` provider: a deterministic extract of the prompt, no model, no network.

It is the default when no API key is configured, so a pipeline always runs.
It never pretends to be a model: every text answer starts with :data:`MARKER`
and then lists what it mechanically found in the prompt (opening line,
headings, bullet lines, every finding such as ``path/file.py:12 RULE message``
or a JSON ``{"file", "line", "rule", "message"}`` object), a word count with
top keywords, and recommendations from a fixed rule table, labelled as such.

Behaviour worth knowing:

- The same request always gives the same completion (only ``latency_ms``
  differs); sampled values are seeded by a SHA-256 of the request.
- It reads the messages; the system prompt is read only when there are no
  messages, because it holds instructions (and example findings), not material.
- With ``output_schema``, ``data`` is a schema-valid object (checked with
  ``jsonschema`` before returning) filled from the extract where property names
  suggest it (``summary``, ``findings``, ``recommendations``...), and ``text`` is
  its JSON. A schema ``maxItems``/``maxLength`` can cut findings: validity wins.
- With ``tools``, no tool is ever called: ``finish_reason`` is ``"stop"`` and the
  text names the tools that were offered.
- ``max_tokens`` is not enforced: truncating would drop findings.

Raises :class:`~pipelines.errors.ProviderError` (``invalid_request``) only for an
output schema that is invalid or that no value satisfies.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import re
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

from jsonschema.validators import Draft202012Validator, validator_for

from pipelines.errors import ProviderError
from pipelines.providers._prompt_extract import (
    FILE_KEYS,
    RULE_KEYS,
    SEVERITY_KEYS,
    Finding,
    PromptDigest,
    digest_prompt,
    extract_findings,
)
from pipelines.providers.base import Completion, CompletionRequest, StreamEvent, Usage
from pipelines.providers.schema_sample import resolve_ref, sample_instance

__all__ = [
    "DEFAULT_MODEL",
    "MARKER",
    "Finding",
    "OfflineProvider",
    "approx_tokens",
    "extract_findings",
    "word_chunks",
]

MARKER = "[offline summary — no LLM was called]"
DEFAULT_MODEL = "offline-extractive-1"


def _summary(d: PromptDigest) -> str:
    lead = f" Lead: {d.lead}" if d.lead else ""
    return (
        f"{MARKER} Extract of a {d.words}-word prompt: {len(d.findings)} finding(s) listed "
        f"with file:line; top keywords: {', '.join(d.keywords) or 'none'}.{lead}"
    )


def _render(d: PromptDigest, model: str, tools: list[str]) -> str:
    def section(title: str, items: list[str], cap: int | None = None) -> list[str]:
        shown = items if cap is None else items[:cap]
        more = [f"- (+{len(items) - len(shown)} more not shown)"] if len(items) > len(shown) else []
        return [f"{title} ({len(items)}):", *(f"- {i}" for i in shown), *more] if items else []

    findings = section("Findings, all of them", [f.render() for f in d.findings])
    rules = "Rule-based recommendations (fixed table keyed on rule ids/keywords, not model advice)"
    lines = [
        MARKER,
        f"Deterministic extract by the offline provider ({model}); no model wrote this.",
        f"Opening: {d.opening}" if d.opening else "Opening: (empty prompt)",
        *section("Headings", d.headings, 20),
        *section("Bullet points", [b.lstrip("-*+ ") for b in d.bullets], 30),
        *(findings or ["Findings: none in the prompt."]),
        *section(rules, d.recommendations),
        f"Summary: {d.words} words; top keywords: {', '.join(d.keywords) or 'none'}.",
    ]
    if d.lead:
        lines.append(f"Lead: {d.lead}")
    if tools:
        lines.append(
            f"Tools offered but not called (offline never calls tools): {', '.join(tools)}"
        )
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------ schema hints

# When an item schema's severity enum lacks the linter's word, the nearest word it has.
_SEVERITY_LADDER = {
    "error": ("error", "high", "major", "critical", "warning", "medium"),
    "warning": ("warning", "warn", "medium", "moderate", "minor", "low", "info"),
    "note": ("note", "info", "low", "minor", "suggestion", "warning"),
}


def _deref(schema: Any, root: Mapping[str, Any]) -> Any:
    for _ in range(20):
        if not (isinstance(schema, Mapping) and isinstance(schema.get("$ref"), str)):
            break
        schema = resolve_ref(root, schema["$ref"])
    return schema


def _properties(schema: Any, root: Mapping[str, Any], seen: set[int]) -> Iterator[tuple[str, Any]]:
    """Every (property name, its schema) reachable in ``schema``, refs followed once."""
    schema = _deref(schema, root)
    if not isinstance(schema, Mapping) or id(schema) in seen:
        return
    seen.add(id(schema))
    for name, sub in schema.get("properties", {}).items():
        yield name, _deref(sub, root)
        yield from _properties(sub, root, seen)
    for key in ("items", "additionalProperties"):
        yield from _properties(schema.get(key), root, seen)
    for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
        for sub in schema.get(key, []):
            yield from _properties(sub, root, seen)


def _schema_hints(schema: Mapping[str, Any], d: PromptDigest) -> dict[str, Any]:
    """Prompt-derived values for the properties whose names say what they hold."""
    hints: dict[str, Any] = {}
    for name, sub in _properties(schema, schema, set()):
        key = name.lower()
        if "summary" in key or key in ("overview", "abstract", "description", "answer", "result"):
            hints[name] = _summary(d)
        elif (
            any(k in key for k in ("finding", "issue", "problem", "violation", "diagnostic"))
            or key == "items"
        ):
            item = _deref(sub.get("items"), schema) if isinstance(sub, Mapping) else None
            item_props = {n.lower(): s for n, s in _properties(item, schema, set())}
            if {*FILE_KEYS, "location"} & item_props.keys():
                enum = _deref(
                    next((item_props[k] for k in SEVERITY_KEYS if k in item_props), {}), schema
                )
                allowed = list(enum.get("enum", [])) if isinstance(enum, Mapping) else []
                bare = not set(RULE_KEYS) & item_props.keys()
                hints[name] = [
                    f.as_hint(_severity(f, allowed), rule_in_message=bare) for f in d.findings
                ]
            elif isinstance(item, Mapping) and item.get("type") == "string":
                hints[name] = [f.render() for f in d.findings]
        elif any(k in key for k in ("recommend", "suggestion", "advice", "action")):
            hints[name] = d.recommendations
        elif key in ("title", "heading", "headline"):
            hints[name] = (d.headings or [d.opening])[0]
        elif key in ("keywords", "tags", "topics"):
            hints[name] = d.keywords
        elif key in ("word_count", "words"):
            hints[name] = d.words
    return hints


def _severity(finding: Finding, allowed: list[Any]) -> str:
    wanted = (finding.severity or "warning").lower()
    if not allowed or wanted in allowed:
        return wanted
    ladder = _SEVERITY_LADDER.get("note" if wanted == "info" else wanted, ())
    return next((s for s in ladder if s in allowed), wanted)


# --------------------------------------------------------------------- provider


def approx_tokens(text: str) -> int:
    """Roughly 4/3 tokens per whitespace word: a stable stand-in for a tokenizer."""
    return math.ceil(len(text.split()) * 4 / 3)


def word_chunks(text: str) -> list[str]:
    """Split ``text`` into word-sized deltas whose concatenation is exactly ``text``."""
    return re.findall(r"\s*\S+\s*", text) or ([text] if text else [])


class OfflineProvider:
    """Deterministic, network-free provider; see the module docstring for its contract."""

    name = "offline"

    def __init__(self, *, model: str = DEFAULT_MODEL) -> None:
        self.model = model

    async def complete(self, request: CompletionRequest) -> Completion:
        """Answer from the prompt alone; raises ``ProviderError`` only for a bad schema."""
        started = time.perf_counter()
        model = self.model  # its own name: the model a step asked for was not called
        material = request.prompt_text or (request.system or "")
        digest = digest_prompt(material)
        data: Any = None
        if request.output_schema is not None:
            data = self._structured(request, request.output_schema, digest)
            text = json.dumps(data, ensure_ascii=False)
        else:
            text = _render(digest, model, [t.name for t in request.tools])
        prompt = f"{request.system or ''}\n{request.prompt_text}"
        return Completion(
            text=text,
            provider=self.name,
            model=model,
            usage=Usage(approx_tokens(prompt), approx_tokens(text)),
            cost_usd=0.0,
            latency_ms=(time.perf_counter() - started) * 1000,
            finish_reason="stop",
            data=data,
        )

    async def stream(self, request: CompletionRequest) -> AsyncIterator[StreamEvent]:
        """Yield the completion's text in word deltas, then the completion itself."""
        completion = await self.complete(request)
        for chunk in word_chunks(completion.text):
            yield StreamEvent(delta=chunk)
            await asyncio.sleep(0)  # let other tasks run, as a real stream would
        yield StreamEvent(completion=completion)

    def _structured(
        self, request: CompletionRequest, schema: Mapping[str, Any], digest: PromptDigest
    ) -> Any:
        seed = hashlib.sha256(_canonical(request).encode()).hexdigest()
        try:
            data = sample_instance(schema, seed=seed, hints=_schema_hints(schema, digest))
        except ProviderError as exc:
            raise ProviderError(exc.message, code=exc.code, provider=self.name) from exc
        cls = validator_for(schema, default=Draft202012Validator)
        errors = list(cls(schema, format_checker=cls.FORMAT_CHECKER).iter_errors(data))
        if errors:  # a sampler bug, never a user error: fail loudly rather than lie
            message = f"offline output failed its own schema check: {errors[0].message}"
            raise ProviderError(message, code="server_error", provider=self.name)
        return data


def _canonical(request: CompletionRequest) -> str:
    """A stable JSON spelling of the request (never ``hash()``: it is salted per process)."""
    messages = [[m.role, m.content, m.tool_call_id] for m in request.messages]
    tools = [[t.name, t.description, t.parameters] for t in request.tools]
    fields = [request.system, messages, request.model, tools, request.output_schema]
    return json.dumps(
        fields, sort_keys=True, default=lambda o: dict(o) if isinstance(o, Mapping) else str(o)
    )
