"""The one exception hierarchy of Datagrove.

    DatagroveError                 500 internal_error (never shows its cause to a client)
    ├── BadRequest                 400 bad_request
    │   ├── InvalidCsv             400 invalid_csv       (names line, column and value)
    │   ├── InvalidSql             400 invalid_sql
    │   ├── QueryLimitExceeded     400 query_limit_exceeded
    │   └── BackupRefused          400 backup_refused    (a corrupt backup, a non-empty restore target)
    ├── Unauthorized               401 unauthorized
    │   └── BadCredential          401 unauthorized      (a wrong secret or an unknown token: counted)
    ├── Forbidden                  403 forbidden
    ├── NotFound                   404 not_found
    ├── MethodNotAllowed           405 method_not_allowed (writes through the Iceberg REST catalog)
    ├── Conflict                   409 conflict
    ├── Gone                       410 dataset_deleted   (a stream whose dataset was deleted)
    │   └── VersionGone            410 version_gone      (a dataset version no longer in its history)
    ├── PayloadTooLarge            413 payload_too_large
    ├── UnsupportedMediaType       415 unsupported_media_type
    ├── TooManyRequests            429 too_many_requests (``details``: retryAfterSeconds, and the limit)
    └── InsufficientStorage        507 insufficient_storage (the data directory's disk is full)

Every subclass carries an HTTP status and a stable ``code``; the API layer renders all of them in
one place (``datagrove.api.errors``) as Domo's error shape. A 5xx is answered as "internal error"
unless its class sets ``client_safe`` (its message names no internal detail and tells the client
what to do). Third-party exceptions are translated
at the adapter boundary with ``raise OurError(...) from exc`` so that a DuckDB or SQLAlchemy message
never reaches a client unreviewed.
"""

from __future__ import annotations

from typing import Any, ClassVar


class DatagroveError(Exception):
    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"
    client_safe: ClassVar[bool] = False  # a 5xx whose message may be shown to the client

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class BadRequest(DatagroveError):
    status = 400
    code = "bad_request"


class InvalidCsv(BadRequest):
    """A CSV body that does not fit the dataset's schema. ``details`` has line, column, value."""

    code = "invalid_csv"


class InvalidSql(BadRequest):
    code = "invalid_sql"


class QueryLimitExceeded(BadRequest):
    code = "query_limit_exceeded"


class BackupRefused(BadRequest):
    """``datagrove backup`` or ``restore`` will not go on (nothing was written): the message says why."""

    code = "backup_refused"


class Unauthorized(DatagroveError):
    status = 401
    code = "unauthorized"


class BadCredential(Unauthorized):
    """A credential that is wrong, not merely out of date: an unknown OAuth client or a wrong secret,
    an unknown developer token. Only these count as failed attempts towards the authentication
    limits (an expired token is a client's everyday refresh, not an attack)."""


class Forbidden(DatagroveError):
    status = 403
    code = "forbidden"


class NotFound(DatagroveError):
    status = 404
    code = "not_found"


class MethodNotAllowed(DatagroveError):
    """A request the endpoint never serves, e.g. a write through the read-only Iceberg REST catalog;
    the message says where to go instead."""

    status = 405
    code = "method_not_allowed"


class Conflict(DatagroveError):
    status = 409
    code = "conflict"


class Gone(DatagroveError):
    """A write to a stream whose dataset was deleted: the stream is a read-only tombstone."""

    status = 410
    code = "dataset_deleted"


class VersionGone(Gone):
    """A dataset version (an Iceberg snapshot id) that is not in the table's history: it never was,
    or maintenance expired it. ``details`` names the version."""

    code = "version_gone"


class PayloadTooLarge(DatagroveError):
    status = 413
    code = "payload_too_large"


class UnsupportedMediaType(DatagroveError):
    status = 415
    code = "unsupported_media_type"


class TooManyRequests(DatagroveError):
    """Refused until later (too many failed authentications, no free work slot).
    ``details["retryAfterSeconds"]`` says when to try again (the ``Retry-After`` header), and
    ``details["limit"]``, where there is one, names the setting that was reached."""

    status = 429
    code = "too_many_requests"


class InsufficientStorage(DatagroveError):
    """A write refused or failed because the data directory's filesystem is full, or below the
    ``min_free_disk_bytes`` floor (``disk_space.py``). Nothing was written; retry once space returns."""

    status = 507
    code = "insufficient_storage"
    client_safe = True
