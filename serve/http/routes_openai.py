"""OpenAI-compatible edge: ``POST /v1/chat/completions`` and ``GET /v1/models``.

Any OpenAI client (the ``openai`` SDK, ``dspy.LM("openai/elexirion", api_base=…/v1)``,
LiteLLM, editors) talks to Elexirion's agents and pipelines through these two routes.

Models: ``elexirion`` (the router picks the agent), ``agent:<name>`` or the bare agent
name (that agent answers), ``pipeline:<name>`` (a library pipeline runs to completion;
its first required string input gets the message). The answer is the agent's summary,
then its findings as ``- file:line [severity rule] message`` lines, then its
recommendations, as markdown; the full agent response rides along in the
non-standard ``elexirion`` field, which OpenAI clients ignore.

Sessions: the ``X-Session-Id`` header, or the ``user`` field (``session:<id>``, or
any string, mapped to a stable session id per API key). With a session the platform
remembers the conversation, so only the last user message is sent; without one
(OpenAI clients resend history statelessly) the earlier messages go along as a short
transcript. Pipelines keep no session, so they always get the transcript.

Errors: ``{"error": {"code", "message"}}`` (the SDK reads ``error.message``): unknown
model 404 ``model_not_found``; ``tools``/``functions``, ``n`` > 1, non-text content
parts, no user message 422; a failed pipeline 502 ``pipeline_failed`` (with
``x-should-retry: false``, so the SDK does not retry it); polling a pipeline past
``HttpConfig.request_timeout_s`` 504. Once a stream has started, an error arrives as
a last ``data: {"error": …}`` event (the SDK raises ``APIError`` on it).
Closing a stream early closes the platform's event iterator, which cancels the turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
import uuid
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.types import Receive, Scope, Send

from actors.agents.models import AGENTS
from serve.http._openai_wire import (
    ChatCompletionRequest,
    answer_text,
    joined,
    model_card,
    pipeline_inputs,
    render_response,
    session_for,
    split_messages,
    sse,
    stream_error,
    usage,
    with_context,
)
from serve.http.app import platform_of
from serve.http.auth import Principal, authorized
from serve.http.errors import ApiError
from serve.http.limits import Slot, claim_slot, turn_slot
from serve.http.platform import Platform
from serve.http.routes_api import ErrorBody, owned_or_new

__all__ = ["ROUTER_MODEL", "router"]


#: The model id that lets the router pick the agent.
ROUTER_MODEL = "elexirion"
#: Size of the content deltas when an answer arrives whole (structured steps, pipelines).
_CHUNK_CHARS = 40
_TERMINAL = frozenset({"succeeded", "failed", "cancelled"})
#: Session ids a client may name (the same rule as ``/api``).
_SESSION_ID = re.compile(r"[A-Za-z0-9_.:-]{1,128}")

_ERRORS = {
    400: "The body is not parsable (not UTF-8, for instance).",
    401: "Missing, malformed, unknown or revoked API key.",
    404: "No such model (see GET /v1/models), or the session belongs to another key.",
    413: "The body is larger than the server accepts.",
    422: "Invalid request: tools, n > 1, non-text content, no user message, a bad field.",
    429: "Over this key's rate limit; see Retry-After.",
    502: "The pipeline run failed (not worth retrying as is).",
    503: "Saturated or the store is unreachable; see Retry-After.",
    504: "The turn took longer than the server waits.",
}


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for these error statuses, all :class:`ErrorBody`."""
    return {s: {"model": ErrorBody, "description": _ERRORS[s]} for s in statuses}


# Every route: the key (401, 503 when the store is down) and its rate limit (429).
router = APIRouter(tags=["openai"], responses=_errors(401, 429, 503))


@dataclass(frozen=True, slots=True)
class _Target:
    """What a model id names: the router, one agent, or one pipeline."""

    agent: str | None = None
    pipeline: Mapping[str, Any] | None = None


async def _model_ids(platform: Platform) -> list[str]:
    pipelines = [f"pipeline:{p['name']}" for p in await platform.pipelines()]
    return [ROUTER_MODEL, *(f"agent:{a}" for a in AGENTS), *AGENTS, *pipelines]


async def _resolve(platform: Platform, model: str) -> _Target:
    """The target a model id names; raises 404 ``model_not_found``."""
    name = model.removeprefix("agent:")
    if model == ROUTER_MODEL:
        return _Target()
    if name in AGENTS:
        return _Target(agent=name)
    if model.startswith("pipeline:"):
        wanted = model.removeprefix("pipeline:")
        for pipeline in await platform.pipelines():
            if pipeline.get("name") == wanted:
                return _Target(pipeline=pipeline)
    raise ApiError(404, "model_not_found", f"no model {model!r}; GET /v1/models lists them")


