"""The Anthropic provider: Claude through the official ``anthropic`` SDK (Messages API).

One ``AsyncAnthropic`` client is created per provider and kept (its connection
pool belongs to the event loop that first uses it); :meth:`AnthropicProvider.aclose`
releases it. The SDK's own retries are off (``max_retries=0``): the resilience
layer above decides what to retry, so attempts never multiply.

Behaviour worth knowing:

- Models: ``request.model`` is looked up in the aliases (``haiku``, ``sonnet``,
  ``opus`` by default), an unknown name is sent as is, no name means
  ``default_model``. ``Completion.model`` is the model the API says answered.
- ``output_schema`` adds a ``structured_output`` tool whose input schema is the
  output schema, forced when it is the only tool (``tool_choice: any`` beside
  other tools). Its input becomes ``Completion.data``, ``text`` its JSON; it never
  appears in ``tool_calls``. ``data`` stays None if the model did not call it. A
  schema that is not an object (tool inputs must be) is sent wrapped as the one
  property ``result`` of an object and unwrapped on the way back.
- ``temperature`` and ``extra["top_p"]``/``extra["top_k"]`` are sent in the body;
  other ``extra`` keys are ignored.
- Usage counts cached prompt tokens as input; cost comes from the price table.
- ``stream`` yields text deltas as they arrive, then one event with the final
  completion. For structured output, whose answer arrives as tool input rather than
  text, the JSON text is yielded as one delta before the final event.

Failure semantics: ``complete`` and ``stream`` raise only
:class:`~pipelines.errors.ProviderError` (codes in :mod:`pipelines.providers._errors`;
``content_filtered`` when the model refuses). A stream that fails after some
deltas raises after them; nothing is retried here. The API key never appears in
``repr``, messages or logs.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping

import anthropic

from pipelines.errors import ProviderError
from pipelines.providers._anthropic_wire import (
    PROVIDER,
    Interpreted,
    StreamAssembler,
    WireRequest,
    build_request,
    interpret,
    map_error,
    text_and_tools,
    usage_of,
)
from pipelines.providers._errors import provider_error
from pipelines.providers.base import Completion, CompletionRequest, StreamEvent, Usage
from pipelines.providers.pricing import PriceTable

__all__ = ["DEFAULT_ALIASES", "AnthropicProvider"]

#: Short names a pipeline may use for Claude models; a provider's ``aliases`` add to them.
DEFAULT_ALIASES: Mapping[str, str] = {
    "haiku": "claude-haiku-4-5",
    "sonnet": "claude-sonnet-4-6",
    "opus": "claude-opus-4-6",
}


class AnthropicProvider:
    """Claude via the Messages API; see the module docstring for its contract."""

    name = PROVIDER

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str | None = None,
        timeout_s: float = 60.0,
        prices: PriceTable | None = None,
        aliases: Mapping[str, str] | None = None,
        default_model: str = "claude-sonnet-4-6",
        max_tokens: int = 4096,
    ) -> None:
        self._api_key = api_key
        self.base_url = base_url
        self.timeout_s = timeout_s
        self.default_model = default_model
        self.max_tokens = max_tokens
        self.aliases: Mapping[str, str] = {**DEFAULT_ALIASES, **(aliases or {})}
        self._prices = prices if prices is not None else PriceTable.load()
        self._client = anthropic.AsyncAnthropic(
            api_key=api_key, base_url=base_url, max_retries=0, timeout=timeout_s
        )

    def __repr__(self) -> str:
        # Deliberately without the key: reprs end up in logs and tracebacks.
        return (
            f"AnthropicProvider(base_url={self.base_url!r}, default_model={self.default_model!r}, "
            f"timeout_s={self.timeout_s!r})"
        )

    def resolve_model(self, requested: str | None) -> str:
        """The API model id for a requested name (alias, full id, or None for the default)."""
        if not requested:
            return self.default_model
        return self.aliases.get(requested, requested)

    async def complete(self, request: CompletionRequest) -> Completion:
        """Run one Messages call; raises ``ProviderError`` (see the module docstring)."""
        wire = self._wire(request)
        started = time.perf_counter()
        try:
            message = await self._client.messages.create(
                model=wire.model,
                max_tokens=wire.max_tokens,
                messages=wire.messages,
                system=wire.system,
                tools=wire.tools,
                tool_choice=wire.tool_choice,
                extra_body=wire.extra_body,
                timeout=wire.timeout,
            )
        # The SDK raises its own errors, httpx2's (mid-body) and json's (malformed body);
        # the contract is that only ProviderError leaves, so nothing is left out here.
        except Exception as exc:  # noqa: BLE001 - mapped, never swallowed
            raise self._error(exc) from None
        meaning = interpret(
            text_and_tools(message.content),
            message.stop_reason,
            output_schema=request.output_schema,
            refusal=message.stop_details,
        )
        model = message.model or wire.model
        return self._completion(meaning, model, usage_of(message.usage), started)

    async def stream(self, request: CompletionRequest) -> AsyncIterator[StreamEvent]:
        """Yield text deltas as they arrive, then the final completion.

        Raises ``ProviderError`` before the first delta (request refused) or after
        the last one received (the stream broke: ``connection``/``server_error``).
        """
        wire = self._wire(request)
        structured = request.output_schema is not None
        started = time.perf_counter()
        assembler = StreamAssembler()
        try:
            events = await self._client.messages.create(
                model=wire.model,
                max_tokens=wire.max_tokens,
                messages=wire.messages,
                system=wire.system,
                tools=wire.tools,
                tool_choice=wire.tool_choice,
                extra_body=wire.extra_body,
                timeout=wire.timeout,
                stream=True,
            )
        except Exception as exc:  # noqa: BLE001 - see complete()
            raise self._error(exc) from None
        async with events:  # closes the HTTP response if the consumer stops early
            iterator = aiter(events)
            while True:
                # The `yield` stays outside the try: what the consumer throws into
                # this generator must reach it unchanged, not mapped.
                try:
                    event = await anext(iterator)
                    delta = assembler.feed(event)
                except StopAsyncIteration:
                    break
                except Exception as exc:  # noqa: BLE001 - see complete()
                    raise self._error(exc) from None
                if delta:
                    yield StreamEvent(delta=delta)
        completion = self._finish(assembler, wire, request, started)
        if structured and completion.data is not None:
            yield StreamEvent(delta=completion.text)
        yield StreamEvent(completion=completion)

    async def aclose(self) -> None:
        """Close the HTTP client; the provider cannot be used afterwards."""
        await self._client.close()

    # ------------------------------------------------------------------ helpers

    def _wire(self, request: CompletionRequest) -> WireRequest:
        max_tokens = request.max_tokens if request.max_tokens > 0 else self.max_tokens
        return build_request(
            request, model=self.resolve_model(request.model), max_tokens=max_tokens
        )

    def _finish(
        self,
        assembler: StreamAssembler,
        wire: WireRequest,
        request: CompletionRequest,
        started: float,
    ) -> Completion:
        if not assembler.finished:
            # The body ended cleanly but without message_stop: a server fault, not ours.
            raise provider_error(
                "stream ended before message_stop", code="server_error", provider=self.name
            )
        meaning = interpret(
            assembler.blocks(),
            assembler.stop_reason,
            output_schema=request.output_schema,
            refusal=assembler.refusal,
        )
        return self._completion(meaning, assembler.model or wire.model, assembler.usage, started)

    def _completion(
        self, meaning: Interpreted, model: str, usage: Usage, started: float
    ) -> Completion:
        return Completion(
            text=meaning.text,
            provider=self.name,
            model=model,
            usage=usage,
            cost_usd=self._prices.cost(self.name, model, usage),
            latency_ms=(time.perf_counter() - started) * 1000,
            finish_reason=meaning.finish_reason,
            tool_calls=meaning.tool_calls,
            data=meaning.data,
        )

    def _error(self, exc: BaseException) -> ProviderError:
        return map_error(exc, secrets=[self._api_key])
