"""The records the store keeps: frozen dataclasses with JSON-serialisable fields.

Timestamps are seconds since the epoch (``float``), as the store's clock gave
them. ``dict`` fields hold JSON objects; what goes in comes back equal (keys as
strings). Records validate their own rules on construction and raise
:class:`store.errors.InvalidRequest`, so an invalid record never exists, in
memory or in the database. Every record pickles (it crosses actor boundaries).

Callers build :class:`RunRecord`, :class:`TrainingRecord`, :class:`Event`,
:class:`PipelineVersion`, :class:`ApiKey` and :class:`Feedback`; ids and
``created_at`` default to a fresh UUID and the current time (an empty ``id``
is replaced by a fresh one too). :class:`Session`
and :class:`Turn` are made by the store only.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from store.errors import InvalidRequest

__all__ = [
    "DNA_ORIGINS",
    "RUN_STATUSES",
    "ApiKey",
    "DnaOrigin",
    "Event",
    "Feedback",
    "NewTurn",
    "PipelineDna",
    "PipelineVersion",
    "RunRecord",
    "RunStatus",
    "Session",
    "TrainingRecord",
    "Turn",
    "check_run_status",
]

RunStatus = Literal["pending", "running", "succeeded", "failed"]
RUN_STATUSES: frozenset[str] = frozenset(get_args(RunStatus))
DnaOrigin = Literal["human", "genesis", "optimizer", "mutation"]
DNA_ORIGINS: frozenset[str] = frozenset(get_args(DnaOrigin))


def _new_id() -> str:
    return uuid.uuid4().hex


def _fill_id(record: Any) -> None:
    # An empty id means "assign one": callers that build records from loose data
    # (telemetry batches) need not invent ids, and "" never becomes a shared key.
    if not record.id:
        object.__setattr__(record, "id", _new_id())


def check_run_status(status: str) -> None:
    """Raise :class:`InvalidRequest` unless ``status`` is one of :data:`RUN_STATUSES`."""
    if status not in RUN_STATUSES:
        raise InvalidRequest(f"run status {status!r} is not one of {sorted(RUN_STATUSES)}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Session:
    """A conversation: its owner, accumulated context and number of turns."""

    id: str
    user_id: str | None
    created_at: float
    updated_at: float
    context: dict[str, Any]
    meta: dict[str, Any]
    active_agent: str | None
    turn_count: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Turn:
    """One message of a session; ``seq`` is 1, 2, 3... per session, without gaps."""

    session_id: str
    seq: int
    turn_id: str
    role: str
    content: str
    meta: dict[str, Any]
    created_at: float


@dataclass(frozen=True, slots=True)
class NewTurn:
    """A turn to append (:meth:`store.base.Store.append_turns`): the store numbers it."""

    turn_id: str
    role: str
    content: str
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class RunRecord:
    """One pipeline run: what ran, where, and how it ended."""

    run_id: str
    pipeline: str
    status: RunStatus = "pending"
    inputs: dict[str, Any] = field(default_factory=dict)
    executor: str | None = None
    node: str | None = None
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)
    pipeline_yaml: str | None = None

    def __post_init__(self) -> None:
        check_run_status(self.status)


@dataclass(frozen=True, slots=True, kw_only=True)
class TrainingRecord:
    """One run as learning data: input, output, cost, latency, quality, feedback.

    ``pipeline_version`` is the version label the run used (``str(version)`` of a
    stored :class:`PipelineVersion`, or the YAML's own ``version``).
    """

    pipeline: str
    pipeline_version: str
    input: dict[str, Any]
    output: dict[str, Any]
    cost_usd: float = 0.0
    latency_ms: float = 0.0
    quality: float | None = None
    feedback: dict[str, Any] | None = None
    id: str = field(default_factory=_new_id)
    created_at: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        _fill_id(self)


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """Something that happened (a restart, an adoption, an alert), for telemetry."""

    kind: str
    source: str
    data: dict[str, Any] = field(default_factory=dict)
    id: str = field(default_factory=_new_id)
    created_at: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        _fill_id(self)


@dataclass(frozen=True, slots=True, kw_only=True)
class PipelineDna:
    """Lineage of a pipeline version: who made it, from which parents, how fit it is."""

    id: str = field(default_factory=_new_id)
    parents: list[str] = field(default_factory=list)
    generation: int = 0
    origin: DnaOrigin = "human"
    fitness: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _fill_id(self)
        if self.origin not in DNA_ORIGINS:
            raise InvalidRequest(f"DNA origin {self.origin!r} is not one of {sorted(DNA_ORIGINS)}")
        if self.generation < 0:
            raise InvalidRequest(f"DNA generation must be >= 0, got {self.generation}")

    def to_dict(self) -> dict[str, Any]:
        """The JSON object stored in the ``dna`` column."""
        return {
            "id": self.id,
            "parents": list(self.parents),
            "generation": self.generation,
            "origin": self.origin,
            "fitness": self.fitness,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PipelineDna:
        """Rebuild from :meth:`to_dict` output; unknown keys are ignored."""
        return cls(
            id=data["id"],
            parents=list(data.get("parents", [])),
            generation=int(data.get("generation", 0)),
            origin=data.get("origin", "human"),
            fitness=dict(data.get("fitness", {})),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class PipelineVersion:
    """One version of a named pipeline: its YAML text and its DNA."""

    name: str
    version: int
    yaml_text: str
    dna: PipelineDna = field(default_factory=PipelineDna)
    created_at: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        if self.version < 1:
            raise InvalidRequest(f"pipeline version must be >= 1, got {self.version}")


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiKey:
    """An API key as stored: only its hash (see :func:`store.base.hash_api_key`)."""

    name: str
    key_hash: str
    prefix: str
    scopes: list[str] = field(default_factory=list)
    id: str = field(default_factory=_new_id)
    created_at: float = field(default_factory=time.time)
    revoked_at: float | None = None
    last_used_at: float | None = None

    def __post_init__(self) -> None:
        _fill_id(self)


@dataclass(frozen=True, slots=True, kw_only=True)
class Feedback:
    """A person's rating (1..10) and comment on one response of a session."""

    session_id: str
    response_id: str
    rating: int
    text: str = ""
    user_id: str | None = None
    id: str = field(default_factory=_new_id)
    created_at: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        _fill_id(self)
        # bool is an int; a True rating is a caller bug, not a 1.
        if isinstance(self.rating, bool) or not isinstance(self.rating, int):
            raise InvalidRequest(f"feedback rating must be an int, got {self.rating!r}")
        if not 1 <= self.rating <= 10:
            raise InvalidRequest(f"feedback rating must be 1..10, got {self.rating}")
