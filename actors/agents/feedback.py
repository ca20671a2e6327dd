"""Ratings of responses, and the per-user preferences learnt from them.

:func:`rate_response` stores a person's 1..10 rating of one assistant response as
a :class:`~store.models.Feedback` and the rated exchange as a
:class:`~store.models.TrainingRecord` (``quality = rating / 10``), then
recomputes the user's :class:`Preferences`. :func:`learn_from_feedback` is the
pure part: verbosity, focus areas and programming language from the comments,
the ratings and the rated responses. Agents put :meth:`Preferences.prompt_hint`
into their prompts.

Failure semantics of :func:`rate_response`:

- A rating that is not an int in 1..10 raises ``ValueError``; an unknown session
  or response raises ``LookupError``. Both before anything is written.
- The store's errors propagate (:class:`store.errors.StoreUnavailable` is
  retryable). Record ids derive from (session, response, rating, comment), so
  sending the same rating again writes nothing new: a caller may retry after any
  failure, also one between the two writes (feedback stored, training record not).
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from pathlib import PurePosixPath
from typing import Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field

from store.base import Store
from store.models import Feedback, TrainingRecord, Turn

__all__ = [
    "FOCUS_AREAS",
    "LANGUAGE_EXTENSIONS",
    "FocusArea",
    "Preferences",
    "Verbosity",
    "learn_from_feedback",
    "preferences_for",
    "rate_response",
]

Verbosity = Literal["concise", "balanced", "detailed"]
FocusArea = Literal[
    "security", "performance", "readability", "testing", "architecture", "maintainability", "style"
]
FOCUS_AREAS: tuple[str, ...] = (
    "security",
    "performance",
    "readability",
    "testing",
    "architecture",
    "maintainability",
    "style",
)
#: File extension -> the language name :attr:`Preferences.language` uses.
LANGUAGE_EXTENSIONS: Mapping[str, str] = {
    ".py": "python",
    ".pyi": "python",
    ".js": "javascript",
    ".mjs": "javascript",
    ".cjs": "javascript",
    ".jsx": "javascript",
    ".ts": "typescript",
    ".tsx": "typescript",
    ".go": "go",
    ".rs": "rust",
    ".java": "java",
    ".rb": "ruby",
}
_DISPLAY = {"javascript": "JavaScript", "typescript": "TypeScript"}


class Preferences(BaseModel):
    """What a user likes in answers; the defaults mean "nothing learnt yet"."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    verbosity: Verbosity = "balanced"
    #: Most important first, at most three.
    focus_areas: list[FocusArea] = Field(default_factory=list)
    #: The programming language the user works in (``python``, ``go``...).
    language: str | None = None

    def prompt_hint(self) -> str:
        """One or two sentences for a prompt; ``""`` when nothing was learnt."""
        first = ""
        if self.verbosity == "concise":
            first = "The user prefers concise answers"
        elif self.verbosity == "detailed":
            first = "The user prefers detailed answers with explanations"
        if self.focus_areas:
            areas = _join(list(self.focus_areas))
            first = (
                f"{first} that focus on {areas}" if first else f"The user cares most about {areas}"
            )
        sentences = [f"{first}."] if first else []
        if self.language:
            name = _DISPLAY.get(self.language, self.language.capitalize())
            sentences.append(f"They work in {name}; give examples in {name}.")
        return " ".join(sentences)


def _join(words: list[str]) -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


# ---------------------------------------------------------------- learning

