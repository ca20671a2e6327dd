"""Pipeline DNA: library registration by content, lineage, fitness from telemetry, lookup."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pipelines import dna
from store.base import Store
from store.factory import open_store
from store.models import RunRecord, RunStatus, TrainingRecord


def pipeline_text(name: str, value: str = "hello") -> str:
    return (
        f"workflow:\n  name: {name}\n  steps:\n    - {{name: a, type: test_echo, value: {value}}}\n"
    )


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await open_store(f"sqlite:///{tmp_path}/dna.db")
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
def lib(tmp_path: Path) -> Path:
    directory = tmp_path / "lib"
    directory.mkdir()
    (directory / "alpha.yaml").write_text(pipeline_text("alpha"))
    (directory / "beta.yaml").write_text(pipeline_text("beta"))
    return directory


def test_content_id_is_a_stable_sha256_prefix() -> None:
    """The id is 16 hex digits, equal for equal text and different for different text."""
    first = dna.content_id("workflow: {}\n")
    assert len(first) == 16 and int(first, 16) >= 0
    assert first == dna.content_id("workflow: {}\n")
    assert first != dna.content_id("workflow: {}\n\n")


async def test_register_library_records_first_sightings_once(store: Store, lib: Path) -> None:
    """Each new file becomes version 1, human, generation 0; a second pass writes nothing."""
    written = await dna.register_library(store, [lib])
    assert sorted(v.name for v in written) == ["alpha", "beta"]
    for version in written:
        assert version.version == 1
        assert version.dna.origin == "human" and version.dna.generation == 0
        assert version.dna.parents == []
        assert version.dna.id == dna.content_id(version.yaml_text)
    assert await dna.register_library(store, [lib]) == []
    assert len(await store.pipeline_versions("alpha")) == 1


async def test_changed_file_becomes_child_version(store: Store, lib: Path) -> None:
    """Editing a file records version n+1 whose parent is the previous DNA, one generation on."""
    (first,) = [v for v in await dna.register_library(store, [lib]) if v.name == "alpha"]
    (lib / "alpha.yaml").write_text(pipeline_text("alpha", "changed"))
    (second,) = await dna.register_library(store, [lib])
    assert second.name == "alpha" and second.version == 2
    assert second.dna.parents == [first.dna.id]
    assert second.dna.generation == 1 and second.dna.origin == "human"
    assert await dna.register_library(store, [lib]) == []


async def test_reverted_file_gets_a_distinct_dna_id(store: Store, lib: Path) -> None:
    """Going back to an earlier content is a new version with its own, unique DNA id."""
    await dna.register_library(store, [lib])
    (lib / "alpha.yaml").write_text(pipeline_text("alpha", "changed"))
    await dna.register_library(store, [lib])
    (lib / "alpha.yaml").write_text(pipeline_text("alpha"))
    (third,) = await dna.register_library(store, [lib])
    ids = [v.dna.id for v in await store.pipeline_versions("alpha")]
    assert third.version == 3 and len(set(ids)) == 3
    assert third.dna.parents == [ids[1]] and third.dna.generation == 2


async def test_record_version_with_explicit_parents(store: Store) -> None:
    """A derived pipeline starts its lineage one generation after its latest parent."""
    base = await dna.record_version(store, "base", pipeline_text("base"), origin="human")
    child = await dna.record_version(
        store, "child", pipeline_text("child"), origin="mutation", parents=[base.dna]
    )
    assert child.version == 1 and child.dna.parents == [base.dna.id]
    assert child.dna.generation == 1 and child.dna.origin == "mutation"


def test_earlier_directory_shadows_later(tmp_path: Path, lib: Path) -> None:
    """A name in an earlier library directory wins over the same name in a later one."""
    other = tmp_path / "other"
    other.mkdir()
    (other / "alpha.yaml").write_text(pipeline_text("alpha", "shadowed"))
    (other / "gamma.yml").write_text(pipeline_text("gamma"))
    (other / ".gamma.yaml-tmp.yaml").write_text("partial")
    files = dna.library_files([lib, other])
    assert files == {
        "alpha": lib / "alpha.yaml",
        "beta": lib / "beta.yaml",
        "gamma": other / "gamma.yml",
    }
    assert dna.find_pipeline("alpha", [lib, other]) == lib / "alpha.yaml"
    assert dna.find_pipeline("gamma", [lib, other]) == other / "gamma.yml"


def test_find_pipeline_takes_only_plain_names(lib: Path) -> None:
    """Unknown names, paths and '..' never resolve to a file."""
    assert dna.find_pipeline("missing", [lib]) is None
    assert dna.find_pipeline("../lib/alpha", [lib]) is None
    assert dna.find_pipeline("lib/alpha", [lib.parent]) is None
    assert dna.find_pipeline("", [lib]) is None


def test_library_dirs_builtin_first_then_user(monkeypatch: pytest.MonkeyPatch) -> None:
    """The built-in library comes first; the user library follows the environment."""
    assert dna.library_dirs({}) == [dna.BUILTIN_LIBRARY, Path(".elexirion/library")]
    assert dna.library_dirs({dna.LIBRARY_DIR_ENV: "/srv/lib"})[1] == Path("/srv/lib")
    monkeypatch.setenv(dna.LIBRARY_DIR_ENV, "/opt/pipes")
    assert dna.user_library_dir() == Path("/opt/pipes")
    assert dna.find_pipeline("code_analysis") == dna.BUILTIN_LIBRARY / "code_analysis.yaml"


async def test_fitness_without_telemetry_is_none(store: Store) -> None:
    """No runs and no records: zero runs, every measure None."""
    assert await dna.fitness(store, "alpha") == {
        "runs": 0,
        "success_rate": None,
        "quality": None,
        "cost_usd": None,
        "latency_ms": None,
    }


async def _seed(store: Store, v1: str, v2: str) -> None:
    runs: list[tuple[str, str, RunStatus, str]] = [
        ("r1", "/somewhere/lib/alpha.yaml", "succeeded", v1),
        ("r2", "alpha", "succeeded", v1),
        ("r3", "alpha.yaml", "failed", v1),
        ("r4", "alpha", "succeeded", v2),
        ("r5", "alpha", "running", v2),
        ("r6", "beta", "failed", v2),
    ]
    for run_id, pipeline, status, text in runs:
        await store.create_run(
            RunRecord(run_id=run_id, pipeline=pipeline, status=status, pipeline_yaml=text)
        )
    records = [
        ("1", 0.5, 0.01, 100.0),
        ("1", None, 0.03, 300.0),
        ("2", 1.0, 0.02, 200.0),
    ]
    for label, quality, cost, latency in records:
        await store.add_training_record(
            TrainingRecord(
                pipeline="alpha",
                pipeline_version=label,
                input={},
                output={},
                quality=quality,
                cost_usd=cost,
                latency_ms=latency,
            )
        )
    await store.add_training_record(
        TrainingRecord(pipeline="beta", pipeline_version="1", input={}, output={}, quality=0.0)
    )


async def test_fitness_from_runs_and_training_records(store: Store, lib: Path) -> None:
    """Runs match by file stem; success over finished runs, mean quality/cost, median latency."""
    v1 = pipeline_text("alpha")
    v2 = pipeline_text("alpha", "changed")
    await _seed(store, v1, v2)
    fit = await dna.fitness(store, "alpha")
    assert fit["runs"] == 5
    assert fit["success_rate"] == pytest.approx(3 / 4)
    assert fit["quality"] == pytest.approx(0.75)
    assert fit["cost_usd"] == pytest.approx(0.02)
    assert fit["latency_ms"] == pytest.approx(200.0)
    table = await dna.fitness_by_name(store, ["alpha", "beta"])
    assert table["alpha"] == fit
    assert table["beta"]["runs"] == 1 and table["beta"]["success_rate"] == 0.0


async def test_lineage_splits_fitness_per_version(store: Store, lib: Path) -> None:
    """Each version counts the runs of its own YAML content and the records of its label."""
    v1 = pipeline_text("alpha")
    v2 = pipeline_text("alpha", "changed")
    await _seed(store, v1, v2)
    await dna.register_library(store, [lib])
    (lib / "alpha.yaml").write_text(v2)
    await dna.register_library(store, [lib])
    first, second = await dna.lineage(store, "alpha")
    assert (first.version, second.version) == (1, 2)
    assert second.dna.parents == [first.dna.id]
    assert first.fitness["runs"] == 3 and first.fitness["success_rate"] == pytest.approx(2 / 3)
    assert first.fitness["quality"] == pytest.approx(0.5)
    assert first.fitness["latency_ms"] == pytest.approx(200.0)
    assert second.fitness["runs"] == 2 and second.fitness["success_rate"] == 1.0
    assert second.fitness["cost_usd"] == pytest.approx(0.02)
    assert second.to_dict()["dna"]["parents"] == [first.dna.id]
    assert await dna.lineage(store, "missing") == []
