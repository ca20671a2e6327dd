"""Unit-test configuration: unit tests never start Ray.

An autouse fixture makes ``ray.init`` raise. Importing Ray takes a noticeable
time, so it is never imported here: if ``ray`` is already loaded, ``init`` is
patched at once; otherwise a meta-path hook patches it the moment a test
imports ``ray``. ``monkeypatch`` restores the real ``init`` after each test.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import ModuleType
from typing import Any, NoReturn

import pytest

RAY_REFUSAL = "unit tests never start Ray"


def _refuse_ray_init(*args: Any, **kwargs: Any) -> NoReturn:
    raise RuntimeError(RAY_REFUSAL)


class _PatchingLoader(importlib.abc.Loader):
    """Runs the real loader of ``ray``, then replaces ``ray.init``."""

    def __init__(self, inner: importlib.abc.Loader, monkeypatch: pytest.MonkeyPatch) -> None:
        self._inner = inner
        self._monkeypatch = monkeypatch

    def __getattr__(self, name: str) -> Any:
        # Resource readers, get_filename...: whatever else the real loader offers.
        return getattr(self._inner, name)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self._inner.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self._inner.exec_module(module)
        module.__loader__ = self._inner  # the wrapper's job is done; leave no trace
        if module.__spec__ is not None:
            module.__spec__.loader = self._inner
        self._monkeypatch.setattr(module, "init", _refuse_ray_init, raising=False)


class _RayImportHook(importlib.abc.MetaPathFinder):
    """Finds ``ray`` through the other finders and wraps its loader."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self._monkeypatch = monkeypatch

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != "ray":
            return None
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            if finder is self or find is None:
                continue
            spec: importlib.machinery.ModuleSpec | None = find(fullname, path, target)
            if spec is not None and spec.loader is not None:
                spec.loader = _PatchingLoader(spec.loader, self._monkeypatch)
                return spec
        return None


@contextmanager
def refusing_ray_init(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Inside the block ``ray.init`` raises, whether Ray is loaded now or imported later."""
    ray = sys.modules.get("ray")
    if ray is not None:
        monkeypatch.setattr(ray, "init", _refuse_ray_init, raising=False)
        yield
        return
    hook = _RayImportHook(monkeypatch)
    sys.meta_path.insert(0, hook)  # in place: finders added during the test survive
    try:
        yield
    finally:
        if hook in sys.meta_path:
            sys.meta_path.remove(hook)


@pytest.fixture(autouse=True)
def _no_ray_in_unit_tests(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    with refusing_ray_init(monkeypatch):
        yield
