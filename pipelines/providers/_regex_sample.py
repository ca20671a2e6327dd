"""Build strings that match a regular expression (for JSON Schema ``pattern``).

Private helper of :mod:`pipelines.providers.schema_sample`. It walks Python's
own parse tree of the pattern and emits the simplest matching characters, with
unbounded repeats stretched by ``extra``. It only proposes candidates: the
caller validates them, so an imperfect build costs a candidate, never validity.
Constructs it cannot build (lookarounds, conditionals) yield nothing.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator, Sequence
from typing import Any

__all__ = ["pattern_candidates"]

# Python's regex parser lives in the private ``re._parser`` since 3.11 (the public
# ``sre_parse`` alias warns on import); loaded by name because typeshed has no stub.
_PARSER: Any = importlib.import_module("re._parser")
_CATEGORY_CLASS = {
    "CATEGORY_DIGIT": r"\d",
    "CATEGORY_NOT_DIGIT": r"\D",
    "CATEGORY_SPACE": r"\s",
    "CATEGORY_NOT_SPACE": r"\S",
    "CATEGORY_WORD": r"\w",
    "CATEGORY_NOT_WORD": r"\W",
    "CATEGORY_LINEBREAK": r"\n",
    "CATEGORY_NOT_LINEBREAK": r"[^\n]",
}
# Characters tried, in order, when a class or category must be satisfied.
_POOL = "a0A_-x. ~Z9\n"


class _UnsupportedError(Exception):
    """A construct this builder does not emit strings for."""


def pattern_candidates(pattern: str, *, min_length: int = 0, variant: int = 0) -> Iterator[str]:
    """Yield strings meant to match ``pattern`` (searched, as JSON Schema does).

    ``variant`` picks other alternation branches so array items can differ.
    """
    for extra in dict.fromkeys((0, 1, 2, 4, 8, max(min_length, 1), variant)):
        try:
            yield _emit(_PARSER.parse(pattern), extra, variant, {})
        except (re.error, _UnsupportedError, LookupError, TypeError, ValueError):
            return


def _emit(items: Sequence[Any], extra: int, var: int, groups: dict[int, str]) -> str:
    out: list[str] = []
    for op, arg in items:
        name = str(op)
        if name == "LITERAL":
            out.append(chr(arg))
        elif name in ("NOT_LITERAL", "ANY"):
            out.append("b" if arg == ord("a") else "a")
        elif name == "IN":
            out.append(_pick_in(arg))
        elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            low, high, sub = arg
            if low > 10_000:
                raise _UnsupportedError("repeat too long to build")
            out.append(_emit(sub, extra, var, groups) * min(high, low + extra))
        elif name == "SUBPATTERN":
            text = _emit(arg[-1], extra, var, groups)
            if arg[0] is not None:
                groups[arg[0]] = text
            out.append(text)
        elif name == "ATOMIC_GROUP":
            out.append(_emit(arg, extra, var, groups))
        elif name == "BRANCH":
            branches = arg[1]
            out.append(_emit(branches[var % len(branches)], extra, var, groups))
        elif name == "GROUPREF":
            out.append(groups.get(arg, ""))
        elif name == "CATEGORY":
            out.append(_first_matching(lambda c, a=arg: _matches(c, "CATEGORY", a)))
        elif name != "AT":  # anchors need no characters
            raise _UnsupportedError(name)
    return "".join(out)


def _pick_in(members: Sequence[Any]) -> str:
    if members and str(members[0][0]) == "NEGATE":
        rest = members[1:]
        return _first_matching(lambda c: not any(_matches(c, str(o), a) for o, a in rest))
    op, arg = members[0]
    kind = str(op)
    if kind == "LITERAL":
        return chr(arg)
    if kind == "RANGE":
        return chr(arg[0])
    return _first_matching(lambda c: _matches(c, kind, arg))


def _first_matching(accept: Any) -> str:
    for char in _POOL:
        if accept(char):
            return char
    raise _UnsupportedError("no simple character satisfies the class")


def _matches(char: str, kind: str, arg: Any) -> bool:
    if kind == "LITERAL":
        return bool(ord(char) == arg)
    if kind == "RANGE":
        return bool(arg[0] <= ord(char) <= arg[1])
    if kind == "CATEGORY":
        return re.fullmatch(_CATEGORY_CLASS[str(arg)], char) is not None
    raise _UnsupportedError(kind)
