"""The Gemini provider: the real ``google-genai`` SDK against the wire-level fake on 127.0.0.1."""

from __future__ import annotations

import json
import pickle
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx2
import jsonschema
import pytest
from google.genai import errors as genai_errors

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
from pipelines.providers.gemini import GeminiProvider, _retry_delay
from pipelines.providers.pricing import PriceTable

KEY = "AIzaSyTEST-elexirion-0123456789abcdef"
MODEL = "gemini-2.5-flash"
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
    with FakeProviderServer("gemini") as running:
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
) -> AsyncIterator[GeminiProvider]:
    made = GeminiProvider(api_key=KEY, base_url=server.base_url, timeout_s=5.0)
    yield made
    await made.aclose()


async def _stream(
    provider: GeminiProvider, request: CompletionRequest, deltas: list[str]
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


async def _call(
    provider: GeminiProvider,
    request: CompletionRequest,
    mode: str,
    deltas: list[str] | None = None,
) -> Completion:
    if mode == "stream":
        return await _stream(provider, request, [] if deltas is None else deltas)
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


async def test_plain_completion(provider: GeminiProvider, state: FakeServerState) -> None:
    """A plain call sends systemInstruction and generationConfig, reports usage and the flash cost."""
    state.push(Reply(text="Paris.", input_tokens=1000, output_tokens=500))
    request = CompletionRequest.from_prompt(
        "Capital of France?", system="Answer in one word.", model=MODEL, temperature=0.2
    )
    result = await provider.complete(request)
    assert (result.text, result.provider, result.model) == ("Paris.", "gemini", MODEL)
    assert (result.usage, result.finish_reason) == (Usage(1000, 500), "stop")
    assert result.cost_usd == pytest.approx(
        PriceTable.load().cost("gemini", MODEL, Usage(1000, 500))
    )
    assert result.cost_usd == pytest.approx((1000 * 0.30 + 500 * 2.50) / 1_000_000)
    recorded = state.requests[-1]
    assert recorded.path == f"/v1/models/{MODEL}:generateContent"
    assert recorded.headers["x-goog-api-key"] == "<redacted>" and state.keys_seen == [KEY]
    body = _body(state)
    assert body["systemInstruction"]["parts"] == [{"text": "Answer in one word."}]
    assert body["contents"] == [{"role": "user", "parts": [{"text": "Capital of France?"}]}]
    assert body["generationConfig"] == {"temperature": 0.2, "maxOutputTokens": 4096}


async def test_default_reply_quotes_the_prompt(
    provider: GeminiProvider, state: FakeServerState
) -> None:
    """With nothing scripted the fake answers with the start of the last user text and the default model."""
    result = await provider.complete(CompletionRequest.from_prompt("Summarise the release notes"))
    assert result.text == "fake gemini reply: Summarise the release notes"
    assert result.model == MODEL and result.usage.input_tokens > 0


async def test_streaming_deltas_concatenate(
    provider: GeminiProvider, state: FakeServerState
) -> None:
    """Streaming yields several deltas that join into the final text, with usage and cost."""
    state.push(Reply(text="one two three four five six", input_tokens=10, output_tokens=6))
    deltas: list[str] = []
    result = await _stream(provider, CompletionRequest.from_prompt("count"), deltas)
    assert len(deltas) >= 2 and "".join(deltas) == result.text == "one two three four five six"
    assert (result.usage, result.finish_reason) == (Usage(10, 6), "stop")
    assert result.cost_usd > 0
    assert state.requests[-1].path == f"/v1/models/{MODEL}:streamGenerateContent"


async def test_streaming_stops_early_and_releases_the_connection(
    provider: GeminiProvider, state: FakeServerState
) -> None:
    """Leaving a stream after its first delta closes it; the next call on the provider works."""
    state.push(Reply(text="one two three four five six"))
    async for event in provider.stream(CompletionRequest.from_prompt("count")):
        assert event.delta
        break
    state.push(Reply(text="again"))
    assert (await provider.complete(CompletionRequest.from_prompt("hi"))).text == "again"


@pytest.mark.parametrize("mode", ["complete", "stream"])
async def test_function_calls_round_trip(
    provider: GeminiProvider, state: FakeServerState, mode: str
) -> None:
    """Tools go out as function declarations; functionCall parts come back as ToolCalls."""
    state.push(Reply(tool_calls=(("get_weather", {"city": "Paris"}),)))
    request = CompletionRequest.from_prompt("Weather in Paris?", tools=(WEATHER,))
    result = await _call(provider, request, mode)
    assert result.finish_reason == "tool_calls"
    assert result.tool_calls == (ToolCall("call_0", "get_weather", {"city": "Paris"}),)
    (tool,) = _body(state)["tools"]
    (declaration,) = tool["functionDeclarations"]
    # The SDK sends this key in proto field spelling; the API accepts either spelling.
    schema = declaration.pop("parameters_json_schema", None) or declaration.pop(
        "parametersJsonSchema"
    )
    assert schema == dict(WEATHER.parameters)
    assert declaration == {"name": "get_weather", "description": "Current weather in a city"}


async def test_function_response_follow_up(
    provider: GeminiProvider, state: FakeServerState
) -> None:
    """A tool answer goes back as a functionResponse named after the call it answers."""
    call = ToolCall("call_0", "get_weather", {"city": "Paris"})
    request = CompletionRequest(
        messages=(
            Message("user", "Weather in Paris?"),
            Message("assistant", "", tool_calls=(call,)),
            Message("tool", json.dumps({"temp_c": 21}), tool_call_id="call_0"),
            Message("tool", "sunny", tool_call_id="call_0"),
        ),
        tools=(WEATHER,),
    )
    state.push(Reply(text="It is 21 °C and sunny."))
    result = await provider.complete(request)
    assert result.text == "It is 21 °C and sunny." and result.finish_reason == "stop"
    contents = _body(state)["contents"]
    assert contents[1] == {
        "role": "model",
        "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}],
    }
    # Both answers share one user turn; a non-JSON answer is wrapped in an object.
    assert contents[2] == {
        "role": "user",
        "parts": [
            {"functionResponse": {"name": "get_weather", "response": {"temp_c": 21}}},
            {"functionResponse": {"name": "get_weather", "response": {"content": "sunny"}}},
        ],
    }


async def test_tool_answer_to_unknown_call_is_invalid(
    provider: GeminiProvider, state: FakeServerState
) -> None:
    """A tool message answering no earlier call fails as invalid_request before any HTTP request."""
    request = CompletionRequest(
        messages=(Message("user", "hi"), Message("tool", "{}", tool_call_id="call_9"))
    )
    with pytest.raises(ProviderError) as caught:
        await provider.complete(request)
    assert (caught.value.code, caught.value.retryable) == ("invalid_request", False)
    assert state.request_count == 0


@pytest.mark.parametrize("mode", ["complete", "stream"])
async def test_structured_output(
    provider: GeminiProvider, state: FakeServerState, mode: str
) -> None:
    """output_schema is sent as responseJsonSchema; the sampled JSON is parsed into data and valid."""
    request = CompletionRequest.from_prompt("Review this", output_schema=REVIEW_SCHEMA)
    result = await _call(provider, request, mode)
    jsonschema.validate(result.data, REVIEW_SCHEMA)
    assert json.loads(result.text) == result.data
    config = _body(state)["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert config["responseJsonSchema"] == REVIEW_SCHEMA


async def test_structured_output_that_is_not_json(
    provider: GeminiProvider, state: FakeServerState
) -> None:
    """Structured output that does not parse is a retryable server_error."""
    state.push(Reply(text="Sure! Here is your review."))
    request = CompletionRequest.from_prompt("Review this", output_schema=REVIEW_SCHEMA)
    with pytest.raises(ProviderError) as caught:
        await provider.complete(request)
    assert (caught.value.code, caught.value.retryable) == ("server_error", True)


async def test_token_budget_and_sampling_mapping(
    server: FakeProviderServer, state: FakeServerState
) -> None:
    """max_tokens (capped by the provider), temperature and extra sampling keys land in generationConfig."""
    capped = GeminiProvider(api_key=KEY, base_url=server.base_url, max_tokens=256)
    try:
        request = CompletionRequest.from_prompt(
            "hi",
            max_tokens=1000,
            temperature=0.7,
            extra={"top_p": 0.9, "top_k": 40, "stop": "END", "seed": 7, "thinking_budget": 0},
        )
        await capped.complete(request)
    finally:
        await capped.aclose()
    assert _body(state)["generationConfig"] == {
        "maxOutputTokens": 256,
        "temperature": 0.7,
        "topP": 0.9,
        "topK": 40,
        "stopSequences": ["END"],
        "seed": 7,
        "thinkingConfig": {"thinking_budget": 0},  # the SDK sends the proto field name
    }


@pytest.mark.parametrize("finish", ["MAX_TOKENS", "length"])
async def test_max_tokens_finish_is_length(
    provider: GeminiProvider, state: FakeServerState, finish: str
) -> None:
    """finishReason MAX_TOKENS (scripted natively or as "length") is reported as "length"."""
    state.push(Reply(text="cut", finish=finish))
    assert (await provider.complete(CompletionRequest.from_prompt("hi"))).finish_reason == "length"


# ------------------------------------------------------------------ failures

ERROR_CASES = [
    ("429", "rate_limited", True, 429),
    ("503", "overloaded", True, 503),
    ("529", "overloaded", True, 503),
    ("500", "server_error", True, 500),
    ("401", "auth", False, 403),
    ("400", "invalid_request", False, 400),
    ("malformed", "server_error", True, None),
    ("content_filter", "content_filtered", False, None),
]


@pytest.mark.parametrize("mode", ["complete", "stream"])
@pytest.mark.parametrize("case", ERROR_CASES, ids=[c[0] for c in ERROR_CASES])
async def test_error_kinds(
    provider: GeminiProvider,
    state: FakeServerState,
    mode: str,
    case: tuple[str, str, bool, int | None],
) -> None:
    """Each fault maps to its code and retryability, after exactly one request, without the key."""
    fault, code, retryable, status = case
    state.push(fault)
    deltas: list[str] = []
    with pytest.raises(ProviderError) as caught:
        await _call(provider, CompletionRequest.from_prompt("hi"), mode, deltas)
    error = caught.value
    assert (error.code, error.retryable, error.status) == (code, retryable, status)
    assert error.provider == "gemini" and deltas == []
    assert state.request_count == 1
    assert KEY not in str(error) and KEY not in repr(error) and KEY not in repr(provider)
    assert pickle.loads(pickle.dumps(error)).code == code


async def test_rate_limit_carries_retry_after(
    provider: GeminiProvider, state: FakeServerState
) -> None:
    """A 429 reports the server's retry-after hint in retry_after_s."""
    state.set_plan(FaultPlan(retry_after_s=2.5))
    state.push("429")
    with pytest.raises(ProviderError) as caught:
        await provider.complete(CompletionRequest.from_prompt("hi"))
    assert caught.value.retry_after_s == 2.5


async def test_rate_limit_without_hint(provider: GeminiProvider, state: FakeServerState) -> None:
    """A 429 without any hint leaves retry_after_s as None."""
    state.set_plan(FaultPlan(retry_after_s=None))
    state.push("429")
    with pytest.raises(ProviderError) as caught:
        await provider.complete(CompletionRequest.from_prompt("hi"))
    assert (caught.value.code, caught.value.retry_after_s) == ("rate_limited", None)


def test_retry_delay_detail_parses() -> None:
    """A RetryInfo retryDelay detail ("1.5s") is the fallback retry hint."""
    body = {"error": {"details": [{"@type": "x.RetryInfo", "retryDelay": "1.5s"}]}}
    assert _retry_delay(body) == 1.5
    assert _retry_delay({"error": {"details": [{"retryDelay": "soon"}]}}) is None


def test_bad_key_reported_as_400_is_auth() -> None:
    """Gemini's 400 INVALID_ARGUMENT with reason API_KEY_INVALID maps to auth, redacted."""
    provider = GeminiProvider(api_key=KEY, base_url="http://127.0.0.1:9")
    body = {
        "error": {
            "code": 400,
            "message": f"API key not valid: {KEY}",
            "status": "INVALID_ARGUMENT",
            "details": [
                {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}
            ],
        }
    }
    error = provider._failure(genai_errors.ClientError(400, body))
    assert (error.code, error.retryable, error.status) == ("auth", False, 400)
    assert KEY not in str(error)


async def test_blocked_answer_is_content_filtered(
    provider: GeminiProvider, state: FakeServerState
) -> None:
    """finishReason SAFETY on the candidate raises content_filtered."""
    state.push(Reply(text="never shown", finish="SAFETY"))
    with pytest.raises(ProviderError) as caught:
        await provider.complete(CompletionRequest.from_prompt("hi"))
    assert (caught.value.code, caught.value.retryable) == ("content_filtered", False)


@pytest.mark.parametrize("mode", ["complete", "stream"])
async def test_timeout(server: FakeProviderServer, state: FakeServerState, mode: str) -> None:
    """A server slower than the request's timeout_s fails as a retryable timeout after one request."""
    provider = GeminiProvider(api_key=KEY, base_url=server.base_url, timeout_s=30.0)
    state.set_plan(FaultPlan(timeout_s=5.0))
    state.push("timeout")
    try:
        with pytest.raises(ProviderError) as caught:
            await _call(provider, CompletionRequest.from_prompt("hi", timeout_s=0.2), mode)
    finally:
        await provider.aclose()
    assert (caught.value.code, caught.value.retryable) == ("timeout", True)
    assert state.request_count == 1


@pytest.mark.parametrize("mode", ["complete", "stream"])
async def test_connection_refused(mode: str) -> None:
    """A closed port fails as a retryable connection error, without SDK retries or sleeps."""
    provider = GeminiProvider(api_key=KEY, base_url=f"http://127.0.0.1:{_closed_port()}")
    try:
        with pytest.raises(ProviderError) as caught:
            await _call(provider, CompletionRequest.from_prompt("hi"), mode)
    finally:
        await provider.aclose()
    assert (caught.value.code, caught.value.retryable) == ("connection", True)
    assert KEY not in str(caught.value)


async def test_stream_drop_after_first_delta(
    provider: GeminiProvider, state: FakeServerState
) -> None:
    """A stream cut after its first chunk raises stream_interrupted after at least one delta."""
    state.push("drop")
    deltas: list[str] = []
    with pytest.raises(ProviderError) as caught:
        await _stream(provider, CompletionRequest.from_prompt("hi"), deltas)
    assert deltas and (caught.value.code, caught.value.retryable) == ("stream_interrupted", True)
    assert state.request_count == 1


async def test_stream_drop_before_any_delta(
    provider: GeminiProvider, state: FakeServerState
) -> None:
    """A stream cut right after its headers raises a retryable connection error before any delta."""
    state.push("drop_before")
    deltas: list[str] = []
    with pytest.raises(ProviderError) as caught:
        await _stream(provider, CompletionRequest.from_prompt("hi"), deltas)
    assert deltas == [] and (caught.value.code, caught.value.retryable) == ("connection", True)
    assert state.request_count == 1


async def test_drop_without_streaming_is_server_error(
    provider: GeminiProvider, state: FakeServerState
) -> None:
    """The drop faults answer a non-streaming call with a retryable 500."""
    state.push("drop")
    with pytest.raises(ProviderError) as caught:
        await provider.complete(CompletionRequest.from_prompt("hi"))
    assert (caught.value.code, caught.value.status) == ("server_error", 500)


# ------------------------------------------------------------------ the provider object


async def test_provider_conforms_and_hides_the_key(provider: GeminiProvider) -> None:
    """The provider satisfies the Provider protocol and its repr names no key."""
    assert isinstance(provider, Provider) and provider.name == "gemini"
    assert KEY not in repr(provider) and "127.0.0.1" in repr(provider)


async def test_closed_provider_is_unavailable(
    server: FakeProviderServer, state: FakeServerState
) -> None:
    """After aclose (twice is fine) a call raises unavailable and sends nothing."""
    provider = GeminiProvider(api_key=KEY, base_url=server.base_url)
    await provider.aclose()
    await provider.aclose()
    with pytest.raises(ProviderError) as caught:
        await provider.complete(CompletionRequest.from_prompt("hi"))
    assert (caught.value.code, caught.value.retryable) == ("unavailable", False)
    assert state.request_count == 0


def test_empty_key_is_a_config_error() -> None:
    """An empty api_key is rejected at construction as a ConfigError, not the SDK's ValueError."""
    with pytest.raises(ConfigError, match="api_key is empty"):
        GeminiProvider(api_key="  ")


def test_fake_key_from_header_or_query(server: FakeProviderServer, state: FakeServerState) -> None:
    """The fake takes the key from x-goog-api-key or ?key= and answers 403 PERMISSION_DENIED without one."""
    url = f"{server.base_url}/v1beta/models/{MODEL}:generateContent"
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    missing = httpx2.post(url, json=body)
    assert missing.status_code == 403
    assert missing.json()["error"]["status"] == "PERMISSION_DENIED"
    assert httpx2.post(url, json=body, params={"key": KEY}).status_code == 200
    assert state.keys_seen == [KEY] and state.requests[-1].headers["x-goog-api-key"] == "<redacted>"
    assert httpx2.post(url, json=body, headers={"x-goog-api-key": KEY}).status_code == 200


def test_fake_samples_an_openapi_response_schema(
    server: FakeProviderServer, state: FakeServerState
) -> None:
    """The fake also honours the OpenAPI-style responseSchema (upper-case types) with valid JSON."""
    schema = {"type": "OBJECT", "properties": {"n": {"type": "INTEGER"}}, "required": ["n"]}
    body = {
        "contents": [{"role": "user", "parts": [{"text": "hi"}]}],
        "generationConfig": {"responseMimeType": "application/json", "responseSchema": schema},
    }
    response = httpx2.post(
        f"{server.base_url}/v1/models/{MODEL}:generateContent", json=body, params={"key": KEY}
    )
    text = response.json()["candidates"][0]["content"]["parts"][0]["text"]
    assert isinstance(json.loads(text)["n"], int)
