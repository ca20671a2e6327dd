"""AnthropicProvider: the real ``anthropic`` SDK against the wire-level fake on 127.0.0.1.

The SDK marks ``claude-sonnet-4-5`` deprecated and warns on every call (the defaults
are the 4-6 models); tests that send the old snapshot ignore exactly
that warning, the rest run on ``claude-haiku-4-5``.
"""

from __future__ import annotations

import json
import pickle
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anthropic
import httpx2
import jsonschema
import pytest

from pipelines.errors import ProviderError
from pipelines.providers._anthropic_wire import map_error
from pipelines.providers.anthropic import DEFAULT_ALIASES, AnthropicProvider
from pipelines.providers.base import (
    Completion,
    CompletionRequest,
    Message,
    Provider,
    StreamEvent,
    ToolCall,
    ToolSpec,
)
from pipelines.providers.fakes import FakeProviderServer, FakeServerState, FaultPlan, Reply

KEY = "sk-ant-test-0123456789abcdefSECRET"
MODEL = "claude-haiku-4-5"
SONNET_DEPRECATED = pytest.mark.filterwarnings(
    "ignore:The model 'claude-sonnet-4-5' is deprecated:DeprecationWarning"
)  # kept for tests that deliberately send the deprecated snapshot
WEATHER = ToolSpec(
    "get_weather",
    "Current weather for a city",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
REVIEW_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "summary": {"type": "string", "minLength": 3},
        "score": {"type": "integer", "minimum": 1, "maximum": 5},
        "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1},
    },
    "required": ["summary", "score", "tags"],
    "additionalProperties": False,
}


@pytest.fixture(scope="module")
def server() -> Iterator[FakeProviderServer]:
    with FakeProviderServer("anthropic") as running:
        yield running


@pytest.fixture
def state(server: FakeProviderServer) -> FakeServerState:
    s = server.state
    s.script.clear()
    s.requests.clear()
    s.keys_seen.clear()
    s.set_plan(FaultPlan())
    return s


@pytest.fixture
async def provider(
    server: FakeProviderServer, state: FakeServerState
) -> AsyncIterator[AnthropicProvider]:
    p = AnthropicProvider(api_key=KEY, base_url=server.base_url, timeout_s=5.0, default_model=MODEL)
    yield p
    await p.aclose()


def ask(prompt: str = "Summarise the report please", **kwargs: Any) -> CompletionRequest:
    return CompletionRequest.from_prompt(prompt, **kwargs)


async def collect(
    provider: AnthropicProvider, request: CompletionRequest
) -> tuple[list[str], Completion]:
    deltas: list[str] = []
    final: list[Completion] = []
    async for event in provider.stream(request):
        assert not final, "the completion event must be the last one"
        if event.completion is not None:
            final.append(event.completion)
        else:
            deltas.append(event.delta)
    assert len(final) == 1
    return deltas, final[0]


async def call(provider: AnthropicProvider, request: CompletionRequest, mode: str) -> Completion:
    if mode == "complete":
        return await provider.complete(request)
    return (await collect(provider, request))[1]


async def drain(
    provider: AnthropicProvider, request: CompletionRequest, sink: list[StreamEvent]
) -> None:
    async for event in provider.stream(request):
        sink.append(event)


async def failure(
    provider: AnthropicProvider, request: CompletionRequest, mode: str
) -> ProviderError:
    with pytest.raises(ProviderError) as info:
        await call(provider, request, mode)
    return info.value


# ------------------------------------------------------------------ completions


@SONNET_DEPRECATED
async def test_complete_text_usage_and_cost(
    provider: AnthropicProvider, state: FakeServerState
) -> None:
    """A plain call returns the text, the aliased model, the server's usage and the price-table cost."""
    request = ask("hello there model", system="You are terse.", model="sonnet")
    result = await provider.complete(request)
    assert result.text == "fake anthropic reply: hello there model"
    assert (result.provider, result.model, result.finish_reason) == (
        "anthropic",
        "claude-sonnet-4-6",
        "stop",
    )
    assert (result.usage.input_tokens, result.usage.output_tokens) == (6, 6)
    assert result.cost_usd == pytest.approx((6 * 3.00 + 6 * 15.00) / 1_000_000)
    assert result.latency_ms > 0 and result.tool_calls == () and result.data is None
    sent = state.requests[0]
    assert sent.path == "/v1/messages" and sent.body["system"] == "You are terse."
    assert sent.body["model"] == "claude-sonnet-4-6" and sent.headers["anthropic-version"]
    assert state.keys_seen == [KEY] and sent.headers["authorization"] == "<redacted>"


