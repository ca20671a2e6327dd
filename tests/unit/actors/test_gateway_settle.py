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
