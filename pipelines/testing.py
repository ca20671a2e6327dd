"""Test doubles shipped with the package: a scripted provider and a network guard.

:class:`FakeProvider` implements the :class:`~pipelines.providers.base.Provider`
protocol from a script (texts, completions, exceptions, callables) or one
function, and records every request, in the spirit of pydantic-ai's
``TestModel``/``FunctionModel``. Tests assert on what was asked, not on mocks.

The network guard makes any socket connection to a non-loopback host raise
:class:`NetworkBlocked`, so no test can reach a real LLM by accident, while
wire-level fake servers on 127.0.0.1 (or AF_UNIX sockets) keep working. The
root ``tests/conftest.py`` installs it for the whole session.
"""

from __future__ import annotations

import asyncio
import inspect
import ipaddress
import json
import socket
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

from pipelines.providers.base import (
    Completion,
    CompletionRequest,
    FinishReason,
    StreamEvent,
    ToolCall,
    Usage,
)
from pipelines.providers.offline import approx_tokens

if TYPE_CHECKING:
    from pipelines.providers.base import Provider

__all__ = [
    "FakeProvider",
    "NetworkBlocked",
    "Reply",
    "Responder",
    "ScriptItem",
    "ScriptedResponse",
    "fail_after",
    "install_network_guard",
    "is_allowed_host",
    "network_allowed",
    "network_guard_installed",
    "no_network",
    "scripted",
    "uninstall_network_guard",
]

_UNSET: Any = object()


@dataclass(frozen=True, slots=True)
class ScriptedResponse:
    """A scripted reply with more than text: tool calls, usage, a mid-stream failure.

    ``data`` left unset is parsed from ``text`` when the request has an output
    schema. ``stream_error`` is raised by :meth:`FakeProvider.stream` after
    ``stream_error_after`` deltas (a dropped stream); ``complete`` ignores it.
    """

    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    finish_reason: FinishReason = "stop"
    usage: Usage | None = None
    cost_usd: float = 0.0
    data: Any = _UNSET
    stream_error: Exception | None = None
    stream_error_after: int = 0


Reply: TypeAlias = str | Completion | ScriptedResponse
# A responder may return an exception to have it raised: a lambda cannot raise.
Responder: TypeAlias = Callable[
    [CompletionRequest], Reply | Exception | Awaitable[Reply | Exception]
]
ScriptItem: TypeAlias = Reply | Exception | type[Exception] | Responder