@SONNET_DEPRECATED
async def test_default_model_and_aliases(
    server: FakeProviderServer, state: FakeServerState
) -> None:
    """No model means default_model (claude-sonnet-4-6); given aliases add to the built-in ones."""
    p = AnthropicProvider(api_key=KEY, base_url=server.base_url, aliases={"fast": MODEL})
    try:
        assert (await p.complete(ask())).model == "claude-sonnet-4-6"
        assert (await p.complete(ask(model="fast"))).model == MODEL
        assert (await p.complete(ask(model="claude-opus-4-1"))).model == "claude-opus-4-1"
    finally:
        await p.aclose()
    assert [r.body["model"] for r in state.requests] == [
        "claude-sonnet-4-6",
        MODEL,
        "claude-opus-4-1",
    ]
    assert p.resolve_model("haiku") == DEFAULT_ALIASES["haiku"] == "claude-haiku-4-5"
    assert p.resolve_model("opus") == "claude-opus-4-6"
    assert isinstance(p, Provider)


async def test_sampling_and_limits_reach_the_wire(
    provider: AnthropicProvider, state: FakeServerState
) -> None:
    """temperature, top_p/top_k from extra and max_tokens arrive in the request body."""
    request = ask(temperature=0.2, max_tokens=321, extra={"top_p": 0.9, "top_k": 40, "seed": 1})
    await provider.complete(request)
    body = state.requests[0].body
    assert (body["temperature"], body["top_p"], body["top_k"], body["max_tokens"]) == (
        0.2,
        0.9,
        40,
        321,
    )
    assert "seed" not in body and "tools" not in body and "system" not in body


@pytest.mark.parametrize(
    ("stop_reason", "finish"),
    [("end_turn", "stop"), ("stop_sequence", "stop"), ("max_tokens", "length")],
)
async def test_stop_reasons_map_to_finish_reasons(
    provider: AnthropicProvider, state: FakeServerState, stop_reason: str, finish: str
) -> None:
    """end_turn/stop_sequence become "stop" and max_tokens becomes "length"."""
    state.push(Reply(text="partial answer", finish=stop_reason))
    assert (await provider.complete(ask())).finish_reason == finish


async def test_stream_deltas_concatenate_to_the_final_text(
    provider: AnthropicProvider, state: FakeServerState
) -> None:
    """Streaming yields several deltas whose concatenation is the final text, then usage."""
    state.push(Reply(text="one two three four five six", input_tokens=11, output_tokens=7))
    deltas, result = await collect(provider, ask())
    assert len(deltas) >= 3
    assert "".join(deltas) == result.text == "one two three four five six"
    assert (result.usage.input_tokens, result.usage.output_tokens) == (11, 7)
    assert result.cost_usd == pytest.approx((11 * 1.00 + 7 * 5.00) / 1_000_000)
    assert result.model == MODEL and result.finish_reason == "stop"
    assert state.requests[0].body["stream"] is True


async def test_stream_consumer_may_stop_early(
    provider: AnthropicProvider, state: FakeServerState
) -> None:
    """Leaving a stream after its first delta closes it quietly; the provider stays usable."""
    state.push(Reply(text="a b c d e f g"))
    stream = provider.stream(ask())
    first = await anext(aiter(stream))
    assert first.delta
    await stream.aclose()  # type: ignore[attr-defined]  # an async generator underneath
    assert (await provider.complete(ask("again"))).text == "fake anthropic reply: again"


# ------------------------------------------------------------------------ tools


async def test_tool_use_round_trip(provider: AnthropicProvider, state: FakeServerState) -> None:
    """A tool_use answer becomes ToolCalls; sending calls and results back gives the right blocks."""
    state.push(Reply(text="Checking.", tool_calls=(("get_weather", {"city": "Paris"}),)))
    first = await provider.complete(ask("Weather in Paris?", tools=(WEATHER,)))
    assert first.finish_reason == "tool_calls" and first.text == "Checking."
    (call,) = first.tool_calls
    assert call.id.startswith("toolu_") and call.name == "get_weather"
    assert dict(call.arguments) == {"city": "Paris"}
    assert state.requests[0].body["tools"] == [
        {
            "name": "get_weather",
            "description": WEATHER.description,
            "input_schema": WEATHER.parameters,
        }
    ]

    state.push(Reply(text="It is sunny."))
    messages = (
        Message("user", "Weather in Paris?"),
        Message("assistant", first.text, tool_calls=first.tool_calls),
        Message("tool", "18C, sunny", tool_call_id=call.id),
    )
    second = await provider.complete(CompletionRequest(messages=messages, tools=(WEATHER,)))
    assert second.text == "It is sunny." and second.finish_reason == "stop"
    sent = state.requests[1].body["messages"]
    assert sent[1] == {
        "role": "assistant",
        "content": [
            {"type": "text", "text": "Checking."},
            {"type": "tool_use", "id": call.id, "name": "get_weather", "input": {"city": "Paris"}},
        ],
    }
    assert sent[2] == {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "18C, sunny"}],
    }


