"""A wire-level fake of the Gemini Developer API (``generateContent`` and its SSE stream).

Serves ``POST /{v1|v1beta}/models/{model}:generateContent`` and
``:streamGenerateContent?alt=sse`` with the real JSON shapes, so the official
``google-genai`` SDK talks to it unchanged through ``HttpOptions(base_url=...)``.

Per request: the request is recorded, the plan's latency is awaited, and the next
action decides the answer: a scripted :class:`Reply`, a fault kind, or the default
(JSON sampled from ``responseJsonSchema``/``responseSchema`` when JSON output was
asked for, else ``"fake gemini reply: <start of the last user text>"``).

Faults, as the real API reports them (``{"error": {"code", "message", "status"}}``):

========================  =====================================================
``429``                   429 RESOURCE_EXHAUSTED, ``retry-after`` header and a
                          ``RetryInfo.retryDelay`` detail from the plan
``503`` / ``529``         503 UNAVAILABLE "model is overloaded" (Gemini has no 529)
``500``                   500 INTERNAL
``401``                   403 PERMISSION_DENIED (also a missing key)
``400``                   400 INVALID_ARGUMENT
``timeout``               hangs ``plan.timeout_s``, then answers normally
``malformed``             200 with a broken JSON body / a garbage SSE data line
``drop``                  SSE: one text chunk, then the connection is cut;
                          non-streaming: 500
``drop_before``           SSE: headers, then the connection is cut; non-streaming: 500
``content_filter``        200 with ``promptFeedback.blockReason = SAFETY`` and no
                          candidates (a blocked prompt)
========================  =====================================================

A :class:`Reply` with ``finish="SAFETY"`` (or any other Gemini finish reason) answers
a candidate with that ``finishReason``; a blocked answer carries no text. Other
protocols' names (``"length"``, ``"end_turn"``, ``"content_filter"``...) are
translated, so one script can drive every fake.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from pipelines.providers.fakes._base import FakeServerState, FaultPlan, Reply, wait_latency
from pipelines.providers.schema_sample import sample_instance

__all__ = ["create_app"]

_VERSIONS = frozenset({"v1", "v1beta"})
_ERRORS: Mapping[str, tuple[int, str, str]] = {
    "429": (429, "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota)."),
    "503": (503, "UNAVAILABLE", "The model is overloaded. Please try again later."),
    "529": (503, "UNAVAILABLE", "The model is overloaded. Please try again later."),
    "500": (500, "INTERNAL", "An internal error has occurred. Please retry."),
    "401": (403, "PERMISSION_DENIED", "Method doesn't allow unregistered callers."),
    "400": (400, "INVALID_ARGUMENT", "Request contains an invalid argument."),
    "drop": (500, "INTERNAL", "An internal error has occurred. Please retry."),
    "drop_before": (500, "INTERNAL", "An internal error has occurred. Please retry."),
}
# Other protocols' stop reasons, so one script can drive every fake.
_FINISH_ALIASES: Mapping[str, str] = {
    "stop": "STOP",
    "end_turn": "STOP",
    "length": "MAX_TOKENS",
    "max_tokens": "MAX_TOKENS",
    "content_filter": "SAFETY",
    "refusal": "SAFETY",
    "tool_calls": "STOP",
    "tool_use": "STOP",
}
_BLOCKED_FINISHES = frozenset(
    {"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY"}
)


def create_app(state: FakeServerState) -> Starlette:
    """The Starlette app of the fake Gemini API, serving from ``state``."""

    async def models(request: Request) -> Response:
        version = request.path_params["version"]
        model, _, method = str(request.path_params["target"]).rpartition(":")
        if version not in _VERSIONS or method not in ("generateContent", "streamGenerateContent"):
            return _error(404, "NOT_FOUND", f"{request.url.path} is not found")
        raw = await request.body()
        try:
            body: Any = json.loads(raw) if raw else {}
        except ValueError:
            body = raw.decode("utf-8", errors="replace")
        headers = dict(request.headers)
        if "x-goog-api-key" not in headers and request.query_params.get("key"):
            # A ?key= is filed as the header, so keys_seen has it and the record redacts it.
            headers["x-goog-api-key"] = request.query_params["key"]
        state.record(request.url.path, headers, body)
        if not headers.get("x-goog-api-key"):
            return _error(403, "PERMISSION_DENIED", "Method doesn't allow unregistered callers.")
        if not isinstance(body, dict):
            return _error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.")
        plan = state.plan
        await wait_latency(plan)
        action = state.next_action()
        streaming = method == "streamGenerateContent"
        if action == "timeout":
            # The client's own timeout is what this exercises: answer only after it,
            # unless the client gave up first (then nobody is left to answer).
            if await _client_left(request, plan.timeout_s):
                return Response(status_code=499)
            action = None
        if isinstance(action, str):
            return _fault(action, plan, model, streaming=streaming)
        reply = action if isinstance(action, Reply) else _default_reply(body)
        response = _response(reply, body, model)
        if streaming:
            return _SseResponse(_chunks(response), plan.stream_chunk_delay_ms / 1000)
        return JSONResponse(response)

    return Starlette(routes=[Route("/{version}/models/{target:path}", models, methods=["POST"])])


# ----------------------------------------------------------------------- answers


def _error(
    code: int, status: str, message: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    payload: dict[str, Any] = {"code": code, "message": message, "status": status}
    if headers and "retry-after" in headers:
        payload["details"] = [
            {
                "@type": "type.googleapis.com/google.rpc.RetryInfo",
                "retryDelay": f"{headers['retry-after']}s",
            }
        ]
    return JSONResponse({"error": payload}, status_code=code, headers=headers)


def _fault(kind: str, plan: FaultPlan, model: str, *, streaming: bool) -> Response:
    if kind == "malformed":
        if streaming:
            return _SseResponse(['data: {"candidates": [{"content": <<garbage>>\r\n\r\n'], 0.0)
        return Response('{"candidates": [{"content": ', media_type="application/json")
    if kind == "content_filter":
        blocked = {
            "promptFeedback": {
                "blockReason": "SAFETY",
                "safetyRatings": [
                    {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH"}
                ],
            },
            "usageMetadata": {"promptTokenCount": 1, "totalTokenCount": 1},
            "modelVersion": model,
        }
        if streaming:
            return _SseResponse([_sse(blocked)], 0.0)
        return JSONResponse(blocked)
    if streaming and kind == "drop":
        first = {
            "candidates": [
                {"content": {"role": "model", "parts": [{"text": "partial "}]}, "index": 0}
            ],
            "modelVersion": model,
        }
        return _SseResponse([_sse(first)], 0.0, cut=True)
    if streaming and kind == "drop_before":
        return _SseResponse([], 0.0, cut=True)
    code, status, message = _ERRORS[kind]
    headers: dict[str, str] = {}
    if kind == "429" and plan.retry_after_s is not None:
        headers["retry-after"] = f"{plan.retry_after_s:g}"
    return _error(code, status, message, headers)


def _default_reply(body: Mapping[str, Any]) -> Reply:
    config = body.get("generationConfig") or {}
    schema = config.get("responseJsonSchema") or config.get("responseSchema")
    if config.get("responseMimeType") == "application/json" and isinstance(schema, dict):
        if "responseJsonSchema" not in config:
            schema = _openapi_to_json_schema(schema)
        return Reply(text=json.dumps(sample_instance(schema, seed=_last_user_text(body))))
    return Reply(text=f"fake gemini reply: {_last_user_text(body)[:60]}")


def _response(reply: Reply, body: Mapping[str, Any], model: str) -> dict[str, Any]:
    finish = _FINISH_ALIASES.get(reply.finish or "stop", (reply.finish or "").upper())
    parts: list[dict[str, Any]] = []
    if reply.text and finish not in _BLOCKED_FINISHES:
        parts.append({"text": reply.text})
    parts.extend({"functionCall": {"name": n, "args": dict(a)}} for n, a in reply.tool_calls)
    prompt = reply.input_tokens
    if prompt is None:
        prompt = max(1, len(json.dumps(body.get("contents", []))) // 4)
    output = reply.output_tokens
    if output is None:
        output = max(1, len(json.dumps(parts)) // 4) if parts else 0
    candidate: dict[str, Any] = {"finishReason": finish, "index": 0}
    if parts:
        candidate["content"] = {"role": "model", "parts": parts}
    return {
        "candidates": [candidate],
        "usageMetadata": {
            "promptTokenCount": prompt,
            "candidatesTokenCount": output,
            "totalTokenCount": prompt + output,
        },
        "modelVersion": model,
    }


def _chunks(response: Mapping[str, Any]) -> list[str]:
    """SSE events of ``response``: text in pieces, function calls and usage in the last."""
    candidate = response["candidates"][0]
    parts = candidate.get("content", {}).get("parts", [])
    text = "".join(p.get("text", "") for p in parts)
    calls = [p for p in parts if "functionCall" in p]
    words = text.split(" ")
    step = max(1, len(words) // 3 + (len(words) % 3 > 0))
    pieces = [" ".join(words[i : i + step]) for i in range(0, len(words), step)] if text else []
    # Re-attach the separating spaces so the pieces concatenate back to the text.
    pieces = [p + (" " if i < len(pieces) - 1 else "") for i, p in enumerate(pieces)]
    events: list[dict[str, Any]] = [
        {
            "candidates": [{"content": {"role": "model", "parts": [{"text": piece}]}, "index": 0}],
            "modelVersion": response["modelVersion"],
        }
        for piece in pieces
    ]
    last: dict[str, Any] = {"finishReason": candidate["finishReason"], "index": 0}
    if calls:
        last["content"] = {"role": "model", "parts": calls}
    events.append(
        {
            "candidates": [last],
            "usageMetadata": response["usageMetadata"],
            "modelVersion": response["modelVersion"],
        }
    )
    return [_sse(e) for e in events]


def _sse(payload: Mapping[str, Any]) -> str:
    return f"data: {json.dumps(payload)}\r\n\r\n"


class _SseResponse(Response):
    """``text/event-stream`` written event by event; ``cut`` ends it without closing.

    A cut returns from the ASGI call with the body unfinished: uvicorn then drops
    the connection mid-message, which is what a real network failure looks like to
    the client (an incomplete chunked body). Uvicorn logs one error line for it.
    """

    media_type = "text/event-stream"

    def __init__(self, events: list[str], delay_s: float, *, cut: bool = False) -> None:
        super().__init__(content=None, media_type=self.media_type)
        # The body is streamed (chunked): drop the ``content-length: 0`` of the empty body.
        self.raw_headers = [(k, v) for k, v in self.raw_headers if k != b"content-length"]
        self._events = events
        self._delay_s = delay_s
        self._cut = cut

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        for i, event in enumerate(self._events):
            if i and self._delay_s > 0:
                await asyncio.sleep(self._delay_s)
            await send({"type": "http.response.body", "body": event.encode(), "more_body": True})
        if not self._cut:
            await send({"type": "http.response.body", "body": b"", "more_body": False})


# ----------------------------------------------------------------------- helpers


async def _client_left(request: Request, seconds: float) -> bool:
    """Wait up to ``seconds``; True as soon as the client disconnects."""
    try:
        async with asyncio.timeout(seconds):
            # The body is read, so the next ASGI message can only be the disconnect.
            while (await request.receive())["type"] != "http.disconnect":
                pass
    except TimeoutError:
        return False
    return True


def _last_user_text(body: Mapping[str, Any]) -> str:
    for content in reversed(body.get("contents") or []):
        if isinstance(content, dict) and content.get("role", "user") == "user":
            texts = [p["text"] for p in content.get("parts", []) if "text" in p]
            if texts:
                return " ".join(texts)
    return ""


def _openapi_to_json_schema(schema: Any) -> Any:
    """The OpenAPI-style ``responseSchema`` (``"type": "OBJECT"``) as JSON Schema."""
    if isinstance(schema, list):
        return [_openapi_to_json_schema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _openapi_to_json_schema(v) for k, v in schema.items() if k != "nullable"}
    if isinstance(out.get("type"), str):
        out["type"] = out["type"].lower()
        if schema.get("nullable"):
            out["type"] = [out["type"], "null"]
    if "properties" in schema:
        out["properties"] = {k: _openapi_to_json_schema(v) for k, v in schema["properties"].items()}
    return out
