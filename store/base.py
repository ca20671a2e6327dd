"""The :class:`Store` protocol and the helpers both backends share.

One async interface, two implementations (:class:`store.sqlite.SqliteStore`,
:class:`store.postgres.PostgresStore`) held to one contract test suite.

Failure semantics, for every method:

- The database goes away mid-call (server down, connection cut, file locked
  beyond the busy timeout): the call raises :class:`StoreUnavailable`
  (``retryable``). A write either committed or did not; if the failure hit the
  commit itself the caller cannot tell which, so every write is idempotent
  (``turn_id``, ``run_id``, record ids) or reports :class:`AlreadyExists`.
- Nothing is retried automatically: the caller (an actor with its own policy)
  decides. Writes are durable when they return.
- A cancelled call may still complete: the statement already sent to the
  database (or queued on the SQLite worker) runs to its end.
- After :meth:`Store.close` every call raises :class:`StoreUnavailable` with code
  ``store_closed``; :meth:`Store.ping` returns ``False``.

Both backends reject what only one could store, so they behave the same:
NaN/Infinity, non-JSON values, NUL characters and lone surrogates in JSON fields
or free text raise :class:`InvalidRequest` (PostgreSQL cannot store NUL).
"""

from __future__ import annotations

import enum
import hashlib
import json
import re
from collections.abc import Sequence
from types import TracebackType
from typing import Any, Final, Protocol, Self, runtime_checkable

from store.errors import InvalidRequest
from store.models import (
    ApiKey,
    Event,
    Feedback,
    NewTurn,
    PipelineVersion,
    RunRecord,
    Session,
    TrainingRecord,
    Turn,
)

__all__ = [
    "KEEP",
    "LAST_USED_RESOLUTION_S",
    "AppendTurn",
    "Keep",
    "Store",
    "encode_json",
    "hash_api_key",
    "redact_url",
]

LAST_USED_RESOLUTION_S: Final = 60.0
"""``find_api_key`` refreshes ``last_used_at`` at most this often per key, so
authenticating a request is not a durable write every time."""


class Keep(enum.Enum):
    """Marks an argument of ``update_*`` as "leave unchanged" where ``None`` means clear."""

    KEEP = "keep"


KEEP: Final = Keep.KEEP


class AppendTurn:
    """``append_turn`` as the one-turn case of ``append_turns`` (both backends)."""

    async def append_turns(
        self,
        session_id: str,
        turns: Sequence[NewTurn],
        *,
        context: dict[str, Any] | None = None,
        active_agent: str | Keep | None = KEEP,
    ) -> list[Turn]:
        raise NotImplementedError

    async def append_turn(
        self,
        session_id: str,
        *,
        turn_id: str,
        role: str,
        content: str,
        meta: dict[str, Any] | None = None,
        context: dict[str, Any] | None = None,
        active_agent: str | Keep | None = KEEP,
    ) -> Turn:
        new = NewTurn(turn_id, role, content, meta or {})
        (turn,) = await self.append_turns(
            session_id, [new], context=context, active_agent=active_agent
        )
        return turn


