"""FakeProvider: scripted and function-backed answers, recorded requests, streaming."""

from __future__ import annotations

import asyncio

import pytest

from pipelines.errors import ProviderError
from pipelines.providers.base import (
    Completion,
    CompletionRequest,
    Provider,
    StreamEvent,
    ToolCall,
    Usage,
)
from pipelines.testing import FakeProvider, ScriptedResponse, fail_after, scripted


def req(prompt: str = "hi", **kwargs: object) -> CompletionRequest:
    return CompletionRequest.from_prompt(prompt, **kwargs)


async def collect(provider: FakeProvider, request: CompletionRequest) -> list[StreamEvent]:
    return [event async for event in provider.stream(request)]


def test_fake_provider_satisfies_the_protocol() -> None:
    """FakeProvider is a Provider and names itself."""
    provider = FakeProvider(name="stub")
    assert isinstance(provider, Provider)
    assert provider.name == "stub"


async def test_script_is_answered_in_order_then_default() -> None:
    """Scripted texts come back in order; afterwards the default text answers."""
    provider = FakeProvider(["one", "two"], default="later")
    texts = [(await provider.complete(req())).text for _ in range(4)]
    assert texts == ["one", "two", "later", "later"]
    assert provider.remaining == 0


async def test_string_reply_becomes_a_full_completion() -> None:
    """A str reply carries provider name, requested model, stop and deterministic usage."""
    provider = FakeProvider(["four words in here"], name="fake")
    completion = await provider.complete(req("a b c", model="m-1"))
    assert completion.provider == "fake"
    assert completion.model == "m-1"
    assert completion.finish_reason == "stop"
    assert completion.usage == Usage(input_tokens=4, output_tokens=6)
    assert completion.data is None


async def test_completion_items_are_returned_unchanged() -> None:
    """A scripted Completion is returned as is."""
    scripted_completion = Completion(text="x", provider="other", model="m", cost_usd=0.5)
    provider = FakeProvider([scripted_completion])
    assert await provider.complete(req()) is scripted_completion


async def test_exceptions_in_the_script_are_raised() -> None:
    """A scripted exception is raised on its turn; the script then continues."""
    boom = ProviderError("busy", code="overloaded", retryable=True)
    provider = FakeProvider([boom, "after"])
    with pytest.raises(ProviderError) as info:
        await provider.complete(req())
    assert info.value is boom
    assert (await provider.complete(req())).text == "after"
    assert provider.call_count == 2


async def test_callables_receive_the_request() -> None:
    """A callable item (sync or async) is called with the request and its reply used."""

    async def shout(request: CompletionRequest) -> str:
        return request.prompt_text.upper()

    provider = FakeProvider([lambda r: f"echo {r.prompt_text}", shout])
    assert (await provider.complete(req("ping"))).text == "echo ping"
    assert (await provider.complete(req("pong"))).text == "PONG"


async def test_single_function_answers_every_call() -> None:
    """A callable given as responses answers every call and never runs out."""
    provider = FakeProvider(lambda r: str(len(r.prompt_text)), default=None)
    results = [(await provider.complete(req("x" * n))).text for n in range(1, 5)]
    assert results == ["1", "2", "3", "4"]


async def test_exhausted_script_without_default_fails_loudly() -> None:
    """With default=None an exhausted script raises AssertionError."""
    provider = scripted("only")
    assert (await provider.complete(req())).text == "only"
    with pytest.raises(AssertionError, match="script exhausted"):
        await provider.complete(req())


async def test_every_request_is_recorded() -> None:
    """requests and prompts() list every call in order, failures included."""
    provider = FakeProvider(["a", ValueError("no"), "c"])
    await provider.complete(req("first", system="sys"))
    with pytest.raises(ValueError, match="no"):
        await provider.complete(req("second"))
    await provider.complete(req("third"))
    assert provider.prompts() == ["first", "second", "third"]
    assert provider.requests[0].system == "sys"
    assert provider.call_count == 3


async def test_output_schema_parses_json_text() -> None:
    """With an output schema, JSON text is parsed into data; invalid JSON gives None."""
    provider = FakeProvider(['{"answer": 42}', "not json"])
    schema = {"type": "object"}
    assert (await provider.complete(req(output_schema=schema))).data == {"answer": 42}
    assert (await provider.complete(req(output_schema=schema))).data is None


