"""The HTTP platform on Ray Serve over the running tree (fake Anthropic behind it):
every /api route, SSE streaming, sessions across turns, feedback, auth, 413/422/429/503."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from pipelines.providers.fakes import FaultPlan

pytestmark = pytest.mark.ray

REPO = Path(__file__).resolve().parents[2]
APP = "examples/sample_project/app.py"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def served(tree: dict[str, Any]) -> Iterator[dict[str, Any]]:
    from ray import serve

    from serve.deployment import APP_NAME, ServeSettings, build_application
    from serve.http.app import HttpConfig

    port = _free_port()
    settings = ServeSettings(port=port)
    serve.start(http_options={"host": "127.0.0.1", "port": port, "request_timeout_s": 120})
    http = HttpConfig(burst=40, rate_per_minute=600, max_inflight=3, max_body_bytes=64_000)
    app = build_application(settings, shards=tree["config"].shards, workspace=str(REPO), http=http)
    serve.run(app, name=APP_NAME, route_prefix="/", blocking=False)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(f"{base}/readyz", timeout=5).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "the Serve app never became ready"
        time.sleep(0.2)
    yield {"base": base}
    serve.delete(APP_NAME)
    serve.shutdown()


def new_key(name: str) -> str:
    from actors.store_actor import StoreClient
    from serve.http.auth import create_key

    raw, _ = asyncio.run(create_key(StoreClient(), name, scopes=("chat",)))
    return raw


def client(served: dict[str, Any], key: str | None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.Client(base_url=served["base"], headers=headers, timeout=120)


def test_chat_sessions_feedback_and_runs(served: dict[str, Any], fake_plan: Any) -> None:
    with client(served, new_key("alice")) as http:
        first = http.post("/api/agent/chat", json={"message": f"analyze the code in {APP}"})
        assert first.status_code == 200, first.text
        answer = first.json()
        assert answer["agent"] == "analysis"
        assert {58, 63} <= {f["line"] for f in answer["findings"]}
        sid = answer["session_id"]
        second = http.post(
            "/api/agent/chat",
            json={"message": "now refactor it based on that analysis", "session_id": sid},
        ).json()
        assert second["agent"] == "refactoring" and second["session_id"] == sid
        listed = http.get("/api/sessions").json()["sessions"]
        assert [s["id"] for s in listed] == [sid] and listed[0]["turn_count"] == 4
        session = http.get(f"/api/sessions/{sid}").json()
        assert session["turns"][1]["meta"]["response"]["response_id"] == answer["response_id"]
        rated = http.post(
            f"/api/sessions/{sid}/feedback",
            json={"response_id": answer["response_id"], "rating": 9, "feedback": "great"},
        )
        assert rated.status_code == 200 and rated.json()["feedback_id"]
        names = {p["name"] for p in http.get("/api/pipelines").json()["pipelines"]}
        assert {"code_analysis", "general_chat", "deployment"} <= names
        started = http.post("/api/pipelines/deployment/run", json={"inputs": {"request": "v2"}})
        assert started.status_code == 202
        run_id = started.json()["run_id"]
        deadline = time.monotonic() + 60
        while (run := http.get(f"/api/runs/{run_id}").json())["status"] in ("pending", "running"):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert run["status"] == "succeeded", run
        # Telemetry is sent in batches (within 20 ms): the numbers catch up, not at once.
        deadline = time.monotonic() + 5
        while (metrics := http.get("/api/metrics").json())["turns"]["count"] < 2:
            assert time.monotonic() < deadline, metrics["turns"]
            time.sleep(0.05)
        assert "analysis" in metrics["by_agent"]
        assert any(r["path"] == "agents/analysis" for r in metrics["tree"])
        assert http.delete(f"/api/sessions/{sid}").status_code == 204
        assert http.get(f"/api/sessions/{sid}").status_code == 404


def test_sse_stream_carries_tokens_then_the_response(
    served: dict[str, Any], fake_plan: Any
) -> None:
    with (
        client(served, new_key("streamer")) as http,
        http.stream(
            "POST",
            "/api/agent/chat",
            json={"message": "what is a race condition?", "stream": True},
        ) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = []
        for block in response.iter_text():
            events.append(block)
    text = "".join(events)
    kinds = [line.split(": ", 1)[1] for line in text.splitlines() if line.startswith("event: ")]
    assert kinds[0] == "routed" and kinds[-1] == "response"
    assert kinds.count("token") >= 1
    final = json.loads(text.rsplit("event: response\ndata: ", 1)[1].split("\n", 1)[0])
    streamed = "".join(
        json.loads(line[6:])["text"]
        for block in text.split("\n\n")
        if block.startswith("event: token")
        for line in block.splitlines()
        if line.startswith("data: ")
    )
    assert final["agent"] == "general" and streamed.strip() in final["summary"]


def test_auth_and_isolation(served: dict[str, Any], fake_plan: Any) -> None:
    from actors.store_actor import StoreClient

    base = served["base"]
    assert httpx.get(f"{base}/api/sessions").status_code == 401
    bad = httpx.get(f"{base}/api/sessions", headers={"Authorization": "Bearer elx_nope"})
    assert bad.status_code == 401 and bad.json()["error"]["code"] == "unauthorized"
    owner, other = new_key("owner"), new_key("other")
    with client(served, owner) as http:
        sid = http.post("/api/agent/chat", json={"message": "hello there"}).json()["session_id"]
    with client(served, other) as http:
        assert http.get(f"/api/sessions/{sid}").status_code == 404
        assert http.get("/api/sessions").json()["sessions"] == []
        # Writing into it is refused by the shard that holds it: a plain 404, no
        # remote traceback in the message, and nothing appended to the session.
        for stream in (False, True):
            body = {"message": "let me in", "session_id": sid, "stream": stream}
            denied = http.post("/api/agent/chat", json=body)
            assert denied.status_code == 404, denied.text
            assert denied.json()["error"] == {"code": "not_found", "message": f"no session {sid!r}"}
    with client(served, owner) as http:
        assert len(http.get(f"/api/sessions/{sid}").json()["turns"]) == 2
    revoked = new_key("revoked")
    asyncio.run(StoreClient().revoke_api_key("revoked"))
    with client(served, revoked) as http:
        refused = http.get("/api/sessions")
        assert refused.status_code == 401 and revoked not in refused.text
    assert httpx.get(f"{base}/healthz").json() == {"status": "ok"}
    assert "elexirion_turns_total" in httpx.get(f"{base}/metrics").text


def test_limits_413_422_429_503(served: dict[str, Any], fake_plan: Any) -> None:
    with client(served, new_key("limits")) as http:
        big = http.post("/api/agent/chat", content=b'{"message": "' + b"x" * 70_000 + b'"}')
        assert big.status_code == 413 and big.json()["error"]["code"] == "payload_too_large"
        bad = http.post("/api/agent/chat", json={"session_id": "s1"})
        assert bad.status_code == 422 and "message" in bad.json()["error"]["message"]
    with client(served, new_key("burst")) as http:
        # Burst 40, then 10/s: faster than that, a 429 comes (the bucket refills while
        # we ask, so how soon depends on the machine; the 429 itself must be complete).
        for _ in range(400):
            if (limited := http.get("/api/sessions")).status_code == 429:
                break
        assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
        assert limited.json()["error"]["code"] == "rate_limited"
    fake_plan.state.set_plan(FaultPlan(latency_ms=1500))
    key = new_key("saturate")

    async def flood() -> list[httpx.Response]:
        async with httpx.AsyncClient(
            base_url=served["base"], headers={"Authorization": f"Bearer {key}"}, timeout=120
        ) as http:
            return await asyncio.gather(
                *(http.post("/api/agent/chat", json={"message": "hello"}) for _ in range(8))
            )

    responses = asyncio.run(flood())
    codes = sorted(r.status_code for r in responses)
    assert 503 in codes and 200 in codes, codes
    saturated = next(r for r in responses if r.status_code == 503)
    assert saturated.json()["error"]["code"] == "saturated" and saturated.headers["Retry-After"]


def test_disconnect_cancels_the_run_in_the_tree(served: dict[str, Any], fake_plan: Any) -> None:
    """Over Serve: the client hangs up after the first token; the executor sees the
    cancellation at its next token batch and stops the run (recorded as cancelled)."""
    from actors.store_actor import StoreClient

    fake_plan.state.set_plan(FaultPlan(stream_chunk_delay_ms=400))
    routed: dict[str, Any] = {}
    with (
        client(served, new_key("hangup")) as http,
        http.stream(
            "POST",
            "/api/agent/chat",
            json={"message": "what is a race condition?", "stream": True},
        ) as response,
    ):
        for line in response.iter_lines():
            if line.startswith("data: ") and not routed:
                routed = json.loads(line[6:])
            if line.startswith("event: token"):
                break
    store = StoreClient()
    run_id = f"{routed['response_id']}-general"
    deadline = time.monotonic() + 60
    while (record := asyncio.run(store.get_run(run_id))) is None or record.status != "failed":
        assert time.monotonic() < deadline, record
        time.sleep(0.1)
    assert record.error["code"] == "cancelled"
    turns = asyncio.run(store.turns(routed["session_id"]))
    assert [t.role for t in turns] == ["user"]


def test_the_app_is_served_through_haproxy(served: dict[str, Any]) -> None:
    """Serve runs in HAProxy mode (as `elexirion serve` starts it): an haproxy process
    listens on the app's port, and every test in this module went through it."""
    import psutil

    port = int(served["base"].rsplit(":", 1)[1])
    listeners = {
        c.pid
        for c in psutil.net_connections("tcp")
        if c.status == psutil.CONN_LISTEN and c.laddr.port == port and c.pid
    }
    names = {psutil.Process(pid).name() for pid in listeners}
    assert names == {"haproxy"}, names
