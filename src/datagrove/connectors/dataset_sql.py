"""The ``dataset-sql`` connector: a SQL query over other datasets, materialised into this one.

A SQL dataflow: the query (MySQL, as the query API takes it) names the datasets it reads by id
(``FROM "<dataset id>"`` or back-quoted) and runs in the query sandbox as the stream's owner, so it
sees exactly the datasets and rows that the owner may view (row-level policies applied). The run
engine gives the connector that reader as ``RunContext.datasets``; the connector reaches nothing
else.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, ClassVar

from datagrove.connectors.base import (
    ConfigItem,
    RunContext,
    SourceError,
    TransientSourceError,
    require,
)
from datagrove.errors import BadRequest, DatagroveError, InvalidSql, NotFound, QueryLimitExceeded
from datagrove.tables.batch_stream import batch_error
from datagrove.tables.sql_translate import NO_DATASET, table_names

if TYPE_CHECKING:
    import pyarrow as pa

    from datagrove.connectors.network import NetworkPolicy


class InvalidQuery(SourceError):
    """The query does not parse, is not one read-only SELECT, or fails over the data."""

    code = "invalid_sql"


class DatasetNotFound(SourceError):
    """A dataset the query names does not exist, or the stream's owner may not view it."""

    code = "dataset_not_found"


class QueryTooBig(SourceError):
    """The query outran the sandbox's time or memory limit."""

    code = "query_limit_exceeded"


class DatasetSqlConnector:
    key: ClassVar[str] = "dataset-sql"
    name: ClassVar[str] = "Dataset SQL"
    config_items: ClassVar[Sequence[ConfigItem]] = (
        ConfigItem(
            "query",
            required=True,
            help='SQL (MySQL) over the datasets the stream\'s owner may view, each named by its id: FROM "<dataset id>"',
        ),
    )
    account_types: ClassVar[frozenset[str]] = frozenset()

    def check(self, config: Mapping[str, str], *, network: NetworkPolicy) -> None:
        """The query must be one read-only query naming at least one dataset (``InvalidSql`` /
        ``BadRequest``). Whether those datasets exist and may be viewed is decided at each run,
        as the owner then is: sharing can change in between."""
        if not table_names(require(config, "query")):
            raise BadRequest(NO_DATASET)

    def open(self, context: RunContext) -> DatasetSqlSource:
        if context.datasets is None:
            raise SourceError("the dataset-sql connector needs the run engine's dataset reader")
        try:
            query = require(context.config, "query")
            reader = context.datasets.open_batches(query)
        except DatagroveError as exc:
            raise source_error(exc) from exc
        return DatasetSqlSource(reader, batch_rows=context.batch_rows, cancelled=context.cancelled)


class DatasetSqlSource:
    """One run of the query: its result's schema, then its rows in batches of at most ``batch_rows``."""

    def __init__(
        self, reader: pa.RecordBatchReader, *, batch_rows: int, cancelled: Callable[[], bool]
    ) -> None:
        self._reader: pa.RecordBatchReader | None = reader
        self._schema = reader.schema
        self._batch_rows = max(1, batch_rows)
        self._cancelled = cancelled
        duplicates = sorted({n for n in self._schema.names if self._schema.names.count(n) > 1})
        if duplicates:
            self.close()
            raise InvalidQuery(
                f"the query's result has more than one column named {duplicates[0]!r}; give each column "
                "its own name (AS …)"
            )

    @property
    def schema(self) -> pa.Schema:
        return self._schema

    def batches(self) -> Iterator[pa.RecordBatch]:
        reader = self._reader
        if reader is None:
            return
        while not self._cancelled():
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                return
            except Exception as exc:
                error = batch_error(exc)
                if error is None:
                    raise
                raise source_error(error) from None
            for start in range(0, batch.num_rows, self._batch_rows):
                yield batch.slice(start, self._batch_rows)

    def state(self) -> Mapping[str, str]:
        return {}

    def close(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.close()  # gives the sandbox back (its connection and files)


def source_error(error: DatagroveError) -> SourceError:
    """The run's error for an error of the query, with the same message."""
    if isinstance(error, SourceError):
        return error
    if isinstance(error, InvalidSql):
        return InvalidQuery(error.message)
    if isinstance(error, NotFound):
        return DatasetNotFound(error.message)
    if isinstance(error, QueryLimitExceeded):
        return QueryTooBig(error.message)
    if isinstance(error, BadRequest) or error.status < 500:
        return SourceError(error.message)
    # The engine or the storage failed, not the query: worth another try. The message stays ours
    # (a DatagroveError's message never shows its cause).
    return TransientSourceError(error.message)
