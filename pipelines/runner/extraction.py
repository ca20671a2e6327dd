"""Post-processing of a ``claude_extract`` answer: format it, then mine it.

:func:`extract` runs after the model has answered. It is pure and line-based:
fenced code blocks are found first, and everything else (headings, list items,
links, sentences) is read from the lines outside them, so a ``#`` comment or a
URL inside code is never taken for prose.

Formats (the ``content`` key):

- ``text``: the answer with markdown syntax removed (fence markers, ``#``,
  emphasis, inline-code backticks; a link becomes ``text (url)``).
- ``markdown``: the answer as is, stripped.
- ``json``: the first JSON object or array; a ```` ```json ```` fence wins over
  anything before it. Raises :class:`StepFailed` (``code="extraction_failed"``)
  saying what is wrong and where (line and column in the answer).
- ``structured``: ``{"sections": {heading: markdown under it}}``; text before the
  first heading is the ``"preamble"`` section, repeated headings are joined.
- ``summary``: the same text as the ``generate_summary`` post-processor.

Post-processors (each adds its key): see :data:`POST_PROCESSORS` and the
functions named after them. Unknown format or post-processor names raise
:class:`ConfigError` (the spec rejects them too; this guards direct callers).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pipelines.errors import ConfigError, StepFailed

__all__ = ["FORMATS", "POST_PROCESSORS", "ExtractFormat", "extract"]

ExtractFormat = Literal["text", "json", "structured", "summary", "markdown"]
FORMATS: frozenset[str] = frozenset({"text", "json", "structured", "summary", "markdown"})
# post-processor -> the result key it fills
_RESULT_KEYS = {
    "extract_code_blocks": "code_blocks",
    "extract_recommendations": "recommendations",
    "extract_links": "links",
    "extract_key_points": "key_points",
    "generate_summary": "summary",
}
POST_PROCESSORS: frozenset[str] = frozenset(_RESULT_KEYS)
ERROR_CODE = "extraction_failed"
MAX_KEY_POINTS = 20
ELLIPSIS = "..."


def extract(
    text: str,
    *,
    fmt: ExtractFormat = "text",
    post_processing: Sequence[str] = (),
    max_summary_length: int = 500,
) -> dict[str, Any]:
    """Format ``text`` as ``fmt`` into ``content`` and add one key per post-processor.

    Raises :class:`ConfigError` for an unknown format or post-processor or a
    ``max_summary_length`` below 1, and :class:`StepFailed` when ``fmt="json"``
    finds no valid JSON.
    """
    if fmt not in FORMATS:
        raise ConfigError(f"unknown extraction format {fmt!r}; expected one of {sorted(FORMATS)}")
    unknown = [name for name in post_processing if name not in POST_PROCESSORS]
    if unknown:
        expected = ", ".join(sorted(POST_PROCESSORS))
        raise ConfigError(f"unknown post_processing {unknown[0]!r}; expected one of {expected}")
    if max_summary_length < 1:
        raise ConfigError(f"max_summary_length must be at least 1, got {max_summary_length}")

    doc = _Doc.scan(text)

    def summarize(d: _Doc) -> str:
        return _summary(d, max_summary_length)

    formatters: dict[str, Callable[[_Doc], Any]] = {
        "text": _plain_text,
        "markdown": lambda d: d.text.strip(),
        "json": _parse_json,
        "structured": lambda d: {"sections": _sections(d)},
        "summary": summarize,
    }
    processors: dict[str, Callable[[_Doc], Any]] = {
        "extract_code_blocks": lambda d: [
            {"language": b.language, "code": b.code} for b in d.blocks
        ],
        "extract_recommendations": _recommendations,
        "extract_links": _links,
        "extract_key_points": _key_points,
        "generate_summary": summarize,
    }
    result: dict[str, Any] = {"content": formatters[fmt](doc)}
    for name in post_processing:
        result[_RESULT_KEYS[name]] = processors[name](doc)
    return result


# ------------------------------------------------------------------------- scanning

_FENCE = re.compile(r"^([ \t]*)(`{3,}|~{3,})[ \t]*([^\s`{}]*)")
_HEADING = re.compile(r"^ {0,3}#{1,6}(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_BOLD_TITLE = re.compile(r"^\s*(?:\*\*|__)([^*_].*?)(?:\*\*|__)\s*:?\s*$")
_COLON_TITLE = re.compile(r"^\s*([^\s|>].{0,80}?):\s*$")
_LIST_ITEM = re.compile(r"^([ \t]*)(?:[-*+]|\d{1,9}[.)])[ \t]+(?:\[[ xX]\][ \t]+)?(.*\S)")
_RULE = re.compile(r"^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$")
_QUOTE = re.compile(r"^ {0,3}(?:>[ \t]?)+")


@dataclass(frozen=True, slots=True)
class _Code:
    language: str
    code: str
    offset: int  # where the code starts in the answer, for JSON error positions


@dataclass(frozen=True, slots=True)
class _Doc:
    """The answer split into lines, with its fenced code blocks set apart."""

    text: str
    lines: list[str]
    code_lines: frozenset[int]  # lines inside fences, markers included
    fence_lines: frozenset[int]  # the marker lines themselves
    blocks: list[_Code]

    @classmethod
    def scan(cls, text: str) -> _Doc:
        raw = text.splitlines(keepends=True)
        lines = [line.splitlines()[0] for line in raw]
        starts = [0]
        for line in raw:
            starts.append(starts[-1] + len(line))
        code: set[int] = set()
        fences: set[int] = set()
        blocks: list[_Code] = []
        i = 0
        while i < len(lines):
            opening = _FENCE.match(lines[i])
            if opening is None:
                i += 1
                continue
            indent, marker = len(opening.group(1)), opening.group(2)
            end = i + 1
            # A closing fence is the same character, at least as long, alone on its line;
            # an unclosed fence runs to the end (a truncated answer).
            while end < len(lines) and not _closes(lines[end], marker):
                end += 1
            # Fences inside list items come indented; that indentation is not the code's.
            body = [
                line[min(indent, len(line) - len(line.lstrip())) :] for line in lines[i + 1 : end]
            ]
            blocks.append(_Code(opening.group(3), "\n".join(body), starts[i + 1]))
            code.update(range(i, min(end + 1, len(lines))))
            fences.update(j for j in (i, end) if j < len(lines))
            i = end + 1
        return cls(text, lines, frozenset(code), frozenset(fences), blocks)

    def prose(self) -> list[str]:
        """The lines outside code blocks (blank where code was, to keep paragraphs apart)."""
        return ["" if i in self.code_lines else line for i, line in enumerate(self.lines)]


def _closes(line: str, marker: str) -> bool:
    stripped = line.strip()
    return len(stripped) >= len(marker) and stripped == marker[0] * len(stripped)


def _title(line: str, *, loose: bool = False) -> str | None:
    """The heading a line makes: ``# Title`` or a bold-only line; if ``loose``, also a
    short line ending in a colon."""
    match = _HEADING.match(line) or _BOLD_TITLE.match(line)
    if match is None and loose:
        match = _COLON_TITLE.match(line)
    if match is None or _LIST_ITEM.match(line):
        return None
    return _inline(match.group(1) or "").rstrip(":").strip()


# ------------------------------------------------------------------ inline markup

# Spans are bounded so a long line of stray markers stays linear, not quadratic.
_CODE_SPAN = re.compile(r"(`+)(.{1,2000}?)\1")
_LINK = re.compile(r"(!?)\[([^\[\]\n]*)\]\(\s*<?([^\s()<>]*)>?(?:\s+[\"'][^\"'\n]*[\"'])?\s*\)")
_STRONG = re.compile(r"(\*\*|__)(?=\S)(.{1,400}?)(?<=\S)\1")
_EMPHASIS = re.compile(
    r"(?<![\w*])\*(?![\s*])(.{1,400}?)(?<![\s*])\*(?![\w*])"
    r"|(?<![\w_])_(?![\s_])(.{1,400}?)(?<![\s_])_(?![\w_])"
)
_STRIKE = re.compile(r"~~(?=\S)(.{1,400}?)(?<=\S)~~")
_AUTOLINK = re.compile(r"<(https?://[^\s<>]+)>")


def _inline(text: str, *, urls: bool = False) -> str:
    """``text`` without inline markdown; code spans keep their content untouched."""
    parts: list[str] = []
    last = 0
    for span in _CODE_SPAN.finditer(text):
        parts.append(_unmark(text[last : span.start()], urls=urls))
        parts.append(span.group(2))
        last = span.end()
    parts.append(_unmark(text[last:], urls=urls))
    return "".join(parts)


def _unmark(text: str, *, urls: bool) -> str:
    def link(m: re.Match[str]) -> str:
        label, url = m.group(2).strip(), m.group(3)
        if m.group(1) or not urls or not url or label == url:
            return label or url
        return f"{label} ({url})" if label else url

    def strong(m: re.Match[str]) -> str:
        # `__init__` is a name, not bold: only multi-word `__...__` is emphasis.
        inner = m.group(2)
        return m.group(0) if m.group(1) == "__" and inner.isidentifier() else inner

    text = _AUTOLINK.sub(r"\1", _LINK.sub(link, text))
    text = _STRONG.sub(strong, text)
    text = _EMPHASIS.sub(lambda m: m.group(1) or m.group(2), text)
    return _STRIKE.sub(r"\1", text)


def _clean(text: str) -> str:
    return " ".join(_inline(text).split())


# ------------------------------------------------------------------------- formats


def _plain_text(doc: _Doc) -> str:
    out: list[str] = []
    for i, line in enumerate(doc.lines):
        if i in doc.code_lines:
            if i not in doc.fence_lines:
                out.append(line)
            continue
        if _RULE.match(line):
            continue
        heading = _HEADING.match(line)
        if heading is not None:
            out.append(_inline(heading.group(1) or "", urls=True))
        else:
            out.append(_inline(_QUOTE.sub("", line), urls=True))
    return re.sub(r"\n{3,}", "\n\n", "\n".join(out)).strip()


def _sections(doc: _Doc) -> dict[str, str]:
    sections: dict[str, list[str]] = {}
    current = "preamble"
    body: list[str] = []

    def close() -> None:
        text = "\n".join(body).strip()
        if text or current != "preamble":
            sections.setdefault(current, []).append(text)

    for i, line in enumerate(doc.lines):
        heading = None if i in doc.code_lines else _HEADING.match(line)
        if heading is None:
            body.append(line)
            continue
        close()
        current, body = _clean(heading.group(1) or "").rstrip(":"), []
    close()
    return {name: "\n\n".join(t for t in texts if t) for name, texts in sections.items()}


class _NonStandardJsonError(ValueError):
    """NaN or Infinity: Python's json reads them, but they are not JSON."""


