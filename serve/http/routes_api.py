"""``/api``: chat with the agents (JSON or Server-Sent Events), sessions, feedback,
workflows, pipelines and runs, metrics. Every route needs an API key (see
:mod:`serve.http.auth`); sessions belong to the key that created them — another
key sees 404, never the data."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from actors.agents.workflow import BUILTIN_WORKFLOWS
from serve.http.auth import Principal, authorized
from serve.http.errors import ApiError, client_message, error_body
from serve.http.limits import claim_slot, turn_slot
from serve.http.platform import Platform

__all__ = ["ErrorBody", "router", "sse"]

_ID = r"^[A-Za-z0-9_.:-]{1,128}$"


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable, machine-readable: not_found, invalid_request, ...")
    message: str = Field(description="For people; never a stack trace.")


class ErrorBody(BaseModel):
    """Every error response (see :mod:`serve.http.errors`)."""

    error: ErrorDetail


_ERRORS = {
    400: "The body is not parsable (not UTF-8, for instance).",
    401: "Missing, malformed, unknown or revoked API key.",
    404: "No such resource, or it belongs to another key.",
    413: "The body is larger than the server accepts.",
    422: "The request is invalid; the message names the field.",
    429: "Over this key's rate limit; see Retry-After.",
    503: "Saturated or the store is unreachable; see Retry-After.",
    504: "The turn took longer than the server waits.",
}


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for these error statuses, all :class:`ErrorBody`."""
    return {s: {"model": ErrorBody, "description": _ERRORS[s]} for s in statuses}


#: Any route with a JSON body: unparsable (400), too large (413), invalid (422).
_BODY = (400, 413, 422)
#: Any route that runs a turn: saturated (503) or too slow (504).
_TURN = (503, 504)

# Every route: the key (401, 503 when the store is down) and its rate limit (429).
router = APIRouter(prefix="/api", tags=["api"], responses=_errors(401, 429, 503))
Auth = Annotated[Principal, Depends(authorized)]
SessionId = Annotated[str, Path(pattern=_ID, description="A session id.")]


class ChatRequest(_Body):
    message: str = Field(min_length=1, max_length=20_000, description="What you ask.")
    session_id: str | None = Field(default=None, pattern=_ID, description="Continue a session.")
    stream: bool = Field(default=False, description="Answer with Server-Sent Events.")


class FeedbackRequest(_Body):
    response_id: str = Field(pattern=_ID)
    rating: int = Field(ge=1, le=10)
    feedback: str = Field(default="", max_length=5_000)


def _builtin_workflow(name: str) -> str:
    if name not in BUILTIN_WORKFLOWS:
        raise ValueError(f"not a built-in workflow ({', '.join(sorted(BUILTIN_WORKFLOWS))})")
    return name


#: A built-in workflow's name: an enum in the schema, checked (422) before the platform.
BuiltinWorkflow = Annotated[
    str,
    Field(json_schema_extra={"enum": sorted(BUILTIN_WORKFLOWS)}),
    AfterValidator(_builtin_workflow),
]


class WorkflowRequest(_Body):
    message: str = Field(min_length=1, max_length=20_000)
    session_id: str | None = Field(default=None, pattern=_ID)
    workflow: BuiltinWorkflow | None = Field(
        default=None, description="A built-in workflow; without one the request is planned."
    )


class RunRequest(_Body):
    inputs: dict[str, Any] = Field(default_factory=dict)


def platform(request: Request) -> Platform:
    return request.app.state.platform  # type: ignore[no-any-return]


async def _owned(request: Request, session_id: str, principal: Principal) -> dict[str, Any]:
    """The session, if this key owns it (404 otherwise: another key's data stays hidden)."""
    try:
        found = await platform(request).session(session_id)
    except LookupError:
        found = None
    if found is None or found.get("user_id") != principal.user_id:
        raise ApiError(404, "not_found", f"no session {session_id!r}")
    return found


def sse(event: str, data: Any) -> str:
    """One Server-Sent Event (``data`` as one line of JSON)."""
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'), default=str)}\n\n"


