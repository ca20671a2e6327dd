"""Where a run's tokens go: a per-run sink in a context variable.

One :class:`~pipelines.runner.Runner` serves many runs at once (the executors), so
a sink set on the runner would mix them. :func:`streaming_to` sets the sink for
the current task and the tasks it starts (loops, parallel steps), and LLM steps
stream through it (``sink(step_name, text_delta)``); with no sink they complete
in one call.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

__all__ = ["TOKEN_SINK", "TokenSink", "streaming_to"]

TokenSink = Callable[[str, str], None]
TOKEN_SINK: ContextVar[TokenSink | None] = ContextVar("elexirion_token_sink", default=None)


@contextmanager
def streaming_to(sink: TokenSink | None) -> Iterator[None]:
    """Send the tokens of LLM steps run inside this block to ``sink``."""
    token = TOKEN_SINK.set(sink)
    try:
        yield
    finally:
        TOKEN_SINK.reset(token)
