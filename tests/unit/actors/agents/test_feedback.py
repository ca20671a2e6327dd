"""Feedback on a real SQLite store: ratings, training records, learnt preferences, prompt hints."""

from __future__ import annotations

import pickle
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from actors.agents.feedback import (
    Preferences,
    learn_from_feedback,
    preferences_for,
    rate_response,
)
from actors.agents.models import AgentResponse, Classification, Finding
from store.base import Store
from store.factory import open_store
from store.models import Feedback


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    store = await open_store(f"sqlite:///{tmp_path / 'store.db'}")
    yield store
    await store.close()


def response(summary: str = "Two findings.", **fields: Any) -> AgentResponse:
    return AgentResponse(type="analysis", agent="analysis", summary=summary, **fields)


async def exchange(
    store: Store, session_id: str, question: str, answer: AgentResponse, user_id: str | None = None
) -> str:
    """Store one user turn and the assistant turn answering it, as the assistant does."""
    await store.create_session(session_id, user_id=user_id)
    rid = answer.response_id
    await store.append_turn(session_id, turn_id=f"{rid}:user", role="user", content=question)
    body = answer.model_dump(mode="json", exclude={"context_update"})
    await store.append_turn(
        session_id,
        turn_id=f"{rid}:assistant",
        role="assistant",
        content=answer.summary,
        meta={"response": body, "agent": answer.agent, "type": answer.type},
    )
    return rid


def rated(
    rating: int, text: str = "", answer: AgentResponse | None = None
) -> tuple[Feedback, dict[str, Any] | None]:
    feedback = Feedback(session_id="s", response_id="r", rating=rating, text=text)
    return feedback, (answer.model_dump(mode="json") if answer else None)


def finding(file: str, rule: str | None = None) -> Finding:
    return Finding(message="something", file=file, line=1, rule=rule)


async def test_rating_stores_feedback_and_training_record(store: Store) -> None:
    """A rating becomes a Feedback and a TrainingRecord of the rated exchange."""
    answer = response(
        findings=[finding("parser.py", "S101")],
        pipeline_used="code_review",
        cost_usd=0.02,
        latency_ms=120.0,
        routing=Classification(type="analysis", confidence=0.9, agent="analysis"),
    )
    rid = await exchange(store, "s1", "analyse parser.py", answer, user_id="u1")

    result = await rate_response(store, "s1", rid, 3, "far too long")

    [feedback] = await store.feedback(session_id="s1")
    assert result["feedback_id"] == feedback.id
    assert (feedback.rating, feedback.text, feedback.user_id) == (3, "far too long", "u1")
    [record] = await store.training_records(pipeline="code_review")
    assert result["training_record_id"] == record.id
    assert record.pipeline_version == "1"
    assert record.input == {"text": "analyse parser.py", "type": "analysis"}
    assert record.output["response_id"] == rid and record.output["summary"] == "Two findings."
    assert (record.cost_usd, record.latency_ms, record.quality) == (0.02, 120.0, 0.3)
    assert record.feedback == {"rating": 3, "text": "far too long"}
    assert result["preferences"] == {
        "verbosity": "concise",
        "focus_areas": [],
        "language": "python",
    }


async def test_training_record_falls_back_to_agent_name(store: Store) -> None:
    """Without a pipeline the record is filed under the agent; its version is "1"."""
    rid = await exchange(store, "s1", "hi", response())
    await rate_response(store, "s1", rid, 8)
    [record] = await store.training_records()
    assert (record.pipeline, record.pipeline_version) == ("analysis", "1")


async def test_resending_a_rating_writes_nothing_new(store: Store) -> None:
    """The same rating sent twice (a retry) is stored once."""
    rid = await exchange(store, "s1", "hi", response())
    first = await rate_response(store, "s1", rid, 7, "ok")
    again = await rate_response(store, "s1", rid, 7, "ok")
    assert first == again
    assert len(await store.feedback()) == 1
    assert len(await store.training_records()) == 1


@pytest.mark.parametrize(
    ("session", "response_id", "rating", "raised"),
    [
        ("s1", "nope", 5, (LookupError, "session 's1' has no response 'nope'")),
        ("ghost", "any", 5, (LookupError, "unknown session 'ghost'")),
        ("s1", None, 0, (ValueError, "from 1 to 10")),
        ("s1", None, 11, (ValueError, "from 1 to 10")),
        ("s1", None, True, (ValueError, "an int")),
        ("s1", None, 5.0, (ValueError, "an int")),
    ],
)
async def test_bad_rating_raises_and_writes_nothing(
    store: Store,
    session: str,
    response_id: str | None,
    rating: Any,
    raised: tuple[type[Exception], str],
) -> None:
    """Unknown sessions/responses and invalid ratings raise before anything is stored."""
    rid = await exchange(store, "s1", "hi", response())
    error, message = raised
    with pytest.raises(error, match=message):
        await rate_response(store, session, response_id or rid, rating, "text")
    assert await store.feedback() == []
    assert await store.training_records() == []


