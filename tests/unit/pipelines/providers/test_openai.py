"""The OpenAI provider: the real ``openai`` SDK against the wire-level fake on 127.0.0.1."""

from __future__ import annotations

import json
import pickle
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import jsonschema
import openai
import pytest

from pipelines.errors import ConfigError, ProviderError
from pipelines.providers.base import (
    Completion,
    CompletionRequest,
    Message,
    Provider,
    ToolCall,
    ToolSpec,
    Usage,
)
from pipelines.providers.fakes import FakeProviderServer, FakeServerState, FaultPlan, Reply
from pipelines.providers.fakes.openai import MODELS
from pipelines.providers.openai import OpenAIProvider
from pipelines.providers.pricing import Price, PriceTable

KEY = "sk-test-elexirion-0123456789abcdef"
WEATHER = ToolSpec(
    name="get_weather",
    description="Current weather in a city",
    parameters={
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
)
REVIEW_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "summary": {"type": "string", "minLength": 1},
        "score": {"type": "integer", "minimum": 0, "maximum": 10},
        "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
    },
    "required": ["summary", "score", "tags"],
    "additionalProperties": False,
}


@pytest.fixture(scope="module")
def server() -> Iterator[FakeProviderServer]:
    with FakeProviderServer("openai") as running:
        yield running


@pytest.fixture
def state(server: FakeProviderServer) -> FakeServerState:
    server.state.script.clear()
    server.state.requests.clear()
    server.state.keys_seen.clear()
    server.state.set_plan(FaultPlan())
    return server.state


@pytest.fixture
async def provider(
    server: FakeProviderServer, state: FakeServerState
) -> AsyncIterator[OpenAIProvider]:
    made = OpenAIProvider(api_key=KEY, base_url=f"{server.base_url}/v1", timeout_s=5.0)
    yield made
    await made.aclose()


async def _stream(
    provider: OpenAIProvider, request: CompletionRequest, deltas: list[str]
) -> Completion:
    """Drain ``provider.stream``, appending deltas as they come; return the final completion."""
    final: Completion | None = None
    async for event in provider.stream(request):
        if event.completion is not None:
            final = event.completion
        else:
            deltas.append(event.delta)
    assert final is not None
    return final


async def _call(provider: OpenAIProvider, request: CompletionRequest, mode: str) -> Completion:
    if mode == "stream":
        return await _stream(provider, request, [])
    return await provider.complete(request)


def _body(state: FakeServerState, index: int = -1) -> dict[str, Any]:
    body = state.requests[index].body
    assert isinstance(body, dict)
    return body


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ------------------------------------------------------------------ success paths


async def test_plain_completion(provider: OpenAIProvider, state: FakeServerState) -> None:
    """A plain call sends system first, reports model, usage and the gpt-4o-mini cost."""
    state.push(Reply(text="Paris.", input_tokens=1000, output_tokens=500))
    request = CompletionRequest.from_prompt(
        "Capital of France?", system="Answer in one word.", model="gpt-4o-mini", temperature=0.2
    )
    result = await provider.complete(request)
    assert (result.text, result.provider, result.model) == ("Paris.", "openai", "gpt-4o-mini")
    assert result.usage == Usage(1000, 500)
    assert result.cost_usd == pytest.approx(1000 * 0.15e-6 + 500 * 0.60e-6)
    assert result.finish_reason == "stop" and result.latency_ms > 0
    body = _body(state)
    assert body["messages"] == [
        {"role": "system", "content": "Answer in one word."},
        {"role": "user", "content": "Capital of France?"},
    ]
    assert (body["model"], body["max_tokens"], body["temperature"]) == ("gpt-4o-mini", 4096, 0.2)
    assert state.keys_seen == [KEY]
    assert state.requests[-1].headers["authorization"] == "<redacted>"


