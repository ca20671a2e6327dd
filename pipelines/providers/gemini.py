"""The ``gemini`` provider: Gemini ``generateContent`` over the official ``google-genai`` SDK.

Request mapping (see :mod:`pipelines.providers._gemini_wire`): ``system`` becomes
``system_instruction``; assistant turns are role ``model`` with ``functionCall``
parts; ``tool`` answers are ``functionResponse`` parts; ``tools`` are function
declarations with their JSON Schema as ``parameters_json_schema``; ``output_schema``
is sent as ``response_mime_type: application/json`` plus ``response_json_schema`` and
the parsed JSON lands in :attr:`Completion.data`. ``max_tokens`` (capped by the
provider's own) is ``max_output_tokens``. From ``extra``: ``top_p``, ``top_k``,
``seed``, ``presence_penalty``, ``frequency_penalty``, ``stop_sequences`` (or
``stop``) and ``thinking_budget``; other keys are ignored. Output usage counts
thinking tokens, because Gemini bills them as output.

Transport: the SDK's ``httpx2`` backend, chosen by handing it an ``httpx2``
transport. Left alone, the SDK prefers ``aiohttp`` when it is installed (Ray
installs it), which retries connection errors on its own after a 1-10 s sleep and
warns (``DeprecationWarning``) on every new session. The connection pool belongs to
the event loop of the first call: use a provider from one loop, and ``aclose`` it
there.

Failure semantics: SDK retries are off (``HttpRetryOptions(attempts=1)``): the
resilience layer retries, and one call is one HTTP request. Only
:class:`~pipelines.errors.ProviderError` escapes ``complete`` and ``stream``:

===========================================================  ==========================
SDK failure                                                  code (retryable)
===========================================================  ==========================
``ClientError`` 429 (``retry_after_s`` from ``retry-after``  ``rate_limited`` (yes)
or the ``RetryInfo.retryDelay`` detail)
``ServerError`` 503 (Gemini's "overloaded"), 529             ``overloaded`` (yes)
``ServerError`` 500 and other 5xx                            ``server_error`` (yes)
``ServerError`` 504, ``ClientError`` 408, transport timeout  ``timeout`` (yes)
connect, read or protocol error of the transport             ``connection`` (yes)
``ClientError`` 401 / 403, or 400 ``API_KEY_INVALID``        ``auth`` (no)
``ClientError`` 400 / 404 and other 4xx                      ``invalid_request`` (no)
malformed JSON body or chunk, invalid structured output,     ``server_error`` (yes)
finishReason ``MALFORMED_FUNCTION_CALL``
``promptFeedback.blockReason`` or finishReason ``SAFETY``,   ``content_filtered`` (no)
``RECITATION``, ``BLOCKLIST``, ``PROHIBITED_CONTENT``...
a stream failing after its first delta                       ``stream_interrupted`` (yes:
                                                             re-run the whole call only)
a call on a closed provider                                  ``unavailable`` (no)
===========================================================  ==========================

Messages are redacted (the key never appears), and SDK exceptions are not chained
(``from None``): their text repeats whatever the server sent back.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx2
import pydantic
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from pipelines.errors import ConfigError, ProviderError
from pipelines.providers import _gemini_wire as wire
from pipelines.providers._errors import (
    error_for_status,
    parse_retry_after,
    provider_error,
    redact,
)
from pipelines.providers.base import Completion, CompletionRequest, StreamEvent
from pipelines.providers.pricing import PriceTable

__all__ = ["GeminiProvider"]

_log = logging.getLogger(__name__)
_MAX_MESSAGE = 500  # characters of a server message kept in an error


class GeminiProvider:
    """A :class:`~pipelines.providers.base.Provider` for the Gemini Developer API.

    One ``genai.Client`` is created here and kept for the provider's life (the SDK
    closes its pools when the client is garbage collected); call :meth:`aclose` when
    done. ``timeout_s`` is the default per-request timeout, applied by the SDK to
    connect and to each read (a request's own ``timeout_s`` wins). ``base_url``
    points the SDK elsewhere (a proxy, the fake server); the API version (``v1``) is
    the SDK's default. Unknown models cost 0.0. Raises ``ConfigError`` for an
    empty ``api_key``.
    """

    name = "gemini"

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str | None = None,
        timeout_s: float = 60.0,
        prices: PriceTable | None = None,
        default_model: str = "gemini-2.5-flash",
        max_tokens: int = 4096,
    ) -> None:
        if not api_key.strip():
            # The SDK would raise a bare ValueError; a missing key is a configuration error.
            raise ConfigError("gemini: api_key is empty (set GEMINI_API_KEY or GOOGLE_API_KEY)")
        self._api_key = api_key
        self._base_url = base_url
        self._prices = prices if prices is not None else PriceTable.load()
        self._default_model = default_model
        self._max_tokens = max_tokens
        self._unpriced: set[str] = set()
        self._closed = False
        options = types.HttpOptions(
            base_url=base_url,
            timeout=wire.milliseconds(timeout_s),
            retry_options=types.HttpRetryOptions(attempts=1),
            async_client_args={"transport": httpx2.AsyncHTTPTransport()},
        )
        # vertexai=False: the GOOGLE_GENAI_USE_VERTEXAI environment must not switch APIs.
        self._client = genai.Client(api_key=api_key, vertexai=False, http_options=options)

    def __repr__(self) -> str:
        url = redact(self._base_url or "default", [self._api_key])
        return f"GeminiProvider(base_url={url!r}, model={self._default_model!r})"

    async def aclose(self) -> None:
        """Close the SDK's connection pools; later calls raise ``unavailable``."""
        if self._closed:
            return
        self._closed = True
        await self._client.aio.aclose()
        self._client.close()

    # ------------------------------------------------------------------ calls

    async def complete(self, request: CompletionRequest) -> Completion:
        """One ``generateContent`` call; raises ``ProviderError`` (see the module table)."""
        model, contents, config = self._prepare(request)
        started = time.perf_counter()
        try:
            response = await self._client.aio.models.generate_content(
                model=model, contents=contents, config=config
            )
            answer = wire.Answer()
            answer.add(response)
            return self._finish(request, model, answer, started)
        except ProviderError:
            raise
        except Exception as exc:  # noqa: BLE001 - the protocol lets only ProviderError escape
            raise self._failure(exc) from None

    async def stream(self, request: CompletionRequest) -> AsyncIterator[StreamEvent]:
        """Yield text deltas, then one event with the final completion.

        Tool calls and usage arrive with the chunks and appear in the final
        completion. Raises ``ProviderError``: ``stream_interrupted`` when the stream
        breaks after a delta was yielded, else the code of the failure (module table).
        """
        model, contents, config = self._prepare(request)
        started = time.perf_counter()
        answer = wire.Answer()
        delivered = False
        try:
            chunks = await self._client.aio.models.generate_content_stream(
                model=model, contents=contents, config=config
            )
            try:
                async for chunk in chunks:
                    delta = answer.add(chunk)
                    if delta:
                        delivered = True
                        yield StreamEvent(delta=delta)
            finally:
                # An early exit by the consumer must still release the connection.
                closer = getattr(chunks, "aclose", None)
                if closer is not None:
                    await closer()
            if not answer.done:
                # The connection closed cleanly but the answer never finished.
                code = "stream_interrupted" if delivered else "connection"
                raise self._interrupted("stream ended before a finishReason", code)
            completion = self._finish(request, model, answer, started)
        except ProviderError:
            raise
        except Exception as exc:  # noqa: BLE001 - the protocol lets only ProviderError escape
            raise self._failure(exc, delivered=delivered) from None
        yield StreamEvent(completion=completion)

    # ------------------------------------------------------------------ helpers

    def _prepare(
        self, request: CompletionRequest
    ) -> tuple[str, list[types.Content], types.GenerateContentConfig]:
        if self._closed:
            raise self._error("the provider is closed", "unavailable")
        model = request.model or self._default_model
        config = wire.config(request, max_tokens=self._max_tokens, timeout_s=request.timeout_s)
        return model, wire.contents(request.messages), config

    def _finish(
        self, request: CompletionRequest, model: str, answer: wire.Answer, started: float
    ) -> Completion:
        """The :class:`Completion` of a finished answer; raises ``ProviderError``."""
        reason, calls = answer.outcome()
        text = "".join(answer.text)
        data: Any = None
        if request.output_schema is not None and not calls:
            try:
                data = json.loads(text)
            except ValueError:
                raise self._error(
                    f"structured output is not valid JSON (finish_reason={reason})",
                    "server_error",
                ) from None
        # The API reports the model version it ran ("gemini-2.5-flash-001" style names
        # price by prefix); a bare "models/x" request name is priced as "x".
        priced = (answer.model or model).removeprefix("models/")
        return Completion(
            text=text,
            provider=self.name,
            model=priced,
            usage=answer.usage,
            cost_usd=self._cost(priced, answer),
            latency_ms=(time.perf_counter() - started) * 1000,
            finish_reason=reason,
            tool_calls=calls,
            data=data,
        )

    def _cost(self, model: str, answer: wire.Answer) -> float:
        if not self._prices.known(self.name, model) and model not in self._unpriced:
            self._unpriced.add(model)
            _log.warning("no price for gemini model %r; its cost is reported as 0.0", model)
        return self._prices.cost(self.name, model, answer.usage)

    # ------------------------------------------------------------------ errors

    def _error(self, message: str, code: str, **kwargs: Any) -> ProviderError:
        return provider_error(
            message, code=code, provider=self.name, secrets=[self._api_key], **kwargs
        )

    def _interrupted(self, message: str, code: str) -> ProviderError:
        error = self._error(message, code)
        if code == "stream_interrupted":
            # Not in RETRYABLE_CODES (the deltas are out), but a fresh whole call may succeed.
            error.retryable = True
        return error

    def _failure(self, exc: Exception, *, delivered: bool = False) -> ProviderError:
        """Our :class:`ProviderError` for an SDK, transport or decoding failure."""
        what = f"{type(exc).__name__}: {str(exc)[:_MAX_MESSAGE]}"
        if isinstance(exc, genai_errors.APIError):
            return self._api_failure(exc, delivered=delivered)
        if isinstance(exc, httpx2.TimeoutException | TimeoutError):
            return self._interrupted(what, "stream_interrupted" if delivered else "timeout")
        if isinstance(exc, httpx2.TransportError | OSError):
            return self._interrupted(what, "stream_interrupted" if delivered else "connection")
        if isinstance(
            exc,
            json.JSONDecodeError | genai_errors.UnknownApiResponseError | pydantic.ValidationError,
        ):
            return self._interrupted(
                f"malformed response: {what}",
                "stream_interrupted" if delivered else "server_error",
            )
        if isinstance(exc, ValueError | TypeError):
            # The SDK refuses requests it cannot express before sending them.
            return self._error(f"request rejected by the SDK: {what}", "invalid_request")
        return self._error(f"unexpected failure: {what}", "server_error")

    def _api_failure(self, exc: genai_errors.APIError, *, delivered: bool) -> ProviderError:
        status = exc.code if isinstance(exc.code, int) and exc.code else 500
        message = f"{status} {exc.status or ''}: {(exc.message or '')[:_MAX_MESSAGE]}"
        code = error_for_status(status)
        if status == 400 and _reason(exc.details) == "API_KEY_INVALID":
            code = "auth"  # Gemini reports a bad key as 400 INVALID_ARGUMENT
        if delivered and code in ("rate_limited", "overloaded", "server_error", "timeout"):
            return self._interrupted(message, "stream_interrupted")
        retry_after = None
        if code == "rate_limited":
            headers = getattr(exc.response, "headers", None)
            retry_after = parse_retry_after(dict(headers) if headers else None)
            if retry_after is None:
                retry_after = _retry_delay(exc.details)
        return self._error(message, code, status=status, retry_after_s=retry_after)


def _details(body: Any) -> list[Any]:
    error = body.get("error", body) if isinstance(body, dict) else {}
    details = error.get("details") if isinstance(error, dict) else None
    return details if isinstance(details, list) else []


def _reason(body: Any) -> str | None:
    """The ``ErrorInfo.reason`` of an error body (``API_KEY_INVALID``...), if any."""
    for detail in _details(body):
        if isinstance(detail, dict) and isinstance(detail.get("reason"), str):
            return str(detail["reason"])
    return None


def _retry_delay(body: Any) -> float | None:
    """Seconds from a ``RetryInfo.retryDelay`` detail such as ``"1.5s"``, if any."""
    for detail in _details(body):
        delay = detail.get("retryDelay") if isinstance(detail, dict) else None
        if isinstance(delay, str) and delay.endswith("s"):
            try:
                return max(0.0, float(delay[:-1]))
            except ValueError:
                return None
    return None
