"""Call outcomes reach the gateway in batches; the caller never waits on them."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from actors import gateway
from actors.gateway import GatewayActorImpl, RemoteAdmission


class FakeRef:
    def __init__(self, target: Any = None, *, fail: bool = False) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.target, self.fail = target, fail

    async def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        self.calls.append((method, args))
        if self.fail:
            raise ConnectionError("gateway restarting")
        if self.target is not None:
            return await getattr(self.target, method)(*args)
        return None


async def _settle_window() -> None:
    for _ in range(20):
        await asyncio.sleep(0.002)


@pytest.fixture(autouse=True)
def short_window(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gateway, "SETTLE_WINDOW_S", 0.001)


async def test_outcomes_of_one_window_travel_together() -> None:
    ref = FakeRef()
    admission = RemoteAdmission(ref)  # type: ignore[arg-type]
    await admission.settle("anthropic", "m", outcome="success", estimated=10, actual=12)
    await admission.settle("anthropic", "m", outcome="failure", estimated=10, actual=0)
    assert ref.calls == []
    await _settle_window()
    assert ref.calls == [
        (
            "settle_many",
            ([("anthropic", "m", "success", 10, 12), ("anthropic", "m", "failure", 10, 0)],),
        )
    ]


async def test_gateway_down_drops_the_batch_without_raising() -> None:
    ref = FakeRef(fail=True)
    admission = RemoteAdmission(ref)  # type: ignore[arg-type]
    await admission.settle("anthropic", "m", outcome="success", estimated=1, actual=1)
    await _settle_window()
    assert [c[0] for c in ref.calls] == ["settle_many"]


async def test_settle_many_settles_each_outcome(monkeypatch: pytest.MonkeyPatch) -> None:
    settled: list[tuple[Any, ...]] = []

    class Recorder:
        async def settle(self, provider: str, model: str, **kw: Any) -> None:
            settled.append((provider, model, kw["outcome"], kw["estimated"], kw["actual"]))

    actor = GatewayActorImpl.__new__(GatewayActorImpl)
    actor._admission = Recorder()  # type: ignore[assignment]
    await actor.settle_many([("a", "m1", "success", 5, 6), ("b", "m2", "failure", 5, 0)])
    assert settled == [("a", "m1", "success", 5, 6), ("b", "m2", "failure", 5, 0)]


# ------------------------------------------------------------------ leases


def _resilience(limits: dict[str, Any] | None = None) -> Any:
    from pipelines.providers.resilient import Resilience
    from supervision.breaker import BreakerConfig, BreakerRegistry
    from supervision.testing import FakeClock

    clock = FakeClock()
    res = Resilience(clock=clock, rate_limits=limits or {})
    res.breakers = BreakerRegistry(BreakerConfig(min_calls=100, consecutive_failures=2), clock)
    return res


async def test_lease_only_while_nothing_would_refuse_a_call() -> None:
    """A lease is granted with no rate limit and the breaker closed; not with a rate
    limit to share, and not once the breaker has opened."""
    from pipelines.providers.admission import LocalAdmission
    from supervision.ratelimit import RateLimit

    free = LocalAdmission(_resilience())
    assert free.lease_s("anthropic", "m", 0.5) == 0.5
    for _ in range(2):
        await free.settle("anthropic", "m", outcome="failure", estimated=1, actual=0)
    assert free.lease_s("anthropic", "m", 0.5) == 0.0  # open now
    assert free.lease_s("anthropic", "other-model", 0.5) == 0.5
    limited = LocalAdmission(_resilience({"anthropic": RateLimit(requests_per_min=60)}))
    assert limited.lease_s("anthropic", "m", 0.5) == 0.0


async def test_calls_under_a_lease_do_not_ask_the_gateway(monkeypatch: pytest.MonkeyPatch) -> None:
    """After a granted lease, calls to that provider and model are admitted here until it
    ends; then the gateway is asked again; a refused lease (0) means asking every time."""
    now = [100.0]
    monkeypatch.setattr(gateway.time, "monotonic", lambda: now[0])

    class LeasingRef(FakeRef):
        lease = 0.5

        async def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
            self.calls.append((method, args))
            return self.lease

    ref = LeasingRef()
    admission = RemoteAdmission(ref)  # type: ignore[arg-type]
    for _ in range(3):
        await admission.admit("anthropic", "m", 10)
    assert [c[0] for c in ref.calls] == ["admit"]
    await admission.admit("anthropic", "other", 10)  # leases are per model
    now[0] += 0.6
    await admission.admit("anthropic", "m", 10)
    assert len(ref.calls) == 3
    ref.lease = 0.0
    now[0] += 0.6
    await admission.admit("anthropic", "m", 10)
    await admission.admit("anthropic", "m", 10)
    assert len(ref.calls) == 5