def _reject_constant(name: str) -> Any:
    raise _NonStandardJsonError(f"{name} is not a JSON value")


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def _parse_json(doc: _Doc) -> Any:
    text = doc.text
    fence = next((b for b in doc.blocks if b.language.lower() == "json"), None)
    # A ```json fence holds the JSON the model meant: if it is broken, say so, hunt no further.
    if fence is not None:
        candidates = [len(text) - len(text[fence.offset :].lstrip())]
    else:
        candidates = [m.start() for m in re.finditer(r"[{\[]", text)]
    for start in candidates:
        try:
            return _DECODER.raw_decode(text, start)[0]
        except json.JSONDecodeError as exc:
            # Prose such as "[see above]" fails on its first token: skip it. A candidate
            # that got past a token is the JSON the model meant, and it is broken.
            if fence is None and not text[start + 1 : exc.pos].strip():
                continue
            line = text.count("\n", 0, exc.pos) + 1
            column = exc.pos - text.rfind("\n", 0, exc.pos)
            detail = f"invalid JSON at line {line}, column {column}: {exc.msg}"
            raise StepFailed(detail, code=ERROR_CODE) from exc
        except (_NonStandardJsonError, RecursionError) as exc:
            reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
            raise StepFailed(f"invalid JSON: {reason}", code=ERROR_CODE) from exc
    raise StepFailed("no JSON object or array found in the answer", code=ERROR_CODE)


