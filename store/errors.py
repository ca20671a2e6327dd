"""The exceptions of the persistence layer.

Every store error carries a stable ``code`` and a ``retryable`` flag, so callers
decide on data, never on message text, and every one pickles with its fields
intact (the ``store`` actor raises them across an actor boundary). Messages never
contain a password: URLs and DSNs are shown with their userinfo redacted.

    StoreError                 root; raised as such for an unexpected database
    │                          failure (a bug, corruption): code ``store_failed``
    │                          or ``migration_failed``, not retryable
    ├── StoreConfigError       user error: bad URL/DSN, unopenable file, schema
    │   │                      newer than this code; fix the configuration
    │   └── InvalidRequest     a record or argument breaks a documented rule
    │                          (rating outside 1..10, NaN or NUL in data, ...)
    ├── NotFound               the record to update does not exist; ``kind``, ``key``
    ├── AlreadyExists          a uniqueness rule refused the write; ``kind``, ``key``
    └── StoreUnavailable       runtime: the database cannot be reached or is locked
                               beyond the busy timeout; ``store_unavailable``,
                               retryable. A closed store raises it with
                               ``store_closed``, not retryable.

Nothing in :mod:`store` retries on its own: a :class:`StoreUnavailable` is
retryable *for the caller*, and every write is idempotent or reports
:class:`AlreadyExists`, so retrying after a failure whose commit is unknown is safe.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AlreadyExists",
    "InvalidRequest",
    "NotFound",
    "StoreConfigError",
    "StoreError",
    "StoreUnavailable",
]


class StoreError(Exception):
    """Root of every error raised on purpose by :mod:`store`."""

    default_code = "store_failed"
    default_retryable = False

    def __init__(
        self, message: str, *, code: str | None = None, retryable: bool | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.retryable = self.default_retryable if retryable is None else retryable

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuild from keyword fields so subclasses with extra fields pickle intact.
        return (_rebuild, (type(self), self._fields()))

    def _fields(self) -> dict[str, Any]:
        return {"message": self.message, "code": self.code, "retryable": self.retryable}

    def __str__(self) -> str:
        return self.message


def _rebuild(cls: type[StoreError], fields: dict[str, Any]) -> StoreError:
    return cls(**fields)


class StoreConfigError(StoreError):
    """The store URL, DSN or database file is wrong; fix the configuration, do not retry."""

    default_code = "store_config"


class InvalidRequest(StoreConfigError):  # noqa: N818 - names the cause, like httpx's peers
    """A record or argument breaks a rule the store enforces; fix the caller."""

    default_code = "invalid_request"


class _KeyedError(StoreError):
    """A failure about one record, named by ``kind`` (table) and ``key`` (its id)."""

    def __init__(
        self,
        message: str,
        *,
        kind: str = "",
        key: str = "",
        code: str | None = None,
        retryable: bool | None = None,
    ) -> None:
        self.kind = kind
        self.key = key
        super().__init__(message, code=code, retryable=retryable)

    def _fields(self) -> dict[str, Any]:
        return {**super()._fields(), "kind": self.kind, "key": self.key}


class NotFound(_KeyedError):  # noqa: N818 - reads as the outcome, like FileNotFoundError
    """The record to update, named by ``kind`` and ``key``, does not exist."""

    default_code = "not_found"


class AlreadyExists(_KeyedError):  # noqa: N818 - see NotFound
    """A uniqueness rule refused the write; ``kind`` and ``key`` name the clash."""

    default_code = "already_exists"


class StoreUnavailable(StoreError):  # noqa: N818 - reads as the condition, like httpx.ConnectError
    """The database cannot be reached right now; ``backend`` and ``target`` say which.

    ``target`` is a redacted location (``host:port/dbname`` or a file path), never
    a DSN with its password.
    """

    default_code = "store_unavailable"
    default_retryable = True

    def __init__(
        self,
        message: str,
        *,
        backend: str = "",
        target: str = "",
        code: str | None = None,
        retryable: bool | None = None,
    ) -> None:
        self.backend = backend
        self.target = target
        super().__init__(message, code=code, retryable=retryable)

    def _fields(self) -> dict[str, Any]:
        return {**super()._fields(), "backend": self.backend, "target": self.target}