async def _run_pipeline(
    platform: Platform, name: str, inputs: dict[str, Any], timeout_s: float
) -> dict[str, Any]:
    """Start a run and poll it (backing off to 1 s) until it ends; 502 when it failed."""
    delay = 0.02
    async with asyncio.timeout(timeout_s):
        run = await platform.start_run(name, inputs)
        while run.get("status") not in _TERMINAL:
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, 1.0)
            run = await platform.run(str(run["run_id"]))
    if run["status"] != "succeeded":
        error = run.get("error") or {}
        message = error.get("message") if isinstance(error, Mapping) else str(error)
        raise ApiError(
            502,
            "pipeline_failed",
            f"pipeline {name!r} {run['status']}: {message or 'no reason given'}",
            headers={"x-should-retry": "false"},
        )
    return run


class _TurnStream(StreamingResponse):
    """SSE that holds the turn slot until it ends, and closes its events however it ends.

    A client that goes away cancels the response; closing the events here (rather
    than leaving the suspended generator to the garbage collector) closes the
    platform's event iterator at once, which cancels the turn.
    """

    def __init__(
        self, events: AsyncGenerator[str, None], slot: Slot, headers: dict[str, str]
    ) -> None:
        headers = {**headers, "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        super().__init__(events, media_type="text/event-stream", headers=headers)
        self._events = events
        self._slot = slot

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            try:
                with anyio.CancelScope(shield=True):
                    await self._events.aclose()
            finally:
                self._slot.release()


@dataclass(slots=True)
class _Turn:
    """One completion request, resolved: what to send where, and how to answer."""

    platform: Platform
    model: str
    target: _Target
    message: str
    earlier: list[str]
    session_id: str | None
    user_id: str | None
    timeout_s: float

    @property
    def prompt(self) -> str:
        if self.target.pipeline is not None or self.session_id is None:
            return with_context(self.message, self.earlier)
        return self.message

    def _chat_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"session_id": self.session_id, "user_id": self.user_id}
        if self.target.agent is not None:
            kwargs["agent"] = self.target.agent
        return kwargs

    async def answer(self) -> tuple[str, dict[str, Any]]:
        """``(content, the full result)``: a chat result or a pipeline run.

        Raises ``TimeoutError`` (504) past ``timeout_s``, :class:`ApiError` 502 for a
        failed run, and whatever the platform raises.
        """
        pipeline = self.target.pipeline
        if pipeline is not None:
            inputs = pipeline_inputs(pipeline, self.message, self.earlier)
            run = await _run_pipeline(self.platform, str(pipeline["name"]), inputs, self.timeout_s)
            return answer_text(run.get("result")), run
        async with asyncio.timeout(self.timeout_s):
            result = await self.platform.chat(self.prompt, **self._chat_kwargs())
        return joined(*render_response(result)), result

    def completion(self, content: str, result: Mapping[str, Any]) -> dict[str, Any]:
        ident = result.get("response_id") or result.get("run_id") or uuid.uuid4().hex
        return {
            "id": f"chatcmpl-{ident}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.model,
            "system_fingerprint": None,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": "stop",
                    "logprobs": None,
                }
            ],
            "usage": usage(self.prompt, content),
            "elexirion": dict(result),
        }

    async def _content(self) -> AsyncGenerator[tuple[str, Mapping[str, Any] | None], None]:
        """Content deltas, then ``("", result)`` once the answer is whole."""
        if self.target.pipeline is not None:
            content, run = await self.answer()
            for start in range(0, len(content), _CHUNK_CHARS):
                yield content[start : start + _CHUNK_CHARS], None
            yield "", run
            return
        events = self.platform.chat_events(self.prompt, **self._chat_kwargs())
        streamed, result = "", None
        try:
            async for event in events:
                text = event.get("text")
                if event.get("event") == "token" and isinstance(text, str) and text:
                    streamed += text
                    yield text, None
                elif event.get("event") == "response":
                    result = event["response"]
        finally:
            # Closing the platform's iterator cancels the turn; shielded because a
            # client disconnect may arrive here as a cancellation of this generator.
            with anyio.CancelScope(shield=True):
                aclose = getattr(events, "aclose", None)
                if aclose is not None:
                    await aclose()
        if result is None:
            raise RuntimeError("the platform's event stream ended without a response")
        head, tail = render_response(result)
        content = joined(head, tail)
        # Tokens are the summary as the model wrote it; send what it did not cover.
        rest = content[len(streamed) :] if content.startswith(streamed) else f"\n\n{tail}"
        rest = "" if rest == "\n\n" else rest
        for start in range(0, len(rest), _CHUNK_CHARS):
            yield rest[start : start + _CHUNK_CHARS], None
        yield "", result

    async def events(self, include_usage: bool) -> AsyncGenerator[str, None]:
        """The answer as ``chat.completion.chunk`` events, ending with ``[DONE]``."""
        base = {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": self.model,
            "system_fingerprint": None,
        }

        def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
            choice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
            return sse({**base, "choices": [choice], **extra})

        yield chunk({"role": "assistant", "content": ""})
        sent = ""
        async with contextlib.aclosing(self._content()) as content:
            try:
                async for text, result in content:
                    if text:
                        sent += text
                        yield chunk({"content": text})
                    elif result is not None:
                        keys = ("session_id", "response_id", "agent", "run_id", "status")
                        meta = {k: result[k] for k in keys if k in result}
                        yield chunk({}, "stop", elexirion=meta)
            except Exception as exc:  # noqa: BLE001 - once streaming, errors go in the stream
                yield sse(stream_error(exc))
                return
        if include_usage:
            yield sse({**base, "choices": [], "usage": usage(self.prompt, sent)})
        yield sse("[DONE]")


