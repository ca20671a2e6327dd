"""Shared helpers for runner tests: load YAML text, run it with a fake provider in tmp dirs."""

from __future__ import annotations

import textwrap
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from pipelines.loader import load_pipeline_text
from pipelines.providers.registry import ProviderRegistry
from pipelines.runner import MemoryCheckpointer, MemorySessionStore, Runner
from pipelines.testing import FakeProvider

RunPipeline = Callable[..., Awaitable[dict[str, Any]]]


class FakeSleep:
    """Records backoff waits instead of sleeping."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def fake() -> FakeProvider:
    return FakeProvider(default="fake answer")


@pytest.fixture
def sleeper() -> FakeSleep:
    return FakeSleep()


@pytest.fixture
def make_runner(tmp_path: Path, fake: FakeProvider, sleeper: FakeSleep) -> Callable[..., Runner]:
    def build(**kwargs: Any) -> Runner:
        providers = kwargs.pop(
            "providers",
            ProviderRegistry({"anthropic": fake, "gemini": fake, "fake": fake}, env={}),
        )
        kwargs.setdefault("checkpointer", MemoryCheckpointer())
        kwargs.setdefault("sessions", MemorySessionStore())
        kwargs.setdefault("workspace_dir", tmp_path / "ws")
        kwargs.setdefault("output_dir", tmp_path / "out")
        return Runner(providers=providers, sleep=sleeper, **kwargs)

    return build


@pytest.fixture
def run_yaml(make_runner: Callable[..., Runner], tmp_path: Path) -> RunPipeline:
    async def go(
        text: str,
        inputs: dict[str, Any] | None = None,
        runner: Runner | None = None,
        base_dir: Path | None = None,
    ) -> dict[str, Any]:
        loaded = load_pipeline_text(
            textwrap.dedent(text), source="t.yaml", base_dir=base_dir or tmp_path
        )
        result = await (runner or make_runner()).run(loaded, inputs or {})
        return result.results

    return go
