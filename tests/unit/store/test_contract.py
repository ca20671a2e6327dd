"""The Store contract: every test runs on SQLite and on PostgreSQL and must pass on both."""

from __future__ import annotations

import asyncio
import dataclasses
import math
import pickle
from typing import Any

import pytest

from store import _schema, errors
from store.base import KEEP, LAST_USED_RESOLUTION_S, Store, hash_api_key, redact_url
from store.models import (
    ApiKey,
    Event,
    Feedback,
    NewTurn,
    PipelineDna,
    PipelineVersion,
    RunRecord,
    RunStatus,
    TrainingRecord,
)
from tests.unit.store.conftest import Backend

UNICODE: dict[str, Any] = {
    "emoji": "😀👩‍👩‍👧",
    "cjk": "漢字かな",
    "rtl": "שלום مرحبا",
    "combining": "e\u0301",
    "escapes": 'back\\slash "quoted" and the literal text \\u0000',
    "nested": {"list": [1, 2.5, True, None, "ü"], "empty": {}},
    "big": 2**53 + 1,
    "négative": -0.125,
}


async def test_backend_answers_ping(store: Store, backend: Backend) -> None:
    """An open store names its backend and answers ping."""
    assert store.backend == backend.name
    assert await store.ping() is True


async def test_migrate_is_idempotent(store: Store) -> None:
    """migrate() on an up-to-date database changes nothing and returns the latest version."""
    latest = len(_schema.MIGRATIONS)
    assert await store.migrate() == latest
    assert await store.migrate() == latest


# ---------------------------------------------------------------- sessions


async def test_create_session_round_trips(store: Store) -> None:
    """A new session has its owner and meta, empty context, no agent and no turns."""
    created = await store.create_session("s1", user_id="u1", meta={"channel": "web"})
    assert (created.id, created.user_id, created.meta) == ("s1", "u1", {"channel": "web"})
    assert (created.context, created.active_agent, created.turn_count) == ({}, None, 0)
    assert created.created_at == created.updated_at
    assert await store.get_session("s1") == created


async def test_create_session_is_idempotent(store: Store) -> None:
    """Creating an existing session returns it unchanged, whatever the new arguments say."""
    first = await store.create_session("s1", user_id="u1", meta={"a": 1})
    again = await store.create_session("s1", user_id="someone else", meta={"b": 2})
    assert again == first


async def test_get_missing_session_is_none(store: Store) -> None:
    """Reading an unknown session returns None."""
    assert await store.get_session("nope") is None


async def test_list_sessions_newest_first_with_filter_and_paging(store: Store) -> None:
    """Sessions list most recently updated first, filter by user and page with limit/offset."""
    for sid, user in [("a", "u1"), ("b", "u2"), ("c", "u1")]:
        await store.create_session(sid, user_id=user)
    await store.append_turn("a", turn_id="t", role="user", content="bump")  # a is newest now
    assert [s.id for s in await store.list_sessions()] == ["a", "c", "b"]
    assert [s.id for s in await store.list_sessions(user_id="u1")] == ["a", "c"]
    assert [s.id for s in await store.list_sessions(limit=1, offset=1)] == ["c"]
    with pytest.raises(errors.InvalidRequest):
        await store.list_sessions(limit=-1)


async def test_update_session_replaces_given_fields_only(store: Store) -> None:
    """update_session replaces context/meta when given, sets or clears the agent, bumps updated_at."""
    before = await store.create_session("s1", meta={"m": 1})
    ctx = await store.update_session("s1", context={"topic": "tests"}, active_agent="code")
    assert (ctx.context, ctx.meta, ctx.active_agent) == ({"topic": "tests"}, {"m": 1}, "code")
    assert ctx.updated_at > before.updated_at and ctx.created_at == before.created_at
    kept = await store.update_session("s1", meta={"m": 2})
    assert (kept.context, kept.meta, kept.active_agent) == ({"topic": "tests"}, {"m": 2}, "code")
    assert (await store.update_session("s1", active_agent=None)).active_agent is None
    assert (await store.update_session("s1", active_agent=KEEP)).active_agent is None


