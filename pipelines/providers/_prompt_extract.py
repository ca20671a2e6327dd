"""Read structure and findings out of a prompt, mechanically (for the offline provider).

Private helper of :mod:`pipelines.providers.offline`. Nothing here is a model:
:func:`digest_prompt` collects the opening line, markdown headings, bullet lines,
a lead of prose sentences, word count and top keywords; :func:`extract_findings`
collects every located finding, from linter-style lines (``path/file.py:12 RULE
message``, ruff, flake8, pylint, mypy, pytest) and from JSON objects with
file/line keys (ruff, bandit, semgrep shapes included). Recommendations come
from a fixed table keyed on rule ids and message keywords.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "FILE_KEYS",
    "RULE_KEYS",
    "SEVERITY_KEYS",
    "Finding",
    "PromptDigest",
    "digest_prompt",
    "extract_findings",
]

# `path/file.py:12[:5][:] [RULE] message`, optionally bulleted or back-quoted; covers
# ruff, flake8, pylint (parseable), mypy and pytest location lines.
_FINDING_LINE = re.compile(
    r"^\s*(?:[-*+]\s+|\d+[.)]\s+)?`?(?P<file>[\w.~/\\-]*\w\.[A-Za-z][\w]{0,7})`?"
    r":(?P<line>\d+)(?::(?P<col>\d+))?:?(?:\s+(?P<rest>.*))?$"
)
_RULE_TOKEN = re.compile(r"^\[?(?:[A-Z]{1,6}\d{1,5}|[a-z][a-z0-9]*(?:[-_][a-z0-9]+)+)\]?:?$")
_MYPY_REST = re.compile(
    r"^(?P<sev>error|warning|note):\s*(?P<msg>.*?)(?:\s+\[(?P<rule>[\w-]+)\])?$"
)
_BULLET = re.compile(r"^(?:[-*+]|\d+[.)])\s+\S")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]{2,}")
_STOPWORDS_TEXT = """
    the and for are but not you your with this that from have has had was were will would can
    could should may might must into onto over under than then them they their there these those
    what when where which while who whom why how all any each few more most other some such only
    own same too very just also its our out about above below between both after before again
    further once here been being does did doing off per please use using via true false none null
