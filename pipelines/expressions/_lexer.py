"""Split an expression string into tokens.

Runs once per distinct expression (the parser caches its result). Raises
:class:`~pipelines.errors.ConditionError` with the 0-based column of the bad
character for anything it cannot tokenise: an unterminated string, a stray
``=``, ``&``, ``|`` or an unknown character, or text longer than
:data:`MAX_LENGTH`.

``||``, ``&&`` and ``!`` are returned as the keywords ``or``, ``and`` and
``not`` so the parser sees one spelling. Right after a ``.`` a number is read
as an integer only, so ``items.0.1`` is the path ``items``/``0``/``1`` and not
``items`` followed by the float ``0.1``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from pipelines.errors import ConditionError

__all__ = ["KEYWORDS", "MAX_LENGTH", "Kind", "Token", "tokenize"]

MAX_LENGTH = 4000
"""Longest expression accepted, in characters."""

KEYWORDS = frozenset(
    {
        "and",
        "or",
        "not",
        "contains",
        "matches",
        "between",
        "in",
        "true",
        "false",
        "null",
        "True",
        "False",
        "None",
        "nil",
    }
)

_ALIASES = {"||": "or", "&&": "and", "!": "not"}
_TWO_CHAR = frozenset({"==", "!=", ">=", "<=", "||", "&&"})
_ONE_CHAR = frozenset("<>+-*/%()[],.!")
_HINTS = {"=": "'=='", "&": "'&&' or 'and'", "|": "'||' or 'or'"}
_ESCAPES = {
    "n": "\n",
    "t": "\t",
    "r": "\r",
    "b": "\b",
    "f": "\f",
    "0": "\0",
    "\\": "\\",
    "'": "'",
    '"': '"',
    "/": "/",
}
_HEX = frozenset("0123456789abcdefABCDEF")


class Kind(enum.Enum):
    """What sort of token it is."""

    NUMBER = "number"
    STRING = "string"
    NAME = "name"
    KEYWORD = "keyword"
    OP = "operator"
    EOF = "end"


@dataclass(frozen=True, slots=True)
class Token:
    """One token: its kind, its canonical text, its decoded value and its column."""

    kind: Kind
    text: str
    value: object
    pos: int


def _is_digit(ch: str) -> bool:
    # str.isdigit() accepts '²' and other digits int() rejects; only ASCII is a number.
    return "0" <= ch <= "9"


def _is_name_start(ch: str) -> bool:
    return ch == "_" or ch.isalpha()


def _is_name_char(ch: str) -> bool:
    return ch == "_" or ch.isalnum()


def tokenize(text: str) -> list[Token]:
    """Return the tokens of ``text``, ending with an ``EOF`` token."""
    if len(text) > MAX_LENGTH:
        raise ConditionError(
            f"expression is {len(text)} characters long, the limit is {MAX_LENGTH}",
            expression=text[:80] + "...",
        )
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
        elif _is_digit(ch):
            after_dot = bool(tokens) and tokens[-1].text == "." and tokens[-1].kind is Kind.OP
            i = _number(text, i, tokens, integer_only=after_dot)
        elif ch in "'\"":
            i = _string(text, i, tokens)
        elif _is_name_start(ch):
            start = i
            while i < n and _is_name_char(text[i]):
                i += 1
            word = text[start:i]
            kind = Kind.KEYWORD if word in KEYWORDS else Kind.NAME
            tokens.append(Token(kind, word, word, start))
        elif text[i : i + 2] in _TWO_CHAR:
            op = text[i : i + 2]
            _add_op(tokens, op, i)
            i += 2
        elif ch in _ONE_CHAR:
            _add_op(tokens, ch, i)
            i += 1
        else:
            hint = f"; did you mean {_HINTS[ch]}?" if ch in _HINTS else ""
            raise ConditionError(f"unexpected character {ch!r}{hint}", expression=text, position=i)
    tokens.append(Token(Kind.EOF, "", None, n))
    return tokens


def _add_op(tokens: list[Token], op: str, pos: int) -> None:
    alias = _ALIASES.get(op)
    if alias is None:
        tokens.append(Token(Kind.OP, op, op, pos))
    else:
        tokens.append(Token(Kind.KEYWORD, alias, alias, pos))


def _number(text: str, start: int, tokens: list[Token], *, integer_only: bool) -> int:
    i, n = start, len(text)
    while i < n and _is_digit(text[i]):
        i += 1
    is_float = False
    if not integer_only:
        if i + 1 < n and text[i] == "." and _is_digit(text[i + 1]):
            is_float = True
            i += 1
            while i < n and _is_digit(text[i]):
                i += 1
        if i < n and text[i] in "eE":
            j = i + 1
            if j < n and text[j] in "+-":
                j += 1
            if j < n and _is_digit(text[j]):
                is_float = True
                i = j
                while i < n and _is_digit(text[i]):
                    i += 1
    raw = text[start:i]
    # MAX_LENGTH keeps integer literals below Python's 4300-digit int() limit.
    value: int | float = float(raw) if is_float else int(raw)
    tokens.append(Token(Kind.NUMBER, raw, value, start))
    return i


def _string(text: str, start: int, tokens: list[Token]) -> int:
    quote = text[start]
    out: list[str] = []
    i, n = start + 1, len(text)
    while i < n:
        ch = text[i]
        if ch == quote:
            tokens.append(Token(Kind.STRING, text[start : i + 1], "".join(out), start))
            return i + 1
        if ch == "\\" and i + 1 < n:
            nxt = text[i + 1]
            if nxt in _ESCAPES:
                out.append(_ESCAPES[nxt])
                i += 2
                continue
            if nxt == "u" and i + 6 <= n and all(c in _HEX for c in text[i + 2 : i + 6]):
                out.append(chr(int(text[i + 2 : i + 6], 16)))
                i += 6
                continue
            # Unknown escapes stay as written so regexes like '\d+' need no doubling.
            out.append(ch)
            out.append(nxt)
            i += 2
            continue
        out.append(ch)
        i += 1
    raise ConditionError("unterminated string", expression=text, position=start)
