"""A wire-level fake of the Anthropic Messages API (``POST /v1/messages``).

The official ``anthropic`` SDK talks to it unchanged through ``base_url``. It
answers with the real JSON shapes and, for ``"stream": true``, real SSE in the
API's order: ``message_start``, ``content_block_start``, ``ping``,
``content_block_delta``..., ``content_block_stop``, ``message_delta``,
``message_stop``.

What it checks, like the real API (a 4xx error body when violated): a key in
``x-api-key`` or ``Authorization: Bearer`` (401), an ``anthropic-version``
header, ``model``/``max_tokens``/``messages``, roles ``user``/``assistant``, every
``tool_result`` answering a ``tool_use`` of the assistant turn just before it and
every ``tool_use`` answered in the next turn, a forced tool that exists (400).

What it answers, per :meth:`FakeServerState.next_action`: a fault kind (see
:mod:`pipelines.providers.fakes._base`), a scripted :class:`Reply`, or by default
a ``tool_use`` with a schema-valid input when the request forces one tool, else
``"fake anthropic reply: <last user text>"``. Usage counts words: the request's
text for input, the reply's for output. Every request is recorded first, so a
test sees exactly the attempts the client made.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Send

from pipelines.errors import ProviderError
from pipelines.providers.fakes._base import FakeServerState, FaultPlan, Reply, wait_latency
from pipelines.providers.offline import word_chunks
from pipelines.providers.schema_sample import sample_instance

__all__ = ["create_app"]

# fault kind -> (HTTP status, Anthropic error type); stream cuts fail like a 500 without a stream.
_ERRORS: Mapping[str, tuple[int, str]] = {
    "429": (429, "rate_limit_error"),
    "529": (529, "overloaded_error"),
    "500": (500, "api_error"),
    "503": (503, "api_error"),
    "401": (401, "authentication_error"),
    "400": (400, "invalid_request_error"),
    "drop": (500, "api_error"),
    "drop_before": (500, "api_error"),
}
_JSON_CHUNK = 12  # characters of tool input per input_json_delta


def create_app(state: FakeServerState) -> Starlette:
    """The Starlette app serving ``POST /v1/messages`` from ``state``."""

    async def messages(request: Request) -> Response:
        raw = await request.body()
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = None
        state.record(request.url.path, dict(request.headers), body)
        problem = _check(request, body)
        if problem is not None:
            return problem
        await wait_latency(state.plan)
        action = state.next_action()
        stream = bool(body.get("stream"))
        if action == "timeout":
            await _hang(request, state.plan.timeout_s)
            action = None  # the client has normally given up; answer anyway
        if isinstance(action, str):
            return _fault(action, body, state.plan, stream=stream)
        try:
            message = _message(body, action)
        except ProviderError as exc:  # a forced tool whose schema no value satisfies
            return _error(400, "invalid_request_error", exc.message)
        if stream:
            return _sse(_events(message), state.plan.stream_chunk_delay_ms)
        return JSONResponse(message, headers=_request_id())

    return Starlette(routes=[Route("/v1/messages", messages, methods=["POST"])])


# -------------------------------------------------------------------- validation


def _check(request: Request, body: Any) -> Response | None:
    """The error the real API would give this request, or None when it is acceptable."""
    auth = request.headers.get("authorization", "")
    if not request.headers.get("x-api-key") and not auth.lower().startswith("bearer "):
        return _error(401, "authentication_error", "x-api-key header is required")
    if not request.headers.get("anthropic-version"):
        return _error(400, "invalid_request_error", "anthropic-version header is required")
    if not isinstance(body, dict):
        return _error(400, "invalid_request_error", "request body must be a JSON object")
    for key in ("model", "max_tokens", "messages"):
        if key not in body:
            return _error(400, "invalid_request_error", f"{key}: Field required")
    problem = _conversation_problem(body["messages"]) or _tools_problem(body)
    return _error(400, "invalid_request_error", problem) if problem else None


def _conversation_problem(messages: Any) -> str | None:
    if not isinstance(messages, list) or not messages:
        return "messages: at least one message is required"
    expected: set[str] = set()  # tool_use ids the next message must answer
    for i, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role not in ("user", "assistant"):
            return f"messages.{i}.role: Input should be 'user' or 'assistant'"
        blocks = _blocks(message.get("content"))
        answered = {b.get("tool_use_id") for b in blocks if b.get("type") == "tool_result"}
        if answered - expected:
            return (
                f"messages.{i}: unexpected `tool_use_id` {sorted(map(str, answered - expected))} "
                "in `tool_result` blocks: each must answer a `tool_use` of the previous message"
            )
        if expected - answered:
            return (
                f"messages.{i}: `tool_use` ids {sorted(expected - answered)} were found "
                "without `tool_result` blocks immediately after"
            )
        expected = {str(b.get("id")) for b in blocks if b.get("type") == "tool_use"}
        if expected and role != "assistant":
            return f"messages.{i}: `tool_use` blocks may only appear in assistant messages"
    return None


def _tools_problem(body: Mapping[str, Any]) -> str | None:
    tools, choice = body.get("tools") or [], body.get("tool_choice") or {}
    if not isinstance(tools, list) or not isinstance(choice, dict):
        return "tools must be a list and tool_choice an object"
    names = [t.get("name") for t in tools if isinstance(t, dict)]
    for i, tool in enumerate(tools):
        schema = tool.get("input_schema") if isinstance(tool, dict) else None
        if not isinstance(schema, dict) or schema.get("type") != "object":
            return f"tools.{i}.input_schema.type: Input should be 'object'"
    if choice.get("type") == "tool" and choice.get("name") not in names:
        return f"tool_choice: tool {choice.get('name')!r} not found in tools"
    if choice.get("type") == "any" and not names:
        return "tool_choice: 'any' requires at least one tool"
    return None


def _blocks(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return [b for b in content if isinstance(b, dict)] if isinstance(content, list) else []


# ------------------------------------------------------------------------ answers


def _message(body: Mapping[str, Any], reply: Reply | None) -> dict[str, Any]:
    """The response Message for ``body``: scripted by ``reply`` or the default answer."""
    seed = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    content: list[dict[str, Any]] = []
    if reply is None:
        forced = _forced_tool(body)
        if forced is not None:
            args = sample_instance(forced.get("input_schema", {}), seed=seed)
            content.append(_tool_use(forced["name"], args))
        else:
            content.append(
                {"type": "text", "text": f"fake anthropic reply: {_last_user_text(body)[:60]}"}
            )
    else:
        if reply.text:
            content.append({"type": "text", "text": reply.text})
        content.extend(_tool_use(name, dict(args)) for name, args in reply.tool_calls)
    calls = any(b["type"] == "tool_use" for b in content)
    stop = (reply.finish if reply else None) or ("tool_use" if calls else "end_turn")
    scripted_in, scripted_out = (reply.input_tokens, reply.output_tokens) if reply else (None, None)
    out_words = sum(_words(b.get("text") or json.dumps(b.get("input"))) for b in content)
    return {
        "id": f"msg_{uuid.uuid4().hex[:24]}",
        "type": "message",
        "role": "assistant",
        "model": body["model"],
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": {
            "input_tokens": _request_words(body) if scripted_in is None else scripted_in,
            "output_tokens": max(1, out_words) if scripted_out is None else scripted_out,
        },
    }


def _forced_tool(body: Mapping[str, Any]) -> dict[str, Any] | None:
    tools = [t for t in body.get("tools") or [] if isinstance(t, dict)]
    choice = body.get("tool_choice") or {}
    if choice.get("type") == "tool":
        return next((t for t in tools if t.get("name") == choice.get("name")), None)
    if choice.get("type") == "any" and tools:
        # A model that must call a tool and may answer directly does: it picks the
        # structured answer when offered (our provider names it structured_output).
        named = next((t for t in tools if t.get("name") == "structured_output"), None)
        return named or (tools[0] if len(tools) == 1 else None)
    return None


def _tool_use(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "tool_use",
        "id": f"toolu_{uuid.uuid4().hex[:24]}",
        "name": name,
        "input": arguments,
    }


def _last_user_text(body: Mapping[str, Any]) -> str:
    for message in reversed(body["messages"]):
        if message.get("role") == "user":
            return " ".join(_texts(message.get("content")))
    return ""


def _texts(content: Any) -> Iterator[str]:
    for block in _blocks(content):
        if block.get("type") == "text":
            yield str(block.get("text", ""))
        elif block.get("type") == "tool_result":
            yield from _texts(block.get("content", ""))
        elif block.get("type") == "tool_use":
            yield json.dumps(block.get("input"))


def _request_words(body: Mapping[str, Any]) -> int:
    system = body.get("system") or ""
    parts = [*_texts(system)] + [t for m in body["messages"] for t in _texts(m.get("content"))]
    return max(1, sum(_words(p) for p in parts))


def _words(text: str) -> int:
    return len(text.split())


# ------------------------------------------------------------------------- faults


def _fault(kind: str, body: Mapping[str, Any], plan: FaultPlan, *, stream: bool) -> Response:
    """The response for a fault kind named by the script or the plan."""
    if kind == "malformed":
        if stream:
            return _sse(_garbage())
        truncated = json.dumps(_message(body, Reply(text="cut")))[:40]
        return Response(truncated, media_type="application/json", headers=_request_id())
    if kind == "content_filter":
        message = _message(body, Reply(text="", finish="refusal"))
        if stream:
            return _sse(_events(message), plan.stream_chunk_delay_ms)
        return JSONResponse(message, headers=_request_id())
    if stream and kind in ("drop", "drop_before"):
        events = list(_events(_message(body, None)))
        # drop: everything up to the first delta; drop_before: message_start only.
        deltas = [i for i, e in enumerate(events) if e.startswith(b"event: content_block_delta")]
        first_delta = deltas[0] if deltas else 0
        kept = events[: 1 if kind == "drop_before" else first_delta + 1]
        return _CutStream(
            _paced(iter(kept), 0.0), media_type="text/event-stream", headers=_request_id()
        )
    status, error_type = _ERRORS[kind]
    headers: dict[str, str] = {}
    if kind == "429" and plan.retry_after_s is not None:
        headers = {
            "retry-after": f"{plan.retry_after_s:g}",
            "retry-after-ms": f"{plan.retry_after_s * 1000:g}",
        }
    return _error(status, error_type, f"fake {error_type} ({kind})", headers)


async def _hang(request: Request, seconds: float) -> None:
    """Wait ``seconds`` without answering; stop early once the client has hung up."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await request.is_disconnected():
            return
        await asyncio.sleep(min(0.05, max(0.0, deadline - time.monotonic())))