# -------------------------------------------------------------------- post-processors


_ADVICE = re.compile(r"(?:recommend\w*|consider|should|use)\b", re.IGNORECASE)


def _recommendations(doc: _Doc) -> list[str]:
    """List items (else lines) under a heading naming recommendations or suggestions,
    plus list items elsewhere that start with Recommend/Consider/Should/Use."""
    found: list[str] = []
    items: list[str] = []
    lines: list[str] = []
    in_section = False
    for line in doc.prose():
        item = _LIST_ITEM.match(line)
        title = None if item else _title(line, loose=True)
        about = title is not None and any(w in title.lower() for w in ("recommend", "suggest"))
        # "Recommendations:" opens a section; "For example:" inside one does not close it.
        if title is not None and (about or _title(line) is not None):
            found.extend(items or lines)
            items, lines = [], []
            in_section = about
        elif item is not None:
            text = _clean(item.group(2))
            if in_section:
                items.append(text)
            elif _ADVICE.match(text):
                found.append(text)
        elif in_section and line.strip() and not _RULE.match(line):
            lines.append(_clean(_QUOTE.sub("", line)))
    found.extend(items or lines)
    return list(dict.fromkeys(t for t in found if t))


def _key_points(doc: _Doc) -> list[str]:
    """Top-level list items; past the cap, each section's first item is kept first."""
    points: list[tuple[int, str]] = []  # (section number, text)
    section = 0
    for line in doc.prose():
        item = _LIST_ITEM.match(line)
        if item is None:
            section += _HEADING.match(line) is not None
        elif len(item.group(1).expandtabs(4)) < 2:
            points.append((section, _clean(item.group(2))))
    first_seen: dict[str, int] = {}
    for sec, text in points:
        if text:
            first_seen.setdefault(text, sec)
    points = [(sec, text) for text, sec in first_seen.items()]
    if len(points) <= MAX_KEY_POINTS:
        return [text for _, text in points]
    # So a long first section cannot crowd out the rest: every section's first point
    # goes in, then the others in document order; the output keeps document order.
    firsts = {sec: i for i, (sec, _) in reversed(list(enumerate(points)))}
    chosen = set(sorted(firsts.values())[:MAX_KEY_POINTS])
    for i in range(len(points)):
        if len(chosen) >= MAX_KEY_POINTS:
            break
        chosen.add(i)
    return [points[i][1] for i in sorted(chosen)]


