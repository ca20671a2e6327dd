"""Fallback chains: try providers in order until one answers.

A chain is built per call from shared :class:`ResilientProvider` links, so every
chain sees the same breakers and limiters. A link is taken when the previous one
failed for any reason a provider can fail (breaker open, non-retryable error,
retries exhausted). A stream moves to the next link only if the failed link
delivered no text; after the first token a failure is raised as
``stream_interrupted`` and nothing is replayed, so text is never duplicated.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from pipelines.errors import ProviderError
from pipelines.observability import ProviderMetrics, get_logger
from pipelines.providers.base import Completion, CompletionRequest, StreamEvent
from pipelines.providers.resilient import DirectProvider, ResilientProvider
from supervision.retry import RetryPolicy

__all__ = ["FallbackChain", "Link"]

_log = get_logger("providers")


@dataclass(frozen=True, slots=True)
class Link:
    """One provider of a chain and the model to ask it for.

    ``keep_request_model`` is true for the provider the request was meant for; other
    links get ``model`` (``None``: that provider's default).
    """

    provider: ResilientProvider | DirectProvider
    model: str | None = None
    keep_request_model: bool = False


class FallbackChain:
    """A :class:`~pipelines.providers.base.Provider` over ordered links."""

    def __init__(
        self, links: Sequence[Link], *, metrics: ProviderMetrics, retry: RetryPolicy | None = None
    ) -> None:
        if not links:
            raise ValueError("a fallback chain needs at least one provider")
        self.links = tuple(links)
        self.name = self.links[0].provider.name
        self._metrics = metrics
        self._retry = retry

    def __repr__(self) -> str:
        return "FallbackChain(" + " -> ".join(link.provider.name for link in self.links) + ")"

    def _request(self, link: Link, request: CompletionRequest) -> CompletionRequest:
        model = request.model if link.keep_request_model else link.model
        return dataclasses.replace(request, model=model)

    async def complete(self, request: CompletionRequest) -> Completion:
        """The first link's answer that succeeds; raises the last link's ``ProviderError``."""
        failed: list[str] = []
        last: ProviderError | None = None
        for index, link in enumerate(self.links):
            try:
                completion = await link.provider.complete(
                    self._request(link, request), retry=self._retry
                )
            except ProviderError as exc:
                last = exc
                failed.append(link.provider.name)
                if index + 1 < len(self.links):
                    self._fallback(link, self.links[index + 1], exc)
                continue
            return (
                dataclasses.replace(completion, fallback_from=tuple(failed))
                if failed
                else completion
            )
        raise _exhausted(failed, last)

    async def stream(self, request: CompletionRequest) -> AsyncIterator[StreamEvent]:
        """Deltas from the first link that starts; no fallback once text was delivered."""
        failed: list[str] = []
        last: ProviderError | None = None
        for index, link in enumerate(self.links):
            delivered = 0
            try:
                async for event in link.provider.stream(
                    self._request(link, request), retry=self._retry
                ):
                    delivered += len(event.delta)
                    final = event.completion
                    if final is not None and failed:
                        final = dataclasses.replace(final, fallback_from=tuple(failed))
                    yield StreamEvent(event.delta, final)
                return
            except ProviderError as exc:
                if delivered:
                    self._metrics.count(
                        "stream_interrupted", provider=link.provider.name, code=exc.code
                    )
                    raise ProviderError(
                        f"{link.provider.name}: stream failed after {delivered} characters "
                        f"were delivered ({exc.code}); not replayed on another provider, "
                        "which would duplicate text",
                        code="stream_interrupted",
                        retryable=False,
                        provider=link.provider.name,
                    ) from exc
                last = exc
                failed.append(link.provider.name)
                if index + 1 < len(self.links):
                    self._fallback(link, self.links[index + 1], exc)
        raise _exhausted(failed, last)

    def _fallback(self, failed: Link, to: Link, error: ProviderError) -> None:
        self._metrics.count("fallback", provider=failed.provider.name, code=error.code)
        _log.warning(
            "provider_fallback", provider=failed.provider.name, to=to.provider.name, code=error.code
        )


def _exhausted(failed: list[str], last: ProviderError | None) -> ProviderError:
    if last is None:  # unreachable: a chain has at least one link, and each failure sets it
        return ProviderError("the fallback chain has no providers", code="unavailable")
    return ProviderError(
        f"every provider of the chain failed ({' -> '.join(failed)}); last: {last.message}",
        code=last.code,
        retryable=last.retryable,
        provider=last.provider,
        retry_after_s=last.retry_after_s,
        status=last.status,
    )
