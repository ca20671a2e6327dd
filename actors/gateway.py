"""The ``gateway`` actor: one view of every provider's health and rate limits for
the whole cluster. Executors ask it before a provider call (:class:`RemoteAdmission`)
and tell it how the call ended (in batches, see :meth:`RemoteAdmission.settle`).
While nothing would refuse a call (no rate limit on the provider, its breaker
closed) the gateway grants a lease of :data:`LEASE_S`: the executor admits further
calls to that provider and model itself until it ends, so the common case costs
no actor call per LLM call; with a rate limit set, every call asks.

Failure semantics: if the gateway is down (restarting, ~0.5 s), admission fails
open after a short wait: calls proceed on local policies only (the alternative,
failing every LLM call while the gateway restarts, is worse). Its state (breaker
windows, buckets) is soft and starts fresh after a restart.
"""

from __future__ import annotations

import os
import time
from typing import Any

from actors._ray import ActorRef
from actors.base import Supervised
from actors.batches import Batches
from pipelines.errors import ProviderError
from pipelines.observability import get_logger
from pipelines.providers.admission import LocalAdmission, Outcome

__all__ = ["LEASE_S", "SETTLE_WINDOW_S", "GatewayActorImpl", "RemoteAdmission"]

_log = get_logger("gateway")
#: How long an executor gathers call outcomes before it sends them to the gateway.
SETTLE_WINDOW_S = 0.02
#: How long a caller admits calls itself after the gateway said nothing would refuse
#: them (no rate limit, breaker closed): a breaker that opens meanwhile is obeyed at
#: most this much later; with a rate limit set, every call asks.
LEASE_S = 0.5


class GatewayActorImpl(Supervised):
    """Hosts the breakers and limiters configured by the settings."""

    def __init__(self, path: str, provider_env: dict[str, str]) -> None:
        self._init_supervised(path)
        os.environ.update(provider_env)
        from pipelines.config import load_settings
        from pipelines.providers.setup import build_resilience

        self._resilience = build_resilience(load_settings())
        self._admission = LocalAdmission(self._resilience)

    async def admit(self, provider: str, model: str, tokens: int) -> float:
        """Admit one call; returns the lease (seconds the caller may admit further calls
        to this provider and model itself, see :meth:`LocalAdmission.lease_s`)."""
        await self._admission.admit(provider, model, tokens)
        return self._admission.lease_s(provider, model, LEASE_S)

    async def settle(
        self, provider: str, model: str, outcome: Outcome, estimated: int, actual: int
    ) -> None:
        await self._admission.settle(
            provider, model, outcome=outcome, estimated=estimated, actual=actual
        )

    async def settle_many(self, outcomes: list[tuple[str, str, Outcome, int, int]]) -> None:
        """:meth:`settle` for a batch of ``(provider, model, outcome, estimated, actual)``."""
        for provider, model, outcome, estimated, actual in outcomes:
            await self.settle(provider, model, outcome, estimated, actual)

    async def snapshot(self) -> dict[str, Any]:
        breakers = self._resilience.breakers.snapshot() if self._resilience.breakers else []
        return {"breakers": breakers, "metrics": self._resilience.metrics.snapshot()}


class RemoteAdmission:
    """:class:`~pipelines.providers.admission.AdmissionControl` served by the gateway."""

    def __init__(self, ref: ActorRef | None = None) -> None:
        self._ref = ref or ActorRef("gateway", deadline_s=2.0)
        self._outcomes: Batches[tuple[str, str, Outcome, int, int]] = Batches(
            self._send_outcomes, window_s=lambda: SETTLE_WINDOW_S
        )
        self._leases: dict[tuple[str, str], float] = {}

    async def admit(self, provider: str, model: str, tokens: int) -> None:
        """Admit a call: by the gateway, or here while its last lease for this provider
        and model runs (no actor call per LLM call when nothing limits them)."""
        from ray.exceptions import RayTaskError

        now = time.monotonic()
        if self._leases.get((provider, model), 0.0) > now:
            return
        try:
            lease = await self._ref.call("admit", provider, model, tokens)
            self._leases[(provider, model)] = now + float(lease or 0.0)
        except ProviderError:
            raise
        except RayTaskError as exc:  # the gateway's ProviderError arrives wrapped
            cause = exc.as_instanceof_cause()
            if isinstance(cause, ProviderError):
                raise cause from None
            raise
        except Exception as exc:  # noqa: BLE001 - fail open: see the module docstring
            _log.warning("gateway_unavailable", error=type(exc).__name__, provider=provider)

    async def settle(
        self, provider: str, model: str, *, outcome: Outcome, estimated: int, actual: int
    ) -> None:
        """Queue the outcome; the outcomes of one :data:`SETTLE_WINDOW_S` reach the gateway
        in one call (a breaker decides at most that much later; the caller never waits)."""
        self._outcomes.add((provider, model, outcome, estimated, actual))

    async def _send_outcomes(self, batch: list[tuple[str, str, Outcome, int, int]]) -> None:
        try:
            await self._ref.call("settle_many", batch)
        except Exception as exc:  # noqa: BLE001 - a lost outcome only delays a breaker decision
            _log.warning("gateway_unavailable", error=type(exc).__name__, outcomes=len(batch))