class FakeProvider:
    """Scripted or function-backed provider for tests. Records every request.

    ``responses`` is either an iterable of script items, consumed one per call
    (a ``str`` becomes the text, a :class:`Completion` is returned as is, an
    exception or exception class is raised, a callable is called with the
    request and its reply used, or raised if it is an exception), or a single
    callable answering every call. When the script runs out, calls answer
    ``default``; with ``default=None`` they raise ``AssertionError``.
    ``latency_s`` sleeps (asyncio) before answering; ``stream_chunk`` is the
    size in characters of each streamed delta.
    """

    def __init__(
        self,
        responses: Iterable[ScriptItem] | Responder | None = None,
        *,
        name: str = "fake",
        latency_s: float = 0.0,
        default: str | None = "ok",
        stream_chunk: int = 8,
    ) -> None:
        if isinstance(responses, str):
            msg = "pass a list of replies ([text]) or default=text, not a bare string"
            raise TypeError(msg)
        if stream_chunk < 1:
            raise ValueError("stream_chunk must be >= 1")
        self._responder: Responder | None = responses if callable(responses) else None
        self._script: deque[ScriptItem] = deque(
            () if responses is None or callable(responses) else responses
        )
        self.name = name
        self.latency_s = latency_s
        self.default = default
        self.stream_chunk = stream_chunk
        self.requests: list[CompletionRequest] = []

    @property
    def call_count(self) -> int:
        """How many calls (``complete`` or ``stream``) were made."""
        return len(self.requests)

    @property
    def remaining(self) -> int:
        """Script items not consumed yet."""
        return len(self._script)

    def push(self, *items: ScriptItem) -> None:
        """Append items to the script (e.g. between phases of a test)."""
        self._script.extend(items)

    def prompts(self) -> list[str]:
        """``request.prompt_text`` of every call, in order."""
        return [r.prompt_text for r in self.requests]

    async def complete(self, request: CompletionRequest) -> Completion:
        """Answer with the next script item; raises what the script says to raise."""
        completion, _ = await self._answer(request)
        return completion

    async def stream(self, request: CompletionRequest) -> AsyncIterator[StreamEvent]:
        """Stream the next answer in ``stream_chunk``-sized deltas, then the completion."""
        completion, item = await self._answer(request)
        error = item.stream_error if item is not None else None
        after = item.stream_error_after if item is not None else 0
        text, size = completion.text, self.stream_chunk
        for index, start in enumerate(range(0, len(text), size)):
            if error is not None and index >= after:
                raise error
            yield StreamEvent(delta=text[start : start + size])
            await asyncio.sleep(0)  # let other tasks interleave, as with a real stream
        if error is not None:  # the drop happens before the final event ever arrives
            raise error
        yield StreamEvent(completion=completion)

    async def _answer(
        self, request: CompletionRequest
    ) -> tuple[Completion, ScriptedResponse | None]:
        # Record and take the item before sleeping, so concurrent calls keep call order.
        self.requests.append(request)
        item = self._next_item()
        started = time.perf_counter()
        if self.latency_s > 0:
            await asyncio.sleep(self.latency_s)
        answer: object
        if isinstance(item, str | Completion | ScriptedResponse | Exception):
            answer = item
        elif isinstance(item, type):
            raise item()  # an exception class is as good as an instance
        else:
            answer = item(request)
            answer = await answer if inspect.isawaitable(answer) else answer
        if isinstance(answer, Exception):
            raise answer
        latency_ms = (time.perf_counter() - started) * 1000
        if isinstance(answer, Completion):
            return answer, None
        if isinstance(answer, str):
            answer = ScriptedResponse(answer)
        if not isinstance(answer, ScriptedResponse):
            raise TypeError(f"FakeProvider cannot answer with {answer!r}")
        return self._completion(request, answer, latency_ms), answer

    def _next_item(self) -> ScriptItem:
        if self._responder is not None:
            return self._responder
        if self._script:
            return self._script.popleft()
        if self.default is None:
            raise AssertionError("FakeProvider script exhausted")
        return self.default

    def _completion(
        self, request: CompletionRequest, item: ScriptedResponse, latency_ms: float
    ) -> Completion:
        data = item.data
        if data is _UNSET:
            data = _parse_json(item.text) if request.output_schema is not None else None
        prompt = f"{request.system or ''}\n{request.prompt_text}"
        return Completion(
            text=item.text,
            provider=self.name,
            model=request.model or f"{self.name}-model",
            usage=item.usage or Usage(approx_tokens(prompt), approx_tokens(item.text)),
            cost_usd=item.cost_usd,
            latency_ms=latency_ms,
            # Tool calls imply "tool_calls" unless the script chose another reason.
            finish_reason="tool_calls"
            if item.tool_calls and item.finish_reason == "stop"
            else item.finish_reason,
            tool_calls=item.tool_calls,
            data=data,
        )


def _parse_json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def scripted(*items: ScriptItem, **kwargs: Any) -> FakeProvider:
    """A strict :class:`FakeProvider`: answers ``items`` in order, then fails loudly."""
    kwargs.setdefault("default", None)
    return FakeProvider(items, **kwargs)


def fail_after(n: int, exc: Exception, *, text: str = "ok") -> Responder:
    """A responder that answers ``text`` ``n`` times, then raises ``exc`` on every call."""
    calls = 0

    def respond(request: CompletionRequest) -> str:
        nonlocal calls
        calls += 1
        if calls > n:
            raise exc
        return text

    return respond


if TYPE_CHECKING:  # FakeProvider must satisfy the protocol it stands in for
    _protocol_check: Provider = FakeProvider()


# ------------------------------------------------------------------ network guard


