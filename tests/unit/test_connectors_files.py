"""The csv, json and parquet connectors, from local files and from a real HTTP server."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import tempfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from datagrove.connectors.arrow_schema import columns_for, conform
from datagrove.connectors.base import SchemaChanged, SourceError, TransientSourceError
from datagrove.connectors.files import (
    CheckedBackend,
    CsvConnector,
    JsonConnector,
    ParquetConnector,
    http_headers,
)
from datagrove.connectors.network import NetworkPolicy
from datagrove.errors import BadRequest
from datagrove.tables.types import Column, ColumnType
from tests.support.connectors import context, read_all

CSV = (
    "id,name,amount,day,at,ok\n"
    '1,"ünï, ""q""",1.5,2024-01-02,2024-01-02 03:04:05,true\n'
    '2,"",2.25,2024-01-03,2024-01-03T03:04:05.123456,false\n'
    "3,,,,,\n"
).encode()
JSON_DOC = {
    "meta": {"count": 3},
    "data": {
        "items": [
            {"id": 1, "name": "ä", "score": 1.5, "ok": True, "tags": ["x", "y"]},
            {"id": 2, "name": "", "score": 2, "ok": False, "tags": []},
            {"id": 3, "name": None, "score": None, "ok": None},
        ]
    },
}
TOKEN = "tok-secret-123"


