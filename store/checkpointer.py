"""Step checkpoints in the store: the runner's ``Checkpointer`` over ``Store``.

:class:`StoreCheckpointer` keeps each :class:`pipelines.runner.checkpoint.Checkpoint`
as one JSON object keyed by its run key, so a run whose executor died resumes on
another executor from its last finished step. Values follow the JSON file
checkpointer's rule: what is not JSON is stored as its ``str()``; non-finite
floats (NaN, infinities) too, since neither backend stores them.

Failure semantics: ``save`` is durable when it returns (the store commits
before returning); store errors propagate unchanged (a :class:`StoreUnavailable`
is retryable for the caller; nothing is retried here). A stored checkpoint that
no longer fits the ``Checkpoint`` fields raises the runner's ``ConfigError``,
naming the run key, as the file checkpointer does for a corrupt file.

Importing this module loads the pipeline runner, so :mod:`store` does not
re-export it.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from pipelines.errors import ConfigError
from pipelines.runner.checkpoint import Checkpoint, Checkpointer
from store.base import Store

__all__ = ["StoreCheckpointer"]


class StoreCheckpointer:
    """Keeps pipeline checkpoints in a :class:`store.base.Store`."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def load(self, run_key: str) -> Checkpoint | None:
        """The checkpoint saved for ``run_key``, or ``None``."""
        data = await self.store.load_checkpoint(run_key)
        if data is None:
            return None
        try:
            return Checkpoint(**data)
        except TypeError as exc:
            # A corrupt checkpoint must not block the pipeline forever: say so.
            raise ConfigError(
                f"checkpoint {run_key!r} in the {self.store.backend} store is unreadable "
                f"({exc}); clear it to start the run afresh"
            ) from None

    async def save(self, checkpoint: Checkpoint) -> None:
        """Replace the checkpoint of ``checkpoint.run_key``; durable on return."""
        data = _finite(json.loads(json.dumps(asdict(checkpoint), default=str)))
        await self.store.save_checkpoint(checkpoint.run_key, data)

    async def clear(self, run_key: str) -> None:
        """Forget the checkpoint of ``run_key`` (a finished run); missing is fine."""
        await self.store.clear_checkpoint(run_key)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


if TYPE_CHECKING:  # the runner's protocol, checked by mypy

    def _conforms(store: Store) -> Checkpointer:
        return StoreCheckpointer(store)
