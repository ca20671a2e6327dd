"""Render ``{{...}}`` templates inside step configuration.

Runs just before a step executes: :func:`render` walks the step's values
(dicts, lists, tuples, strings) and replaces every ``{{ expr }}`` by the value
of ``expr`` evaluated in strict mode with :mod:`pipelines.expressions`.

* A string that is exactly one template (``"{{ steps.a.items }}"``, spaces
  inside the braces allowed, nothing outside) becomes the value itself and keeps
  its type: list, dict, int, ``None``...
* A string mixing text and templates gets each value as text: ``null`` → ``""``,
  booleans → ``true``/``false``, numbers → ``str()``, lists and maps → compact JSON.
* A string without ``{{`` is returned as is. An unclosed ``{{`` and a stray
  ``}}`` are literal text. An expression ends at the first ``}}``, so it cannot
  contain ``}}`` even inside quotes. Dict keys are never rendered.
* ``{{ default(x, fallback) }}`` is how to render a value that may be missing.

Raises :class:`~pipelines.errors.TemplateError` naming the step and the
expression for a syntax error, an unresolved reference or any evaluation
problem (pipeline_ex rendered unknown names as ``""``; we do not).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any

from pipelines.errors import ConditionError, TemplateError
from pipelines.expressions import Scope, evaluate, parse
from pipelines.expressions.functions import to_text

__all__ = ["has_template", "render", "template_expressions"]

_HOLE = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)


_CACHE_LIMIT = 2000  # longer texts (file contents, big prompts) are split uncached


def _split(text: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``text`` as (literal pieces, expressions); there is one more piece than expressions."""
    return _split_cached(text) if len(text) <= _CACHE_LIMIT else _split_text(text)


@functools.lru_cache(maxsize=4096)
def _split_cached(text: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    return _split_text(text)


def _split_text(text: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    pieces: list[str] = []
    expressions: list[str] = []
    last = 0
    for match in _HOLE.finditer(text):
        pieces.append(text[last : match.start()])
        expressions.append(match.group(1).strip())
        last = match.end()
    pieces.append(text[last:])
    return tuple(pieces), tuple(expressions)


def _evaluate(expression: str, scope: Scope, step: str | None) -> Any:
    if not expression:
        raise TemplateError("empty template", expression=expression, step=step)
    try:
        return evaluate(parse(expression), scope, strict=True)
    except ConditionError as exc:
        at = f" at column {exc.position + 1}" if exc.position is not None else ""
        raise TemplateError(f"{exc.detail}{at}", expression=expression, step=step) from exc


def _render_text(text: str, scope: Scope, step: str | None) -> Any:
    pieces, expressions = _split(text)
    if not expressions:
        return text
    if len(expressions) == 1 and pieces == ("", ""):
        return _evaluate(expressions[0], scope, step)
    out = [pieces[0]]
    for expression, piece in zip(expressions, pieces[1:], strict=True):
        value = _evaluate(expression, scope, step)
        try:
            out.append(to_text(value))
        except (TypeError, ValueError) as exc:  # e.g. an int with more than 4300 digits
            raise TemplateError(
                f"cannot render the value as text: {exc}", expression=expression, step=step
            ) from exc
        out.append(piece)
    return "".join(out)


def render(value: Any, scope: Scope, *, step: str | None = None) -> Any:
    """``value`` with every ``{{ expr }}`` in it (recursively) replaced; see the module doc."""
    if isinstance(value, str):
        return _render_text(value, scope, step) if "{{" in value else value
    if isinstance(value, Mapping):
        return {key: render(item, scope, step=step) for key, item in value.items()}
    if isinstance(value, list):
        return [render(item, scope, step=step) for item in value]
    if isinstance(value, tuple):
        return tuple(render(item, scope, step=step) for item in value)
    return value


def template_expressions(value: Any) -> list[str]:
    """Every ``{{ expr }}`` expression inside ``value`` (recursively), stripped, in order."""
    found: list[str] = []
    _collect(value, found)
    return found


def _collect(value: Any, found: list[str]) -> None:
    if isinstance(value, str):
        if "{{" in value:
            found.extend(_split(value)[1])
    elif isinstance(value, Mapping):
        for item in value.values():
            _collect(item, found)
    elif isinstance(value, list | tuple):
        for item in value:
            _collect(item, found)


def has_template(value: Any) -> bool:
    """Whether ``value`` contains at least one ``{{ expr }}``."""
    return bool(template_expressions(value))