_CONCISE = re.compile(
    r"too long|too verbose|\bverbose\b|\bwordy\b|\bshorter\b|\btl;? ?dr\b|too much text"
    r"|too detailed|too much detail|get to the point|more concise|less text|be brief",
    re.IGNORECASE,
)
_DETAILED = re.compile(
    r"more detail|too short|too brief|explain more|\belaborat|more depth|go deeper"
    r"|more examples|more context|more explanation",
    re.IGNORECASE,
)
# Praise names what the user liked; it counts only when no explicit request does.
_PRAISE_CONCISE = re.compile(r"\bconcise\b|to the point|short and sweet|\bbrief\b", re.IGNORECASE)
_PRAISE_DETAILED = re.compile(r"\bthorough|\bdetailed\b|in[- ]depth", re.IGNORECASE)
_FOCUS_WORDS: Mapping[str, re.Pattern[str]] = {
    area: re.compile(pattern, re.IGNORECASE)
    for area, pattern in {
        "security": r"\b(secur|vulnerab|inject|xss|csrf|secrets?\b|credential"
        r"|auth(\b|entic|ori[sz]))",
        "performance": r"\b(perform|perf\b|slow|faster|speed|latenc|memory|efficien|optimi[sz])",
        "readability": r"\b(readab|clarity|naming|names?\b|docstring)",
        "testing": r"\b(test|coverage|pytest|unittest)",
        "architecture": r"\b(architect|design|structur|modular|coupling|layer)",
        "maintainability": r"\b(maintain|tech(nical)? debt|refactor|complexity|duplicat|dead code)",
        "style": r"\b(style|format|lint|pep ?8|convention)",
    }.items()
}
_NEGATED = re.compile(
    r"\b(don'?t|do not|doesn'?t) care\b|not interested|\bless\b|\bno more\b|\bstop\b|\bignore\b"
    r"|too much (about|on)\b",
    re.IGNORECASE,
)
_CLAUSES = re.compile(r"[.;!?,\n]|\bbut\b", re.IGNORECASE)
# Ruff/pylint rule prefixes -> the area a finding of that rule is about.
_RULE_AREAS = {
    "S": "security",
    "PERF": "performance",
    "ASYNC": "performance",
    "N": "readability",
    "D": "readability",
    "SIM": "readability",
    "RET": "readability",
    "PT": "testing",
    "TID": "architecture",
    "C": "maintainability",
    "PLR": "maintainability",
    "PLW": "maintainability",
    "B": "maintainability",
    "F": "maintainability",
    "ERA": "maintainability",
    "E": "style",
    "W": "style",
    "I": "style",
    "Q": "style",
    "UP": "style",
    "PLC": "style",
}
_LANGUAGE_WORDS: Mapping[str, re.Pattern[str]] = {
    language: re.compile(pattern, re.IGNORECASE)
    for language, pattern in {
        "python": r"\b(python|pytest|django|flask)\b",
        "javascript": r"\b(javascript|js|node\.?js)\b",
        "typescript": r"\b(typescript|ts)\b",
        "go": r"\b(golang|go (code|module|package|project|program)s?)\b",
        "rust": r"\b(rust|cargo)\b",
        "java": r"\b(java|maven|gradle)\b",
        "ruby": r"\b(ruby|rails)\b",
    }.items()
}
_LONG_CHARS = 1500
_LONG_FINDINGS = 20
_FOCUS_THRESHOLD = 2.0  # one explicit mention, or two liked responses about it
_MAX_FOCUS = 3


def learn_from_feedback(items: Iterable[tuple[Feedback, Mapping[str, Any] | None]]) -> Preferences:
    """Preferences from ratings: each item is a feedback and the response it rates (or ``None``).

    Verbosity: explicit requests in comments ("too long", "more detail"), weighted
    by how low the rating was; praise ("concise", "thorough") weighted by how high;
    a low rating (<= 4) of a long response counts half toward concise. Focus areas:
    areas named in comments (2 points, negated mentions -2) and rule categories of
    findings in responses rated >= 8 (1 point per response); three at most, each
    needing 2 points. Language: words in comments (3 points) and the extensions of
    finding files (1 point per response).
    """
    verbosity = 0.0  # > 0 concise, < 0 detailed
    focus: defaultdict[str, float] = defaultdict(float)
    languages: Counter[str] = Counter()
    for feedback, response in items:
        comment, rating = feedback.text, feedback.rating
        verbosity += _verbosity_signal(comment, rating, response)
        for named, weight in _comment_focus(comment).items():
            focus[named] += weight
        findings = _findings(response)
        if rating >= 8:
            for liked in {a for f in findings if (a := _rule_area(f.get("rule")))}:
                focus[liked] += 1.0
        for name, pattern in _LANGUAGE_WORDS.items():
            languages[name] += 3 * len(pattern.findall(comment))
        languages.update({lang for f in findings if (lang := _file_language(f.get("file")))})
    ranked = sorted(
        (area for area, score in focus.items() if score >= _FOCUS_THRESHOLD),
        key=lambda area: (-focus[area], FOCUS_AREAS.index(area)),
    )
    label: Verbosity = "balanced"
    if abs(verbosity) > 1e-9:  # float noise is no signal
        label = "concise" if verbosity > 0 else "detailed"
    return Preferences(
        verbosity=label,
        focus_areas=cast("list[FocusArea]", ranked[:_MAX_FOCUS]),
        language=next((name for name, n in languages.most_common(1) if n > 0), None),
    )


def _verbosity_signal(comment: str, rating: int, response: Mapping[str, Any] | None) -> float:
    complaint = (11 - rating) / 10  # a rating of 1 weighs 1.0, a 10 weighs 0.1
    concise, detailed = bool(_CONCISE.search(comment)), bool(_DETAILED.search(comment))
    if concise or detailed:
        return complaint * (int(concise) - int(detailed))
    if rating >= 7:
        liked = int(bool(_PRAISE_CONCISE.search(comment))) - int(
            bool(_PRAISE_DETAILED.search(comment))
        )
        if liked:
            return rating / 10 * liked
    if rating <= 4 and response is not None and _is_long(response):
        return complaint / 2
    return 0.0


def _comment_focus(comment: str) -> dict[str, float]:
    scores: dict[str, float] = {}
    for clause in _CLAUSES.split(comment):
        sign = -1.0 if _NEGATED.search(clause) else 1.0
        for area, pattern in _FOCUS_WORDS.items():
            if pattern.search(clause):
                scores[area] = scores.get(area, 0.0) + 2.0 * sign
    return scores


