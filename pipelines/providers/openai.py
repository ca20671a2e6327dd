"""The ``openai`` provider: Chat Completions over the official ``openai`` SDK.

Works against any OpenAI-compatible ``base_url`` (OpenAI, Ollama, vLLM, LM Studio);
``name`` lets one deployment register several (``name="ollama"`` with
``base_url="http://localhost:11434/v1"``), and results report that name.

Request mapping: ``system`` becomes a leading ``system`` message; assistant
``tool_calls`` and ``tool`` answers use the Chat Completions shapes; ``tools`` are
``function`` tools; ``output_schema`` is sent as ``response_format`` ``json_schema``
with ``strict: false`` (strict mode accepts only a subset of JSON Schema) and the
parsed JSON lands in :attr:`Completion.data`. ``max_tokens`` (capped by the
provider's own ``max_tokens``) is sent as ``max_tokens``, not the newer
``max_completion_tokens``: every compatible server understands the old name; for
OpenAI's reasoning models, which want the new one, put ``max_completion_tokens`` in
``extra`` and it is sent (capped the same way) instead. From ``extra``: ``top_p``,
``stop``, ``seed``, ``presence_penalty``, ``frequency_penalty``, ``tool_choice`` and
``parallel_tool_calls`` are sent as is;
``top_k`` is not an OpenAI parameter and goes in the body only through
``extra_body`` (vLLM and Ollama read it; OpenAI rejects unknown keys, so leave it
out there); other keys are ignored.

Failure semantics: the SDK's own retries are off (``max_retries=0``) because the
resilience layer retries; one call is one HTTP request. Only
:class:`~pipelines.errors.ProviderError` escapes ``complete`` and ``stream``:

====================================================  ======================
SDK failure                                           code (retryable)
====================================================  ======================
``RateLimitError`` (429; ``retry_after_s`` set)       ``rate_limited`` (yes)
``RateLimitError`` with code ``insufficient_quota``   ``unavailable`` (no)
``InternalServerError`` 503 / 529                     ``overloaded`` (yes)
``InternalServerError`` 500 and other 5xx             ``server_error`` (yes)
``APITimeoutError``                                   ``timeout`` (yes)
``APIConnectionError``                                ``connection`` (yes)
``AuthenticationError`` / ``PermissionDeniedError``   ``auth`` (no)
other status errors: 408 / 504                        ``timeout`` (yes)
``BadRequestError``, ``NotFoundError``, other 4xx     ``invalid_request`` (no)
malformed body or chunk, bad tool-call or schema JSON ``server_error`` (yes)
``finish_reason: content_filter`` or a refusal        ``content_filtered`` (no)
a stream cut (or timed out) after its first delta,    ``stream_interrupted`` (yes:
or ending without a finish_reason                     re-run the whole call only)
====================================================  ======================

Messages are redacted (the key never appears), and SDK exceptions are not chained
(``from None``): they hold the request with its ``Authorization`` header.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import openai as openai_sdk  # absolute import: the SDK, not this module
from openai.types import CompletionUsage
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from pipelines.errors import ConfigError, ProviderError
from pipelines.providers._errors import error_for_status, parse_retry_after, provider_error, redact
from pipelines.providers.base import (
    Completion,
    CompletionRequest,
    FinishReason,
    Message,
    StreamEvent,
    ToolCall,
    Usage,
)
from pipelines.providers.pricing import PriceTable

__all__ = ["OpenAIProvider"]

_log = logging.getLogger(__name__)

#: ``extra`` keys that are Chat Completions parameters, sent unchanged.
_PASSTHROUGH = frozenset(
    {
        "top_p",
        "stop",
        "seed",
        "presence_penalty",
        "frequency_penalty",
        "tool_choice",
        "parallel_tool_calls",
    }
)
_MAX_MESSAGE = 500  # characters of a server message kept in an error


class OpenAIProvider:
    """A :class:`~pipelines.providers.base.Provider` for OpenAI-compatible servers.

    One ``AsyncOpenAI`` client is created here and reused; call :meth:`aclose` when
    done. ``timeout_s`` is the default per-request timeout (a request's own
    ``timeout_s`` wins). Cost uses ``prices`` under this provider's ``name`` when the
    table knows the model there, else under ``openai``; unknown models cost 0.0.
    Raises ``ConfigError`` for an empty ``api_key``.
    """

    name: str = "openai"

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str | None = None,
        timeout_s: float = 60.0,
        prices: PriceTable | None = None,
        default_model: str = "gpt-4o-mini",
        max_tokens: int = 4096,
        name: str = "openai",
    ) -> None:
        if not api_key:
            # The SDK would raise its own error; local servers accept any placeholder.
            raise ConfigError(f"{name}: api_key is required (for Ollama & co. any text works)")
        self.name = name
        self._api_key = api_key
        self._prices = prices if prices is not None else PriceTable.load()
        self._default_model = default_model
        self._max_tokens = max_tokens
        self._unpriced: set[str] = set()
        self._client = openai_sdk.AsyncOpenAI(
            api_key=api_key, base_url=base_url, max_retries=0, timeout=timeout_s
        )

    def __repr__(self) -> str:
        url = redact(str(self._client.base_url), [self._api_key])
        return (
            f"OpenAIProvider(name={self.name!r}, base_url={url!r}, model={self._default_model!r})"
        )

    async def aclose(self) -> None:
        """Close the HTTP connection pool."""
        await self._client.close()

    # ------------------------------------------------------------------ calls

    async def complete(self, request: CompletionRequest) -> Completion:
        """One Chat Completions call; raises ``ProviderError`` (see the module table)."""
        params = self._params(request)
        started = time.perf_counter()
        try:
            # Typed by hand: ``**params`` makes the SDK's overloads resolve to Any.
            response: object = await self._client.chat.completions.create(**params)
            if not isinstance(response, ChatCompletion):
                # A non-JSON content type comes back as plain text from the SDK.
                raise self._error("malformed response: not a chat completion", "server_error")
            if not response.choices:
                raise self._error("malformed response: no choices", "server_error")
            choice = response.choices[0]
            message = choice.message
            calls = [
                (tc.id, tc.function.name, tc.function.arguments)
                for tc in message.tool_calls or []
                if tc.type == "function"
            ]
            usage = _usage(response.usage)
            return self._finish(
                request,
                model=response.model or params["model"],
                text=message.content or "",
                refusal=message.refusal or "",
                raw_calls=calls,
                finish=choice.finish_reason,
                usage=usage,
                started=started,
            )
        except ProviderError:
            raise
        except Exception as exc:  # noqa: BLE001 - the protocol lets only ProviderError escape
            raise self._failure(exc) from None

    async def stream(self, request: CompletionRequest) -> AsyncIterator[StreamEvent]:
        """Yield text deltas, then one event with the final completion.

        Usage comes from the ``include_usage`` chunk (zeros if the server sends none).
        Raises ``ProviderError``: ``stream_interrupted`` when the stream breaks after
        a delta was yielded, else the code of the failure (see the module table).
        """
        params = self._params(request)
        started = time.perf_counter()
        model: str = params["model"]
        parts: list[str] = []
        refusal: list[str] = []
        calls: dict[int, list[str]] = {}  # index -> [id, name, arguments so far]
        finish: str | None = None
        usage = Usage()
        try:
            chunks: openai_sdk.AsyncStream[ChatCompletionChunk]
            chunks = await self._client.chat.completions.create(
                **params, stream=True, stream_options={"include_usage": True}
            )
            try:
                async for chunk in chunks:
                    model = chunk.model or model
                    if chunk.usage is not None:
                        usage = _usage(chunk.usage)
                    for choice in chunk.choices:
                        if choice.index != 0:
                            continue
                        delta = choice.delta
                        for tc in delta.tool_calls or []:
                            slot = calls.setdefault(tc.index, ["", "", ""])
                            slot[0] = tc.id or slot[0]
                            if tc.function is not None:
                                slot[1] = tc.function.name or slot[1]
                                slot[2] += tc.function.arguments or ""
                        refusal.append(delta.refusal or "")
                        finish = choice.finish_reason or finish
                        if delta.content:
                            parts.append(delta.content)
                            yield StreamEvent(delta=delta.content)
            finally:
                await chunks.close()
        except ProviderError:
            raise
        except Exception as exc:  # noqa: BLE001 - the protocol lets only ProviderError escape
            raise self._failure(exc, delivered=bool(parts)) from None
        if finish is None:
            # The connection closed cleanly but the answer never finished.
            if parts:
                raise self._error("stream ended early", "stream_interrupted", retryable=True)
            raise self._error("stream ended before any content", "connection")
        yield StreamEvent(
            completion=self._finish(
                request,
                model=model,
                text="".join(parts),
                refusal="".join(refusal),
                raw_calls=[(c[0], c[1], c[2]) for _, c in sorted(calls.items())],
                finish=finish,
                usage=usage,
                started=started,
            )
        )

    # ------------------------------------------------------------------ request

    def _params(self, request: CompletionRequest) -> dict[str, Any]:
        """The keyword arguments of ``chat.completions.create`` for ``request``."""
        messages: list[dict[str, Any]] = []
        if request.system:
            messages.append({"role": "system", "content": request.system})
        messages.extend(self._message(m) for m in request.messages)
        params: dict[str, Any] = {
            "model": request.model or self._default_model,
            "messages": messages,
        }
        if "max_completion_tokens" in request.extra:
            limit = request.extra["max_completion_tokens"]
            if not isinstance(limit, int):
                raise self._error("max_completion_tokens must be an integer", "invalid_request")
            params["max_completion_tokens"] = min(limit, self._max_tokens)
        else:
            params["max_tokens"] = min(request.max_tokens, self._max_tokens)
        if request.temperature is not None:
            params["temperature"] = request.temperature
        params.update({k: v for k, v in request.extra.items() if k in _PASSTHROUGH})
        if "top_k" in request.extra:
            params["extra_body"] = {"top_k": request.extra["top_k"]}
        if request.tools:
            params["tools"] = [
                {
                    "type": "function",
                    "function": {
                        "name": t.name,
                        "description": t.description,
                        "parameters": dict(t.parameters),
                    },
                }
                for t in request.tools
            ]
        if request.output_schema is not None:
            params["response_format"] = {
                "type": "json_schema",
                "json_schema": {
                    "name": "structured_output",
                    "schema": dict(request.output_schema),
                    "strict": False,
                },
            }
        if request.timeout_s is not None:
            params["timeout"] = request.timeout_s
        return params

    def _message(self, message: Message) -> dict[str, Any]:
        if message.role == "tool":
            if not message.tool_call_id:
                raise self._error("a tool message needs tool_call_id", "invalid_request")
            return {
                "role": "tool",
                "tool_call_id": message.tool_call_id,
                "content": message.content,
            }
        if message.role == "assistant" and message.tool_calls:
            return {
                "role": "assistant",
                # OpenAI accepts null content beside tool calls; "" upsets some servers.
                "content": message.content or None,
                "tool_calls": [
                    {
                        "id": call.id,
                        "type": "function",
                        "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
                    }
                    for call in message.tool_calls
                ],
            }
        return {"role": message.role, "content": message.content}

    # ------------------------------------------------------------------ result

    def _finish(
        self,
        request: CompletionRequest,
        *,
        model: str,
        text: str,
        refusal: str,
        raw_calls: list[tuple[str, str, str]],
        finish: str | None,
        usage: Usage,
        started: float,
    ) -> Completion:
        """The :class:`Completion` of a finished answer; raises ``ProviderError``."""
        if finish == "content_filter" or (refusal and not text and not raw_calls):
            why = f"refused: {refusal[:_MAX_MESSAGE]}" if refusal else "content filter"
            raise self._error(f"blocked by the server ({why})", "content_filtered")
        calls = tuple(self._tool_call(*raw) for raw in raw_calls)
        # Some compatible servers say "stop" beside tool calls: the calls decide.
        reason: FinishReason = "tool_calls" if calls else "length" if finish == "length" else "stop"
        data: Any = None
        if request.output_schema is not None and not calls:
            try:
                data = json.loads(text)
            except ValueError:
                raise self._error(
                    f"structured output is not valid JSON (finish_reason={finish})",
                    "server_error",
                ) from None
        return Completion(
            text=text,
            provider=self.name,
            model=model,
            usage=usage,
            cost_usd=self._cost(model, usage),
            latency_ms=(time.perf_counter() - started) * 1000,
            finish_reason=reason,
            tool_calls=calls,
            data=data,
        )

    def _tool_call(self, call_id: str, name: str, arguments: str) -> ToolCall:
        try:
            # Some compatible servers send "" for a call without arguments.
            parsed = json.loads(arguments) if arguments.strip() else {}
        except ValueError:
            parsed = None
        if not isinstance(parsed, dict):
            raise self._error(
                f"tool call {name!r} has arguments that are not a JSON object", "server_error"
            )
        return ToolCall(id=call_id, name=name, arguments=parsed)

    def _cost(self, model: str, usage: Usage) -> float:
        table = self.name if self._prices.known(self.name, model) else "openai"
        if not self._prices.known(table, model) and model not in self._unpriced:
            self._unpriced.add(model)
            _log.warning("no price for %s model %r; its cost is reported as 0.0", self.name, model)
        return self._prices.cost(table, model, usage)

    # ------------------------------------------------------------------ errors

    def _error(
        self, message: str, code: str, *, retryable: bool | None = None, **http: Any
    ) -> ProviderError:
        """A redacted error; ``http`` takes ``status`` and ``retry_after_s``."""
        error = provider_error(
            message, code=code, provider=self.name, secrets=[self._api_key], **http
        )
        if retryable is not None:
            error.retryable = retryable
        return error

    def _failure(self, exc: Exception, *, delivered: bool = False) -> ProviderError:
        """Our :class:`ProviderError` for an SDK (or decoding) failure."""
        what = f"{type(exc).__name__}: {str(exc)[:_MAX_MESSAGE]}"
        if isinstance(exc, openai_sdk.APIConnectionError):  # includes APITimeoutError
            if delivered:
                # Text already went out: only a whole new call may repeat it.
                return self._error(what, "stream_interrupted", retryable=True)
            timed_out = isinstance(exc, openai_sdk.APITimeoutError)
            return self._error(what, "timeout" if timed_out else "connection")
        if isinstance(exc, openai_sdk.APIStatusError):
            status = exc.status_code
            retry_after = parse_retry_after(exc.response.headers)
            code = error_for_status(status)
            if isinstance(exc, openai_sdk.RateLimitError) and exc.code == "insufficient_quota":
                code = "unavailable"  # billing, not load: waiting will not help
            return self._error(what, code, status=status, retry_after_s=retry_after)
        # APIResponseValidationError, stream error events, JSON and pydantic errors.
        return self._error(f"malformed response: {what}", "server_error")


def _usage(usage: CompletionUsage | None) -> Usage:
    if usage is None:
        return Usage()
    return Usage(usage.prompt_tokens or 0, usage.completion_tokens or 0)
