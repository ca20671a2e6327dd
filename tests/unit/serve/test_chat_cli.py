"""`elexirion chat` against a fake ChatBackend: --once, --json, exit codes, the interactive loop."""

from __future__ import annotations

import json
import sys
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest
from typer.testing import CliRunner

from actors.agents.backend import ProgressCallback
from actors.agents.models import AgentResponse, Finding
from serve import cli_chat
from serve.cli import app
from store.errors import StoreConfigError


def analysis_response(message: str) -> dict[str, Any]:
    """An analysis answer with findings deliberately out of file/line order."""
    return AgentResponse(
        type="analysis",
        agent="analysis",
        summary=f"Found 3 issues ({message}).",
        findings=[
            Finding(message="eval of input", file="app.py", line=58, severity="error", rule="S307"),
            Finding(message="helper unused", file="utils.py", line=3, severity="info", rule="F401"),
            Finding(message="== None", file="app.py", line=12, severity="warning", rule="E711"),
        ],
        recommendations=["replace eval with int", "compare with `is None`"],
        confidence=0.93,
        next_actions=["now refactor it based on that analysis", "write tests for app.py"],
        pipeline_used="code_analysis",
        cost_usd=0.0012,
        latency_ms=1234.0,
    ).model_dump(mode="json")


class FakeBackend:
    """A ChatBackend in memory: records every call, answers every message with an analysis.

    ``boom`` fails the turn with a runtime error; ``stream ...`` sends token events.
    """

    def __init__(self) -> None:
        self.sessions_: dict[str, dict[str, Any]] = {}
        self.turns: dict[str, list[dict[str, Any]]] = {}
        self.chats: list[dict[str, Any]] = []
        self.ratings: list[tuple[str, str, int, str]] = []
        self.closed = False
        self.make_calls: list[dict[str, Any]] = []  # the options make_backend got

    async def start_session(self, user_id: str | None = None) -> str:
        sid = f"sess{len(self.sessions_) + 1:04d}-{'x' * 28}"
        self.sessions_[sid] = {
            "id": sid,
            "user_id": user_id,
            "created_at": 1_700_000_000.0,
            "updated_at": 1_700_000_000.0 + len(self.sessions_),
            "turn_count": 0,
            "active_agent": None,
            "title": "",
        }
        self.turns[sid] = []
        return sid

    async def chat(
        self,
        session_id: str | None,
        message: str,
        *,
        user_id: str | None = None,
        on_event: ProgressCallback | None = None,
    ) -> dict[str, Any]:
        self.chats.append({"session_id": session_id, "message": message, "user_id": user_id})
        if session_id is not None and session_id not in self.sessions_:
            raise LookupError(f"unknown session {session_id}")
        if message == "boom":
            raise RuntimeError("the provider exploded\nTraceback (most recent call last): ...")
        sid = session_id or await self.start_session(user_id)
        emit = on_event or (lambda event: None)
        emit({"event": "routed", "agent": "analysis", "type": "analysis", "confidence": 0.93})
        emit({"event": "step", "step": "review", "pipeline": "code_analysis"})
        response = analysis_response(message)
        if message.startswith("stream"):
            for word in ("Found ", "3 issues ", "(streamed)."):
                emit({"event": "token", "text": word})
            response["summary"] = "Found 3 issues (streamed)."
        row = self.sessions_[sid]
        row.update(turn_count=row["turn_count"] + 2, active_agent="analysis")
        row["title"] = row["title"] or message[:40]
        self.turns[sid] += [
            {"seq": len(self.turns[sid]), "role": "user", "content": message, "meta": {}},
            {
                "seq": len(self.turns[sid]) + 1,
                "role": "assistant",
                "content": response["summary"],
                "meta": {"agent": "analysis", "response_id": response["response_id"]},
            },
        ]
        return {**response, "session_id": sid}

    async def sessions(self, user_id: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
        rows = sorted(self.sessions_.values(), key=lambda r: -r["updated_at"])
        return rows[:limit]

    async def history(self, session_id: str) -> list[dict[str, Any]]:
        if session_id not in self.turns:
            raise LookupError(f"unknown session {session_id}")
        return list(self.turns[session_id])

    async def rate(
        self, session_id: str, response_id: str, rating: int, feedback: str = ""
    ) -> dict[str, Any]:
        if not 1 <= rating <= 10:
            raise ValueError("rating must be 1..10")
        self.ratings.append((session_id, response_id, rating, feedback))
        return {
            "feedback_id": "fb1",
            "preferences": {"verbosity": "detailed", "focus_areas": ["security"]},
        }

    async def close(self) -> None:
        self.closed = True


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeBackend:
    """The chat command talks to a FakeBackend (the make_backend seam)."""
    backend = FakeBackend()

    def make_backend(**kwargs: Any) -> tuple[FakeBackend, str]:
        backend.make_calls.append(kwargs)
        return backend, "fake backend"

    monkeypatch.setattr(cli_chat, "make_backend", make_backend)
    return backend


def invoke(*args: str, input: str | None = None) -> Any:
    return CliRunner().invoke(app, ["chat", *args], input=input, env={"COLUMNS": "160"})


def test_once_prints_findings_sorted_with_file_line(fake: FakeBackend) -> None:
    """--once prints header, findings as file:line sorted by file then line, recommendations, next actions; exit 0."""
    done = invoke("--once", "analyze app.py")
    assert done.exit_code == 0, done.output
    out = done.stdout
    assert "analysis agent" in out and "confidence 0.93" in out and "code_analysis" in out
    assert out.index("app.py:12") < out.index("app.py:58") < out.index("utils.py:3")
    assert "S307" in out and "error" in out and "eval of input" in out
    assert "1. replace eval with int" in out
    assert "/n 1  now refactor it based on that analysis" in out
    assert "fake backend" in done.stderr and "fake backend" not in out
    assert fake.closed


def test_once_json_prints_one_object_with_session_and_response_id(fake: FakeBackend) -> None:
    """--once --json: stdout is exactly one JSON object, the response plus session_id."""
    done = invoke("--once", "analyze app.py", "--json")
    assert done.exit_code == 0, done.output
    assert done.stdout.count("\n") == 1
    payload = json.loads(done.stdout)
    assert payload["session_id"] in fake.sessions_
    assert payload["response_id"] and payload["findings"][0]["line"] == 58
    assert payload["type"] == "analysis"


def test_once_passes_session_user_and_options_through(fake: FakeBackend) -> None:
    """--session and --user reach backend.chat; store, workspace, embedded, address reach make_backend."""
    first = json.loads(invoke("--once", "analyze app.py", "--json").stdout)
    done = invoke(
        "--once", "again", "--session", first["session_id"], "--user", "ada", "--json",
        "--store", "sqlite:////tmp/x.db", "--embedded", "--address", "ray://h:1",
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    assert fake.chats[-1] == {
        "session_id": first["session_id"],
        "message": "again",
        "user_id": "ada",
    }
    assert json.loads(done.stdout)["session_id"] == first["session_id"]
    options = fake.make_calls[-1]
    assert options["store"] == "sqlite:////tmp/x.db" and options["embedded"] is True
    assert options["address"] == "ray://h:1" and options["workspace"].startswith("/")


@pytest.mark.parametrize(
    "args",
    [
        ("--json",),
        ("--once", "   "),
        ("--once", "hi", "--workspace", "/no/such/dir"),
        ("--once", "hi", "--session", "nope"),
    ],
    ids=["json-without-once", "empty-message", "missing-workspace", "unknown-session"],
)
def test_bad_input_exits_2_with_one_line(fake: FakeBackend, args: tuple[str, ...]) -> None:
    """Bad input exits 2 with one error line on stderr and nothing on stdout."""
    done = invoke(*args)
    assert done.exit_code == 2, done.output
    assert done.stdout == ""
    assert "error" in done.stderr and "Traceback" not in done.stderr


def test_turn_failure_exits_1_with_first_line_only(fake: FakeBackend) -> None:
    """A failing turn exits 1; stderr shows the first line of the error, no traceback."""
    done = invoke("--once", "boom")
    assert done.exit_code == 1
    assert "the provider exploded" in done.stderr and "Traceback" not in done.stderr
    assert fake.closed


@pytest.mark.parametrize(
    ("error", "code"), [(RuntimeError("ray is sad"), 1), (StoreConfigError("bad URL"), 2)]
)
def test_backend_that_cannot_start_exits_cleanly(
    monkeypatch: pytest.MonkeyPatch, error: Exception, code: int
) -> None:
    """A backend that cannot be built: one line on stderr, exit 2 for configuration, else 1."""

    def broken(**kwargs: Any) -> Any:
        raise error

    monkeypatch.setattr(cli_chat, "make_backend", broken)
    done = invoke("--once", "hi")
    assert done.exit_code == code
    assert str(error) in done.stderr and "Traceback" not in done.stderr


def test_interactive_session_commands_feedback_and_next_action(fake: FakeBackend) -> None:
    """The loop: /help, a turn with progress, /feedback 9 text, /n 1, /sessions, /new, /quit."""
    script = [
        "/help",
        "",
        "analyze app.py",
        "/feedback 9 great analysis",
        "/n 1",
        "/sessions",
        "/new",
        "/sessions",
        "/quit",
        "never sent",
    ]
    done = invoke(input="\n".join(script) + "\n")
    assert done.exit_code == 0, done.output
    out = done.stdout
    assert "/feedback N [text]" in out  # the help
    assert "→ analysis agent (0.93)" in out and "running code_analysis: step review" in out
    assert "app.py:58" in out
    first = fake.chats[0]["message"], fake.chats[1]["message"]
    assert first == ("analyze app.py", "now refactor it based on that analysis")
    sid = next(iter(fake.sessions_))
    assert fake.ratings == [(sid, fake.turns[sid][1]["meta"]["response_id"], 9, "great analysis")]
    assert "rated 9/10" in out and "verbosity detailed" in out and "focus areas security" in out
    assert sid[:12] in out and "analyze app.py" in out  # the sessions table
    assert "new session sess0002" in out
    assert len(fake.chats) == 2 and fake.closed


def test_interactive_errors_are_one_line_and_the_chat_goes_on(fake: FakeBackend) -> None:
    """Unknown commands, bad /feedback, /n without suggestions and failing turns: errors, then on."""
    script = [
        "/feedback 9",
        "/n 1",
        "/bogus",
        "boom",
        "/feedback eleven",
        "analyze",
        "/feedback 11",
    ]
    done = invoke(input="\n".join(script) + "\n")
    assert done.exit_code == 0, done.output  # EOF ends the chat normally
    out = done.stdout
    assert "nothing to rate yet" in out
    assert "no suggestions" in out
    assert "unknown command /bogus" in out
    assert "the provider exploded" in out and "Traceback" not in out
    assert "usage: /feedback N [text]" in out and "11 is out of range 1..10" in out
    assert "app.py:58" in out and fake.ratings == []


def test_switch_history_and_feedback_after_switch(fake: FakeBackend) -> None:
    """/switch by id prefix continues a session; /history lists it; /feedback rates its last answer."""
    first = json.loads(invoke("--once", "analyze app.py", "--json").stdout)
    sid = first["session_id"]
    done = invoke(input=f"/history\n/switch {sid[:8]}\n/history\n/feedback 3\n/switch zz\n")
    assert done.exit_code == 0, done.output
    out = done.stdout
    assert "send a message first" in out  # /history before any session
    assert f"switched to session {sid}" in out
    assert "you: analyze app.py" in out and "analysis: Found 3 issues" in out
    assert fake.ratings == [(sid, first["response_id"], 3, "")]
    assert "no session starts with zz" in out


def test_tokens_are_streamed_once(fake: FakeBackend) -> None:
    """Token events are written as they arrive and the same summary is not printed again."""
    done = invoke(input="stream please\n")
    assert done.exit_code == 0, done.output
    assert done.stdout.count("Found 3 issues (streamed).") == 1


def test_session_option_continues_that_session_interactively(fake: FakeBackend) -> None:
    """chat --session ID sends the first interactive turn to that session."""
    first = json.loads(invoke("--once", "analyze app.py", "--json").stdout)
    done = invoke("--session", first["session_id"], input="more\n")
    assert done.exit_code == 0, done.output
    assert fake.chats[-1]["session_id"] == first["session_id"]


# -- make_backend: which backend, without Ray --------------------------------------------


@pytest.fixture
def backends(monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    """Stand-in modules for actors.agents.local and serve.platform_backend."""
    state = SimpleNamespace(tree=None, connects=[], error=None)

    class LocalBackend:
        def __init__(self, store_url: str, *, workspace: str) -> None:
            self.store_url, self.workspace = store_url, workspace

    def connect_tree(address: str | None, *, workspace: str) -> Any:
        state.connects.append((address, workspace))
        if state.error:
            raise state.error
        return state.tree

    local, tree = ModuleType("actors.agents.local"), ModuleType("serve.platform_backend")
    local.LocalBackend = LocalBackend  # type: ignore[attr-defined]
    tree.connect_tree = connect_tree  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "actors.agents.local", local)
    monkeypatch.setitem(sys.modules, "serve.platform_backend", tree)
    state.Local = LocalBackend
    return state


def test_embedded_never_asks_for_the_tree(backends: SimpleNamespace) -> None:
    """--embedded builds the LocalBackend and never looks for the tree."""
    backend, note = cli_chat.make_backend(
        embedded=True, address=None, store="sqlite:////tmp/a.db", workspace="/w"
    )
    assert isinstance(backend, backends.Local) and backend.workspace == "/w"
    assert backends.connects == [] and "embedded" in note


def test_running_tree_is_preferred(backends: SimpleNamespace) -> None:
    """Without --embedded the running tree answers when connect_tree finds one."""
    backends.tree = object()
    backend, note = cli_chat.make_backend(
        embedded=False, address="ray://h:1", store="sqlite:////tmp/a.db", workspace="/w"
    )
    assert backend is backends.tree and backends.connects == [("ray://h:1", "/w")]
    assert "running tree" in note


@pytest.mark.parametrize("error", [None, ConnectionError("no cluster")])
def test_no_tree_falls_back_to_embedded(backends: SimpleNamespace, error: Exception | None) -> None:
    """No tree (None) or a failure to reach it: the embedded backend, and the note says why."""
    backends.error = error
    backend, note = cli_chat.make_backend(
        embedded=False, address=None, store="postgresql://u:secret@db/x", workspace="/w"
    )
    assert isinstance(backend, backends.Local)
    assert "embedded" in note and "secret" not in note
    assert ("no cluster" in note) if error else ("no running tree" in note)
