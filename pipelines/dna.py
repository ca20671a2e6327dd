"""Pipeline DNA: versions, lineage and fitness of the pipelines in the libraries.

Every stored :class:`~store.models.PipelineVersion` carries a
:class:`~store.models.PipelineDna`: an id, its parents, a generation and an origin
(``human`` for files people wrote or edited, ``genesis`` for generated pipelines,
``optimizer``/``mutation`` for the learning loop). Fitness is never stored: it is
computed on demand from telemetry (runs and training records), so it is always
current.

Libraries are directories of ``<name>.yaml`` files: the built-in one shipped with
the package, then the user's (``$ELEXIRION_LIBRARY_DIR`` or ``.elexirion/library``).
A name found in an earlier directory shadows the same name in a later one.

Failure semantics: store errors propagate unchanged (``StoreUnavailable`` is
retryable for the caller). Every write is idempotent by content: registering an
unchanged file writes nothing, and a concurrent writer that took the next version
number first is re-read, not overwritten.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

from store.base import Store
from store.errors import AlreadyExists
from store.models import DnaOrigin, PipelineDna, PipelineVersion, RunRecord, TrainingRecord

__all__ = [
    "BUILTIN_LIBRARY",
    "DEFAULT_USER_LIBRARY",
    "LIBRARY_DIR_ENV",
    "Fitness",
    "LineageEntry",
    "content_id",
    "find_pipeline",
    "fitness",
    "fitness_by_name",
    "library_dirs",
    "library_files",
    "lineage",
    "record_version",
    "register_library",
    "user_library_dir",
]

BUILTIN_LIBRARY = Path(__file__).resolve().parent / "library"
LIBRARY_DIR_ENV = "ELEXIRION_LIBRARY_DIR"
DEFAULT_USER_LIBRARY = Path(".elexirion") / "library"

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_SUFFIXES = (".yaml", ".yml")
#: Fitness reads at most this many of the most recent runs (the store has no
#: per-pipeline run filter; a bounded scan keeps ``pipelines list`` fast).
RUN_SCAN_LIMIT = 10_000
_PAGE = 1000


class Fitness(TypedDict):
    """How a pipeline (or one version of it) does in practice; ``None``: no data yet."""

    runs: int
    success_rate: float | None
    quality: float | None
    cost_usd: float | None
    latency_ms: float | None


@dataclass(frozen=True, slots=True)
class LineageEntry:
    """One version of a pipeline with its DNA and its measured fitness."""

    name: str
    version: int
    dna: PipelineDna
    fitness: Fitness
    created_at: float
    content_id: str

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable view (``elexirion pipelines lineage --json``)."""
        return {
            "name": self.name,
            "version": self.version,
            "dna": self.dna.to_dict(),
            "fitness": dict(self.fitness),
            "created_at": self.created_at,
            "content_id": self.content_id,
        }


# ------------------------------------------------------------------ libraries


def content_id(text: str) -> str:
    """A short, stable id of a YAML text: the first 16 hex digits of its SHA-256."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def user_library_dir(env: Mapping[str, str] | None = None) -> Path:
    """The user's library: ``$ELEXIRION_LIBRARY_DIR``, else ``.elexirion/library``."""
    env = os.environ if env is None else env
    configured = env.get(LIBRARY_DIR_ENV, "").strip()
    return Path(configured) if configured else DEFAULT_USER_LIBRARY


def library_dirs(env: Mapping[str, str] | None = None) -> list[Path]:
    """The directories pipelines are looked up in, in precedence order."""
    return [BUILTIN_LIBRARY, user_library_dir(env)]


def library_files(dirs: Sequence[Path] | None = None) -> dict[str, Path]:
    """``{name: file}`` of every pipeline in ``dirs`` (default :func:`library_dirs`).

    Names are file stems; an earlier directory shadows a later one. Missing
    directories are skipped; hidden files (atomic-write temporaries) are ignored.
    """
    found: dict[str, Path] = {}
    for directory in library_dirs() if dirs is None else dirs:
        if not directory.is_dir():
            continue
        for path in sorted(directory.iterdir()):
            if path.suffix in _SUFFIXES and path.is_file() and not path.name.startswith("."):
                found.setdefault(path.stem, path)
    return found


def find_pipeline(name: str, dirs: Sequence[Path] | None = None) -> Path | None:
    """The file of the library pipeline ``name``, or ``None``.

    Only plain names are looked up (``code_analysis``, not paths): a name with a
    separator or ``..`` never leaves the library directories.
    """
    if not _NAME.match(name) or ".." in name:
        return None
    for directory in library_dirs() if dirs is None else dirs:
        for suffix in _SUFFIXES:
            path = directory / f"{name}{suffix}"
            if path.is_file():
                return path
    return None


# ------------------------------------------------------------------ versions


async def record_version(
    store: Store,
    name: str,
    yaml_text: str,
    *,
    origin: DnaOrigin,
    parents: Sequence[PipelineDna] = (),
) -> PipelineVersion:
    """Store ``yaml_text`` as the next version of ``name`` unless it is the latest already.

    A new lineage (no versions yet, no ``parents``) starts at generation 0. A new
    version of an existing lineage descends from the latest version (one
    generation later), or from ``parents`` when given. Returns the stored version
    (the existing latest one when the content is unchanged).
    """
    for _attempt in range(3):
        versions = await store.pipeline_versions(name)
        latest = versions[-1] if versions else None
        if latest is not None and content_id(latest.yaml_text) == content_id(yaml_text):
            return latest
        ancestry = list(parents) or ([latest.dna] if latest is not None else [])
        used = {v.dna.id for v in versions}
        dna_id = content_id(yaml_text)
        number = latest.version + 1 if latest is not None else 1
        if dna_id in used:  # the file went back to an earlier content: keep ids unique
            dna_id = f"{dna_id}-v{number}"
        version = PipelineVersion(
            name=name,
            version=number,
            yaml_text=yaml_text,
            dna=PipelineDna(
                id=dna_id,
                parents=[p.id for p in ancestry],
                generation=max((p.generation + 1 for p in ancestry), default=0),
                origin=origin,
            ),
        )
        try:
            await store.save_pipeline_version(version)
        except AlreadyExists:
            continue  # another writer took this number first: re-read and decide again
        return version
    raise AlreadyExists(f"pipeline {name!r}: version numbers kept being taken by other writers")