@runtime_checkable
class Store(Protocol):
    """Persistence for sessions, runs, checkpoints, learning data, API keys and feedback.

    Raises, besides what each method names: :class:`StoreUnavailable` when the
    database cannot be reached, :class:`InvalidRequest` for unstorable values.
    """

    backend: str  # "sqlite" | "postgresql"

    async def open(self) -> None:
        """Connect (idempotent); raises :class:`StoreUnavailable` fast when unreachable."""
        ...

    async def migrate(self) -> int:
        """Apply pending migrations, one transaction each; returns the schema version.

        Raises :class:`StoreConfigError` when the database is newer than this code,
        :class:`StoreError` (``migration_failed``) when a migration fails (rolled back).
        """
        ...

    async def close(self) -> None:
        """Release connections (idempotent); later calls raise ``store_closed``."""
        ...

    async def ping(self) -> bool:
        """Whether the database answers; never raises."""
        ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    # ------------------------------------------------------------ sessions & turns

    async def create_session(
        self, session_id: str, *, user_id: str | None = None, meta: dict[str, Any] | None = None
    ) -> Session:
        """Create the session, or return the existing one unchanged (idempotent)."""
        ...

    async def get_session(self, session_id: str) -> Session | None:
        """The session, or ``None``."""
        ...

    async def list_sessions(
        self, *, user_id: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[Session]:
        """Sessions, most recently updated first; ``user_id=None`` means every user."""
        ...

    async def delete_session(self, session_id: str) -> bool:
        """Delete the session, its turns and its feedback; ``False`` if it did not exist."""
        ...

    async def update_session(
        self,
        session_id: str,
        *,
        context: dict[str, Any] | None = None,
        active_agent: str | Keep | None = KEEP,
        meta: dict[str, Any] | None = None,
    ) -> Session:
        """Replace ``context``/``meta`` when given, set or clear (``None``) ``active_agent``.

        Bumps ``updated_at``. Raises :class:`NotFound` for an unknown session.
        """
        ...

    async def append_turn(
        self,
        session_id: str,
        *,
        turn_id: str,
        role: str,
        content: str,
        meta: dict[str, Any] | None = None,
        context: dict[str, Any] | None = None,
        active_agent: str | Keep | None = KEEP,
    ) -> Turn:
        """Append a turn with the next ``seq``; durable (committed) when it returns.

        Idempotent by ``(session_id, turn_id)``: a repeat returns the stored turn
        and writes nothing. ``seq`` runs 1, 2, 3... per session without gaps, also
        under concurrent appends. A missing session is created (``user_id`` None).
        ``context`` (when given) and ``active_agent`` (unless ``KEEP``) are set on the
        session in the same transaction: a turn and the context it produced are
        stored together or not at all.
        """
        ...

    async def append_turns(
        self,
        session_id: str,
        turns: Sequence[NewTurn],
        *,
        context: dict[str, Any] | None = None,
        active_agent: str | Keep | None = KEEP,
    ) -> list[Turn]:
        """Append ``turns`` in order in one transaction, as :meth:`append_turn` would one
        by one (each idempotent by its ``turn_id``; consecutive ``seq``), and set
        ``context``/``active_agent`` with them. If every turn is a repeat, nothing is
        written. Returns the stored turns in the order given.
        """
        ...

    async def turns(
        self,
        session_id: str,
        *,
        limit: int | None = None,
        after_seq: int = 0,
        last: int | None = None,
    ) -> list[Turn]:
        """Turns with ``seq > after_seq`` in ascending ``seq``: the first ``limit``,
        or the last ``last`` (still ascending). Both at once is :class:`InvalidRequest`.
        """
        ...

    # ------------------------------------------------------------ runs & checkpoints

    async def create_run(self, run: RunRecord) -> bool:
        """Insert the run; a repeat of an existing ``run_id`` writes nothing. Returns
        whether this call created it (so a caller learns of a repeat without a read)."""
        ...

    async def update_run(
        self,
        run_id: str,
        *,
        status: str | None = None,
        executor: str | None = None,
        node: str | None = None,
        result: dict[str, Any] | None = None,
        error: dict[str, Any] | None = None,
    ) -> RunRecord:
        """Set the given fields (``None``: unchanged), bump ``updated_at``, return the run.

        Raises :class:`NotFound` for an unknown run, :class:`InvalidRequest` for an
        unknown status. Transitions are not policed (a failed run may run again).
        """
        ...

    async def get_run(self, run_id: str) -> RunRecord | None:
        """The run, or ``None``."""
        ...

    async def list_runs(
        self, *, status: str | None = None, executor: str | None = None, limit: int = 100
    ) -> list[RunRecord]:
        """Runs matching the filters, newest ``created_at`` first."""
        ...

    async def save_checkpoint(self, run_key: str, data: dict[str, Any]) -> None:
        """Insert or replace the checkpoint of ``run_key``; durable on return."""
        ...

    async def load_checkpoint(self, run_key: str) -> dict[str, Any] | None:
        """The checkpoint data, or ``None``."""
        ...

    async def clear_checkpoint(self, run_key: str) -> None:
        """Delete the checkpoint; a missing one is not an error."""
        ...

    # ------------------------------------------------------------ learning data

    async def add_training_record(self, record: TrainingRecord) -> str:
        """Store the record and return its id; a repeat of an id writes nothing."""
        ...

    async def training_records(
        self, *, pipeline: str | None = None, since: float | None = None, limit: int = 1000
    ) -> list[TrainingRecord]:
        """Records with ``created_at >= since``, oldest first (a cursor for curation)."""
        ...

    async def add_events(self, events: Sequence[Event]) -> None:
        """Store all events in one transaction (all or none); repeated ids are skipped."""
        ...

    async def events(
        self, *, kind: str | None = None, since: float | None = None, limit: int = 1000
    ) -> list[Event]:
        """Events with ``created_at >= since``, oldest first."""
        ...

    async def save_pipeline_version(self, version: PipelineVersion) -> None:
        """Store a new version; raises :class:`AlreadyExists` if (name, version) is taken."""
        ...

    async def pipeline_versions(self, name: str) -> list[PipelineVersion]:
        """Every version of ``name``, ascending."""
        ...

    async def latest_pipeline_version(self, name: str) -> PipelineVersion | None:
        """The highest version of ``name``, or ``None``."""
        ...

    # ------------------------------------------------------------ auth

    async def create_api_key(self, key: ApiKey) -> None:
        """Store the key; raises :class:`AlreadyExists` when its id or hash is taken or
        a non-revoked key has the same name."""
        ...

    async def find_api_key(self, key_hash: str) -> ApiKey | None:
        """The non-revoked key with this hash, or ``None``; refreshes ``last_used_at``
        (at most every :data:`LAST_USED_RESOLUTION_S`)."""
        ...

    async def list_api_keys(self) -> list[ApiKey]:
        """Every key, revoked ones included, oldest first."""
        ...

    async def revoke_api_key(self, name: str) -> bool:
        """Revoke the non-revoked key called ``name``; ``False`` if there is none."""
        ...

    # ------------------------------------------------------------ feedback

    async def add_feedback(self, feedback: Feedback) -> str:
        """Store the feedback and return its id; a repeat of an id writes nothing.

        The session need not exist (stateless API calls carry synthetic ids).
        """
        ...

    async def feedback(self, *, session_id: str | None = None, limit: int = 1000) -> list[Feedback]:
        """Feedback, oldest first, optionally for one session."""
        ...


# ---------------------------------------------------------------- shared helpers


def hash_api_key(raw: str) -> str:
    """The stored form of an API key: SHA-256 hex of a domain prefix and the key.

    No salt and no slow hash: keys are generated with >= 128 bits of entropy, so
    neither dictionaries nor brute force apply, and a fixed hash lets the store
    look a key up by its hash. The prefix keeps these hashes apart from any other
    SHA-256 use of the same bytes.
    """
    return hashlib.sha256(b"elexirion-api-key:v1\x00" + raw.encode("utf-8")).hexdigest()


# A JSON \u0000 escape preceded by an even number of backslashes (an odd number
# would make it the literal text "\u0000", which PostgreSQL stores fine).
_NUL_ESCAPE = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")


def encode_json(value: Any, *, what: str) -> str:
    """``value`` as compact JSON text; raises :class:`InvalidRequest` if unstorable.

    ``what`` names the field in the message.
    """
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise InvalidRequest(f"{what} is not storable as JSON: {exc}") from None
    if _NUL_ESCAPE.search(text):
        raise InvalidRequest(f"{what} contains a NUL character, which PostgreSQL cannot store")
    check_text(text, what=what)
    return text


def check_text(text: str, *, what: str) -> str:
    """Return ``text`` if both backends can store it, else raise :class:`InvalidRequest`."""
    if "\x00" in text:
        raise InvalidRequest(f"{what} contains a NUL character, which PostgreSQL cannot store")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidRequest(f"{what} contains a lone surrogate, which is not UTF-8") from None
    return text


def encode_optional(value: Any, *, what: str) -> str | None:
    """:func:`encode_json`, passing ``None`` through as SQL NULL."""
    return None if value is None else encode_json(value, what=what)


def check_page(*, limit: int | None, offset: int = 0) -> None:
    """Raise :class:`InvalidRequest` for a negative ``limit`` or ``offset``."""
    if (limit is not None and limit < 0) or offset < 0:
        raise InvalidRequest(f"limit and offset must be >= 0, got {limit} and {offset}")


def turn_window(*, limit: int | None, last: int | None) -> int | None:
    """The row count ``turns`` asks for (``None``: all); both bounds is :class:`InvalidRequest`."""
    if limit is not None and last is not None:
        raise InvalidRequest("turns() takes limit (the first n) or last (the last n), not both")
    count = last if last is not None else limit
    check_page(limit=count)
    return count


# Up to the last "@" before any whitespace: a password with an unescaped "/" or
# "@" is still hidden (over-redacting an odd URL beats leaking a password).
_URL_PASSWORD = re.compile(r"(://[^/:@\s]*):[^\s]*@")
_KV_PASSWORD = re.compile(r"(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)
_QUERY_PASSWORD = re.compile(r"([?&]password=)[^&#]*", re.IGNORECASE)


def redact_url(url: str) -> str:
    """``url`` (or a ``key=value`` DSN) with any password replaced by ``***``."""
    url = _URL_PASSWORD.sub(r"\1:***@", url)
    url = _QUERY_PASSWORD.sub(r"\1***", url)
    return _KV_PASSWORD.sub(r"\1***", url)