async def test_consecutive_tool_results_form_one_user_message(
    provider: AnthropicProvider, state: FakeServerState
) -> None:
    """Two tool messages in a row become one user message of two tool_result blocks."""
    calls = (
        ToolCall("toolu_a", "get_weather", {"city": "Oslo"}),
        ToolCall("toolu_b", "get_weather", {"city": "Rome"}),
    )
    messages = (
        Message("user", "Compare Oslo and Rome"),
        Message("assistant", "", tool_calls=calls),
        Message("tool", "2C", tool_call_id="toolu_a"),
        Message("tool", "21C", tool_call_id="toolu_b"),
    )
    await provider.complete(CompletionRequest(messages=messages, tools=(WEATHER,)))
    sent = state.requests[0].body["messages"]
    assert len(sent) == 3
    assert sent[1]["content"][0]["type"] == "tool_use"  # no empty text block before the calls
    assert [(b["type"], b["tool_use_id"]) for b in sent[2]["content"]] == [
        ("tool_result", "toolu_a"),
        ("tool_result", "toolu_b"),
    ]


async def test_agent_loop_runs_tools_until_the_model_answers(
    provider: AnthropicProvider, state: FakeServerState
) -> None:
    """The multi-turn loop shape: call tools, append calls and results, ask again until text."""
    state.push(
        Reply(tool_calls=(("get_weather", {"city": "Oslo"}),)),
        Reply(tool_calls=(("get_weather", {"city": "Rome"}), ("get_weather", {"city": "Nice"}))),
        Reply(text="Rome and Nice are warmer than Oslo."),
    )
    messages: list[Message] = [Message("user", "Which city is warmest?")]
    for _ in range(5):
        result = await provider.complete(
            CompletionRequest(messages=tuple(messages), tools=(WEATHER,))
        )
        if not result.tool_calls:
            break
        messages.append(Message("assistant", result.text, tool_calls=result.tool_calls))
        messages.extend(
            Message("tool", f"{c.arguments['city']}: mild", tool_call_id=c.id)
            for c in result.tool_calls
        )
    assert result.text == "Rome and Nice are warmer than Oslo."
    assert [len(r.body["messages"]) for r in state.requests] == [1, 3, 5]


async def test_stream_assembles_tool_calls(
    provider: AnthropicProvider, state: FakeServerState
) -> None:
    """Streamed input_json_delta pieces are joined into the ToolCall arguments."""
    args = {"city": "San Francisco, California", "units": "metric", "days": 3}
    state.push(Reply(text="Looking.", tool_calls=(("get_weather", args),)))
    deltas, result = await collect(provider, ask(tools=(WEATHER,)))
    assert "".join(deltas) == "Looking." == result.text
    assert result.finish_reason == "tool_calls"
    assert [(c.name, dict(c.arguments)) for c in result.tool_calls] == [("get_weather", args)]


async def test_tool_message_without_id_is_refused_before_sending(
    provider: AnthropicProvider, state: FakeServerState
) -> None:
    """A tool message that names no call is an invalid_request and nothing is sent."""
    request = CompletionRequest(messages=(Message("user", "hi"), Message("tool", "result")))
    error = await failure(provider, request, "complete")
    assert (error.code, error.retryable) == ("invalid_request", False)
    assert state.request_count == 0


async def test_unanswered_tool_use_is_rejected_by_the_api(
    provider: AnthropicProvider, state: FakeServerState
) -> None:
    """A conversation whose tool_use has no tool_result gets the API's 400 as invalid_request."""
    messages = (
        Message("user", "hi"),
        Message(
            "assistant", "", tool_calls=(ToolCall("toolu_x", "get_weather", {"city": "Oslo"}),)
        ),
        Message("user", "never mind"),
    )
    error = await failure(
        provider, CompletionRequest(messages=messages, tools=(WEATHER,)), "complete"
    )
    assert (error.code, error.status) == ("invalid_request", 400)
    assert "tool_result" in str(error)


# ----------------------------------------------------------- structured output


