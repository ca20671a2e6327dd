"""StoreClient over the store actor: a turn's calls travel in batches, each with its own
outcome; a batch whose store died is re-sent call by call. No Ray: the actor class is
plain Python over a real SQLite store, and the handle is a stand-in."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from ray.exceptions import RayActorError

from actors.store_actor import COALESCED, IDEMPOTENT, StoreActorImpl, StoreClient
from store.errors import NotFound
from store.models import NewTurn, RunRecord


class Ref:
    """Stands in for the store's ``ActorRef``: calls the actor class in-process, records
    what travelled, and can lose one batch as a dead actor would."""

    def __init__(self, actor: StoreActorImpl) -> None:
        self.actor = actor
        self.sent: list[tuple[str, Any]] = []
        self.lose_next_batch = False
        self.gate: asyncio.Event | None = None

    async def call(self, method: str, *args: Any, retry: bool = True, **kwargs: Any) -> Any:
        if method == "call_many":
            self.sent.append(("call_many", [name for name, _, _ in args[0]]))
            assert retry is False  # a lost batch is re-sent by the client, call by call
            if self.lose_next_batch:
                self.lose_next_batch = False
                raise RayActorError()
            return await self.actor.call_many(*args)
        self.sent.append((args[0], retry))
        if self.gate is not None:
            await self.gate.wait()
        return await self.actor.call(*args, **kwargs)


@pytest.fixture
async def client(tmp_path: Path) -> Any:
    actor = StoreActorImpl("store", f"sqlite:///{tmp_path / 'elx.db'}")
    await actor.on_ready()
    client = StoreClient()
    client._ref = Ref(actor)  # type: ignore[assignment]
    yield client
    await actor.on_stop()


def _run(run_id: str) -> RunRecord:
    return RunRecord(
        run_id=run_id,
        pipeline="general_chat",
        status="running",
        inputs={"message": "hi"},
        executor="executor-0",
        node="",
        result=None,
        error=None,
        created_at=1.0,
        updated_at=1.0,
    )


def test_coalesced_calls_are_idempotent_ones() -> None:
    assert COALESCED <= IDEMPOTENT
    assert {"create_run", "update_run", "append_turns", "find_api_key"} <= COALESCED


def _hold_every_lane(client: Any) -> list[asyncio.Task[Any]]:
    """Calls that wait at the store, one per batch allowed in flight: what comes next
    must wait for them, and so travels as one batch."""
    ref: Ref = client._ref
    ref.gate = asyncio.Event()
    lanes = client._batches.max_in_flight
    return [asyncio.create_task(client.get_run(f"none-{i}")) for i in range(lanes)]


async def test_calls_meeting_batches_in_flight_share_one_actor_call(client: Any) -> None:
    ref: Ref = client._ref
    await client.create_session("s1", user_id="u")
    ref.sent.clear()
    blockers = _hold_every_lane(client)
    await asyncio.sleep(0)
    runs = [asyncio.create_task(client.create_run(_run(f"r{i}"))) for i in range(4)]
    turns = asyncio.create_task(
        client.append_turns("s1", [NewTurn("t1:user", "user", "hello")], context={"k": 1})
    )
    await asyncio.sleep(0.01)
    assert ref.gate is not None
    ref.gate.set()
    assert [await b for b in blockers] == [None] * len(blockers)
    assert [await t for t in runs] == [True] * 4
    assert [t.content for t in await turns] == ["hello"]
    assert ref.sent == [("get_run", True)] * len(blockers) + [
        ("call_many", ["create_run"] * 4 + ["append_turns"])
    ]
    stored = [await client.get_run(f"r{i}") for i in range(4)]
    assert [r.run_id for r in stored] == ["r0", "r1", "r2", "r3"]


async def test_each_caller_of_a_batch_hears_its_own_error(client: Any) -> None:
    ref: Ref = client._ref
    blockers = _hold_every_lane(client)
    await asyncio.sleep(0)
    good = asyncio.create_task(client.create_run(_run("ok")))
    bad = asyncio.create_task(client.update_run("missing-run", status="succeeded"))
    await asyncio.sleep(0.01)
    assert ref.gate is not None
    ref.gate.set()
    assert [await b for b in blockers] == [None] * len(blockers)
    assert await good is True
    with pytest.raises(NotFound, match="missing-run"):
        await bad
    assert (await client.get_run("ok")).status == "running"


async def test_a_batch_lost_with_the_store_is_re_sent_call_by_call(client: Any) -> None:
    ref: Ref = client._ref
    blockers = _hold_every_lane(client)
    await asyncio.sleep(0)
    ref.lose_next_batch = True
    runs = [asyncio.create_task(client.create_run(_run(f"lost{i}"))) for i in range(3)]
    await asyncio.sleep(0.01)
    assert ref.gate is not None
    ref.gate.set()
    await asyncio.gather(*blockers)
    assert [await t for t in runs] == [True, True, True]
    assert ("call_many", ["create_run"] * 3) in ref.sent
    assert ref.sent.count(("create_run", True)) == 3  # each again, with the re-send rule
    assert all([await client.get_run(f"lost{i}") for i in range(3)])


async def test_other_calls_go_alone_with_their_re_send_rule(client: Any) -> None:
    ref: Ref = client._ref
    await client.list_sessions()
    from store.models import TrainingRecord

    record = TrainingRecord(pipeline="p", pipeline_version="1", input={}, output={"text": "x"})
    await client.add_training_record(record)
    assert ref.sent == [("list_sessions", True), ("add_training_record", False)]


async def test_the_client_pickles_without_its_batches(client: Any) -> None:
    import pickle

    copy = pickle.loads(pickle.dumps(StoreClient()))
    assert isinstance(copy, StoreClient)
    assert copy._batches is not client._batches