class Handler(BaseHTTPRequestHandler):
    seen_authorization: list[str | None] = []

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def _send(self, status: int, body: bytes = b"", **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        Handler.seen_authorization.append(self.headers.get("Authorization"))
        path = self.path.split("?")[0]
        port = self.server.server_address[1]
        if path == "/data.csv":
            self._send(200, CSV)
        elif path == "/data.json":
            self._send(200, json.dumps(JSON_DOC).encode())
        elif path == "/secure.csv":
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                self._send(401)
            else:
                self._send(200, CSV)
        elif path == "/key.csv":
            if self.headers.get("X-Api-Key") != "k1":
                self._send(403)
            else:
                self._send(200, CSV)
        elif path == "/moved":
            self._send(302, Location="/data.csv")
        elif path == "/elsewhere":
            self._send(302, Location=f"http://localhost:{port}/data.csv")
        elif path == "/metadata":
            self._send(302, Location="http://169.254.169.254/latest/meta-data/")
        elif path == "/busy":
            self._send(503)
        elif path == "/unsized.csv":
            # No Content-Length: the body ends when the connection closes.
            self.send_response(200)
            self.end_headers()
            self.wfile.write(CSV)
            self.close_connection = True
        elif path == "/cut.csv":
            self.send_response(200)
            self.send_header("Content-Length", str(len(CSV) * 100))
            self.end_headers()
            self.wfile.write(CSV)
            self.wfile.flush()
            self.close_connection = True
        else:
            self._send(404)


@pytest.fixture(scope="module")
def http() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


ALLOW = NetworkPolicy(allowed=("127.0.0.1",))


def test_a_csv_url_is_read_with_inferred_types(http: str) -> None:
    source = CsvConnector().open(context({"url": f"{http}/data.csv"}, network=ALLOW))
    table = read_all(source)
    assert [c.type for c in columns_for(table.schema)] == [
        ColumnType.LONG,
        ColumnType.STRING,
        ColumnType.DOUBLE,
        ColumnType.DATE,
        ColumnType.DATETIME,
        ColumnType.BOOLEAN,
    ]
    assert table["name"].to_pylist() == ['ünï, "q"', "", None]
    assert table["amount"].to_pylist() == [1.5, 2.25, None]
    assert not source.path.exists()  # the download is deleted on close


@pytest.mark.parametrize("path", ["/data.csv", "/unsized.csv"])
def test_a_download_larger_than_the_limit_is_refused_and_nothing_is_left(
    path: str, http: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where the download goes
    with pytest.raises(SourceError, match="connector_max_download_bytes"):
        CsvConnector().open(context({"url": f"{http}{path}"}, network=ALLOW, max_download_bytes=len(CSV) - 1))
    assert list(tmp_path.iterdir()) == []
    # At the limit exactly, the same file is read.
    source = CsvConnector().open(
        context({"url": f"{http}{path}"}, network=ALLOW, max_download_bytes=len(CSV))
    )
    assert read_all(source).num_rows == 3


def test_the_same_url_is_refused_without_the_allow_list(http: str) -> None:
    with pytest.raises(BadRequest, match="connector_allowed_hosts"):
        CsvConnector().check({"url": f"{http}/data.csv"}, network=NetworkPolicy())
    with pytest.raises(BadRequest, match="connector_allowed_hosts"):
        CsvConnector().open(context({"url": f"{http}/data.csv"}, network=NetworkPolicy()))


def test_a_redirect_is_followed_after_its_hop_is_checked(http: str) -> None:
    table = read_all(CsvConnector().open(context({"url": f"{http}/moved"}, network=ALLOW)))
    assert table.num_rows == 3
    with pytest.raises(BadRequest, match="169.254.169.254"):
        CsvConnector().open(context({"url": f"{http}/metadata"}, network=ALLOW))


def test_credentials_are_not_sent_to_another_origin(http: str) -> None:
    Handler.seen_authorization.clear()
    policy = NetworkPolicy(allowed=("127.0.0.1", "localhost"))
    source = CsvConnector().open(
        context({"url": f"{http}/elsewhere"}, credentials={"bearerToken": TOKEN}, network=policy)
    )
    assert read_all(source).num_rows == 3
    assert Handler.seen_authorization == [f"Bearer {TOKEN}", None]


def test_account_credentials_become_request_headers(http: str) -> None:
    with pytest.raises(SourceError, match="HTTP 401"):
        CsvConnector().open(context({"url": f"{http}/secure.csv"}, network=ALLOW))
    source = CsvConnector().open(
        context({"url": f"{http}/secure.csv"}, credentials={"bearerToken": TOKEN}, network=ALLOW)
    )
    assert read_all(source).num_rows == 3
    creds = {"headers": json.dumps({"X-Api-Key": "k1"})}
    assert (
        read_all(
            CsvConnector().open(context({"url": f"{http}/key.csv"}, credentials=creds, network=ALLOW))
        ).num_rows
        == 3
    )


def test_a_client_error_names_the_status_but_not_the_query_string(http: str) -> None:
    with pytest.raises(SourceError) as raised:
        CsvConnector().open(context({"url": f"{http}/missing.csv?api_key=SECRET"}, network=ALLOW))
    assert type(raised.value) is SourceError
    assert "HTTP 404" in raised.value.message and "/missing.csv" in raised.value.message
    assert "SECRET" not in raised.value.message


def test_a_server_error_is_transient(http: str) -> None:
    with pytest.raises(TransientSourceError, match="HTTP 503"):
        CsvConnector().open(context({"url": f"{http}/busy"}, network=ALLOW))


def test_a_connection_closed_mid_body_is_transient(http: str) -> None:
    with pytest.raises(TransientSourceError, match="closed the connection"):
        CsvConnector().open(context({"url": f"{http}/cut.csv"}, network=ALLOW))


def test_a_refused_connection_is_transient() -> None:
    with pytest.raises(TransientSourceError, match="could not connect"):
        CsvConnector().open(context({"url": "http://127.0.0.1:1/x.csv"}, network=ALLOW))


def test_a_json_url_with_a_record_path(http: str) -> None:
    cfg = {"url": f"{http}/data.json", "recordPath": "data.items"}
    table = read_all(JsonConnector().open(context(cfg, network=ALLOW)))
    assert table.schema == pa.schema(
        [
            ("id", pa.int64()),
            ("name", pa.string()),
            ("score", pa.float64()),
            ("ok", pa.bool_()),
            ("tags", pa.string()),
        ]
    )
    assert table.to_pylist() == [
        {"id": 1, "name": "ä", "score": 1.5, "ok": True, "tags": '["x","y"]'},
        {"id": 2, "name": "", "score": 2.0, "ok": False, "tags": "[]"},
        {"id": 3, "name": None, "score": None, "ok": None, "tags": None},
    ]


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "data.csv").write_bytes(CSV)
    return tmp_path


def test_a_local_csv_inside_the_local_dirs(files: Path) -> None:
    policy = NetworkPolicy(local_dirs=(files,))
    table = read_all(CsvConnector().open(context({"path": "data.csv"}, network=policy)))
    assert table.num_rows == 3
    with pytest.raises(BadRequest, match="not enabled"):
        CsvConnector().check({"path": str(files / "data.csv")}, network=NetworkPolicy())


def test_a_later_run_reads_the_datasets_types(files: Path) -> None:
    (files / "later.csv").write_text(
        "id;name;amount;day;at;ok\n7;x;10;2024-05-01;2024-05-01T10:00:00+02:00;1\n8;;;;2024-05-01 10:00:00.5;0\n"
    )
    columns = [
        Column("id", ColumnType.LONG),
        Column("name", ColumnType.STRING),
        Column("amount", ColumnType.DECIMAL),
        Column("day", ColumnType.DATE),
        Column("at", ColumnType.DATETIME),
        Column("ok", ColumnType.BOOLEAN),
    ]
    cfg = {"path": "later.csv", "delimiter": ";"}
    source = CsvConnector().open(context(cfg, columns=columns, network=NetworkPolicy(local_dirs=(files,))))
    batches = [conform(batch, columns) for batch in source.batches()]
    source.close()
    assert pa.Table.from_batches(batches).to_pylist() == [
        {
            "id": 7,
            "name": "x",
            "amount": decimal.Decimal(10),
            "day": dt.date(2024, 5, 1),
            "at": dt.datetime(2024, 5, 1, 8),
            "ok": True,
        },
        {
            "id": 8,
            "name": None,
            "amount": None,
            "day": None,
            "at": dt.datetime(2024, 5, 1, 10, 0, 0, 500000),
            "ok": False,
        },
    ]


def test_a_csv_without_a_header_uses_the_datasets_names(files: Path) -> None:
    (files / "bare.csv").write_text("1,a\n2,b\n")
    columns = [Column("n", ColumnType.LONG), Column("s", ColumnType.STRING)]
    cfg = {"path": "bare.csv", "header": "false"}
    table = read_all(
        CsvConnector().open(context(cfg, columns=columns, network=NetworkPolicy(local_dirs=(files,))))
    )
    assert table.to_pylist() == [{"n": 1, "s": "a"}, {"n": 2, "s": "b"}]


def test_text_in_a_long_column_is_a_source_error(files: Path) -> None:
    (files / "bad.csv").write_text("n\n1\nabc\n")
    columns = [Column("n", ColumnType.LONG)]
    with pytest.raises(SourceError, match="'abc'"):
        read_all(
            CsvConnector().open(
                context({"path": "bad.csv"}, columns=columns, network=NetworkPolicy(local_dirs=(files,)))
            )
        )


def test_json_lines_in_batches(files: Path) -> None:
    (files / "rows.jsonl").write_text("".join(json.dumps({"i": i, "s": str(i)}) + "\n" for i in range(25)))
    policy = NetworkPolicy(local_dirs=(files,))
    source = JsonConnector().open(
        context({"path": "rows.jsonl", "format": "jsonl"}, network=policy, batch_rows=10)
    )
    try:
        assert [b.num_rows for b in source.batches()] == [10, 10, 5]
    finally:
        source.close()


def test_a_json_key_that_is_not_a_column_is_a_changed_schema(files: Path) -> None:
    (files / "rows.json").write_text(json.dumps([{"a": 1}, {"a": 2, "b": "new"}]))
    source = JsonConnector().open(
        context(
            {"path": "rows.json"},
            columns=[Column("a", ColumnType.LONG)],
            network=NetworkPolicy(local_dirs=(files,)),
        )
    )
    with pytest.raises(SchemaChanged, match="'b'"):
        read_all(source)


def test_a_json_value_of_another_kind_is_a_changed_schema(files: Path) -> None:
    (files / "rows.json").write_text(json.dumps([{"a": "text"}]))
    source = JsonConnector().open(
        context(
            {"path": "rows.json"},
            columns=[Column("a", ColumnType.LONG)],
            network=NetworkPolicy(local_dirs=(files,)),
        )
    )
    with pytest.raises(SchemaChanged, match="'a'.*LONG"):
        read_all(source)


def test_a_parquet_file_in_batches(files: Path) -> None:
    table = pa.table({"n": pa.array(range(2500), pa.int32()), "s": [str(i) for i in range(2500)]})
    pq.write_table(table, files / "t.parquet", row_group_size=1000)
    source = ParquetConnector().open(
        context({"path": "t.parquet"}, network=NetworkPolicy(local_dirs=(files,)))
    )
    read = read_all(source)
    assert read.equals(table)
    assert [c.type for c in columns_for(source.schema)] == [ColumnType.LONG, ColumnType.STRING]


def test_a_file_that_is_not_parquet_is_a_source_error(files: Path) -> None:
    with pytest.raises(SourceError, match="not valid Parquet"):
        ParquetConnector().open(context({"path": "data.csv"}, network=NetworkPolicy(local_dirs=(files,))))


def test_the_check_wants_exactly_one_location_and_valid_options() -> None:
    policy = NetworkPolicy()
    with pytest.raises(BadRequest, match="one of 'url' or 'path'"):
        CsvConnector().check({}, network=policy)
    with pytest.raises(BadRequest, match="delimiter"):
        CsvConnector().check({"url": "https://8.8.8.8/x.csv", "delimiter": ";;"}, network=policy)
    with pytest.raises(BadRequest, match="format"):
        JsonConnector().check({"url": "https://8.8.8.8/x.json", "format": "xml"}, network=policy)
    CsvConnector().check({"url": "https://8.8.8.8/x.csv"}, network=policy)


def test_http_account_credentials_as_headers() -> None:
    assert http_headers({"username": "u", "password": "p"}) == {"Authorization": "Basic dTpw"}
    assert http_headers({"bearerToken": "t"}) == {"Authorization": "Bearer t"}
    assert http_headers({"headers": '{"X-Key": "v"}', "bearerToken": "t"}) == {"X-Key": "v"}
    assert http_headers({}) == {}
    with pytest.raises(SourceError, match="JSON object") as raised:
        http_headers({"headers": '{"X-Key": "secret-value", "n": 1}'})
    assert "secret-value" not in raised.value.message


def test_http_connections_go_only_to_addresses_checked_at_connect_time(http: str) -> None:
    port = int(http.rsplit(":", 1)[1])
    with pytest.raises(BadRequest, match="connector_allowed_hosts"):
        CheckedBackend(NetworkPolicy()).connect_tcp("127.0.0.1", port)
    CheckedBackend(ALLOW).connect_tcp("127.0.0.1", port).close()