async def test_structured_output_forces_its_tool(
    provider: AnthropicProvider, state: FakeServerState
) -> None:
    """output_schema adds a forced structured_output tool; its input is data, text its JSON."""
    result = await provider.complete(ask(output_schema=REVIEW_SCHEMA))
    jsonschema.validate(result.data, REVIEW_SCHEMA)
    assert result.text == json.dumps(result.data)
    assert result.tool_calls == () and result.finish_reason == "stop"
    body = state.requests[0].body
    assert body["tool_choice"] == {"type": "tool", "name": "structured_output"}
    assert body["tools"] == [
        {
            "name": "structured_output",
            "description": "Return the final answer as structured data",
            "input_schema": REVIEW_SCHEMA,
        }
    ]


async def test_structured_output_beside_tools(
    provider: AnthropicProvider, state: FakeServerState
) -> None:
    """With other tools the choice is "any"; real tool calls stay tool_calls, never data."""
    answer = {"summary": "fine", "score": 4, "tags": ["ok"]}
    state.push(
        Reply(tool_calls=(("get_weather", {"city": "Oslo"}),)),
        Reply(tool_calls=(("structured_output", answer),)),
    )
    request = ask(output_schema=REVIEW_SCHEMA, tools=(WEATHER,))
    first = await provider.complete(request)
    assert first.data is None and [c.name for c in first.tool_calls] == ["get_weather"]
    assert first.finish_reason == "tool_calls"
    second = await provider.complete(request)
    assert second.data == answer and second.tool_calls == () and second.finish_reason == "stop"
    body = state.requests[0].body
    assert body["tool_choice"] == {"type": "any"}
    assert [t["name"] for t in body["tools"]] == ["get_weather", "structured_output"]


async def test_non_object_schema_is_wrapped_and_unwrapped(
    provider: AnthropicProvider, state: FakeServerState
) -> None:
    """An array schema travels as {"result": array} (tool inputs are objects) and comes back bare."""
    schema = {
        "type": "array",
        "items": {"$ref": "#/$defs/tag"},
        "minItems": 2,
        "$defs": {"tag": {"type": "string", "enum": ["bug", "style", "perf"]}},
    }
    result = await provider.complete(ask(output_schema=schema))
    jsonschema.validate(result.data, schema)
    assert isinstance(result.data, list) and result.text == json.dumps(result.data)
    sent = state.requests[0].body["tools"][0]["input_schema"]
    assert sent["type"] == "object" and sent["required"] == ["result"]
    assert sent["$defs"] == schema["$defs"] and sent["properties"]["result"]["type"] == "array"


async def test_structured_output_streams(
    provider: AnthropicProvider, state: FakeServerState
) -> None:
    """A streamed structured answer ends with its JSON as the delta text and data set."""
    deltas, result = await collect(provider, ask(output_schema=REVIEW_SCHEMA))
    jsonschema.validate(result.data, REVIEW_SCHEMA)
    assert "".join(deltas) == result.text == json.dumps(result.data)
    assert result.tool_calls == ()


# ----------------------------------------------------------------------- errors

HTTP_FAULTS = [
    ("429", "rate_limited", 429, True),
    ("529", "overloaded", 529, True),
    ("500", "server_error", 500, True),
    ("503", "overloaded", 503, True),
    ("401", "auth", 401, False),
    ("400", "invalid_request", 400, False),
    ("malformed", "server_error", None, True),
]


@pytest.mark.parametrize("mode", ["complete", "stream"])
@pytest.mark.parametrize("case", HTTP_FAULTS, ids=[c[0] for c in HTTP_FAULTS])
async def test_faults_map_to_provider_errors(
    provider: AnthropicProvider,
    state: FakeServerState,
    mode: str,
    case: tuple[str, str, int | None, bool],
) -> None:
    """Each fault kind becomes its ProviderError code after exactly one request (SDK retries off)."""
    fault, code, status, retryable = case
    state.set_plan(FaultPlan(retry_after_s=1.5))
    state.push(fault)
    error = await failure(provider, ask(), mode)
    assert (error.code, error.status, error.retryable, error.provider) == (
        code,
        status,
        retryable,
        "anthropic",
    )
    assert error.retry_after_s == (1.5 if fault == "429" else None)
    assert state.request_count == 1
    assert KEY not in str(error)


@pytest.mark.parametrize("mode", ["complete", "stream"])
async def test_refusal_is_content_filtered(
    provider: AnthropicProvider, state: FakeServerState, mode: str
) -> None:
    """stop_reason "refusal" raises content_filtered, which is not retryable."""
    state.push("content_filter")
    error = await failure(provider, ask(), mode)
    assert (error.code, error.retryable) == ("content_filtered", False)