@router.post(
    "/agent/chat",
    summary="Send a message to the agents",
    responses=_errors(*_BODY, 404, *_TURN),
)
async def chat(body: ChatRequest, request: Request, principal: Auth) -> Any:
    """The agent's answer; with ``stream``, SSE: ``routed``, ``token``…, ``response``."""
    # A turn checks the session's owner where the session lives (its shard: 404 for
    # another key's session, no extra store read); a stream checks first, as its
    # status line leaves before the turn runs.
    if body.stream and body.session_id is not None:
        await _owned_or_new(request, body.session_id, principal)
    if not body.stream:
        async with turn_slot(request):
            timeout = request.app.state.config.request_timeout_s
            return await asyncio.wait_for(
                platform(request).chat(
                    body.message, session_id=body.session_id, user_id=principal.user_id
                ),
                timeout,
            )
    slot = claim_slot(request)  # 503 now, before the stream starts, when saturated
    events = platform(request).chat_events(
        body.message, session_id=body.session_id, user_id=principal.user_id
    )
    return StreamingResponse(
        _event_stream(events, slot),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _owned_or_new(request: Request, session_id: str, principal: Principal) -> None:
    await owned_or_new(platform(request), session_id, principal)


async def owned_or_new(platform: Platform, session_id: str, principal: Principal) -> None:
    """A given session id must be this key's or unused (a client may pick its ids);
    another key's session is a 404, as if it did not exist."""
    try:
        owner = await platform.session_owner(session_id)
    except LookupError:
        return
    if owner != principal.user_id:
        raise ApiError(404, "not_found", f"no session {session_id!r}")


async def _event_stream(events: AsyncIterator[dict[str, Any]], slot: Any) -> AsyncIterator[str]:
    try:
        async for event in events:
            kind = event.get("event", "message")
            if kind == "response":
                yield sse("response", event["response"])
            elif kind == "token":
                yield sse("token", {"text": event["text"], "step": event.get("step")})
            elif kind == "routed":
                yield sse("routed", {k: v for k, v in event.items() if k != "event"})
    except ValueError as exc:
        yield sse("error", error_body("invalid_request", client_message(exc)))
    except LookupError as exc:
        yield sse("error", error_body("not_found", client_message(exc) or "not found"))
    except Exception:  # noqa: BLE001 - the stream has started: report in-band, no trace
        yield sse("error", error_body("internal", "the turn failed; the server log has details"))
    finally:
        aclose = getattr(events, "aclose", None)
        if aclose is not None:
            await aclose()  # the client went away: cancels the turn
        slot.release()


@router.get("/sessions", summary="Your sessions, most recent first", responses=_errors(422))
async def sessions(
    request: Request,
    principal: Auth,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> dict[str, Any]:
    found = await platform(request).sessions(user_id=principal.user_id, limit=limit, offset=offset)
    return {"sessions": found}


@router.get(
    "/sessions/{session_id}", summary="A session with its turns", responses=_errors(404, 422)
)
async def get_session(session_id: SessionId, request: Request, principal: Auth) -> Any:
    return await _owned(request, session_id, principal)


@router.delete(
    "/sessions/{session_id}",
    status_code=204,
    summary="Delete a session",
    responses=_errors(404, 422),
)
async def delete_session(session_id: SessionId, request: Request, principal: Auth) -> Response:
    await _owned(request, session_id, principal)
    await platform(request).delete_session(session_id)
    return Response(status_code=204)


@router.post(
    "/sessions/{session_id}/feedback",
    summary="Rate an answer (1-10)",
    responses=_errors(*_BODY, 404),
)
async def feedback(
    session_id: SessionId, body: FeedbackRequest, request: Request, principal: Auth
) -> Any:
    await _owned(request, session_id, principal)
    return await platform(request).rate(session_id, body.response_id, body.rating, body.feedback)


@router.post(
    "/workflows",
    summary="Plan a request and run it with several agents",
    responses=_errors(*_BODY, 404, *_TURN),
)
async def workflows(body: WorkflowRequest, request: Request, principal: Auth) -> Any:
    if body.session_id is not None:
        await _owned_or_new(request, body.session_id, principal)
    async with turn_slot(request):
        return await platform(request).workflow(
            body.message,
            session_id=body.session_id,
            builtin=body.workflow,
            user_id=principal.user_id,
        )


@router.get("/pipelines", summary="The pipeline library")
async def pipelines(request: Request, principal: Auth) -> dict[str, Any]:
    return {"pipelines": await platform(request).pipelines()}


@router.post(
    "/pipelines/{name}/run",
    status_code=202,
    summary="Start a pipeline run in the background",
    responses=_errors(*_BODY, 404, 503),
)
async def run_pipeline(
    name: Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,100}$")],
    body: RunRequest,
    request: Request,
    principal: Auth,
) -> Any:
    async with turn_slot(request):
        return await platform(request).start_run(name, body.inputs)


@router.get("/runs/{run_id}", summary="A run: status, result or error", responses=_errors(404, 422))
async def get_run(
    run_id: Annotated[str, Path(pattern=_ID)], request: Request, principal: Auth
) -> Any:
    return await platform(request).run(run_id)


@router.get("/metrics", summary="Success rates, latency, cost and tokens; the actor tree")
async def metrics(request: Request, principal: Auth) -> Any:
    return await platform(request).metrics()
