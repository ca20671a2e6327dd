"""Persistence (pure, no Ray): SQLite (embedded default) and PostgreSQL behind one
async interface, :class:`Store`.

    store = await open_store("sqlite:///.elexirion/elexirion.db")  # or postgresql://...
    await store.append_turn("s1", turn_id="t1", role="user", content="hello")

Not re-exported, to keep this import light: ``store.postgres.PostgresStore``
(loads psycopg) and ``store.checkpointer.StoreCheckpointer`` (loads the pipeline
runner). Errors are in :mod:`store.errors`, whose docstring draws the tree.
"""

from __future__ import annotations

from store.base import KEEP, LAST_USED_RESOLUTION_S, Keep, Store, hash_api_key, redact_url
from store.errors import (
    AlreadyExists,
    InvalidRequest,
    NotFound,
    StoreConfigError,
    StoreError,
    StoreUnavailable,
)
from store.factory import DEFAULT_URL, open_store, store_from_url
from store.models import (
    ApiKey,
    Event,
    Feedback,
    PipelineDna,
    PipelineVersion,
    RunRecord,
    Session,
    TrainingRecord,
    Turn,
)
from store.sqlite import SqliteStore

__all__ = [
    "DEFAULT_URL",
    "KEEP",
    "LAST_USED_RESOLUTION_S",
    "AlreadyExists",
    "ApiKey",
    "Event",
    "Feedback",
    "InvalidRequest",
    "Keep",
    "NotFound",
    "PipelineDna",
    "PipelineVersion",
    "RunRecord",
    "Session",
    "SqliteStore",
    "Store",
    "StoreConfigError",
    "StoreError",
    "StoreUnavailable",
    "TrainingRecord",
    "Turn",
    "hash_api_key",
    "open_store",
    "redact_url",
    "store_from_url",
]
