"""The terminal chat over HTTP (``elexirion chat --url URL``): a
:class:`~actors.agents.backend.ChatBackend` speaking the platform's ``/api``.

Turns stream (SSE), so tokens show as they arrive. Errors from the server
(``{error: {code, message}}``) become ``LookupError`` (404), ``ValueError`` (4xx
input errors) or ``RuntimeError`` with the server's message; the key is sent as a
Bearer header and never printed.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx

from actors.agents.backend import ProgressCallback

__all__ = ["HttpBackend"]


class HttpBackend:
    """Chat with a remote Elexirion server."""

    def __init__(self, url: str, *, key: str | None, timeout_s: float = 600.0) -> None:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.url = url.rstrip("/")
        self._http = httpx.AsyncClient(base_url=self.url, headers=headers, timeout=timeout_s)

    async def start_session(self, user_id: str | None = None) -> str:
        del user_id  # sessions belong to the API key's user on the server
        return uuid.uuid4().hex  # created by its first turn

    async def chat(
        self,
        session_id: str | None,
        message: str,
        *,
        user_id: str | None = None,
        on_event: ProgressCallback | None = None,
    ) -> dict[str, Any]:
        body = {"message": message, "session_id": session_id, "stream": True}
        result: dict[str, Any] | None = None
        async with self._http.stream("POST", "/api/agent/chat", json=body) as response:
            if response.status_code >= 400:
                await response.aread()
                raise _error(response)
            event = "message"
            async for line in response.aiter_lines():
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: "):
                    data = json.loads(line[6:])
                    if event == "response":
                        result = data
                    elif event == "error":
                        raise RuntimeError(data["error"]["message"])
                    elif on_event is not None:
                        on_event({"event": event, **data})
        if result is None:
            raise RuntimeError("the server closed the stream without an answer")
        return result

    async def sessions(self, user_id: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
        return list((await self._get("/api/sessions", params={"limit": limit}))["sessions"])

    async def history(self, session_id: str) -> list[dict[str, Any]]:
        return list((await self._get(f"/api/sessions/{session_id}"))["turns"])

    async def rate(
        self, session_id: str, response_id: str, rating: int, feedback: str = ""
    ) -> dict[str, Any]:
        response = await self._http.post(
            f"/api/sessions/{session_id}/feedback",
            json={"response_id": response_id, "rating": rating, "feedback": feedback},
        )
        if response.status_code >= 400:
            raise _error(response)
        return dict(response.json())

    async def _get(self, path: str, **kwargs: Any) -> dict[str, Any]:
        response = await self._http.get(path, **kwargs)
        if response.status_code >= 400:
            raise _error(response)
        return dict(response.json())

    async def close(self) -> None:
        await self._http.aclose()


def _error(response: httpx.Response) -> Exception:
    try:
        message = str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        message = f"HTTP {response.status_code}"
    if response.status_code == 404:
        return LookupError(message)
    if response.status_code in (400, 413, 422):
        return ValueError(message)
    if response.status_code == 401:
        return PermissionError(f"{message} (pass --key or set ELEXIRION_API_KEY)")
    return RuntimeError(f"{message} (HTTP {response.status_code})")