def _findings(response: Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
    found = (response or {}).get("findings")
    return [f for f in found if isinstance(f, Mapping)] if isinstance(found, list) else []


def _is_long(response: Mapping[str, Any]) -> bool:
    findings = _findings(response)
    size = len(str(response.get("summary", "")))
    size += sum(len(str(r)) for r in response.get("recommendations") or [])
    size += sum(len(str(f.get("message", ""))) for f in findings)
    return size >= _LONG_CHARS or len(findings) >= _LONG_FINDINGS


def _rule_area(rule: Any) -> str | None:
    if not isinstance(rule, str) or not rule:
        return None
    for area, pattern in _FOCUS_WORDS.items():  # "security/sql-injection", "performance"
        if pattern.search(rule.replace("-", " ").replace("_", " ")):
            return area
    prefix = re.match(r"[A-Za-z]+", rule)
    return _RULE_AREAS.get(prefix.group(0).upper()) if prefix else None


def _file_language(path: Any) -> str | None:
    if not isinstance(path, str):
        return None
    return LANGUAGE_EXTENSIONS.get(PurePosixPath(path).suffix.lower())


# ---------------------------------------------------------------- the store


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _responses(turns: list[Turn]) -> dict[str, tuple[dict[str, Any], str]]:
    """Assistant responses by ``response_id``, each with the user message before it."""
    found: dict[str, tuple[dict[str, Any], str]] = {}
    asked = ""
    for turn in turns:
        if turn.role == "user":
            asked = turn.content
        response = turn.meta.get("response") if turn.role == "assistant" else None
        if isinstance(response, dict) and isinstance(response.get("response_id"), str):
            found.setdefault(response["response_id"], (response, asked))
    return found


async def rate_response(
    store: Store,
    session_id: str,
    response_id: str,
    rating: int,
    text: str = "",
    *,
    user_id: str | None = None,
) -> dict[str, Any]:
    """Store a rating of one response of a session; see the module for failure semantics.

    Returns ``{"feedback_id", "training_record_id", "preferences"}``, the last
    being the user's (or, anonymous, the session's) recomputed preferences as a dict.
    """
    if isinstance(rating, bool) or not isinstance(rating, int):
        raise ValueError(f"a rating is an int from 1 to 10, got {rating!r}")
    if not 1 <= rating <= 10:
        raise ValueError(f"a rating is from 1 to 10, got {rating}")
    session = await store.get_session(session_id)
    if session is None:
        raise LookupError(f"unknown session {session_id!r}")
    found = _responses(await store.turns(session_id)).get(response_id)
    if found is None:
        raise LookupError(f"session {session_id!r} has no response {response_id!r}")
    response, asked = found
    user_id = user_id or session.user_id
    feedback = Feedback(
        session_id=session_id,
        response_id=response_id,
        rating=rating,
        text=text,
        user_id=user_id,
        id=_digest("feedback", session_id, response_id, str(rating), text),
    )
    routing = response.get("routing")
    record = TrainingRecord(
        pipeline=str(response.get("pipeline_used") or response.get("agent") or "unknown"),
        pipeline_version=str(response.get("pipeline_version", "1")),
        input={
            "text": asked,
            "type": routing.get("type") if isinstance(routing, dict) else response.get("type"),
        },
        output=response,
        cost_usd=float(response.get("cost_usd") or 0.0),
        latency_ms=float(response.get("latency_ms") or 0.0),
        quality=rating / 10,
        feedback={"rating": rating, "text": text},
        id=_digest("training", feedback.id),
    )
    feedback_id = await store.add_feedback(feedback)
    record_id = await store.add_training_record(record)
    preferences = await preferences_for(store, user_id=user_id, session_id=session_id)
    return {
        "feedback_id": feedback_id,
        "training_record_id": record_id,
        "preferences": preferences.model_dump(),
    }


async def preferences_for(
    store: Store, user_id: str | None = None, session_id: str | None = None
) -> Preferences:
    """Preferences from the feedback of every session of ``user_id`` (plus ``session_id``'s),
    or, anonymous, of ``session_id`` alone; defaults when there is neither."""
    session_ids: list[str] = [session_id] if session_id else []
    if user_id is not None:
        page = 100
        offset = 0
        while True:
            sessions = await store.list_sessions(user_id=user_id, limit=page, offset=offset)
            session_ids.extend(s.id for s in sessions)
            if len(sessions) < page:
                break
            offset += page
    items: list[tuple[Feedback, Mapping[str, Any] | None]] = []
    seen: set[str] = set()
    for sid in dict.fromkeys(session_ids):
        rated = [f for f in await store.feedback(session_id=sid) if f.id not in seen]
        if not rated:
            continue
        seen.update(f.id for f in rated)
        responses = _responses(await store.turns(sid))
        for item in rated:
            found = responses.get(item.response_id)
            items.append((item, found[0] if found else None))
    return learn_from_feedback(items)
