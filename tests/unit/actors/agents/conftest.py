"""Fixtures for the agent tests: a copy of the sample project and a local backend."""

from __future__ import annotations

import json
import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from actors.agents.local import LocalBackend
from pipelines.providers.base import CompletionRequest
from pipelines.providers.registry import ProviderRegistry
from pipelines.testing import FakeProvider

SAMPLE = Path(__file__).resolve().parents[4] / "examples" / "sample_project"


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A writable copy of the sample project (agents may apply changes to it)."""
    root = tmp_path / "ws"
    shutil.copytree(SAMPLE, root / "examples" / "sample_project")
    return root


def prompt_of(request: CompletionRequest) -> str:
    return "\n".join(str(m.content) for m in request.messages)


def json_responder(prompts: list[str]) -> Callable[[CompletionRequest], str]:
    """A model stand-in answering each library step in its schema; records prompts."""

    def respond(request: CompletionRequest) -> str:
        prompt = prompt_of(request)
        prompts.append(prompt)
        props = set((request.output_schema or {}).get("properties", {}))
        if {"findings", "recommendations"} <= props:
            return json.dumps(
                {"summary": "model review", "findings": [], "recommendations": ["fix eval"]}
            )
        if "changes" in props:
            return json.dumps(
                {"summary": "model refactoring", "changes": [], "recommendations": []}
            )
        if "subtasks" in props:
            return json.dumps({"summary": "bad plan", "subtasks": "not a list"})
        if props == {"type", "confidence"}:
            return json.dumps({"type": "general", "confidence": 0.9})
        return "a model answer"

    return respond


@pytest.fixture
async def offline_backend(tmp_path: Path, workspace: Path) -> AsyncIterator[LocalBackend]:
    backend = LocalBackend(
        f"sqlite:///{tmp_path / 'db.sqlite'}",
        workspace=str(workspace),
        registry_factory=lambda: ProviderRegistry(env={}),
    )
    yield backend
    await backend.close()


def fake_backend(
    tmp_path: Path, workspace: Path, provider: FakeProvider, **kw: Any
) -> LocalBackend:
    return LocalBackend(
        f"sqlite:///{tmp_path / 'db.sqlite'}",
        workspace=str(workspace),
        registry_factory=lambda: ProviderRegistry({"anthropic": provider}, env={}),
        **kw,
    )
