"""The file connectors ``csv``, ``json`` and ``parquet``: one file from a URL or a local path.

A URL is downloaded first, streamed to a temporary file (deleted when the source closes), because
Parquet needs to seek and because a run retried after a network failure should start from a whole
file. Every redirect hop is checked against the network policy before it is followed, and the
account's credentials are sent only to the origin the stream names.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

import httpcore
import httpx
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from datagrove.connectors import records
from datagrove.connectors.base import ConfigItem, RunContext, SourceError, TransientSourceError
from datagrove.connectors.network import NetworkPolicy
from datagrove.errors import BadRequest
from datagrove.tables.types import ColumnType

MAX_REDIRECTS = 10
HTTP_TIMEOUT_SECONDS = 60.0

_LOCATION = (
    ConfigItem("url", help="An http or https URL to read the file from (or give 'path')."),
    ConfigItem("path", help="A file inside one of the directories in connector_local_dirs."),
)


def check_location(config: Mapping[str, str], network: NetworkPolicy) -> None:
    url, path = config.get("url", "").strip(), config.get("path", "").strip()
    if bool(url) == bool(path):
        raise BadRequest("the connector's configuration needs one of 'url' or 'path'")
    if url:
        network.check_url(url)
    else:
        network.local_path(path)


class _FileConnector:
    key: ClassVar[str]
    name: ClassVar[str]
    config_items: ClassVar[Sequence[ConfigItem]]
    account_types: ClassVar[frozenset[str]] = frozenset({"http"})

    def check(self, config: Mapping[str, str], *, network: NetworkPolicy) -> None:
        check_location(config, network)


class CsvConnector(_FileConnector):
    key = "csv"
    name = "CSV file"
    config_items = (
        *_LOCATION,
        ConfigItem("delimiter", help='The character between fields (default ",").'),
        ConfigItem("header", help='"true" (default) when the first line names the columns.'),
    )

    def check(self, config: Mapping[str, str], *, network: NetworkPolicy) -> None:
        _delimiter(config)
        _header(config)
        super().check(config, network=network)

    def open(self, context: RunContext) -> CsvSource:
        return CsvSource(context)


class JsonConnector(_FileConnector):
    key = "json"
    name = "JSON file"
    config_items = (
        *_LOCATION,
        ConfigItem("recordPath", help='Dot path to the array of records ("" = the top-level array).'),
        ConfigItem("format", help='"json" (default) or "jsonl" (one record per line).'),
    )

    def check(self, config: Mapping[str, str], *, network: NetworkPolicy) -> None:
        _json_format(config)
        super().check(config, network=network)

    def open(self, context: RunContext) -> JsonSource:
        return JsonSource(context)


class ParquetConnector(_FileConnector):
    key = "parquet"
    name = "Parquet file"
    config_items = _LOCATION

    def open(self, context: RunContext) -> ParquetSource:
        return ParquetSource(context)


class _FileSource:
    """Finds the file (downloading a URL) and deletes what it downloaded on ``close``."""

    def __init__(self, context: RunContext) -> None:
        self._context = context
        self._download: Path | None = None
        self._stack = contextlib.ExitStack()
        try:
            self.path = self._locate()
            self._open()
        except BaseException:
            self.close()
            raise

    def _open(self) -> None:
        raise NotImplementedError

    def state(self) -> Mapping[str, str]:
        return {}

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._stack.close()
        if self._download is not None:
            self._download.unlink(missing_ok=True)

    def _locate(self) -> Path:
        config = self._context.config
        check_location(config, self._context.network)
        url = config.get("url", "").strip()
        if not url:
            path = self._context.network.local_path(config["path"].strip())
            if not path.is_file():
                raise SourceError(f"the file {config['path'].strip()!r} does not exist")
            return path
        handle, name = tempfile.mkstemp(prefix="datagrove-connector-")
        os.close(handle)
        self._download = Path(name)
        download(url, self._download, self._context)
        return self._download


def download(url: str, target: Path, context: RunContext) -> None:
    """GET ``url`` into ``target``, following redirects only to hosts the policy allows."""
    headers, origin = http_headers(context.credentials), _origin(url)
    shown = _shown(url)
    try:
        transport = _checked_transport(context.network)
        with httpx.Client(
            transport=transport, timeout=HTTP_TIMEOUT_SECONDS, follow_redirects=False, trust_env=False
        ) as client:
            for _ in range(MAX_REDIRECTS + 1):
                context.network.check_url(url)
                # Credentials go only to the origin they were given for, not where it redirects.
                sent = headers if _origin(url) == origin else {}
                with client.stream("GET", url, headers=sent) as response:
                    if response.is_redirect and "location" in response.headers:
                        url = str(response.url.join(response.headers["location"]))
                        continue
                    _check_status(response.status_code, shown)
                    limit = context.max_download_bytes
                    # Refused early when the server says the size, and counted anyway: a body may be
                    # longer than its Content-Length claims or have none (chunked).
                    if int(response.headers.get("content-length") or 0) > limit:
                        raise SourceError(_too_big(shown, limit))
                    received = 0
                    with target.open("wb") as out:
                        for chunk in response.iter_bytes(1 << 20):
                            received += len(chunk)
                            if received > limit:
                                raise SourceError(_too_big(shown, limit))
                            out.write(chunk)
                            if context.cancelled():
                                raise SourceError("the run was cancelled during the download")
                    return
    except httpx.TransportError as exc:
        raise TransientSourceError(f"reading {shown} failed: {_transport_problem(exc)}") from None
    except httpx.HTTPError as exc:
        raise SourceError(f"reading {shown} failed: {type(exc).__name__}") from None
    raise SourceError(f"reading {shown} failed: more than {MAX_REDIRECTS} redirects")


def _too_big(shown: str, limit: int) -> str:
    return f"{shown} is larger than connector_max_download_bytes ({limit} bytes)"


class CheckedBackend(httpcore.SyncBackend):
    """Opens every TCP connection to an address the network policy checked just now.

    Checking a URL and then letting the HTTP client resolve its host again would leave a window
    in which DNS can answer with another (private) address; connecting to the checked address
    closes it. TLS still verifies the certificate against the host name.
    """

    def __init__(self, network: NetworkPolicy) -> None:
        self._network = network

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        address = self._network.resolve(host)[0]
        return super().connect_tcp(address, port, timeout, local_address, socket_options)


def _checked_transport(network: NetworkPolicy) -> httpx.HTTPTransport:
    transport = httpx.HTTPTransport()
    # httpx has no public way to give its pool a network backend; the attribute is httpcore's
    # (both versions are locked, and the test of a refused address fails if this stops working).
    transport._pool._network_backend = CheckedBackend(network)  # type: ignore[attr-defined]
    return transport


def http_headers(credentials: Mapping[str, str]) -> dict[str, str]:
    """Request headers from an ``http`` account: ``headers`` (a JSON object as text), else
    ``bearerToken``, else ``username``/``password`` for basic authentication."""
    if text := credentials.get("headers", "").strip():
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
        if not isinstance(parsed, dict) or not all(isinstance(v, str) for v in parsed.values()):
            raise SourceError("the account's 'headers' must be a JSON object of strings")
        return {str(k): v for k, v in parsed.items()}
    if token := credentials.get("bearerToken", "").strip():
        return {"Authorization": f"Bearer {token}"}
    if username := credentials.get("username", ""):
        pair = f"{username}:{credentials.get('password', '')}".encode()
        return {"Authorization": "Basic " + base64.b64encode(pair).decode("ascii")}
    return {}


def _check_status(status: int, shown: str) -> None:
    if status == 429 or status >= 500:
        raise TransientSourceError(f"reading {shown} failed: HTTP {status}")
    if status >= 300:
        raise SourceError(f"reading {shown} failed: HTTP {status}")


def _transport_problem(exc: httpx.TransportError) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    if isinstance(exc, httpx.ConnectError):
        return "could not connect"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "the server closed the connection before the whole file came"
    return "the connection failed"


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme.lower(), (parts.hostname or "").lower(), parts.port


def _shown(url: str) -> str:
    # The query string (and any user:password@) may hold a key: messages show the rest.
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


class CsvSource(_FileSource):
    """Arrow's streaming CSV reader; a first run infers the types, later runs read the dataset's."""

    def _open(self) -> None:
        config, columns = self._context.config, self._context.columns
        header = _header(config)
        self._datetimes: list[str] = []
        if self.path.stat().st_size == 0:
            self._reader: pacsv.CSVStreamingReader | None = None
            self._schema = records.dataset_schema(columns)
            return
        types: dict[str, pa.DataType] = {}
        for column in columns:
            # Read as text: values with and without an offset may share a column (see records).
            if column.type is ColumnType.DATETIME:
                self._datetimes.append(column.name)
            types[column.name] = pa.string() if column.type is ColumnType.DATETIME else column.type.arrow
        names = None if header or not columns else [column.name for column in columns]
        block = min(max(self._context.batch_rows * 128, 1 << 20), 64 << 20)
        try:
            self._reader = pacsv.open_csv(
                self.path,
                read_options=pacsv.ReadOptions(
                    column_names=names, autogenerate_column_names=not header and not columns, block_size=block
                ),
                parse_options=pacsv.ParseOptions(delimiter=_delimiter(config), newlines_in_values=True),
                convert_options=pacsv.ConvertOptions(
                    column_types=types,
                    # The Domo CSV dialect: an empty unquoted field and \N are NULL, "" is "".
                    null_values=["", "\\N"],
                    strings_can_be_null=True,
                    quoted_strings_can_be_null=False,
                ),
            )
        except pa.ArrowInvalid as exc:
            raise SourceError(f"the file could not be read as CSV: {exc}") from None
        schema = self._reader.schema
        self._schema = pa.schema(
            [pa.field(f.name, pa.timestamp("us")) if f.name in self._datetimes else f for f in schema]
        )

    @property
    def schema(self) -> pa.Schema:
        return self._schema

    def batches(self) -> Iterator[pa.RecordBatch]:
        if self._reader is None:
            return
        while not self._context.cancelled():
            try:
                batch = self._reader.read_next_batch()
            except StopIteration:
                return
            except pa.ArrowInvalid as exc:
                raise SourceError(f"the file could not be read as CSV: {exc}") from None
            if self._datetimes:
                batch = records.parse_datetimes(batch, self._datetimes)
            yield batch


class JsonSource(_FileSource):
    """Records streamed with ijson (or one per line for JSON Lines), in batches of ``batch_rows``."""

    def _open(self) -> None:
        config = self._context.config
        file = self._stack.enter_context(self.path.open("rb"))
        if _json_format(config) == "jsonl":
            stream = records.json_lines(file)
        else:
            stream = records.json_records(file, config.get("recordPath", "").strip())
        self._batches = records.RecordBatcher(stream, self._context.columns, self._context.batch_rows)
        self._schema = self._batches.schema  # reads the first batch when the schema is new

    @property
    def schema(self) -> pa.Schema:
        return self._schema

    def batches(self) -> Iterator[pa.RecordBatch]:
        for batch in self._batches:
            if self._context.cancelled():
                return
            yield batch


class ParquetSource(_FileSource):
    def _open(self) -> None:
        try:
            self._file = self._stack.enter_context(pq.ParquetFile(self.path))
        except (pa.ArrowInvalid, OSError) as exc:
            raise SourceError(f"the file is not valid Parquet: {exc}") from None

    @property
    def schema(self) -> pa.Schema:
        return self._file.schema_arrow

    def batches(self) -> Iterator[pa.RecordBatch]:
        try:
            for batch in self._file.iter_batches(batch_size=self._context.batch_rows):
                if self._context.cancelled():
                    return
                yield batch
        except (pa.ArrowInvalid, OSError) as exc:
            raise SourceError(f"the file is not valid Parquet: {exc}") from None


def _delimiter(config: Mapping[str, str]) -> str:
    delimiter = config.get("delimiter", "") or ","
    if delimiter in ("\\t", "tab"):
        delimiter = "\t"
    if len(delimiter) != 1 or delimiter in '\r\n"':
        raise BadRequest(f"the delimiter {delimiter!r} must be one character other than a quote or newline")
    return delimiter


def _header(config: Mapping[str, str]) -> bool:
    value = (config.get("header", "") or "true").strip().lower()
    if value not in ("true", "false"):
        raise BadRequest(f'\'header\' must be "true" or "false", not {value!r}')
    return value == "true"


def _json_format(config: Mapping[str, str]) -> str:
    value = (config.get("format", "") or "json").strip().lower()
    if value not in ("json", "jsonl"):
        raise BadRequest(f'\'format\' must be "json" or "jsonl", not {value!r}')
    return value