async def test_update_missing_session_raises_not_found(store: Store) -> None:
    """Updating an unknown session raises NotFound naming it, and creates nothing."""
    with pytest.raises(errors.NotFound) as info:
        await store.update_session("ghost", context={})
    assert (info.value.kind, info.value.key) == ("session", "ghost")
    assert await store.get_session("ghost") is None


async def test_delete_session_takes_turns_and_feedback(store: Store) -> None:
    """Deleting a session removes its turns and feedback and leaves other sessions alone."""
    for sid in ("gone", "kept"):
        await store.append_turn(sid, turn_id="t1", role="user", content="hi")
        await store.add_feedback(Feedback(session_id=sid, response_id="t1", rating=7))
    assert await store.delete_session("gone") is True
    assert await store.get_session("gone") is None
    assert await store.turns("gone") == []
    assert await store.feedback(session_id="gone") == []
    assert len(await store.turns("kept")) == 1 and len(await store.feedback(session_id="kept")) == 1
    assert await store.delete_session("gone") is False


# ---------------------------------------------------------------- turns


async def test_append_turn_numbers_turns_and_counts_them(store: Store) -> None:
    """Turns get seq 1, 2, 3 in order; the session counts them and moves updated_at."""
    await store.create_session("s1")
    turns = [
        await store.append_turn("s1", turn_id=f"t{i}", role=role, content=f"c{i}", meta={"i": i})
        for i, role in enumerate(["user", "assistant", "user"])
    ]
    assert [t.seq for t in turns] == [1, 2, 3]
    assert await store.turns("s1") == turns
    session = await store.get_session("s1")
    assert session is not None and session.turn_count == 3
    assert session.updated_at == turns[-1].created_at


async def test_append_turn_is_idempotent_by_turn_id(store: Store) -> None:
    """Repeating a turn_id returns the stored turn and writes nothing, even with new content."""
    first = await store.append_turn("s1", turn_id="t1", role="user", content="hello")
    again = await store.append_turn("s1", turn_id="t1", role="assistant", content="different")
    assert again == first
    assert await store.turns("s1") == [first]
    session = await store.get_session("s1")
    assert session is not None and session.turn_count == 1


async def test_append_turn_sets_the_context_in_the_same_write(store: Store) -> None:
    """A turn given a context and an agent stores them on the session with it; without
    them the session's context and agent stay; a repeat of the turn changes neither."""
    await store.create_session("s1")
    await store.update_session("s1", context={"a": 1}, active_agent="analysis")
    await store.append_turn("s1", turn_id="t1", role="user", content="hi")
    session = await store.get_session("s1")
    assert session is not None and (session.context, session.active_agent) == ({"a": 1}, "analysis")
    turn = await store.append_turn(
        "s1", turn_id="t2", role="assistant", content="ok", context={"b": [2]}, active_agent="code"
    )
    session = await store.get_session("s1")
    assert session is not None
    assert (session.context, session.active_agent, session.turn_count) == ({"b": [2]}, "code", 2)
    assert session.updated_at == turn.created_at
    await store.append_turn(
        "s1", turn_id="t2", role="assistant", content="ok", context={"c": 3}, active_agent=None
    )
    session = await store.get_session("s1")
    assert session is not None and (session.context, session.active_agent) == ({"b": [2]}, "code")


async def test_append_turns_stores_a_question_and_its_answer_together(store: Store) -> None:
    """Two turns and the context in one call: consecutive seqs after the existing
    turns; a repeat of the call writes nothing; a partly new call adds only the new."""
    await store.append_turn("s1", turn_id="t0", role="user", content="earlier")
    pair = [NewTurn("t1:user", "user", "q"), NewTurn("t1:assistant", "assistant", "a", {"n": 1})]
    stored = await store.append_turns("s1", pair, context={"k": "v"}, active_agent="general")
    assert [(t.turn_id, t.seq, t.meta) for t in stored] == [
        ("t1:user", 2, {}), ("t1:assistant", 3, {"n": 1}),
    ]  # fmt: skip
    again = await store.append_turns("s1", pair, context={"k": "changed"})
    assert again == stored
    session = await store.get_session("s1")
    assert session is not None
    assert (session.turn_count, session.context, session.active_agent) == (3, {"k": "v"}, "general")
    more = await store.append_turns("s1", [pair[1], NewTurn("t2:user", "user", "next")])
    assert [t.seq for t in more] == [3, 4]
    assert [t.turn_id for t in await store.turns("s1")] == [
        "t0",
        "t1:user",
        "t1:assistant",
        "t2:user",
    ]


