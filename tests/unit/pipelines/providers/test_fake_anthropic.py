"""The fake Anthropic server speaks the Messages API wire format (checked without the SDK)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest
from starlette.testclient import TestClient

from pipelines.providers.fakes import FakeServerState, FaultPlan, Reply
from pipelines.providers.fakes.anthropic import create_app

HEADERS = {"x-api-key": "sk-ant-fake-key-000000", "anthropic-version": "2023-06-01"}
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "days": {"type": "integer", "minimum": 1}},
    "required": ["city", "days"],
}


@pytest.fixture
def state() -> FakeServerState:
    return FakeServerState()


@pytest.fixture
def client(state: FakeServerState) -> Iterator[TestClient]:
    with TestClient(create_app(state), raise_server_exceptions=True) as test_client:
        yield test_client


def body(**extra: Any) -> dict[str, Any]:
    return {
        "model": "claude-haiku-4-5",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": "three little words"}],
        **extra,
    }


def sse(text: str) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for chunk in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in chunk.splitlines())
        events.append((lines["event"], json.loads(lines["data"])))
    return events


def test_message_shape_and_word_usage(client: TestClient, state: FakeServerState) -> None:
    """A default answer has the Message shape, echoes the last user text and counts words."""
    response = client.post("/v1/messages", json=body(system="be brief"), headers=HEADERS)
    assert response.status_code == 200 and response.headers["request-id"].startswith("req_")
    message = response.json()
    assert message["id"].startswith("msg_")
    assert {k: message[k] for k in ("type", "role", "model", "stop_reason", "stop_sequence")} == {
        "type": "message",
        "role": "assistant",
        "model": "claude-haiku-4-5",
        "stop_reason": "end_turn",
        "stop_sequence": None,
    }
    assert message["content"] == [
        {"type": "text", "text": "fake anthropic reply: three little words"}
    ]
    assert message["usage"] == {"input_tokens": 5, "output_tokens": 6}
    assert state.requests[0].headers["x-api-key"] == "<redacted>"
    assert state.keys_seen == ["sk-ant-fake-key-000000"]


@pytest.mark.parametrize(
    ("headers", "status", "error_type"),
    [
        ({"anthropic-version": "2023-06-01"}, 401, "authentication_error"),
        ({"x-api-key": "k"}, 400, "invalid_request_error"),
        ({"authorization": "Bearer k", "anthropic-version": "2023-06-01"}, 200, None),
    ],
)
def test_key_and_version_headers(
    client: TestClient,
    state: FakeServerState,
    headers: dict[str, str],
    status: int,
    error_type: str | None,
) -> None:
    """A key (x-api-key or Bearer) and anthropic-version are required; refusals are still recorded."""
    response = client.post("/v1/messages", json=body(), headers=headers)
    assert response.status_code == status
    if error_type:
        error = response.json()
        assert error["type"] == "error" and set(error) == {"type", "error"}
        assert set(error["error"]) == {"type", "message"} and error["error"]["type"] == error_type
    assert state.request_count == 1


def test_forced_single_tool_gets_a_schema_valid_input(client: TestClient) -> None:
    """tool_choice "any" with one tool answers a tool_use whose input satisfies its schema."""
    tools = [{"name": "plan_trip", "description": "plan", "input_schema": SCHEMA}]
    request = body(tools=tools, tool_choice={"type": "any"})
    message = client.post("/v1/messages", json=request, headers=HEADERS).json()
    (block,) = message["content"]
    assert block["type"] == "tool_use" and block["id"].startswith("toolu_")
    jsonschema.validate(block["input"], SCHEMA)
    assert message["stop_reason"] == "tool_use"
    again = client.post("/v1/messages", json=request, headers=HEADERS).json()
    assert again["content"][0]["input"] == block["input"]  # seeded by the request


def test_stream_event_order(client: TestClient, state: FakeServerState) -> None:
    """A streamed tool answer follows the API's event order with input_json_delta pieces."""
    state.push(Reply(text="ok then", tool_calls=(("plan_trip", {"city": "Lisbon", "days": 4}),)))
    tools = [{"name": "plan_trip", "description": "plan", "input_schema": SCHEMA}]
    response = client.post("/v1/messages", json=body(tools=tools, stream=True), headers=HEADERS)
    assert response.headers["content-type"].startswith("text/event-stream")
    events = sse(response.text)
    names = [name for name, _ in events]
    assert names[:3] == ["message_start", "content_block_start", "ping"]
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert all(data["type"] == name for name, data in events)
    pieces = [
        d["delta"]["partial_json"]
        for n, d in events
        if d.get("delta", {}).get("type") == "input_json_delta"
    ]
    assert len(pieces) > 1 and json.loads("".join(pieces)) == {"city": "Lisbon", "days": 4}
    text = "".join(
        d["delta"]["text"] for n, d in events if d.get("delta", {}).get("type") == "text_delta"
    )
    assert text == "ok then"
    assert events[-2][1]["delta"]["stop_reason"] == "tool_use"


def test_rate_limit_headers(client: TestClient, state: FakeServerState) -> None:
    """A 429 carries retry-after and retry-after-ms from the plan."""
    state.set_plan(FaultPlan(retry_after_s=2.5))
    state.push("429")
    response = client.post("/v1/messages", json=body(), headers=HEADERS)
    assert response.status_code == 429
    assert (response.headers["retry-after"], response.headers["retry-after-ms"]) == ("2.5", "2500")
    assert response.json()["error"]["type"] == "rate_limit_error"


def test_malformed_body_is_not_json(client: TestClient, state: FakeServerState) -> None:
    """The malformed fault answers 200 with a JSON body cut short."""
    state.push("malformed")
    response = client.post("/v1/messages", json=body(), headers=HEADERS)
    assert response.status_code == 200
    with pytest.raises(ValueError, match=r"Unterminated|Expecting"):
        json.loads(response.text)


def test_tool_result_must_answer_a_tool_use(client: TestClient) -> None:
    """A tool_result naming no tool_use of the previous turn is a 400, as in the real API."""
    messages = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "toolu_nope", "content": "x"}],
        },
    ]
    response = client.post("/v1/messages", json=body(messages=messages), headers=HEADERS)
    assert response.status_code == 400 and "toolu_nope" in response.json()["error"]["message"]
