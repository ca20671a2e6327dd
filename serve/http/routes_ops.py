"""Probes and scraping: ``/healthz`` (the process answers), ``/readyz`` (the tree and
the store answer), ``/metrics`` (Prometheus text). No auth: they reveal no user data."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse

__all__ = ["router"]

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="Liveness")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness: the tree and the store answer",
    responses={503: {"description": "Not ready: the body's checks say which part is down."}},
)
async def readyz(request: Request) -> Any:
    try:
        state = await request.app.state.platform.ready()
    except Exception as exc:  # noqa: BLE001 - not ready, for whatever reason
        state = {"ready": False, "checks": {"platform": f"down: {type(exc).__name__}"}}
    return JSONResponse(state, status_code=200 if state.get("ready") else 503)


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=PlainTextResponse,
)
async def prometheus(request: Request) -> PlainTextResponse:
    text = await request.app.state.platform.prometheus()
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4; charset=utf-8")