async def register_library(
    store: Store, library_dirs: Sequence[Path] | None = None
) -> list[PipelineVersion]:
    """Record a version for every library file whose content the store has not seen.

    A first sighting is version 1 (origin ``human``, generation 0); a changed file
    becomes the next version, child of the previous one, origin ``human`` (a person
    edited it). Unchanged files write nothing. Returns the versions written.
    """
    written: list[PipelineVersion] = []
    for name, path in library_files(library_dirs).items():
        text = await asyncio.to_thread(path.read_text, encoding="utf-8")
        latest = await store.latest_pipeline_version(name)
        if latest is not None and content_id(latest.yaml_text) == content_id(text):
            continue
        written.append(await record_version(store, name, text, origin="human"))
    return written


# ------------------------------------------------------------------ fitness


def _stem(pipeline: str) -> str:
    return Path(pipeline).stem if pipeline.endswith(_SUFFIXES) else Path(pipeline).name


async def _training_records(store: Store) -> list[TrainingRecord]:
    # Records name their pipeline by name or by path: read them all, page by page
    # (oldest first, ``since`` as the cursor), and match on the file stem.
    found: dict[str, TrainingRecord] = {}
    since: float | None = None
    while True:
        page = await store.training_records(since=since, limit=_PAGE)
        fresh = [r for r in page if r.id not in found]
        for record in fresh:
            found[record.id] = record
        if len(page) < _PAGE or not fresh:
            break
        since = page[-1].created_at
    return list(found.values())


def _fitness(runs: list[RunRecord], records: list[TrainingRecord]) -> Fitness:
    finished = [r for r in runs if r.status in ("succeeded", "failed")]
    succeeded = sum(1 for r in finished if r.status == "succeeded")
    qualities = [r.quality for r in records if r.quality is not None]
    return Fitness(
        runs=len(runs),
        success_rate=succeeded / len(finished) if finished else None,
        quality=statistics.fmean(qualities) if qualities else None,
        cost_usd=statistics.fmean(r.cost_usd for r in records) if records else None,
        latency_ms=statistics.median(r.latency_ms for r in records) if records else None,
    )


@dataclass(slots=True)
class _Telemetry:
    runs: list[RunRecord] = field(default_factory=list)
    records: list[TrainingRecord] = field(default_factory=list)

    def of(self, name: str) -> _Telemetry:
        return _Telemetry(
            [r for r in self.runs if _stem(r.pipeline) == name],
            [r for r in self.records if _stem(r.pipeline) == name],
        )


async def _telemetry(store: Store) -> _Telemetry:
    return _Telemetry(await store.list_runs(limit=RUN_SCAN_LIMIT), await _training_records(store))


def _version_fitness(data: _Telemetry, version: PipelineVersion) -> Fitness:
    # A run stores the YAML it ran, so it belongs to the version with that content;
    # a training record names its version label (``str(version)``).
    wanted = content_id(version.yaml_text)
    runs = [r for r in data.runs if r.pipeline_yaml and content_id(r.pipeline_yaml) == wanted]
    records = [r for r in data.records if r.pipeline_version == str(version.version)]
    return _fitness(runs, records)


async def fitness(store: Store, name: str, *, version: PipelineVersion | None = None) -> Fitness:
    """Fitness of pipeline ``name`` from stored runs and training records.

    Runs and records match when their ``pipeline`` (a name or a file path) has the
    file stem ``name``. With ``version``, only the runs of that exact YAML content
    and the records labelled with that version number count. Returns ``runs``
    (every matching run), ``success_rate`` (succeeded / finished), ``quality``
    (mean), ``cost_usd`` (mean per record) and ``latency_ms`` (median), each
    ``None`` without data. Reads the :data:`RUN_SCAN_LIMIT` most recent runs.
    """
    data = (await _telemetry(store)).of(name)
    if version is not None:
        return _version_fitness(data, version)
    return _fitness(data.runs, data.records)


async def fitness_by_name(store: Store, names: Sequence[str]) -> dict[str, Fitness]:
    """:func:`fitness` (all versions) of each of ``names``, reading telemetry once."""
    data = await _telemetry(store)
    table: dict[str, Fitness] = {}
    for name in names:
        part = data.of(name)
        table[name] = _fitness(part.runs, part.records)
    return table


async def lineage(store: Store, name: str) -> list[LineageEntry]:
    """Every stored version of ``name``, oldest first, with DNA and per-version fitness."""
    versions = await store.pipeline_versions(name)
    if not versions:
        return []
    data = (await _telemetry(store)).of(name)
    return [
        LineageEntry(
            name=v.name,
            version=v.version,
            dna=v.dna,
            fitness=_version_fitness(data, v),
            created_at=v.created_at,
            content_id=content_id(v.yaml_text),
        )
        for v in versions
    ]