class NetworkBlocked(RuntimeError):  # noqa: N818 - the name reads as the event, like Timeout
    """A test tried to reach a host that is not loopback; names the host and the call."""

    def __init__(self, host: str, operation: str = "connect") -> None:
        self.host = host
        self.operation = operation
        super().__init__(
            f"network access blocked in tests: {operation} to {host!r}; only loopback "
            "(127.0.0.0/8, ::1, localhost) and AF_UNIX are allowed. Use FakeProvider or "
            "a fake server on 127.0.0.1."
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.host, self.operation))


_LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})
_lock = threading.Lock()
_saved: dict[tuple[object, str], Any] = {}  # (owner, attribute) -> original, while installed
_extra_hosts: list[str] = []


def is_allowed_host(host: object) -> bool:
    """True for loopback addresses, localhost names, hosts in :func:`network_allowed`."""
    if host is None:  # getaddrinfo(None, ...) means the local host
        return True
    name = host.decode() if isinstance(host, bytes) else str(host)
    name = name.strip("[]").split("%", 1)[0].lower()  # IPv6 brackets and zone ids
    if name in _LOCAL_NAMES or name in _extra_hosts:
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or (mapped is not None and mapped.is_loopback)


def _check(host: object, operation: str) -> None:
    if not is_allowed_host(host):
        raise NetworkBlocked(str(host), operation)


def _check_address(sock: socket.socket, address: object, operation: str) -> None:
    # Only internet families leave the machine; AF_UNIX, netlink and friends do not.
    if sock.family in (socket.AF_INET, socket.AF_INET6) and isinstance(address, tuple):
        _check(address[0], operation)


def _guarded() -> dict[tuple[object, str], Any]:
    connect, connect_ex = socket.socket.connect, socket.socket.connect_ex
    sendto, create_connection = socket.socket.sendto, socket.create_connection
    getaddrinfo = socket.getaddrinfo

    def guarded_connect(self: socket.socket, address: Any) -> None:
        _check_address(self, address, "connect")
        return connect(self, address)

    def guarded_connect_ex(self: socket.socket, address: Any) -> int:
        _check_address(self, address, "connect_ex")
        return connect_ex(self, address)

    def guarded_sendto(self: socket.socket, data: Any, *args: Any) -> int:
        _check_address(self, args[-1], "sendto")
        return sendto(self, data, *args)

    def guarded_create_connection(address: tuple[str, int], *args: Any, **kwargs: Any) -> Any:
        _check(address[0], "create_connection")
        return create_connection(address, *args, **kwargs)

    def guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        _check(host, "getaddrinfo")
        return getaddrinfo(host, *args, **kwargs)

    return {
        (socket.socket, "connect"): guarded_connect,
        (socket.socket, "connect_ex"): guarded_connect_ex,
        (socket.socket, "sendto"): guarded_sendto,
        (socket, "create_connection"): guarded_create_connection,
        (socket, "getaddrinfo"): guarded_getaddrinfo,
    }


def install_network_guard() -> None:
    """Block non-loopback connections process-wide until uninstalled; idempotent."""
    with _lock:
        if _saved:
            return
        for (owner, attr), replacement in _guarded().items():
            # vars(): remember whether the attribute was the class's own or inherited.
            _saved[(owner, attr)] = vars(owner).get(attr, _UNSET)
            setattr(owner, attr, replacement)


def uninstall_network_guard() -> None:
    """Restore the original socket functions; a no-op when not installed."""
    with _lock:
        for (owner, attr), original in _saved.items():
            if original is _UNSET:
                delattr(owner, attr)
            else:
                setattr(owner, attr, original)
        _saved.clear()


def network_guard_installed() -> bool:
    """Whether :func:`install_network_guard` is in effect."""
    return bool(_saved)


@contextmanager
def no_network() -> Iterator[None]:
    """Block the network inside the block; leaves an already-installed guard in place."""
    installed_here = not network_guard_installed()
    install_network_guard()
    try:
        yield
    finally:
        if installed_here:
            uninstall_network_guard()


@contextmanager
def network_allowed(*hosts: str) -> Iterator[None]:
    """Let the guard pass ``hosts`` (names or addresses) inside the block."""
    added = [h.lower() for h in hosts]
    _extra_hosts.extend(added)
    try:
        yield
    finally:
        for host in added:
            _extra_hosts.remove(host)