async def test_append_turns_with_an_unstorable_turn_writes_none(store: Store) -> None:
    """One bad turn in the batch: the call fails and the good one is not stored either."""
    bad = [NewTurn("a", "user", "fine"), NewTurn("b", "assistant", "x", {"v": math.inf})]
    with pytest.raises((errors.InvalidRequest, ValueError)):
        await store.append_turns("s1", bad)
    assert await store.turns("s1") == []


async def test_append_turn_with_an_unstorable_context_writes_nothing(store: Store) -> None:
    """A context that cannot be stored fails before anything is written."""
    with pytest.raises((errors.InvalidRequest, ValueError, TypeError)):
        await store.append_turn(
            "s1", turn_id="t1", role="user", content="x", context={"bad": math.nan}
        )
    assert await store.turns("s1") == []


async def test_append_turn_creates_a_missing_session(store: Store) -> None:
    """Appending to an unknown session creates it, without an owner."""
    turn = await store.append_turn("new", turn_id="t1", role="user", content="hi")
    session = await store.get_session("new")
    assert turn.seq == 1 and session is not None
    assert (session.user_id, session.turn_count) == (None, 1)


async def test_concurrent_appends_have_gap_free_seqs(store: Store) -> None:
    """50 concurrent appends to one session get seq 1..50, each turn exactly once."""
    await store.create_session("busy")
    async with asyncio.TaskGroup() as tg:
        tasks = [
            tg.create_task(store.append_turn("busy", turn_id=f"t{i}", role="user", content=str(i)))
            for i in range(50)
        ]
    assert sorted(t.result().seq for t in tasks) == list(range(1, 51))
    stored = await store.turns("busy")
    assert [t.seq for t in stored] == list(range(1, 51))
    assert sorted(t.turn_id for t in stored) == sorted(f"t{i}" for i in range(50))
    session = await store.get_session("busy")
    assert session is not None and session.turn_count == 50


async def test_concurrent_repeats_of_a_turn_store_it_once(store: Store) -> None:
    """Ten turns each appended three times at once are stored once each, seqs still 1..10."""
    async with asyncio.TaskGroup() as tg:
        tasks = [
            tg.create_task(store.append_turn("s", turn_id=f"t{i % 10}", role="user", content="x"))
            for i in range(30)
        ]
    by_id: dict[str, set[int]] = {}
    for task in tasks:
        by_id.setdefault(task.result().turn_id, set()).add(task.result().seq)
    assert all(len(seqs) == 1 for seqs in by_id.values()), "every repeat saw the same seq"
    assert [t.seq for t in await store.turns("s")] == list(range(1, 11))


async def test_turns_window_after_limit_and_last(store: Store) -> None:
    """turns() filters by after_seq, then takes the first `limit` or the last `last`, ascending."""
    for i in range(1, 7):
        await store.append_turn("s", turn_id=f"t{i}", role="user", content=str(i))

    async def seqs(**kwargs: Any) -> list[int]:
        return [t.seq for t in await store.turns("s", **kwargs)]

    assert await seqs() == [1, 2, 3, 4, 5, 6]
    assert await seqs(after_seq=4) == [5, 6]
    assert await seqs(limit=2) == [1, 2]
    assert await seqs(limit=2, after_seq=2) == [3, 4]
    assert await seqs(last=2) == [5, 6]
    assert await seqs(last=10, after_seq=3) == [4, 5, 6]
    assert await seqs(limit=0) == []
    assert await store.turns("unknown") == []
    with pytest.raises(errors.InvalidRequest, match="not both"):
        await store.turns("s", limit=1, last=1)


# ---------------------------------------------------------------- runs & checkpoints


async def test_run_round_trips_and_create_is_idempotent(store: Store) -> None:
    """A run reads back field for field; creating the same run_id again changes nothing."""
    run = RunRecord(
        run_id="r1", pipeline="code_analysis", inputs={"dir": "src"}, executor="executor-0",
        node="node-a", created_at=10.0, updated_at=10.0, pipeline_yaml="workflow: {}\n",
    )  # fmt: skip
    assert await store.create_run(run) is True
    assert (
        await store.create_run(dataclasses.replace(run, pipeline="other", status="failed")) is False
    )
    assert await store.get_run("r1") == run
    assert await store.get_run("nope") is None


