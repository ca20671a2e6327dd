"""Build a deterministic instance that is valid against a JSON Schema.

The offline provider answers requests that carry an ``output_schema`` with
:func:`sample_instance`; test fakes use it to fabricate structured replies.

How it works: every schema node proposes candidate values in a fixed order
(caller hint, ``const``, ``enum``, ``anyOf``/``oneOf`` branches, then one
generator per allowed type) and the first candidate that the node's own
``jsonschema`` validator accepts wins. Keywords the generator does not model
(``not``, ``if``/``then``, ``dependentRequired``...) are therefore still honoured,
by rejection, never ignored. The same schema, seed and hints always give the
same value: the only variation is a SHA-256 digest of the seed and the path.

Raises :class:`pipelines.errors.ProviderError` with ``code="invalid_request"``
when the schema is not a valid JSON Schema, uses a non-local ``$ref``, or no
candidate satisfies it (e.g. a ``pattern`` we cannot build a match for).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import uuid
from collections import ChainMap
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import unquote

from jsonschema.exceptions import SchemaError
from jsonschema.validators import Draft202012Validator, validator_for

from pipelines.errors import ProviderError
from pipelines.providers._regex_sample import pattern_candidates

__all__ = ["resolve_ref", "sample_instance"]

_MISSING: Any = object()
# Past this depth optional properties and optional array items are left out, so a
# recursive schema (a tree of nodes) bottoms out instead of growing forever.
_SOFT_DEPTH = 6
# A schema that still needs nesting this deep has no finite instance we can build.
_HARD_DEPTH = 40
# Candidates tried per node before giving up; keeps unsatisfiable schemas fast.
_MAX_CANDIDATES = 200
_TYPE_ORDER = ("string", "integer", "number", "boolean", "null", "object", "array")
_OBJECT_KEYS = ("properties", "required", "additionalProperties", "patternProperties")
_ARRAY_KEYS = ("items", "prefixItems", "minItems", "maxItems", "contains", "uniqueItems")
_STRING_KEYS = ("minLength", "maxLength", "pattern", "format")
_NUMBER_KEYS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")
_URI, _HOST, _MAIL = "https://example.com/{h}", "h{h}.example.com", "sample-{h}@example.com"
# Obviously-sample values per format; {h} is a digest slice, {day}/{n} vary for uniqueness.
_FORMATS: dict[str, str] = {
    **dict.fromkeys(("uri", "iri", "url"), _URI),
    **dict.fromkeys(("uri-reference", "iri-reference", "json-pointer"), "/{h}"),
    **dict.fromkeys(("hostname", "idn-hostname"), _HOST),
    **dict.fromkeys(("email", "idn-email"), _MAIL),
    "date-time": "2000-01-{day}T00:00:00Z",
    "date": "2000-01-{day}",
    "time": "00:00:{day}Z",
    "ipv4": "192.0.2.{n}",
    "ipv6": "2001:db8::{n}",
    "duration": "P{day}D",
    "regex": "^{h}$",
}


def _invalid(message: str) -> ProviderError:
    return ProviderError(message, code="invalid_request", retryable=False)


def sample_instance(
    schema: Mapping[str, Any], *, seed: str = "", hints: Mapping[str, Any] | None = None
) -> Any:
    """Return a value valid against ``schema``, the same one for the same inputs.

    ``hints`` maps property names (at any depth) to preferred values; a hint is
    used when it validates, and a list/object hint is adapted item by item
    (missing keys sampled, extra items cut to ``maxItems``). ``seed`` varies the
    sampled strings. Raises ``ProviderError(code="invalid_request")``.
    """
    return _Sampler(schema, seed, hints or {}).sample()


def resolve_ref(root: Mapping[str, Any], ref: str) -> Any:
    """Follow a local ``$ref`` (``#``, ``#/$defs/x``, ``#/definitions/x``) inside ``root``."""
    if not ref.startswith("#"):
        raise _invalid(f"only local $ref is supported, got {ref!r}")
    node: Any = root
    for raw in [p for p in unquote(ref[1:]).split("/") if p]:
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise _invalid(f"$ref {ref!r} does not resolve inside the schema")
    return node


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _merge(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    """Merge two schemas the way ``allOf`` would, for the simple keywords.

    Anything not modelled keeps ``a``'s value: the validator of the original node
    still checks ``b``, so an approximate merge can cost a candidate, never validity.
    """
    out = dict(a)
    for key, value in b.items():
        if key not in out:
            out[key] = value
            continue
        cur = out[key]
        if key == "properties":
            props = dict(cur)
            for name, sub in value.items():
                props[name] = {"allOf": [props[name], sub]} if name in props else sub
            out[key] = props
        elif key == "required":
            out[key] = list(dict.fromkeys([*cur, *value]))
        elif key == "type":
            left, right = _as_list(cur), _as_list(value)
            both = [t for t in left if t in right]
            if "integer" not in both and {"integer", "number"} <= {*left, *right}:
                both.append("integer")  # integer is the number subtype both sides accept
            out[key] = both
        elif key == "enum":
            out[key] = [v for v in cur if v in value]
        elif _is_number(cur) and _is_number(value) and key.startswith(("min", "exclusiveMin")):
            out[key] = max(cur, value)
        elif _is_number(cur) and _is_number(value) and key.startswith(("max", "exclusiveMax")):
            out[key] = min(cur, value)
        elif key in ("items", "additionalProperties", "contains") and cur != value:
            out[key] = {"allOf": [cur, value]}
    return out


@dataclass(frozen=True, slots=True)
class _At:
    """Where the sampler is: JSON path, depth, hints in scope, the preferred value, variant."""

    path: str
    depth: int
    hints: Mapping[str, Any]
    pref: Any = _MISSING
    var: int = 0

    def child(self, key: str, pref: Any = _MISSING, hints: Mapping[str, Any] | None = None) -> _At:
        return _At(
            self.path + key, self.depth + 1, self.hints if hints is None else hints, pref, self.var
        )


class _Sampler:
    """One sampling run over one root schema (for ``$ref`` lookups and validation)."""

    def __init__(self, root: Mapping[str, Any], seed: str, hints: Mapping[str, Any]) -> None:
        cls = validator_for(root, default=Draft202012Validator)
        try:
            cls.check_schema(dict(root))
        except SchemaError as exc:
            raise _invalid(f"output schema is not a valid JSON Schema: {exc.message}") from exc
        self._root = root
        self._seed = seed
        self._hints = hints
        self._validator = cls(root, format_checker=cls.FORMAT_CHECKER)
        self._errors: list[str] = []

    def sample(self) -> Any:
        return self._node(self._root, _At("$", 0, self._hints))

    def _node(self, schema: Any, at: _At) -> Any:
        if at.depth > _HARD_DEPTH:
            raise _invalid(f"{at.path}: the schema recurses without a finite instance")
        if schema is False:
            raise _invalid(f"{at.path}: the schema 'false' accepts no value")
        schema = {} if schema is True else schema
        check = self._validator.evolve(schema=schema).is_valid
        errors_before = len(self._errors)
        for tried, candidate in enumerate(self._candidates(self._flatten(schema, 0), at)):
            if check(candidate):
                return candidate
            if tried >= _MAX_CANDIDATES:
                break
        why = f" ({self._errors[-1]})" if len(self._errors) > errors_before else ""
        shown = json.dumps(schema, default=str)[:200]
        raise _invalid(f"{at.path}: no value found that satisfies {shown}{why}")

    def _flatten(self, schema: Mapping[str, Any], hops: int) -> dict[str, Any]:
        """Inline ``$ref`` and ``allOf`` into one dict of keywords."""
        if hops > 50:
            raise _invalid("$ref/allOf chain does not terminate")
        out = {k: v for k, v in schema.items() if k not in ("$ref", "allOf")}
        parts: list[Any] = list(schema.get("allOf", []))
        if "$ref" in schema:
            parts.insert(0, resolve_ref(self._root, schema["$ref"]))
        for part in parts:
            if part is False:
                raise _invalid("allOf contains the schema 'false'")
            if isinstance(part, Mapping):
                out = _merge(out, self._flatten(part, hops + 1))
        return out

    def _candidates(self, s: dict[str, Any], at: _At) -> Iterator[Any]:
        if at.pref is not _MISSING:
            yield at.pref
        if "const" in s:
            yield s["const"]
        if s.get("enum"):
            values = list(s["enum"])
            turn = at.var % len(values)
            yield from values[turn:] + values[:turn]
        for key in ("anyOf", "oneOf"):
            if key in s:
                rest = {k: v for k, v in s.items() if k != key}
                for branch in s[key]:
                    if isinstance(branch, Mapping):
                        merged = _merge(rest, self._flatten(branch, 0))
                        yield from self._guard(self._candidates(merged, at))
                return
        for kind in _types(s):
            yield from self._guard(self._typed(kind, s, at))

    def _guard(self, gen: Iterator[Any]) -> Iterator[Any]:
        # A branch or type that cannot be built must not hide the other branches/types.
        try:
            yield from gen
        except ProviderError as exc:
            self._errors.append(exc.message)

    def _typed(self, kind: str, s: dict[str, Any], at: _At) -> Iterator[Any]:
        if kind == "string":
            yield from self._strings(s, at)
        elif kind in ("integer", "number"):
            yield from _numbers(s, integer=kind == "integer", var=at.var)
        elif kind == "boolean":
            # False first: an offline answer should not assert a flag it cannot know.
            yield from (at.var % 2 == 1, at.var % 2 == 0)
        elif kind == "null":
            yield None
        elif kind == "object":
            yield from self._objects(s, at)
        elif kind == "array":
            yield from self._arrays(s, at)

    def _strings(self, s: Mapping[str, Any], at: _At) -> Iterator[str]:
        low, high = int(s.get("minLength", 0)), s.get("maxLength")
        digest = hashlib.sha256(f"{self._seed}\x00{at.path}\x00{at.var}".encode()).hexdigest()

        def fit(text: str) -> str:
            text = text + "x" * max(0, low - len(text))
            return text if high is None else text[: int(high)]

        if isinstance(at.pref, str):
            yield fit(at.pref)
        elif _is_number(at.pref):  # e.g. a line number where the schema wants a string
            yield fit(str(at.pref))
        fmt = _FORMATS.get(str(s.get("format", "")))
        if fmt is not None:
            yield fmt.format(h=digest[:8], day=f"{1 + at.var % 28:02d}", n=1 + at.var % 250)
        if s.get("format") == "uuid":
            yield str(uuid.UUID(digest[:32]))
        label = at.path.rsplit(".", 1)[-1].split("[", 1)[0].strip("$") or "sample"
        base = f"{label}-{digest[:8]}"
        if "pattern" in s:
            yield from pattern_candidates(str(s["pattern"]), min_length=low, variant=at.var)
            yield from (base, "", "a", "A", "0", "abc", "a1", "x" * max(low, 1))
        yield fit(base)

    def _objects(self, s: Mapping[str, Any], at: _At) -> Iterator[dict[str, Any]]:
        props: Mapping[str, Any] = s.get("properties", {})
        required = [str(r) for r in s.get("required", [])]
        extra = s.get("additionalProperties", True)
        # An object hint (e.g. one finding) shadows the outer hints for its own keys.
        layer = (
            ChainMap(dict(at.pref), dict(at.hints)) if isinstance(at.pref, Mapping) else at.hints
        )
        wanted = [p for p in props if p in required or at.depth < _SOFT_DEPTH]
        wanted += [r for r in required if r not in props]
        if "maxProperties" in s:
            keep = max(0, int(s["maxProperties"]) - len(required))
            optional = [p for p in wanted if p not in required][:keep]
            wanted = [p for p in wanted if p in required or p in optional]
        obj: dict[str, Any] = {}
        for name in wanted:
            sub = props[name] if name in props else _extra_schema(s, name, extra)
            try:
                obj[name] = self._node(sub, at.child(f".{name}", layer.get(name, _MISSING), layer))
            except ProviderError:
                if name in required:
                    raise
        index = 0
        while len(obj) < int(s.get("minProperties", 0)) and extra is not False:
            index += 1
            if (key := f"property_{index}") not in obj:
                obj[key] = self._node(extra, at.child(f".{key}", hints=layer))
        yield obj
        yield {k: v for k, v in obj.items() if k in required}

    def _arrays(self, s: Mapping[str, Any], at: _At) -> Iterator[list[Any]]:
        items: Any = s.get("items", True)
        prefix: list[Any] = list(s.get("prefixItems", []))
        if isinstance(items, list):  # draft 4-7 tuple form
            prefix, items = items, s.get("additionalItems", True)
        low, high = int(s.get("minItems", 0)), s.get("maxItems")
        pref = at.pref if isinstance(at.pref, list | tuple) else ()
        count = max(low, len(prefix), len(pref), 1 if at.depth < _SOFT_DEPTH else 0)
        count = max(count, 1) if "contains" in s else count
        count = count if high is None else min(count, int(high))
        count = min(count, len(prefix)) if items is False else count
        out: list[Any] = []
        seen: set[str] = set()
        for i in range(count):
            sub = prefix[i] if i < len(prefix) else items
            if i == 0 and "contains" in s:
                sub = {"allOf": [sub, s["contains"]]}
            hint = pref[i] if i < len(pref) else _MISSING
            for attempt in range(20 if s.get("uniqueItems") else 1):
                child = at.child(f"[{i}]", hint)
                value = self._node(sub, replace(child, var=at.var + attempt))
                key = json.dumps(value, sort_keys=True, default=str)
                if key not in seen:
                    break
                hint = _MISSING  # a repeated hint cannot be unique; sample instead
            seen.add(key)
            out.append(value)
        yield out
        if len(out) > low:
            yield out[:low]


def _types(s: Mapping[str, Any]) -> list[str]:
    if "type" in s:
        kinds = _as_list(s["type"])
    else:
        groups = (_OBJECT_KEYS, _ARRAY_KEYS, _STRING_KEYS, _NUMBER_KEYS)
        names = ("object", "array", "string", "number")
        kinds = [n for n, keys in zip(names, groups, strict=True) if any(k in s for k in keys)]
        kinds = kinds or list(_TYPE_ORDER)
    if s.get("nullable") is True:  # OpenAPI spelling of ["T", "null"]
        kinds.append("null")
    # Prefer a real value over null: a sampled answer should carry content.
    return sorted(dict.fromkeys(kinds), key=lambda k: k == "null")


def _extra_schema(s: Mapping[str, Any], name: str, extra: Any) -> Any:
    for pattern, sub in s.get("patternProperties", {}).items():
        if re.search(pattern, name):
            return sub
    return extra


# ------------------------------------------------------------------- numbers


def _bounds(s: Mapping[str, Any]) -> tuple[float | None, float | None]:
    """Inclusive-ish bounds; exclusive ones are nudged inward (validation is exact)."""
    low, high = s.get("minimum"), s.get("maximum")
    ex_low, ex_high = s.get("exclusiveMinimum"), s.get("exclusiveMaximum")
    if ex_low is True and low is not None:  # draft 4: boolean modifier
        ex_low = low
    if ex_high is True and high is not None:
        ex_high = high
    if isinstance(ex_low, int | float) and not isinstance(ex_low, bool):
        low = ex_low if low is None else max(low, ex_low)
    if isinstance(ex_high, int | float) and not isinstance(ex_high, bool):
        high = ex_high if high is None else min(high, ex_high)
    return low, high


def _numbers(s: Mapping[str, Any], *, integer: bool, var: int) -> Iterator[int | float]:
    """Numbers near 0, or just inside the violated bound; ``var`` shifts them for uniqueness."""
    low, high = _bounds(s)
    step = s.get("multipleOf")
    if step:
        first, direction = 0, 1
        if low is not None and low > 0:
            first = math.ceil(low / step)
        elif high is not None and high < 0:
            first, direction = math.floor(high / step), -1
        for k in range(60):
            yield from _exact_multiples(first + direction * (var + k), step)
        return
    anchors: list[float] = [0]
    if low is not None:
        anchors += [math.ceil(low), math.floor(low) + 1]
    if high is not None:
        anchors += [math.floor(high), math.ceil(high) - 1]
    for anchor in anchors:
        yield from (int(anchor + var), int(anchor - var))
    if not integer:
        if low is not None and high is not None:
            yield low + (high - low) / (2 + var)
        yield (low if low is not None else 0) + 0.5 + var
        if high is not None:
            yield high - 0.5 - var


def _exact_multiples(n: int, step: float) -> Iterator[int | float]:
    # Float multipleOf is checked as int(x / step) == x / step, so several spellings
    # of n*step are offered and the validator keeps the first exact one.
    if isinstance(step, int):
        yield n * step
        return
    if float(n * step).is_integer():
        yield int(n * step)  # an int also satisfies "type": "integer" in every draft
    yield n * step
    yield float(f"{n * step:.12g}")