@pytest.mark.parametrize("where", ["client", "request"])
async def test_timeout(server: FakeProviderServer, state: FakeServerState, where: str) -> None:
    """A server slower than the client timeout (0.2 s) raises a retryable timeout after one try."""
    state.set_plan(FaultPlan(timeout_s=5.0))
    state.push("timeout")
    client_timeout = 0.2 if where == "client" else 5.0
    p = AnthropicProvider(
        api_key=KEY, base_url=server.base_url, timeout_s=client_timeout, default_model=MODEL
    )
    try:
        request = ask(timeout_s=0.2 if where == "request" else None)
        error = await failure(p, request, "complete")
    finally:
        await p.aclose()
    assert (error.code, error.retryable, error.status) == ("timeout", True, None)
    assert state.request_count == 1


async def test_connection_refused() -> None:
    """A provider pointed at a closed port raises a retryable connection error."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    p = AnthropicProvider(api_key=KEY, base_url=f"http://127.0.0.1:{port}", default_model=MODEL)
    try:
        for mode in ("complete", "stream"):
            error = await failure(p, ask(), mode)
            assert (error.code, error.retryable) == ("connection", True)
            assert KEY not in str(error)
    finally:
        await p.aclose()


async def test_stream_drop_after_first_delta(
    provider: AnthropicProvider, state: FakeServerState
) -> None:
    """A stream cut after its first delta raises a retryable ProviderError after that delta."""
    state.push("drop")
    events: list[StreamEvent] = []
    with pytest.raises(ProviderError) as info:
        await drain(provider, ask(), events)
    assert [e.delta for e in events] == ["fake "]
    assert (info.value.code, info.value.retryable) == ("connection", True)
    assert state.request_count == 1


async def test_stream_drop_before_content(
    provider: AnthropicProvider, state: FakeServerState
) -> None:
    """A stream cut right after message_start raises before any delta."""
    state.push("drop_before")
    events: list[StreamEvent] = []
    with pytest.raises(ProviderError) as info:
        await drain(provider, ask(), events)
    assert events == []
    assert info.value.code == "connection" and info.value.retryable


@pytest.mark.parametrize("fault", ["drop", "drop_before"])
async def test_drop_without_stream_is_a_server_error(
    provider: AnthropicProvider, state: FakeServerState, fault: str
) -> None:
    """The stream-cut faults answer a non-streaming call with a 500."""
    state.push(fault)
    error = await failure(provider, ask(), "complete")
    assert (error.code, error.status) == ("server_error", 500)


# ---------------------------------------------------------------------- secrets


async def test_key_never_in_repr_or_errors(
    provider: AnthropicProvider, state: FakeServerState
) -> None:
    """The key is absent from repr/str of the provider and from errors, even pickled ones."""
    assert KEY not in repr(provider) and KEY not in str(provider)
    assert "AnthropicProvider(" in repr(provider)
    state.push("401")
    error = await failure(provider, ask(), "complete")
    assert error.code == "auth"
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.code, copy.status) == ("auth", 401) and KEY not in str(copy)


def _status_error(status: int, error_type: str, message: str) -> anthropic.APIStatusError:
    request = httpx2.Request("POST", "http://127.0.0.1/v1/messages")
    body = {"type": "error", "error": {"type": error_type, "message": message}}
    response = httpx2.Response(status, request=request, json=body)
    return anthropic.APIStatusError(f"Error code: {status} - {body}", response=response, body=body)


def test_echoed_key_is_redacted() -> None:
    """A server message that echoes the key reaches the error redacted."""
    error = map_error(_status_error(401, "authentication_error", f"bad key {KEY}"), secrets=[KEY])
    assert KEY not in str(error) and "<redacted>" in str(error)


@pytest.mark.parametrize(
    ("error_type", "code"),
    [
        ("overloaded_error", "overloaded"),
        ("api_error", "server_error"),
        ("rate_limit_error", "rate_limited"),
    ],
)
def test_sse_error_event_maps_by_error_type(error_type: str, code: str) -> None:
    """An error event inside a 200 stream is mapped by its error type, not by the 200."""
    error = map_error(_status_error(200, error_type, "mid-stream"), secrets=[])
    assert error.code == code


def test_warning_raised_as_error_is_not_retryable() -> None:
    """A warning escalated by `-W error` (the SDK's deprecated-model notice) is not retried."""
    error = map_error(DeprecationWarning("The model 'claude-sonnet-4-5' is deprecated"), secrets=[])
    assert (error.code, error.retryable) == ("invalid_request", False)
    assert "DeprecationWarning" in str(error)