async def test_update_run_sets_given_fields_and_bumps_updated_at(store: Store) -> None:
    """update_run changes only the fields given, moves updated_at, returns the stored run."""
    await store.create_run(RunRecord(run_id="r1", pipeline="p", created_at=1.0, updated_at=1.0))
    running = await store.update_run("r1", status="running", executor="executor-3", node="n1")
    assert (running.status, running.executor, running.node) == ("running", "executor-3", "n1")
    assert running.updated_at > 1.0 and running.created_at == 1.0
    done = await store.update_run("r1", status="succeeded", result={"summary": "ok"})
    assert (done.status, done.executor, done.result, done.error) == (
        "succeeded", "executor-3", {"summary": "ok"}, None,
    )  # fmt: skip
    assert await store.get_run("r1") == done


async def test_update_run_rejects_unknown_run_and_status(store: Store) -> None:
    """update_run raises NotFound for an unknown run and InvalidRequest for a bad status."""
    with pytest.raises(errors.NotFound):
        await store.update_run("ghost", status="running")
    await store.create_run(RunRecord(run_id="r1", pipeline="p"))
    with pytest.raises(errors.InvalidRequest, match="exploded"):
        await store.update_run("r1", status="exploded")
    with pytest.raises(errors.InvalidRequest):
        RunRecord(run_id="r2", pipeline="p", status="exploded")  # type: ignore[arg-type]


async def test_list_runs_filters_newest_first(store: Store) -> None:
    """list_runs filters by status and executor and returns the newest created first."""
    plan: list[tuple[RunStatus, str]] = [
        ("running", "e0"), ("running", "e1"), ("failed", "e0"), ("running", "e0"),
    ]  # fmt: skip
    for i, (status, executor) in enumerate(plan):
        run = RunRecord(run_id=f"r{i}", pipeline="p", status=status, executor=executor,
                        created_at=float(i), updated_at=float(i))  # fmt: skip
        await store.create_run(run)
    assert [r.run_id for r in await store.list_runs()] == ["r3", "r2", "r1", "r0"]
    assert [r.run_id for r in await store.list_runs(status="running", executor="e0")] == [
        "r3", "r0",
    ]  # fmt: skip
    assert [r.run_id for r in await store.list_runs(executor="e0", limit=1)] == ["r3"]


async def test_checkpoint_upsert_load_clear(store: Store) -> None:
    """save_checkpoint replaces the previous data; clear removes it; clearing twice is fine."""
    assert await store.load_checkpoint("k") is None
    await store.save_checkpoint("k", {"step_index": 1, "results": {"s1": "a"}})
    await store.save_checkpoint("k", {"step_index": 2, "results": {"s1": "a", "s2": "b"}})
    assert await store.load_checkpoint("k") == {"step_index": 2, "results": {"s1": "a", "s2": "b"}}
    await store.clear_checkpoint("k")
    await store.clear_checkpoint("k")
    assert await store.load_checkpoint("k") is None


# ---------------------------------------------------------------- learning data


async def test_training_records_filter_oldest_first_and_ignore_repeats(store: Store) -> None:
    """Training records read back oldest first, filter by pipeline and since, and a repeat id writes nothing."""
    records = [
        TrainingRecord(pipeline=p, pipeline_version="3", input={"q": i}, output={"a": i},
                       cost_usd=0.01 * i, latency_ms=12.5, quality=0.5 if i else None,
                       feedback={"rating": 9} if i == 2 else None, created_at=float(i))
        for i, p in enumerate(["chat", "code", "chat"])
    ]  # fmt: skip
    for record in records:
        assert await store.add_training_record(record) == record.id
    await store.add_training_record(dataclasses.replace(records[0], output={"changed": True}))
    assert await store.training_records() == records
    assert await store.training_records(pipeline="chat") == [records[0], records[2]]
    assert await store.training_records(since=1.0) == records[1:]
    assert await store.training_records(limit=1) == records[:1]