async def test_scripted_response_carries_tool_calls_and_usage() -> None:
    """ScriptedResponse sets tool calls (finish_reason tool_calls), usage and cost."""
    call = ToolCall(id="t1", name="read_file", arguments={"path": "a.py"})
    item = ScriptedResponse(tool_calls=(call,), usage=Usage(3, 2), cost_usd=0.01)
    completion = await FakeProvider([item]).complete(req())
    assert completion.tool_calls == (call,)
    assert completion.finish_reason == "tool_calls"
    assert (completion.usage, completion.cost_usd) == (Usage(3, 2), 0.01)


async def test_fail_after_succeeds_n_times_then_raises() -> None:
    """fail_after(n, exc) answers n calls, then raises exc on every later call."""
    error = ProviderError("down", code="unavailable")
    provider = FakeProvider(fail_after(2, error, text="fine"))
    assert [(await provider.complete(req())).text for _ in range(2)] == ["fine", "fine"]
    for _ in range(2):
        with pytest.raises(ProviderError, match="down"):
            await provider.complete(req())


async def test_latency_is_awaited_and_reported() -> None:
    """latency_s sleeps before answering and shows in latency_ms."""
    provider = FakeProvider(["slow"], latency_s=0.02)
    completion = await provider.complete(req())
    assert completion.latency_ms >= 15


async def test_concurrent_calls_keep_script_order() -> None:
    """Concurrent calls take script items in call order even with latency."""
    provider = FakeProvider(["a", "b", "c"], latency_s=0.01)
    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(provider.complete(req(p))) for p in ("1", "2", "3")]
    assert [t.result().text for t in tasks] == ["a", "b", "c"]
    assert provider.prompts() == ["1", "2", "3"]


async def test_stream_chunks_text_then_yields_completion() -> None:
    """stream() yields stream_chunk-sized deltas that join to the text, then the completion."""
    provider = FakeProvider(["abcdefghij"], stream_chunk=4)
    events = await collect(provider, req())
    assert [e.delta for e in events[:-1]] == ["abcd", "efgh", "ij"]
    final = events[-1].completion
    assert final is not None
    assert final.text == "abcdefghij"
    assert provider.call_count == 1


async def test_stream_can_drop_mid_way() -> None:
    """A ScriptedResponse stream_error is raised after stream_error_after deltas."""
    drop = ProviderError("connection reset", code="stream_interrupted", retryable=True)
    provider = FakeProvider(
        [ScriptedResponse("abcdefgh", stream_error=drop, stream_error_after=1)], stream_chunk=2
    )
    deltas: list[str] = []

    async def consume() -> None:
        async for event in provider.stream(req()):
            deltas.append(event.delta)

    with pytest.raises(ProviderError, match="connection reset"):
        await consume()
    assert deltas == ["ab"]


async def test_stream_raises_scripted_exception() -> None:
    """A scripted exception surfaces from stream() before any delta."""
    provider = FakeProvider([ProviderError("nope", code="auth")])
    with pytest.raises(ProviderError, match="nope"):
        await collect(provider, req())
    assert provider.call_count == 1


def test_bad_arguments_are_rejected() -> None:
    """A bare string script and a zero chunk size are refused with clear errors."""
    with pytest.raises(TypeError, match="bare string"):
        FakeProvider("hello")
    with pytest.raises(ValueError, match="stream_chunk"):
        FakeProvider(stream_chunk=0)


async def test_push_extends_the_script() -> None:
    """push() appends items after construction."""
    provider = scripted()
    provider.push("late")
    assert (await provider.complete(req())).text == "late"


async def test_exception_classes_and_returned_exceptions_are_raised() -> None:
    """An exception class is raised as an instance; a callable returning one raises it."""
    provider = FakeProvider([TimeoutError, lambda r: ConnectionError("gone")])
    with pytest.raises(TimeoutError):
        await provider.complete(req())
    with pytest.raises(ConnectionError, match="gone"):
        await provider.complete(req())


async def test_unknown_reply_types_are_refused() -> None:
    """A callable answering with something that is not a reply raises TypeError."""
    provider = FakeProvider(lambda r: 42)  # type: ignore[arg-type, return-value]
    with pytest.raises(TypeError, match="cannot answer with 42"):
        await provider.complete(req())