def _error(
    status: int, error_type: str, message: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    body = {"type": "error", "error": {"type": error_type, "message": message}}
    return JSONResponse(body, status_code=status, headers={**_request_id(), **(headers or {})})


def _request_id() -> dict[str, str]:
    return {"request-id": f"req_{uuid.uuid4().hex[:24]}"}


# ------------------------------------------------------------------------- streams


def _sse_event(name: str, data: Mapping[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()


def _events(message: Mapping[str, Any]) -> Iterator[bytes]:
    """The SSE events that stream ``message``, in the API's order."""
    head = {**message, "content": [], "stop_reason": None}
    head["usage"] = {**message["usage"], "output_tokens": 1}
    yield _sse_event("message_start", {"type": "message_start", "message": head})
    for index, block in enumerate(message["content"]):
        start: dict[str, Any]
        if block["type"] == "text":
            start = {"type": "text", "text": ""}
            deltas = [{"type": "text_delta", "text": p} for p in word_chunks(block["text"])]
        else:
            start = {**block, "input": {}}
            raw = json.dumps(block["input"])
            deltas = [
                {"type": "input_json_delta", "partial_json": raw[i : i + _JSON_CHUNK]}
                for i in range(0, len(raw), _JSON_CHUNK)
            ]
        yield _sse_event(
            "content_block_start",
            {"type": "content_block_start", "index": index, "content_block": start},
        )
        if index == 0:
            yield _sse_event("ping", {"type": "ping"})
        for delta in deltas:
            yield _sse_event(
                "content_block_delta",
                {"type": "content_block_delta", "index": index, "delta": delta},
            )
        yield _sse_event("content_block_stop", {"type": "content_block_stop", "index": index})
    yield _sse_event(
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
            "usage": {"output_tokens": message["usage"]["output_tokens"]},
        },
    )
    yield _sse_event("message_stop", {"type": "message_stop"})


def _garbage() -> Iterator[bytes]:
    yield b'event: message_start\ndata: {"type": "message_start", "message": {"id": \n\n'


def _sse(events: Iterator[bytes], delay_ms: float = 0.0) -> StreamingResponse:
    return StreamingResponse(
        _paced(events, delay_ms / 1000), media_type="text/event-stream", headers=_request_id()
    )


async def _paced(events: Iterator[bytes], delay_s: float) -> AsyncIterator[bytes]:
    """Send events in order, pausing ``delay_s`` after each content delta."""
    for event in events:
        yield event
        if delay_s > 0 and event.startswith(b"event: content_block_delta"):
            await asyncio.sleep(delay_s)


class _CutStream(StreamingResponse):
    """A 200 SSE response that sends its events and then stops without finishing the
    body, so the server closes the connection mid-stream as a dropped link would."""

    async def stream_response(self, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        async for chunk in self.body_iterator:
            data = chunk.encode() if isinstance(chunk, str) else bytes(chunk)
            await send({"type": "http.response.body", "body": data, "more_body": True})
        # No final `more_body: False`: uvicorn logs "ASGI callable returned without
        # completing response" and closes the socket, which is exactly the fault.
