"""dspy.LM pointed at the OpenAI-compatible edge gets completions and streams."""

from __future__ import annotations

import os
from collections.abc import Iterator

# Before anything imports litellm (dspy does): no price-file download from the internet.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import pytest

from tests.unit.serve.http.openai_fakes import FakePlatform, Server, expected_content, serving


@pytest.fixture
def server() -> Iterator[Server]:
    with serving(FakePlatform()) as running:
        yield running


def test_dspy_lm_gets_a_completion(server: Server) -> None:
    """dspy.LM("openai/elexirion") pointed at /v1 answers with the rendered content."""
    import dspy

    lm = dspy.LM("openai/elexirion", api_base=f"{server.base}/v1", api_key="k", cache=False)
    assert lm("analyse app.py") == [expected_content()]
    # The 3.4 request API (messages= dictionaries are deprecated, removed in 3.5).
    request = dspy.lm15.Request(
        model="openai/elexirion",
        messages=(dspy.lm15.Message.user("analyse app.py"),),
        system="be brief",
    )
    assert lm(request).text == expected_content()
    assert server.platform.calls[-1][1] == (
        "Earlier in this conversation:\nsystem: be brief\n\nanalyse app.py"
    )


async def test_dspy_streamify_streams_chunks(server: Server) -> None:
    """Under dspy.streamify an LM call streams: the chunks join to the content."""
    import dspy

    lm = dspy.LM("openai/elexirion", api_base=f"{server.base}/v1", api_key="k", cache=False)

    class Ask(dspy.Module):
        async def aforward(self, question: str) -> dspy.Prediction:
            outputs = await lm.acall(question)
            return dspy.Prediction(answer=outputs[0])

    program = dspy.streamify(Ask(), is_async_program=True)
    deltas: list[str] = []
    final = None
    async for item in program(question="analyse app.py"):
        if isinstance(item, dspy.Prediction):
            final = item
        elif getattr(item, "choices", None):
            deltas.append(item.choices[0].delta.content or "")
    assert final is not None and final.answer == expected_content()
    assert "".join(deltas) == expected_content()
    assert len(deltas) > 3
    assert server.platform.calls[-1][0] == "chat_events"
