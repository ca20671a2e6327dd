"""The OpenAI-compatible edge over a real socket, with the official openai SDK as client."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator, MutableMapping
from typing import Any

import httpx
import openai
import pytest
from starlette.requests import ClientDisconnect

from actors.agents.models import AGENTS
from serve.http._openai_wire import session_for
from tests.unit.serve.http.openai_fakes import (
    TOKENS,
    WAIT_S,
    FakePlatform,
    Server,
    build_app,
    expected_content,
    serving,
    wait_for,
)


@pytest.fixture
def server() -> Iterator[Server]:
    with serving(FakePlatform()) as running:
        yield running


def client(server: Server) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.base}/v1", api_key="k", max_retries=0)


def test_models_list_names_router_agents_and_pipelines(server: Server) -> None:
    """GET /v1/models lists elexirion, agent:<name> and bare names, pipeline:<name>."""
    models = client(server).models.list()
    ids = [m.id for m in models.data]
    assert ids[0] == "elexirion"
    assert {f"agent:{a}" for a in AGENTS} | set(AGENTS) <= set(ids)
    assert {"pipeline:general_chat", "pipeline:code_analysis"} <= set(ids)
    assert all(m.owned_by == "elexirion" and isinstance(m.created, int) for m in models.data)
    assert client(server).models.retrieve("agent:analysis").id == "agent:analysis"


def test_sdk_completion_has_findings_and_usage(server: Server) -> None:
    """A non-streaming completion: the rendered answer, usage, the full response alongside."""
    completion = client(server).chat.completions.create(
        model="elexirion",
        messages=[{"role": "user", "content": "analyse app.py"}],
        temperature=0.2,
        max_tokens=100,
    )
    content = completion.choices[0].message.content or ""
    assert content == expected_content()
    assert "app.py:3" in content and "app.py:58" in content
    assert completion.id == "chatcmpl-resp123"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.completion_tokens > 0
    usage = completion.usage
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    name, message, kwargs = server.platform.calls[-1]
    assert (name, message) == ("chat", "analyse app.py")
    assert "agent" not in kwargs  # the router picks
    assert kwargs["user_id"] == "tester"


def test_sdk_stream_concatenates_to_the_completion(server: Server) -> None:
    """Streamed deltas join to the same content; include_usage adds a choices-less usage chunk."""
    stream = client(server).chat.completions.create(
        model="agent:analysis",
        messages=[{"role": "user", "content": "analyse app.py"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == expected_content()
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes.count("stop") == 1 and finishes[-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens > 0
    assert len({c.id for c in chunks}) == 1
    assert server.platform.calls[-1][2]["agent"] == "analysis"


def test_stream_without_tokens_sends_the_rendered_answer(server: Server) -> None:
    """Structured steps stream no tokens: the whole answer arrives as deltas instead."""
    server.platform.tokens = []
    stream = client(server).chat.completions.create(
        model="elexirion", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == (
        expected_content()
    )
    assert all(c.usage is None for c in chunks)


async def test_async_sdk_completion_and_stream(server: Server) -> None:
    """AsyncOpenAI gets the same completion and stream."""
    async with openai.AsyncOpenAI(base_url=f"{server.base}/v1", api_key="k", max_retries=0) as ai:
        completion = await ai.chat.completions.create(
            model="analysis", messages=[{"role": "user", "content": "analyse"}]
        )
        assert completion.choices[0].message.content == expected_content()
        stream = await ai.chat.completions.create(
            model="analysis", messages=[{"role": "user", "content": "analyse"}], stream=True
        )
        parts = [c.choices[0].delta.content or "" async for c in stream if c.choices]
    assert "".join(parts) == expected_content()


def test_history_goes_along_without_a_session(server: Server) -> None:
    """Stateless clients resend history: without a session it becomes a transcript prefix."""
    client(server).chat.completions.create(
        model="elexirion",
        messages=[
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "analyse app.py"},
            {"role": "assistant", "content": "Found 2 problems."},
            {"role": "user", "content": [{"type": "text", "text": "now fix them"}]},
        ],
    )
    message = server.platform.calls[-1][1]
    assert message == (
        "Earlier in this conversation:\nsystem: be brief\nuser: analyse app.py\n"
        "assistant: Found 2 problems.\n\nnow fix them"
    )
    assert server.platform.calls[-1][2]["session_id"] is None


def test_session_header_and_user_field_reach_the_platform(server: Server) -> None:
    """X-Session-Id, `session:<id>` and a user string name the session; history is not resent."""
    ai = client(server)
    history = [
        {"role": "user", "content": "analyse app.py"},
        {"role": "assistant", "content": "done"},
        {"role": "user", "content": "fix it"},
    ]
    raw = ai.chat.completions.with_raw_response.create(
        model="elexirion", messages=history, extra_headers={"X-Session-Id": "s-42"}
    )
    assert raw.headers["x-session-id"] == "s-42"
    assert server.platform.calls[-1][1:] == ("fix it", {"session_id": "s-42", "user_id": "tester"})
    ai.chat.completions.create(model="elexirion", messages=history, user="session:abc")
    assert server.platform.calls[-1][2]["session_id"] == "abc"
    for _ in range(2):
        ai.chat.completions.create(model="elexirion", messages=history, user="alice")
    first, second = (call[2]["session_id"] for call in server.platform.calls[-2:])
    assert first == second == session_for(None, "alice", "tester")


def test_another_keys_session_is_not_found(server: Server) -> None:
    """A session owned by another key is 404 (as on /api); a malformed session id is 422."""
    ai = client(server)
    user = [{"role": "user", "content": "x"}]
    with pytest.raises(openai.NotFoundError, match="no session 'theirs'"):
        ai.chat.completions.create(model="elexirion", messages=user, user="session:theirs")
    with pytest.raises(openai.UnprocessableEntityError, match="session id"):
        ai.chat.completions.create(
            model="elexirion", messages=user, extra_headers={"X-Session-Id": "a/b"}
        )
    assert server.platform.calls == []


def test_pipeline_model_runs_the_pipeline(server: Server) -> None:
    """pipeline:<name> starts a run, polls it to the end and answers with its last text."""
    ai = client(server)
    completion = ai.chat.completions.create(
        model="pipeline:general_chat",
        messages=[
            {"role": "user", "content": "hello"},
            {"role": "assistant", "content": "hi"},
            {"role": "user", "content": "what next?"},
        ],
    )
    assert completion.choices[0].message.content == "the pipeline's answer"
    assert completion.id == "chatcmpl-run1"
    name, pipeline, inputs = server.platform.calls[-1]
    assert (name, pipeline) == ("start_run", "general_chat")
    assert inputs == {"message": "what next?", "history": "user: hello\nassistant: hi"}
    server.platform.polls = 0
    stream = ai.chat.completions.create(
        model="pipeline:code_analysis",
        messages=[{"role": "user", "content": "security"}],
        stream=True,
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "the pipeline's answer"
    assert server.platform.calls[-1][2] == {"context": "security"}  # nothing required


def test_failed_pipeline_is_502_without_retry(server: Server) -> None:
    """A failed run answers 502 pipeline_failed, marked not to be retried by the SDK."""
    server.platform.run_status = "failed"
    body = {"model": "pipeline:general_chat", "messages": [{"role": "user", "content": "x"}]}
    response = httpx.post(f"{server.base}/v1/chat/completions", json=body, timeout=WAIT_S)
    assert response.status_code == 502
    assert response.headers["x-should-retry"] == "false"
    assert response.json()["error"]["code"] == "pipeline_failed"
    assert "provider down" in response.json()["error"]["message"]


def test_refusals_are_openai_style_errors(server: Server) -> None:
    """Unknown model 404 model_not_found; tools, n=2, image parts, no user message 422."""
    ai = client(server)
    user = [{"role": "user", "content": "x"}]
    with pytest.raises(openai.NotFoundError, match="no model 'gpt-4o'") as missing:
        ai.chat.completions.create(model="gpt-4o", messages=user)
    assert isinstance(missing.value.body, dict)
    assert missing.value.body["code"] == "model_not_found"
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    with pytest.raises(openai.UnprocessableEntityError, match="tool calling is not supported"):
        ai.chat.completions.create(model="elexirion", messages=user, tools=[tool])
    with pytest.raises(openai.UnprocessableEntityError, match="only n=1"):
        ai.chat.completions.create(model="elexirion", messages=user, n=2)
    image = [{"type": "image_url", "image_url": {"url": "data:,"}}]
    with pytest.raises(openai.UnprocessableEntityError, match="'image_url' are not supported"):
        ai.chat.completions.create(model="elexirion", messages=[{"role": "user", "content": image}])
    with pytest.raises(openai.UnprocessableEntityError, match="user message is required"):
        ai.chat.completions.create(model="elexirion", messages=[{"role": "system", "content": "x"}])
    with pytest.raises(openai.NotFoundError):
        ai.models.retrieve("pipeline:nope")
    assert server.platform.calls == []


def test_error_mid_stream_arrives_as_an_error_event(server: Server) -> None:
    """Once streaming, a platform error is a last `data: {error}` event; the SDK raises it."""
    server.platform.fail_stream = True
    stream = client(server).chat.completions.create(
        model="elexirion", messages=[{"role": "user", "content": "x"}], stream=True
    )
    with pytest.raises(openai.APIError, match="the agent refused the input"):
        list(stream)
    assert wait_for(lambda: server.app.state.inflight.count == 0)  # released after the last send


def test_client_disconnect_closes_the_platform_stream(server: Server) -> None:
    """A client leaving mid-stream closes the platform's iterator and frees the turn slot."""
    server.platform.hang = True
    body = {"model": "elexirion", "messages": [{"role": "user", "content": "x"}], "stream": True}
    url = f"{server.base}/v1/chat/completions"
    with httpx.stream("POST", url, json=body, timeout=WAIT_S) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-cache"
        assert response.headers["x-accel-buffering"] == "no"
        seen = []
        for line in response.iter_lines():
            if line.startswith("data: "):
                seen.append(json.loads(line.removeprefix("data: ")))
                assert server.app.state.inflight.count == 1  # held while streaming
                if seen[-1]["choices"][0]["delta"].get("content"):
                    break  # leaving the line iterator closes the connection
        assert seen[-1]["choices"][0]["delta"]["content"] == TOKENS[0]
    assert server.platform.closed.wait(WAIT_S), "the platform stream was not closed"
    assert server.platform.close_reason in {"GeneratorExit", "CancelledError"}
    assert wait_for(lambda: server.app.state.inflight.count == 0)


async def test_send_failing_mid_stream_closes_the_platform_iterator() -> None:
    """When a chunk cannot be sent, the suspended platform iterator gets aclose() at once."""
    platform = FakePlatform()
    app = build_app(platform)
    body = json.dumps(
        {"model": "elexirion", "messages": [{"role": "user", "content": "x"}], "stream": True}
    ).encode()
    requests = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict[str, Any]:
        if requests:
            return requests.pop()
        await asyncio.Event().wait()  # the client never says it left: the send fails
        raise AssertionError

    async def send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.body" and TOKENS[0].encode() in message["body"]:
            raise OSError("connection reset by peer")

    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/chat/completions",
        "raw_path": b"/v1/chat/completions",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    with pytest.raises(ClientDisconnect):
        await app(scope, receive, send)
    assert platform.closed.is_set() and platform.close_reason == "GeneratorExit"
    assert app.state.inflight.count == 0