async def test_events_are_added_in_one_batch_and_filtered(store: Store) -> None:
    """add_events stores a batch; events() filters by kind and since, oldest first."""
    batch = [
        Event(kind=k, source="supervisor/app", data={"i": i}, created_at=float(i))
        for i, k in enumerate(["restart", "alert", "restart"])
    ]
    await store.add_events(batch)
    await store.add_events(batch[:1])  # a repeated id is skipped
    await store.add_events([])
    assert await store.events() == batch
    assert await store.events(kind="restart") == [batch[0], batch[2]]
    assert await store.events(since=1.0, limit=1) == [batch[1]]


async def test_empty_ids_are_assigned(store: Store) -> None:
    """Records built with id="" get a fresh id each, so they never collide on a shared key."""
    events = [Event(id="", kind="k", source="s", created_at=1.0) for _ in range(2)]
    assert all(e.id for e in events) and events[0].id != events[1].id
    await store.add_events(events)
    assert len(await store.events()) == 2
    record = TrainingRecord(id="", pipeline="p", pipeline_version="1", input={}, output={})
    assert await store.add_training_record(record) == record.id != ""


async def test_add_events_is_all_or_nothing(store: Store) -> None:
    """A batch with one unstorable event raises InvalidRequest and stores none of them."""
    good = Event(kind="ok", source="x")
    bad = Event(kind="bad", source="x", data={"value": math.nan})
    with pytest.raises(errors.InvalidRequest, match=r"events\.data"):
        await store.add_events([good, bad])
    assert await store.events() == []


async def test_pipeline_versions_ascend_and_refuse_duplicates(store: Store) -> None:
    """Versions list ascending, latest is the highest, and a taken (name, version) raises AlreadyExists."""
    dna = PipelineDna(parents=["p0"], generation=2, origin="optimizer", fitness={"dev": 0.8})
    v2 = PipelineVersion(name="chat", version=2, yaml_text="v: 2\n", dna=dna, created_at=2.0)
    v1 = PipelineVersion(name="chat", version=1, yaml_text="v: 1\n", created_at=1.0)
    await store.save_pipeline_version(v2)
    await store.save_pipeline_version(v1)
    await store.save_pipeline_version(PipelineVersion(name="code", version=7, yaml_text="x"))
    assert await store.pipeline_versions("chat") == [v1, v2]
    assert await store.latest_pipeline_version("chat") == v2
    assert await store.latest_pipeline_version("none") is None
    with pytest.raises(errors.AlreadyExists) as info:
        await store.save_pipeline_version(dataclasses.replace(v1, yaml_text="other"))
    assert (info.value.kind, info.value.key) == ("pipeline_version", "chat@1")
    assert await store.pipeline_versions("chat") == [v1, v2]


# ---------------------------------------------------------------- auth & feedback


async def test_api_key_find_refreshes_last_used_and_revoke_hides_it(store: Store) -> None:
    """find_api_key finds live keys by hash and stamps last_used_at; a revoked key is not found."""
    key = ApiKey(name="ci", key_hash=hash_api_key("elx_secret"), prefix="elx_sec",
                 scopes=["chat", "admin"], created_at=5.0)  # fmt: skip
    await store.create_api_key(key)
    found = await store.find_api_key(hash_api_key("elx_secret"))
    assert found is not None and found.last_used_at is not None
    assert dataclasses.replace(found, last_used_at=None) == key
    assert await store.find_api_key(hash_api_key("elx_other")) is None
    assert await store.list_api_keys() == [found]
    assert await store.revoke_api_key("ci") is True
    assert await store.revoke_api_key("ci") is False
    assert await store.find_api_key(key.key_hash) is None
    (revoked,) = await store.list_api_keys()
    assert revoked.revoked_at is not None


async def test_api_key_last_used_is_refreshed_at_most_once_a_minute(
    store: Store, backend: Backend
) -> None:
    """Lookups within LAST_USED_RESOLUTION_S keep last_used_at; a later one moves it."""
    await store.create_api_key(ApiKey(name="k", key_hash="h", prefix="p"))
    first = await store.find_api_key("h")
    second = await store.find_api_key("h")
    assert first is not None and second is not None
    assert second.last_used_at == first.last_used_at
    backend.clock.now += LAST_USED_RESOLUTION_S
    third = await store.find_api_key("h")
    assert third is not None and third.last_used_at is not None
    assert first.last_used_at is not None and third.last_used_at > first.last_used_at