async def _own_session(platform: Platform, session_id: str | None, principal: Principal) -> None:
    """A named session must be this key's or unused (404 otherwise, like ``/api``)."""
    if session_id is None:
        return
    if not _SESSION_ID.fullmatch(session_id):
        message = "session id: use 1-128 letters, digits, '_', '.', ':' or '-'"
        raise ApiError(422, "invalid_request", message)
    await owned_or_new(platform, session_id, principal)


# ------------------------------------------------------------------------ routes
@router.get("/v1/models", summary="The models: the router, the agents, the pipelines")
async def list_models(
    request: Request, principal: Annotated[Principal, Depends(authorized)]
) -> dict[str, Any]:
    """Every model id: the router, each agent (two spellings), each library pipeline."""
    ids = await _model_ids(platform_of(request.app))
    return {"object": "list", "data": [model_card(i) for i in ids]}


@router.get("/v1/models/{model_id:path}", summary="One model", responses=_errors(404))
async def get_model(
    model_id: str, request: Request, principal: Annotated[Principal, Depends(authorized)]
) -> dict[str, Any]:
    """One model card; 404 ``model_not_found`` for an unknown id."""
    await _resolve(platform_of(request.app), model_id)
    return model_card(model_id)


@router.post(
    "/v1/chat/completions",
    summary="Chat with an agent or run a pipeline, OpenAI style",
    response_model=None,
    responses={
        200: {
            "description": "A `chat.completion`; with `stream`, `chat.completion.chunk` SSE.",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
        **_errors(400, 404, 413, 422, 502, 504),
    },
)
async def chat_completions(
    body: ChatCompletionRequest,
    request: Request,
    principal: Annotated[Principal, Depends(authorized)],
    x_session_id: Annotated[str | None, Header()] = None,
) -> JSONResponse | StreamingResponse:
    """One chat turn, answered whole (``chat.completion``) or as SSE chunks."""
    if body.tools or body.functions:
        raise ApiError(422, "invalid_request", "tools: tool calling is not supported")
    if body.n not in (None, 1):
        raise ApiError(422, "invalid_request", "n: only n=1 is supported")
    platform = platform_of(request.app)
    message, earlier = split_messages(body.messages)
    target = await _resolve(platform, body.model)
    session_id = session_for(x_session_id, body.user, principal.user_id)
    if target.pipeline is None:  # pipelines keep no session
        await _own_session(platform, session_id, principal)
    turn = _Turn(
        platform=platform,
        model=body.model,
        target=target,
        message=message,
        earlier=earlier,
        session_id=session_id,
        user_id=principal.user_id,
        timeout_s=float(request.app.state.config.request_timeout_s),
    )
    known = turn.session_id if target.pipeline is None else None
    headers = {"X-Session-Id": known} if known else {}
    if not body.stream:
        async with turn_slot(request):
            content, result = await turn.answer()
        session = result.get("session_id")
        headers = {"X-Session-Id": str(session)} if session else headers
        return JSONResponse(turn.completion(content, result), headers=headers)
    slot = claim_slot(request)  # raises Saturated (503) before the stream starts
    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    return _TurnStream(turn.events(include_usage), slot, headers)
