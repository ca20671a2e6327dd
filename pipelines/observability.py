"""Structured logs and in-process counters for provider calls.

Every attempt, retry, fallback and breaker transition is logged with structlog as
one JSON object per line on stderr, and counted in :class:`ProviderMetrics`
(the telemetry actor aggregates these across the cluster later). Log fields are
built from our own values only; no request body, header or key is ever logged.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections import Counter
from typing import Any

import structlog

__all__ = ["ProviderMetrics", "configure_logging", "get_logger"]

_configured = False


def configure_logging(*, level: str = "warning", fmt: str = "json") -> None:
    """Configure structlog once: JSON (or console) lines on stderr at ``level``."""
    global _configured  # noqa: PLW0603 - logging is process-wide by nature
    numeric = logging.getLevelName(level.upper())
    renderer: Any = (
        structlog.processors.JSONRenderer() if fmt == "json" else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=_StderrLogger,
        cache_logger_on_first_use=False,
    )
    _configured = True


class _StderrLogger:
    """Writes each rendered line to the *current* ``sys.stderr``.

    Looking stderr up per line (instead of binding the stream once) keeps logging
    working when stderr is swapped, as test capture and daemonisation do.
    """

    def __init__(self, *args: Any) -> None:
        del args

    def msg(self, message: str) -> None:
        sys.stderr.write(message + "\n")
        sys.stderr.flush()

    log = debug = info = warn = warning = error = critical = exception = fatal = msg


def get_logger(name: str) -> Any:
    """A structlog logger bound to ``component=name``."""
    if not _configured:
        configure_logging()
    # Initial values (not .bind()) keep the proxy lazy, so later configuration applies.
    return structlog.get_logger(component=name)


class ProviderMetrics:
    """Thread-safe counters keyed by (event, provider, model, code)."""

    def __init__(self) -> None:
        self._counts: Counter[tuple[str, str, str, str]] = Counter()
        self._lock = threading.Lock()

    def count(self, event: str, *, provider: str, model: str = "", code: str = "") -> None:
        with self._lock:
            self._counts[(event, provider, model, code)] += 1

    def total(self, event: str, **match: str) -> int:
        """Sum of ``event`` counts whose labels match ``match`` (e.g. provider="anthropic")."""
        with self._lock:
            items = list(self._counts.items())
        fields = ("provider", "model", "code")
        return sum(
            n
            for (ev, *labels), n in items
            if ev == event
            and all(dict(zip(fields, labels, strict=True))[k] == v for k, v in match.items())
        )

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            items = sorted(self._counts.items())
        return [
            {"event": e, "provider": p, "model": m, "code": c, "count": n}
            for (e, p, m, c), n in items
        ]
