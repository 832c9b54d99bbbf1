"""What a connector is: the interface every built-in and third-party connector implements.

A connector reads one source (a database query, a file, other datasets) and hands its rows over as
Arrow record batches; it never touches the catalog, the table store or HTTP. The run engine
(``services/connector_runs.py``) gives it a ``RunContext``, writes the batches it yields to Parquet in
bounded memory, and commits them through the same exactly-once Iceberg commit as stream parts.

Connectors are found through the ``datagrove.connectors`` entry-point group (see ``registry.py``):
a third-party package registers ``key = "package.module:ConnectorClass"`` in its own metadata.

Failures are classified (STYLE 9): a ``TransientSourceError`` (a connection refused or reset, a
timeout, HTTP 429/5xx) is retried with backoff by the run engine; any other ``SourceError`` ends the
run at once. Messages name the cause and never include a credential.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from datagrove.errors import BadRequest, DatagroveError

if TYPE_CHECKING:
    import pyarrow as pa

    from datagrove.connectors.network import NetworkPolicy
    from datagrove.domain import UpdateMethod
    from datagrove.tables.types import Column


class SourceError(DatagroveError):
    """The source could not be read; the run ends in ERROR with this message (category CONNECTOR)."""

    status = 400
    code = "source_error"


class TransientSourceError(SourceError):
    """A failure that may pass (network, timeout, overload): the run is retried with backoff."""

    code = "source_unavailable"


class SchemaChanged(SourceError):
    """The source's columns or types no longer match the dataset's schema."""

    code = "schema_changed"


class DatasetReader(Protocol):
    """Runs SQL over datasets as the stream's owner (dataset-sql); given by the run engine."""

    def open_batches(self, sql: str) -> pa.RecordBatchReader: ...


@dataclass(frozen=True)
class RunContext:
    """Everything a connector may use for one run."""

    #: The stream's configuration, name -> value (secret items already decrypted).
    config: Mapping[str, str]
    #: The account's credentials, name -> value (decrypted); empty when the stream has no account.
    credentials: Mapping[str, str]
    #: The account's type (``dataProvider`` key it was made for), or None.
    account_type: str | None
    #: The dataset's schema; empty on a first run, when the connector's schema becomes the dataset's.
    columns: Sequence[Column]
    #: What the last successful run left (``Source.state``), e.g. an incremental cursor's last value.
    state: Mapping[str, str]
    update_method: UpdateMethod
    #: Which hosts and local directories the connector may reach.
    network: NetworkPolicy
    #: True once the run was aborted: a connector checks it between batches and stops.
    cancelled: Callable[[], bool]
    #: Rows per batch a connector should aim for (memory stays bounded by this).
    batch_rows: int = 65_536
    #: SQL over other datasets as the stream's owner, for ``dataset-sql``; None elsewhere.
    datasets: DatasetReader | None = None
    #: Largest file a file connector downloads from a URL (the download lands on local disk).
    max_download_bytes: int = 10 * 1024**3


class Source(Protocol):
    """One open read of a source. ``schema`` is known before the first batch."""

    @property
    def schema(self) -> pa.Schema: ...

    def batches(self) -> Iterator[pa.RecordBatch]: ...

    def state(self) -> Mapping[str, str]:
        """What to keep for the next run once every batch was read (e.g. the cursor's last value)."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class ConfigItem:
    """One configuration item a connector takes, for validation, masking and documentation."""

    name: str
    required: bool = False
    secret: bool = False
    help: str = ""


class Connector(Protocol):
    """A built-in or third-party connector. Instances are stateless; ``open`` starts one run."""

    key: ClassVar[str]
    name: ClassVar[str]
    #: Configuration items it reads; items it does not name are stored and passed through.
    config_items: ClassVar[Sequence[ConfigItem]]
    #: Account types it can use; empty: it takes no account (an account given anyway is refused).
    account_types: ClassVar[frozenset[str]]

    def check(self, config: Mapping[str, str], *, network: NetworkPolicy) -> None:
        """Raise ``BadRequest`` naming the problem when the configuration cannot work (checked when
        a stream is created or changed, before anything runs). Must not reach the source."""
        ...

    def open(self, context: RunContext) -> Source: ...


@dataclass(frozen=True)
class ConnectorInfo:
    """A registered connector as the API lists it."""

    key: str
    name: str
    config_items: Sequence[ConfigItem] = field(default_factory=tuple)
    account_types: frozenset[str] = frozenset()


def require(config: Mapping[str, str], name: str) -> str:
    """The non-empty configuration item ``name``, else a 400 naming it."""
    value = config.get(name)
    if value is None or not str(value).strip():
        raise BadRequest(f"the connector's configuration needs {name!r}")
    return str(value)


def secret_names(items: Sequence[ConfigItem]) -> frozenset[str]:
    return frozenset(item.name for item in items if item.secret)


def describe(connector: Any) -> ConnectorInfo:
    return ConnectorInfo(
        key=connector.key,
        name=connector.name,
        config_items=tuple(connector.config_items),
        account_types=frozenset(connector.account_types),
    )