@pytest.mark.parametrize(
    ("items", "verbosity"),
    [
        ([rated(3, "Too long, tl;dr please")], "concise"),
        ([rated(9, "great, maybe a bit shorter")], "concise"),
        ([rated(4, "Please explain more")], "detailed"),
        ([rated(6, "could you elaborate on the fix?")], "detailed"),
        ([rated(9, "concise and to the point, thanks")], "concise"),
        ([rated(8, "really thorough")], "detailed"),
        ([rated(2, "", response("x" * 2000))], "concise"),
        ([rated(2, "", response("short"))], "balanced"),
        ([rated(9, "nice")], "balanced"),
        # A complaint at 2 outweighs a passing remark at 9.
        ([rated(9, "too long"), rated(2, "needs more detail")], "detailed"),
        ([], "balanced"),
    ],
)
def test_verbosity_is_learnt_from_comments_and_ratings(
    items: list[tuple[Feedback, dict[str, Any] | None]], verbosity: str
) -> None:
    """Explicit requests weigh by low rating, praise by high rating, long low-rated answers → concise."""
    assert learn_from_feedback(items).verbosity == verbosity


def test_focus_areas_come_from_comments() -> None:
    """Areas named in comments count; negated ones count against; canonical order breaks ties."""
    prefs = learn_from_feedback([rated(6, "Focus on performance and security please")])
    assert prefs.focus_areas == ["security", "performance"]
    prefs = learn_from_feedback([rated(7, "I don't care about style, but tests matter")])
    assert prefs.focus_areas == ["testing"]


def test_focus_areas_come_from_liked_findings() -> None:
    """Rule categories count in responses rated >= 8, once per response, two needed."""
    liked = response(findings=[finding("a.py", "S101"), finding("b.py", "S608")])
    assert learn_from_feedback([rated(9, "", liked)]).focus_areas == []
    assert learn_from_feedback([rated(9, "", liked), rated(8, "", liked)]).focus_areas == [
        "security"
    ]
    assert learn_from_feedback([rated(5, "", liked), rated(4, "", liked)]).focus_areas == []
    perf = response(findings=[finding("a.py", "PERF401"), finding("b.py", "performance/n+1")])
    assert learn_from_feedback([rated(10, "", perf)] * 2).focus_areas == ["performance"]


def test_language_comes_from_extensions_and_words() -> None:
    """Finding file extensions vote once per response; naming a language weighs more."""
    go = response(findings=[finding("cmd/main.go"), finding("pkg/x.go")])
    assert learn_from_feedback([rated(5, "", go)]).language == "go"
    py = response(findings=[finding("app.py")])
    assert learn_from_feedback([rated(5, "we use TypeScript", py)]).language == "typescript"
    assert learn_from_feedback([rated(5, "go ahead")]).language is None
    assert learn_from_feedback([rated(5, "", response())]).language is None


@pytest.mark.parametrize(
    ("prefs", "hint"),
    [
        (Preferences(), ""),
        (
            Preferences(verbosity="concise", focus_areas=["security", "performance"]),
            "The user prefers concise answers that focus on security and performance.",
        ),
        (
            Preferences(focus_areas=["testing", "style", "architecture"], language="javascript"),
            "The user cares most about testing, style and architecture. "
            "They work in JavaScript; give examples in JavaScript.",
        ),
        (
            Preferences(verbosity="detailed", language="python"),
            "The user prefers detailed answers with explanations. "
            "They work in Python; give examples in Python.",
        ),
    ],
)
def test_prompt_hint_renders_preferences(prefs: Preferences, hint: str) -> None:
    """prompt_hint is one or two sentences, empty when nothing was learnt."""
    assert prefs.prompt_hint() == hint


def test_preferences_validate_and_pickle() -> None:
    """Unknown focus areas and keys are rejected; preferences survive a pickle round trip."""
    with pytest.raises(ValidationError):
        Preferences(focus_areas=["vibes"])  # type: ignore[list-item]
    with pytest.raises(ValidationError):
        Preferences.model_validate({"tone": "friendly"})
    prefs = Preferences(verbosity="concise", focus_areas=["style"], language="go")
    assert pickle.loads(pickle.dumps(prefs)) == prefs


async def test_preferences_span_every_session_of_a_user(store: Store) -> None:
    """A user's preferences combine feedback from all their sessions; anonymous ones stay apart."""
    first = await exchange(store, "s1", "review", response(), user_id="u1")
    await rate_response(store, "s1", first, 2, "way too long")
    rust = response(findings=[finding("src/lib.rs", "S101")])
    second = await exchange(store, "s2", "review lib.rs", rust, user_id="u1")
    result = await rate_response(store, "s2", second, 8, "more on security please")

    expected = {"verbosity": "concise", "focus_areas": ["security"], "language": "rust"}
    assert result["preferences"] == expected
    assert (await preferences_for(store, user_id="u1")).model_dump() == expected

    anon = await exchange(store, "s3", "hi", response())
    result = await rate_response(store, "s3", anon, 9, "explain more")
    assert result["preferences"] == {"verbosity": "detailed", "focus_areas": [], "language": None}
    assert (await preferences_for(store, user_id="u1")).model_dump() == expected
    assert await preferences_for(store) == Preferences()