"""
_STOPWORDS = frozenset(_STOPWORDS_TEXT.split())
FILE_KEYS = ("file", "path", "filename", "file_path", "filepath")
LINE_KEYS = ("line", "lineno", "line_number", "start_line", "row")
RULE_KEYS = ("rule", "rule_id", "code", "check_id", "test_id", "symbol")
MESSAGE_KEYS = ("message", "msg", "description", "issue_text", "text", "title")
SEVERITY_KEYS = ("severity", "level", "issue_severity")
# Fixed advice, one rule a line: "rule ids | message keywords | advice". A finding matches
# on its rule id (any linter's spelling) or a keyword in its rule or message.
_RULE_TABLE = """
ble001 e722 w0702 w0703 w0718 broad-except bare-except | broad except, bare except, \
except exception, catch-all | catch specific exceptions instead of a broad or bare except
f401 w0611 unused-import | unused import | remove unused imports
f841 w0612 unused-variable | unused variable | remove unused variables
f821 e0602 undefined-variable | undefined name | define or import undefined names
e501 c0301 line-too-long | line too long | wrap long lines
b006 w0102 dangerous-default-value | mutable default | use None for mutable default arguments
s101 | use of assert | raise explicit exceptions instead of assert for runtime checks
s105 s106 s107 | password, secret, api key | move secrets out of source into configuration
s307 w0123 eval-used exec-used | eval(, exec(, use of eval | avoid eval/exec on untrusted input
s602 s604 s605 | shell=true | pass argument lists to subprocess, without shell=True
s608 | sql injection, sql query | use parameterised SQL queries
t201 t203 | print found | use logging instead of print
c901 plr0912 plr0915 too-many-branches | too complex, complexity | split complex functions
fix001 fix002 td001 w0511 fixme | todo, fixme | resolve or ticket TODO/FIXME markers
"""
_RULES = [
    (frozenset(ids.split()), tuple(k.strip() for k in keys.split(",")), advice.strip())
    for ids, keys, advice in (row.split(" | ") for row in _RULE_TABLE.strip().splitlines())
]


@dataclass(frozen=True, slots=True)
class Finding:
    """One located finding read from the prompt: ``file:line`` plus rule and message."""

    file: str
    line: int
    rule: str = ""
    message: str = ""
    severity: str = ""
    column: int | None = None

    @property
    def location(self) -> str:
        return f"{self.file}:{self.line}"

    def render(self) -> str:
        where = self.location + (f":{self.column}" if self.column is not None else "")
        sev = f"({self.severity})" if self.severity else ""
        return " ".join(p for p in (where, self.rule, self.message, sev) if p)

    def as_hint(self, severity: str, *, rule_in_message: bool = False) -> dict[str, Any]:
        """Values under every key name a findings item schema may use.

        ``rule_in_message`` prefixes the rule id to the message, for item schemas
        that have no rule field (the id would otherwise be lost).
        """
        rule, message = self.rule or "unspecified", self.message or self.render()
        if rule_in_message and self.rule:
            message = f"{self.rule}: {message}"
        hint: dict[str, Any] = dict.fromkeys(FILE_KEYS, self.file)
        hint |= dict.fromkeys(LINE_KEYS, self.line) | dict.fromkeys(RULE_KEYS, rule)
        hint |= dict.fromkeys(MESSAGE_KEYS, message) | dict.fromkeys(SEVERITY_KEYS, severity)
        hint |= {"location": self.location, "text": self.render(), "check": rule}
        if self.column is not None:
            hint |= {"column": self.column, "col": self.column}
        return hint


def extract_findings(text: str) -> list[Finding]:
    """Every finding line and JSON finding object in ``text``, in order, exact duplicates once."""
    located: list[tuple[int, Finding]] = []
    offset = 0
    for raw in text.splitlines(keepends=True):
        if (finding := _parse_finding_line(raw)) is not None:
            located.append((offset, finding))
        offset += len(raw)
    decoder = json.JSONDecoder()
    pos = text.find("{")
    while pos != -1:
        try:
            value, end = decoder.raw_decode(text, pos)
        except (ValueError, RecursionError):  # not JSON here, or nested past the C stack
            pos = text.find("{", pos + 1)
            continue
        located.extend((pos, f) for f in _json_findings(value))
        pos = text.find("{", end)
    located.sort(key=lambda item: item[0])  # stable: equal offsets keep document order
    return list(dict.fromkeys(f for _, f in located))


def _parse_finding_line(line: str) -> Finding | None:
    match = _FINDING_LINE.match(line.rstrip("\r\n"))
    if match is None:
        return None
    rest, rule, severity = (match["rest"] or "").strip(), "", ""
    if (mypy := _MYPY_REST.match(rest)) is not None:
        severity, rest, rule = mypy["sev"], mypy["msg"], mypy["rule"] or ""
    else:
        head, _, tail = rest.partition(" ")
        if _RULE_TOKEN.match(head):
            rule, rest = head.strip("[]:"), tail.strip()
    column = int(match["col"]) if match["col"] else None
    return Finding(match["file"], int(match["line"]), rule, rest, severity, column)


def _first(obj: Mapping[str, Any], keys: tuple[str, ...]) -> Any:
    return next((obj[k] for k in keys if obj.get(k) not in (None, "")), None)


def _json_findings(value: Any) -> Iterator[Finding]:
    if isinstance(value, list):
        for item in value:
            yield from _json_findings(item)
    elif isinstance(value, Mapping):
        # Tools nest fields: ruff {"location": {"row"}}, semgrep {"start": {"line"}, "extra"}.
        nested = ("location", "start", "extra")
        scopes = [value, *(v for k in nested if isinstance(v := value.get(k), Mapping))]

        def get(keys: tuple[str, ...]) -> str:
            found = next((x for sc in scopes if (x := _first(sc, keys)) is not None), None)
            return "" if found is None else str(found)

        file, line, col = get(FILE_KEYS), get(LINE_KEYS), get(("column", "col"))
        if file and line.isdigit():
            column = int(col) if col.isdigit() else None
            rule, message, severity = get(RULE_KEYS), get(MESSAGE_KEYS), get(SEVERITY_KEYS)
            yield Finding(file, int(line), rule, message, severity, column)
        else:  # a container such as {"findings": [...]}: look inside
            for item in value.values():
                yield from _json_findings(item)


def _recommendations(findings: list[Finding]) -> list[str]:
    out: list[str] = []
    for ids, keywords, advice in _RULES:
        hits = [
            f.location
            for f in findings
            if f.rule.lower() in ids or any(k in f"{f.rule} {f.message}".lower() for k in keywords)
        ]
        if hits:
            more = f" and {len(hits) - 5} more" if len(hits) > 5 else ""
            out.append(f"[rule-based] {advice} ({', '.join(hits[:5])}{more})")
    return out


@dataclass(frozen=True, slots=True)
class PromptDigest:
    """What :func:`digest_prompt` read from a prompt, in document order."""

    opening: str
    headings: list[str]
    bullets: list[str]
    findings: list[Finding]
    lead: str
    words: int
    keywords: list[str]
    recommendations: list[str]


def digest_prompt(text: str) -> PromptDigest:
    """Read the opening, headings, bullets, findings, lead and keywords of ``text``."""
    headings: list[str] = []
    bullets: list[str] = []
    prose: list[str] = []
    in_fence = False
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith(("```", "~~~")):
            in_fence = not in_fence
            continue
        # Code and findings are not prose; findings are listed on their own.
        if in_fence or not line or _parse_finding_line(line):
            continue
        if re.match(r"^#{1,6}\s", line):
            headings.append(line.lstrip("#").strip())
        elif _BULLET.match(line):
            bullets.append(line)
        elif not line.startswith(("{", "}", "[", "]", '"')):
            prose.append(line)
    sentences = re.split(r"(?<=[.!?])\s+", " ".join(prose))
    counts = Counter(w.lower() for w in _WORD.findall(text) if w.lower() not in _STOPWORDS)
    findings = extract_findings(text)
    return PromptDigest(
        opening=next((ln.strip()[:200] for ln in text.splitlines() if ln.strip()), ""),
        headings=headings,
        bullets=bullets,
        findings=findings,
        lead=" ".join(sentences[:2])[:300].strip(),
        words=len(text.split()),
        keywords=[w for w, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:8]],
        recommendations=_recommendations(findings),
    )