_BARE_URL = re.compile(r"https?://[^\s<>\"'`\[\]()]+(?:\([^\s()<>]*\)[^\s<>\"'`\[\]()]*)*")


def _links(doc: _Doc) -> list[dict[str, str]]:
    """Markdown links, autolinks and bare http(s) URLs, first occurrence of each URL."""
    links: dict[str, str] = {}  # url -> text, in order of first appearance
    for line in doc.prose():
        found: list[tuple[int, str, str]] = []  # (column, text, url)
        masked = list(line)
        for pattern in (_LINK, _AUTOLINK):
            for m in pattern.finditer("".join(masked)):
                # Mask each match so a later pass does not see its URL again.
                masked[m.start() : m.end()] = " " * (m.end() - m.start())
                if pattern is _AUTOLINK:
                    found.append((m.start(), m.group(1), m.group(1)))
                elif not m.group(1) and m.group(3):  # an image is not a link
                    found.append((m.start(), _clean(m.group(2)) or m.group(3), m.group(3)))
        for m in _BARE_URL.finditer("".join(masked)):
            url = m.group(0).rstrip(".,;:!?*_~")
            found.append((m.start(), url, url))
        for _, text, url in sorted(found):
            links.setdefault(url, text)
    return [{"text": text, "url": url} for url, text in links.items()]


def _summary(doc: _Doc, limit: int) -> str:
    """The first whole sentences that fit in ``limit`` characters; if even the first
    does not, it is cut on a word boundary and ends with an ellipsis."""
    sentences: list[str] = []
    paragraph: list[str] = []

    def flush() -> None:
        joined = " ".join(_clean(_QUOTE.sub("", p)) for p in paragraph)
        sentences.extend(s for s in re.split(r"(?<=[.!?])\s+", joined) if s)
        paragraph.clear()

    for line in doc.prose():
        item = _LIST_ITEM.match(line)
        if item or not line.strip() or any(p.match(line) for p in (_HEADING, _BOLD_TITLE, _RULE)):
            flush()
            if item is not None and (text := _clean(item.group(2))):
                sentences.append(text if text[-1] in ".!?" else f"{text}.")
        else:
            paragraph.append(line)
    flush()
    summary = ""
    for sentence in sentences:
        candidate = f"{summary} {sentence}" if summary else sentence
        if len(candidate) > limit:
            break
        summary = candidate
    if summary or not sentences:
        return summary
    first, room = sentences[0], limit - len(ELLIPSIS)
    if room < 1:
        return first[:limit]
    space = first.rfind(" ", 0, room + 1)
    head = (first[:space] if space > 0 else first[:room]).rstrip(" ,;:-")
    return (head or first[:room]) + ELLIPSIS