async def test_api_key_names_are_unique_among_live_keys(store: Store) -> None:
    """A second live key with the same name raises AlreadyExists; after revoking, the name is free."""
    await store.create_api_key(ApiKey(name="ci", key_hash="h1", prefix="p"))
    with pytest.raises(errors.AlreadyExists) as info:
        await store.create_api_key(ApiKey(name="ci", key_hash="h2", prefix="p"))
    assert (info.value.kind, info.value.key) == ("api_key", "ci")
    with pytest.raises(errors.AlreadyExists):
        await store.create_api_key(ApiKey(name="other", key_hash="h1", prefix="p"))
    await store.revoke_api_key("ci")
    await store.create_api_key(ApiKey(name="ci", key_hash="h2", prefix="p"))
    assert [k.name for k in await store.list_api_keys()] == ["ci", "ci"]


async def test_feedback_round_trips_and_filters(store: Store) -> None:
    """Feedback reads back oldest first, filters by session, and a repeat id writes nothing."""
    items = [
        Feedback(session_id=s, response_id="r", rating=r, text="très bien", user_id="u",
                 created_at=float(r))
        for s, r in [("s1", 10), ("s2", 3), ("s1", 1)]
    ]  # fmt: skip
    for item in items:
        assert await store.add_feedback(item) == item.id
    await store.add_feedback(items[0])
    assert await store.feedback() == sorted(items, key=lambda f: f.created_at)
    assert await store.feedback(session_id="s1", limit=1) == [items[2]]


# ---------------------------------------------------------------- values & lifecycle


async def test_json_fields_round_trip_unicode(store: Store) -> None:
    """JSON fields and text keep emoji, CJK, RTL, combining marks, escapes and big ints exactly."""
    await store.create_session("s", meta=UNICODE)
    session = await store.update_session("s", context={"deep": [UNICODE]})
    turn = await store.append_turn("s", turn_id="😀", role="user", content="漢字 😀", meta=UNICODE)
    assert session.meta == UNICODE and session.context == {"deep": [UNICODE]}
    assert await store.turns("s") == [turn] and turn.meta == UNICODE
    assert (await store.turns("s"))[0].content == "漢字 😀"
    await store.save_checkpoint("k", UNICODE)
    assert await store.load_checkpoint("k") == UNICODE


@pytest.mark.parametrize(
    "meta",
    [{"x": math.nan}, {"x": math.inf}, {"x": {1, 2}}, {"x": "nul \x00 here"}, {"x": "\ud800"}],
    ids=["nan", "inf", "set", "nul", "lone-surrogate"],
)
async def test_unstorable_values_are_invalid_request(store: Store, meta: dict[str, Any]) -> None:
    """Values one backend cannot store are refused by both with InvalidRequest, writing nothing."""
    with pytest.raises(errors.InvalidRequest):
        await store.append_turn("s", turn_id="t", role="user", content="x", meta=meta)
    with pytest.raises(errors.InvalidRequest):
        await store.append_turn("s", turn_id="t", role="user", content=str(meta["x"]) + "\x00")
    assert await store.get_session("s") is None


async def test_records_read_back_pickle(store: Store) -> None:
    """Every record type, as read back from the store, survives pickling unchanged."""
    await store.create_session("s", user_id="u")
    turn = await store.append_turn("s", turn_id="t", role="user", content="hi")
    await store.create_run(RunRecord(run_id="r", pipeline="p", result={"a": 1}))
    await store.add_training_record(
        TrainingRecord(pipeline="p", pipeline_version="1", input={}, output={})
    )
    await store.add_events([Event(kind="k", source="s")])
    await store.save_pipeline_version(PipelineVersion(name="p", version=1, yaml_text="y"))
    await store.create_api_key(ApiKey(name="k", key_hash="h", prefix="p"))
    await store.add_feedback(Feedback(session_id="s", response_id="t", rating=5))
    records: list[Any] = [
        await store.get_session("s"), turn, await store.get_run("r"),
        *(await store.training_records()), *(await store.events()),
        await store.latest_pipeline_version("p"), *(await store.list_api_keys()),
        *(await store.feedback()),
    ]  # fmt: skip
    assert len(records) == 8 and None not in records
    for record in records:
        assert pickle.loads(pickle.dumps(record)) == record