async def test_default_reply_echoes_prompt(
    provider: OpenAIProvider, state: FakeServerState
) -> None:
    """With nothing scripted the fake answers from the last user message and counts tokens."""
    result = await provider.complete(CompletionRequest.from_prompt("hello fake"))
    assert result.text == "fake openai reply: hello fake"
    assert result.model == "gpt-4o-mini" and result.usage.input_tokens > 0
    assert isinstance(provider, Provider)


async def test_streaming_deltas_and_usage(provider: OpenAIProvider, state: FakeServerState) -> None:
    """Streamed deltas join to the final text; usage comes from the include_usage chunk."""
    text = "The quick brown fox jumps over the lazy dog."
    state.push(Reply(text=text, input_tokens=12, output_tokens=9))
    deltas: list[str] = []
    result = await _stream(provider, CompletionRequest.from_prompt("fox?"), deltas)
    assert len(deltas) > 1 and "".join(deltas) == text == result.text
    assert result.usage == Usage(12, 9) and result.cost_usd > 0
    body = _body(state)
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}


async def test_stream_without_usage_chunk(
    provider: OpenAIProvider, state: FakeServerState, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server that ignores stream_options sends no usage: the stream still completes, zeros."""
    completions = provider._client.chat.completions
    real_create = completions.create

    async def create_without_options(**kwargs: Any) -> Any:
        kwargs.pop("stream_options")
        return await real_create(**kwargs)

    monkeypatch.setattr(completions, "create", create_without_options)
    deltas: list[str] = []
    result = await _stream(provider, CompletionRequest.from_prompt("no usage please"), deltas)
    assert "".join(deltas) == result.text == "fake openai reply: no usage please"
    assert result.usage == Usage() and result.cost_usd == 0.0
    assert "stream_options" not in _body(state)


async def test_tool_use_round_trip(provider: OpenAIProvider, state: FakeServerState) -> None:
    """A tool call parses into ToolCall; the follow-up with assistant tool_calls + tool answer is accepted."""
    state.push(Reply(tool_calls=(("get_weather", {"city": "Paris"}),), input_tokens=30))
    ask = CompletionRequest.from_prompt("Weather in Paris?", tools=(WEATHER,))
    first = await provider.complete(ask)
    assert first.finish_reason == "tool_calls" and first.text == ""
    (call,) = first.tool_calls
    assert call.name == "get_weather" and call.arguments == {"city": "Paris"}
    assert call.id.startswith("call_")
    assert _body(state)["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Current weather in a city",
                "parameters": dict(WEATHER.parameters),
            },
        }
    ]
    state.push(Reply(text="It is 21 °C in Paris."))
    follow_up = CompletionRequest(
        messages=(
            *ask.messages,
            Message("assistant", "", tool_calls=first.tool_calls),
            Message("tool", '{"temp_c": 21}', tool_call_id=call.id),
        ),
        tools=(WEATHER,),
    )
    second = await provider.complete(follow_up)
    assert second.text == "It is 21 °C in Paris." and second.finish_reason == "stop"
    sent = _body(state)["messages"]
    assert sent[1] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": "get_weather", "arguments": json.dumps({"city": "Paris"})},
            }
        ],
    }
    assert sent[2] == {"role": "tool", "tool_call_id": call.id, "content": '{"temp_c": 21}'}


async def test_fake_latency_and_chunk_delay(
    provider: OpenAIProvider, state: FakeServerState
) -> None:
    """The fake honours plan latency and per-chunk delay; the stream is still whole."""
    state.set_plan(FaultPlan(latency_ms=40, stream_chunk_delay_ms=5))
    deltas: list[str] = []
    result = await _stream(provider, CompletionRequest.from_prompt("slow and steady"), deltas)
    assert "".join(deltas) == result.text and len(deltas) > 2
    assert result.latency_ms >= 40 + 5 * len(deltas)


async def test_streamed_tool_call_assembled(
    provider: OpenAIProvider, state: FakeServerState
) -> None:
    """Tool-call fragments across chunks assemble into one ToolCall with parsed arguments."""
    args = {"query": "ray serve autoscaling", "limit": 5, "filters": {"lang": "en"}}
    state.push(Reply(tool_calls=(("search", args), ("get_weather", {"city": "Oslo"}))))
    deltas: list[str] = []
    result = await _stream(provider, CompletionRequest.from_prompt("find it"), deltas)
    assert deltas == [] and result.finish_reason == "tool_calls"
    assert [(c.name, c.arguments) for c in result.tool_calls] == [
        ("search", args),
        ("get_weather", {"city": "Oslo"}),
    ]
    assert all(c.id.startswith("call_") for c in result.tool_calls)


@pytest.mark.parametrize("mode", ["complete", "stream"])
async def test_structured_output(
    provider: OpenAIProvider, state: FakeServerState, mode: str
) -> None:
    """output_schema goes out as response_format json_schema; data is the parsed, valid JSON."""
    request = CompletionRequest.from_prompt("Review this.", output_schema=REVIEW_SCHEMA)
    result = await _call(provider, request, mode)
    jsonschema.validate(result.data, REVIEW_SCHEMA)
    assert json.loads(result.text) == result.data
    assert _body(state)["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "structured_output", "schema": REVIEW_SCHEMA, "strict": False},
    }


async def test_structured_output_bad_json(provider: OpenAIProvider, state: FakeServerState) -> None:
    """Text that is not JSON under an output_schema is a retryable server_error."""
    state.push(Reply(text="Sure! Here is the JSON you asked for"))
    with pytest.raises(ProviderError) as info:
        await provider.complete(CompletionRequest.from_prompt("x", output_schema=REVIEW_SCHEMA))
    assert info.value.code == "server_error" and info.value.retryable


async def test_extra_parameters(provider: OpenAIProvider, state: FakeServerState) -> None:
    """top_p and tool_choice pass through, top_k goes in extra_body, unknown keys stay out."""
    forced = {"type": "function", "function": {"name": "get_weather"}}
    extra = {"top_p": 0.9, "top_k": 40, "tool_choice": forced, "mirostat": 2}
    request = CompletionRequest.from_prompt("weather?", tools=(WEATHER,), extra=extra)
    result = await provider.complete(request)
    body = _body(state)
    assert (body["top_p"], body["top_k"], body["tool_choice"]) == (0.9, 40, forced)
    assert "mirostat" not in body
    (call,) = result.tool_calls
    assert call.name == "get_weather" and isinstance(call.arguments["city"], str)


async def test_length_finish_and_max_tokens_cap(
    server: FakeProviderServer, state: FakeServerState
) -> None:
    """finish_reason length is reported as length; the provider's max_tokens caps the request's."""
    capped = OpenAIProvider(api_key=KEY, base_url=f"{server.base_url}/v1", max_tokens=256)
    try:
        state.push(Reply(text="It was the best of", finish="length"))
        result = await capped.complete(CompletionRequest.from_prompt("novel", max_tokens=9999))
    finally:
        await capped.aclose()
    assert result.finish_reason == "length" and _body(state)["max_tokens"] == 256


async def test_max_completion_tokens_replaces_max_tokens(
    provider: OpenAIProvider, state: FakeServerState
) -> None:
    """extra max_completion_tokens (reasoning models) is sent instead of max_tokens."""
    request = CompletionRequest.from_prompt("think", extra={"max_completion_tokens": 2000})
    await provider.complete(request)
    body = _body(state)
    assert body["max_completion_tokens"] == 2000 and "max_tokens" not in body


async def test_named_compatible_server(server: FakeProviderServer, state: FakeServerState) -> None:
    """name="ollama" with a local base_url reports provider ollama; unpriced models cost 0."""
    ollama = OpenAIProvider(
        api_key="ollama", base_url=f"{server.base_url}/v1", default_model="llama3.2", name="ollama"
    )
    try:
        result = await ollama.complete(CompletionRequest.from_prompt("hi"))
        state.push("500")
        with pytest.raises(ProviderError) as info:
            await ollama.complete(CompletionRequest.from_prompt("hi"))
    finally:
        await ollama.aclose()
    assert (result.provider, result.model, result.cost_usd) == ("ollama", "llama3.2", 0.0)
    assert info.value.provider == "ollama" and str(info.value).startswith("ollama: ")


async def test_price_table_under_own_name(
    server: FakeProviderServer, state: FakeServerState
) -> None:
    """A deployment name with its own price entries is costed from them, not from openai's."""
    table = PriceTable(
        {"vllm": {"gpt-4o-mini": Price(1.0, 0.0)}, "openai": {"gpt-4o-mini": Price(9.0, 9.0)}}
    )
    vllm = OpenAIProvider(api_key=KEY, base_url=f"{server.base_url}/v1", name="vllm", prices=table)
    try:
        state.push(Reply(text="ok", input_tokens=1_000_000, output_tokens=0))
        result = await vllm.complete(CompletionRequest.from_prompt("x"))
    finally:
        await vllm.aclose()
    assert result.cost_usd == pytest.approx(1.0)


async def test_models_endpoint(server: FakeProviderServer, state: FakeServerState) -> None:
    """GET /v1/models lists the fake's models through the SDK; no key means 401."""
    client = openai.AsyncOpenAI(api_key=KEY, base_url=f"{server.base_url}/v1", max_retries=0)
    try:
        listed = [m.id async for m in client.models.list()]
    finally:
        await client.close()
    assert listed == list(MODELS)
    async with httpx.AsyncClient(base_url=server.base_url) as raw:
        answer = await raw.post("/v1/chat/completions", json={"messages": []})
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "invalid_api_key"


# ------------------------------------------------------------------ failures

ERROR_CASES: list[tuple[str, str, bool, int | None]] = [
    ("429", "rate_limited", True, 429),
    ("503", "overloaded", True, 503),
    ("529", "overloaded", True, 529),
    ("500", "server_error", True, 500),
    ("401", "auth", False, 401),
    ("400", "invalid_request", False, 400),
    ("malformed", "server_error", True, None),
    ("content_filter", "content_filtered", False, None),
]


@pytest.mark.parametrize("mode", ["complete", "stream"])
@pytest.mark.parametrize("case", ERROR_CASES, ids=[c[0] for c in ERROR_CASES])
async def test_error_kinds(
    provider: OpenAIProvider,
    state: FakeServerState,
    mode: str,
    case: tuple[str, str, bool, int | None],
) -> None:
    """Each fault maps to its ProviderError code with one HTTP request and no key in the error."""
    fault, code, retryable, status = case
    state.push(fault)
    with pytest.raises(ProviderError) as info:
        await _call(provider, CompletionRequest.from_prompt("fail please"), mode)
    error = info.value
    assert (error.code, error.retryable, error.status) == (code, retryable, status)
    assert error.provider == "openai" and state.request_count == 1
    assert KEY not in str(error) and KEY not in repr(error)
    assert KEY not in repr(pickle.loads(pickle.dumps(error)).__dict__)
    # No SDK exception (it holds the request and its Authorization header) is shown.
    assert error.__cause__ is None and (error.__context__ is None or error.__suppress_context__)


async def test_rate_limit_retry_after(provider: OpenAIProvider, state: FakeServerState) -> None:
    """A 429 carries the server's retry-after-ms hint as retry_after_s."""
    state.set_plan(FaultPlan(retry_after_s=2.5))
    state.push("429")
    with pytest.raises(ProviderError) as info:
        await provider.complete(CompletionRequest.from_prompt("x"))
    assert info.value.code == "rate_limited" and info.value.retry_after_s == pytest.approx(2.5)


async def test_echoed_key_is_redacted(provider: OpenAIProvider, state: FakeServerState) -> None:
    """A 401 whose message echoes the key is reported with the key redacted."""
    state.push("401")
    with pytest.raises(ProviderError) as info:
        await provider.complete(CompletionRequest.from_prompt("x"))
    assert "<redacted>" in str(info.value) and KEY not in str(info.value)
    assert KEY not in repr(provider) and "OpenAIProvider(name='openai'" in repr(provider)


@pytest.mark.parametrize("mode", ["complete", "stream"])
async def test_timeout(provider: OpenAIProvider, state: FakeServerState, mode: str) -> None:
    """A server slower than the request's timeout_s is a retryable timeout after one request."""
    state.set_plan(FaultPlan(timeout_s=3.0))
    state.push("timeout")
    with pytest.raises(ProviderError) as info:
        await _call(provider, CompletionRequest.from_prompt("slow", timeout_s=0.2), mode)
    assert (info.value.code, info.value.retryable) == ("timeout", True)
    assert state.request_count == 1


@pytest.mark.parametrize("mode", ["complete", "stream"])
async def test_connection_refused(mode: str) -> None:
    """Nothing listening on the port is a retryable connection error."""
    closed = OpenAIProvider(api_key=KEY, base_url=f"http://127.0.0.1:{_closed_port()}/v1")
    try:
        with pytest.raises(ProviderError) as info:
            await _call(closed, CompletionRequest.from_prompt("x"), mode)
    finally:
        await closed.aclose()
    assert (info.value.code, info.value.retryable) == ("connection", True)
    assert KEY not in str(info.value)


async def test_stream_drop_after_first_token(
    provider: OpenAIProvider, state: FakeServerState
) -> None:
    """A stream cut after its first token raises stream_interrupted after at least one delta."""
    state.push("drop")
    deltas: list[str] = []
    with pytest.raises(ProviderError) as info:
        await _stream(provider, CompletionRequest.from_prompt("a long enough prompt"), deltas)
    assert len(deltas) >= 1 and "fake openai reply".startswith("".join(deltas))
    assert (info.value.code, info.value.retryable) == ("stream_interrupted", True)
    assert state.request_count == 1


async def test_stream_drop_before_content(provider: OpenAIProvider, state: FakeServerState) -> None:
    """A stream cut before any content raises a retryable connection error with no delta."""
    state.push("drop_before")
    deltas: list[str] = []
    with pytest.raises(ProviderError) as info:
        await _stream(provider, CompletionRequest.from_prompt("x"), deltas)
    assert deltas == [] and (info.value.code, info.value.retryable) == ("connection", True)


async def test_drop_without_stream_is_server_error(
    provider: OpenAIProvider, state: FakeServerState
) -> None:
    """drop and drop_before on a non-streaming call answer 500: a retryable server_error."""
    state.push("drop", "drop_before")
    for _ in range(2):
        with pytest.raises(ProviderError) as info:
            await provider.complete(CompletionRequest.from_prompt("x"))
        assert (info.value.code, info.value.status) == ("server_error", 500)


async def test_tool_message_needs_call_id(provider: OpenAIProvider, state: FakeServerState) -> None:
    """A tool message without tool_call_id is an invalid_request raised before any HTTP request."""
    request = CompletionRequest(messages=(Message("user", "x"), Message("tool", "42")))
    with pytest.raises(ProviderError) as info:
        await provider.complete(request)
    assert info.value.code == "invalid_request" and state.request_count == 0


def test_unparsable_tool_arguments(provider: OpenAIProvider) -> None:
    """Tool-call arguments that are not a JSON object are a retryable server_error."""
    assert provider._tool_call("c1", "f", "") == ToolCall("c1", "f", {})
    for bad in ('{"city": "Par', "[1, 2]"):
        with pytest.raises(ProviderError) as info:
            provider._tool_call("c1", "f", bad)
        assert (info.value.code, info.value.retryable) == ("server_error", True)


def test_empty_key_is_a_config_error() -> None:
    """An empty api_key is refused at construction with a ConfigError naming the provider."""
    with pytest.raises(ConfigError, match="ollama: api_key is required"):
        OpenAIProvider(api_key="", base_url="http://127.0.0.1:1/v1", name="ollama")
