"""Helpers every provider uses to turn HTTP failures into :class:`ProviderError`.

Codes are stable data (``rate_limited``, ``overloaded``, ``server_error``,
``timeout``, ``connection``, ``invalid_request``, ``auth``, ``content_filtered``);
``retryable`` follows from the code. Messages pass through :func:`redact`, so a key
echoed back by a server never reaches a log or an exception.
"""

from __future__ import annotations

import email.utils
import re
import time
from collections.abc import Iterable, Mapping

from pipelines.errors import ProviderError

__all__ = ["RETRYABLE_CODES", "error_for_status", "parse_retry_after", "provider_error", "redact"]

RETRYABLE_CODES = frozenset({"rate_limited", "overloaded", "server_error", "timeout", "connection"})

# Things that look like API keys: sk-..., sk-ant-..., AIza..., long bearer tokens.
_KEYLIKE = re.compile(
    r"(sk-[A-Za-z0-9_\-]{8,}|AIza[0-9A-Za-z_\-]{20,}|Bearer\s+[A-Za-z0-9._\-]{12,})"
)


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` with every known secret and anything key-shaped replaced."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "<redacted>")
    return _KEYLIKE.sub("<redacted>", text)


def parse_retry_after(
    headers: Mapping[str, str] | None, *, now: float | None = None
) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``retry-after`` (seconds or HTTP date)."""
    if not headers:
        return None
    lowered = {k.lower(): v for k, v in headers.items()}
    ms = lowered.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = lowered.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        if parsed is None:
            return None
        return max(0.0, parsed.timestamp() - (now if now is not None else time.time()))


def error_for_status(status: int) -> str:
    """Our code for an HTTP status."""
    if status == 429:
        return "rate_limited"
    if status in (529, 503):
        return "overloaded"
    if status in (408, 504):
        return "timeout"
    if status in (401, 403):
        return "auth"
    if status >= 500:
        return "server_error"
    return "invalid_request"


def provider_error(
    message: str,
    *,
    code: str,
    provider: str,
    status: int | None = None,
    retry_after_s: float | None = None,
    secrets: Iterable[str | None] = (),
) -> ProviderError:
    """A :class:`ProviderError` with ``retryable`` derived from ``code`` and a redacted message."""
    return ProviderError(
        f"{provider}: {redact(message, secrets)}",
        code=code,
        retryable=code in RETRYABLE_CODES,
        provider=provider,
        retry_after_s=retry_after_s,
        status=status,
    )