async def test_closed_store_refuses_calls(backend: Backend) -> None:
    """After close, calls raise StoreUnavailable(store_closed, not retryable) and ping is False."""
    store = await backend.open()
    await store.close()
    await store.close()  # idempotent
    with pytest.raises(errors.StoreUnavailable) as info:
        await store.get_session("s")
    assert (info.value.code, info.value.retryable) == ("store_closed", False)
    assert await store.ping() is False


async def test_store_is_an_async_context_manager(backend: Backend) -> None:
    """`async with` opens the store and closes it on exit."""
    async with backend.build() as store:
        await store.migrate()
        assert await store.ping()
    assert await store.ping() is False


# ---------------------------------------------------------------- pure parts


def test_record_rules_are_checked_on_construction() -> None:
    """Ratings outside 1..10, bool ratings, unknown DNA origins and version 0 are InvalidRequest."""
    for bad in (0, 11, True):
        with pytest.raises(errors.InvalidRequest):
            Feedback(session_id="s", response_id="r", rating=bad)
    with pytest.raises(errors.InvalidRequest):
        PipelineDna(origin="alien")  # type: ignore[arg-type]
    with pytest.raises(errors.InvalidRequest):
        PipelineVersion(name="p", version=0, yaml_text="")


def test_hash_api_key_is_stable_domain_separated_sha256() -> None:
    """hash_api_key is deterministic hex SHA-256, differs per key and from a bare SHA-256."""
    import hashlib

    digest = hash_api_key("elx_abc")
    assert digest == hash_api_key("elx_abc") and len(digest) == 64
    assert digest != hash_api_key("elx_abd")
    assert digest != hashlib.sha256(b"elx_abc").hexdigest()


EXCEPTIONS = [
    errors.StoreError("boom", code="migration_failed"),
    errors.StoreConfigError("bad url"),
    errors.InvalidRequest("rating 11"),
    errors.NotFound("no run 'r'", kind="run", key="r"),
    errors.AlreadyExists("taken", kind="pipeline_version", key="chat@1"),
    errors.StoreUnavailable("down", backend="postgresql", target="h:5432/db"),
]


@pytest.mark.parametrize("exc", EXCEPTIONS, ids=lambda e: type(e).__name__)
def test_exceptions_pickle_with_fields(exc: errors.StoreError) -> None:
    """Each store exception keeps its type, message, code, retryable and fields through pickle."""
    copy = pickle.loads(pickle.dumps(exc))
    assert type(copy) is type(exc) and str(copy) == str(exc)
    assert copy.__dict__ == exc.__dict__


def test_every_exception_class_is_covered_and_coded() -> None:
    """The pickle list covers every exported exception; only StoreUnavailable is retryable."""
    exported = {getattr(errors, name) for name in errors.__all__}
    assert exported == {type(e) for e in EXCEPTIONS}
    codes = {type(e).__name__: (e.code, e.retryable) for e in EXCEPTIONS}
    assert codes["StoreUnavailable"] == ("store_unavailable", True)
    assert codes["NotFound"] == ("not_found", False)
    assert codes["AlreadyExists"] == ("already_exists", False)
    assert issubclass(errors.InvalidRequest, errors.StoreConfigError)


@pytest.mark.parametrize(
    "dsn",
    [
        "postgresql://elx:hunter2@db:5432/app",
        "postgresql://elx:hun/ter2@db/app",
        "postgresql://db/app?user=elx&password=hunter2",
        "host=db user=elx password=hunter2 dbname=app",
        "host=db password='hun ter2' dbname=app",
    ],
)
def test_redact_url_hides_passwords_in_every_dsn_form(dsn: str) -> None:
    """URL userinfo, query and key=value passwords are all replaced by ***; the rest stays."""
    redacted = redact_url(dsn)
    assert "hunter2" not in redacted and "ter2" not in redacted and "***" in redacted
    assert "db" in redacted and "app" in redacted


def test_package_import_stays_light() -> None:
    """`import store` loads neither psycopg nor the pipeline runner (they load on use)."""
    import subprocess
    import sys

    code = "import sys, store; print('psycopg' in sys.modules, 'pipelines.runner' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
