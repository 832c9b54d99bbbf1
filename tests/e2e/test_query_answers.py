"""Query answers on the wire, through both APIs: the seed document's list of row objects, the
column-wise object on request (and always on ``/v1``), typed values, MySQL's column names, and
large answers streamed with the row and time limits still enforced."""

from __future__ import annotations

import json
import time
import uuid
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.e2e.test_sharing import new_dataset
from tests.support.server import RunningServer

pytestmark = pytest.mark.s3_storage

QUERY = "/api/query/v1/execute"
V1_QUERY = "/v1/datasets/query/execute"
COLUMN_WISE_KEYS = ["datasource", "columns", "metadata", "rows", "numRows", "numColumns"]

TYPED_SCHEMA = [
    ("s", "STRING"),
    ("n", "LONG"),
    ("x", "DOUBLE"),
    ("d", "DECIMAL"),
    ("day", "DATE"),
    ("at", "DATETIME"),
    ("ok", "BOOLEAN"),
]
TYPED_CSV = (
    b'"a ""quoted"" \xc3\xa9",1,1.5,12345678901234567890.1234567891,2024-02-29,2024-02-29 10:11:12,true\n'
    b"b,-9223372036854775808,nan,10,0001-01-01,2024-02-29 10:11:12.5,false\n"
    b"c,,,,,,\n"
)
TYPED_ROWS = [
    [
        'a "quoted" é',
        1,
        1.5,
        Decimal("12345678901234567890.1234567891"),
        "2024-02-29",
        "2024-02-29T10:11:12",
        True,
    ],
    ["b", -9223372036854775808, None, Decimal("10.0"), "0001-01-01", "2024-02-29T10:11:12.500000", False],
    ["c", None, None, None, None, None, None],
]


@pytest.fixture
def client(server: RunningServer):
    with server.client() as client:
        yield client


def create_dataset(client: httpx.Client, schema: list[tuple[str, str]], csv: bytes) -> str:
    columns = [{"type": t, "name": name} for name, t in schema]
    created = client.post(
        "/v1/datasets", json={"name": "q-" + uuid.uuid4().hex[:8], "schema": {"columns": columns}}
    )
    assert created.status_code == 201, created.text
    dataset_id = created.json()["id"]
    imported = client.put(f"/v1/datasets/{dataset_id}/data", content=csv)
    assert imported.status_code == 204, imported.text
    return dataset_id


def pairs(text: str) -> Any:
    """JSON with objects as lists of (key, value) pairs: key order and repeated keys stay visible."""
    return json.loads(text, object_pairs_hook=list, parse_float=Decimal)


# --- the shapes ---------------------------------------------------------------------------------


def test_the_product_query_answers_a_list_of_row_objects_keyed_in_column_order(client):
    dataset_id = new_dataset(client, "a,1\nb,2\nc,3\n")

    response = client.post(
        f"{QUERY}/{dataset_id}", json={"sql": "SELECT n * 10 AS tens, name FROM table WHERE n > 1"}
    )

    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert pairs(response.text) == [[("tens", 20), ("name", "b")], [("tens", 30), ("name", "c")]]


def test_the_seed_documents_python_snippet_prints_the_rows(server: RunningServer):
    with server.client() as setup:
        dataset_id = new_dataset(setup, "a,1\n")
    # The seed document's snippet, with the host, dataset id and token filled in.
    headers = {
        "X-DOMO-Developer-Token": server.token,
        "Content-Type": "application/json",
    }
    url = f"{server.base_url}/api/query/v1/execute/{dataset_id}"

    payload = {"sql": "SELECT * FROM table"}

    with httpx.Client() as http:
        response = http.post(url, headers=headers, json=payload)
        result = response.json()

    assert response.status_code == 200
    assert result == [{"name": "a", "n": 1}]


def test_format_rows_is_the_default_shape_and_format_columns_the_column_wise_object(client):
    dataset_id = new_dataset(client, "a,1\nb,2\n")
    sql = {"sql": "SELECT name, n FROM table ORDER BY n"}

    rows = client.post(f"{QUERY}/{dataset_id}", params={"format": "rows"}, json=sql)
    columns = client.post(f"{QUERY}/{dataset_id}", params={"format": "columns"}, json=sql)

    assert rows.json() == client.post(f"{QUERY}/{dataset_id}", json=sql).json()
    assert rows.json() == [{"name": "a", "n": 1}, {"name": "b", "n": 2}]
    body = columns.json()
    assert list(body) == [*COLUMN_WISE_KEYS, "fromcache"]
    assert body["datasource"] == dataset_id
    assert body["columns"] == ["name", "n"]
    assert body["metadata"] == [
        {"type": "STRING", "dataSourceId": dataset_id, "maxLength": -1, "minLength": -1, "periodIndex": 0},
        {"type": "LONG", "dataSourceId": dataset_id, "maxLength": -1, "minLength": -1, "periodIndex": 0},
    ]
    assert body["rows"] == [["a", 1], ["b", 2]]
    assert (body["numRows"], body["numColumns"], body["fromcache"]) == (2, 2, False)


def test_an_unknown_format_is_a_400_naming_the_allowed_ones(client):
    dataset_id = new_dataset(client, "a,1\n")

    response = client.post(f"{QUERY}/{dataset_id}", params={"format": "csv"}, json={"sql": "SELECT 1"})

    assert response.status_code == 400
    assert response.json()["code"] == "bad_request"
    assert "rows, columns" in response.json()["message"] and "'csv'" in response.json()["message"]


def test_without_a_ray_cluster_engine_distributed_is_a_400_naming_the_setting(client):
    dataset_id = new_dataset(client, "a,1\n")
    sql = {"sql": "SELECT COUNT(*) AS n FROM table"}

    for path in (QUERY, V1_QUERY):
        refused = client.post(f"{path}/{dataset_id}", params={"engine": "distributed"}, json=sql)
        assert refused.status_code == 400
        assert "DATAGROVE_DISTRIBUTED_RAY_ADDRESS" in refused.json()["message"]
        assert client.post(f"{path}/{dataset_id}", json={**sql, "engine": "local"}).status_code == 200
    unknown = client.post(f"{QUERY}/{dataset_id}", params={"engine": "spark"}, json=sql)
    assert unknown.status_code == 400
    assert "local or distributed" in unknown.json()["message"]


def test_the_v1_query_keeps_its_column_wise_shape(client):
    dataset_id = new_dataset(client, "a,1\n")

    body = client.post(f"{V1_QUERY}/{dataset_id}", json={"sql": "SELECT * FROM table"}).json()

    assert list(body) == COLUMN_WISE_KEYS
    assert (body["columns"], body["rows"], body["numRows"], body["numColumns"]) == (
        ["name", "n"],
        [["a", 1]],
        1,
        2,
    )


def test_an_empty_answer_is_an_empty_list_or_no_rows(client):
    dataset_id = new_dataset(client, "a,1\n")
    sql = {"sql": "SELECT * FROM table WHERE n > 5"}

    assert client.post(f"{QUERY}/{dataset_id}", json=sql).json() == []
    body = client.post(f"{QUERY}/{dataset_id}", params={"format": "columns"}, json=sql).json()
    assert (body["columns"], body["rows"], body["numRows"]) == (["name", "n"], [], 0)


# --- values -------------------------------------------------------------------------------------


def test_values_are_typed_the_same_way_in_every_shape(client):
    dataset_id = create_dataset(client, TYPED_SCHEMA, TYPED_CSV)
    sql = {"sql": "SELECT * FROM table ORDER BY s"}
    names = [name for name, _ in TYPED_SCHEMA]

    objects = pairs(client.post(f"{QUERY}/{dataset_id}", json=sql).text)
    columns = pairs(client.post(f"{QUERY}/{dataset_id}", params={"format": "columns"}, json=sql).text)
    v1 = pairs(client.post(f"{V1_QUERY}/{dataset_id}", json=sql).text)

    assert objects == [list(zip(names, row, strict=True)) for row in TYPED_ROWS]
    for body in (dict(columns), dict(v1)):
        assert body["rows"] == TYPED_ROWS
        assert [dict(m)["type"] for m in body["metadata"]] == [t for _, t in TYPED_SCHEMA]


def test_decimals_are_exact_json_numbers_with_a_fraction(client):
    dataset_id = create_dataset(client, [("d", "DECIMAL")], b"12345678901234567890.1234567891\n10\n0.5\n")

    text = client.post(f"{QUERY}/{dataset_id}", json={"sql": "SELECT d FROM table ORDER BY d"}).text

    assert text == '[{"d":0.5},{"d":10.0},{"d":12345678901234567890.1234567891}]'


def test_sums_and_counts_of_whole_numbers_are_json_integers(client):
    dataset_id = new_dataset(client, "a,1\nb,2\n")

    body = client.post(
        f"{QUERY}/{dataset_id}",
        params={"format": "columns"},
        json={"sql": "SELECT SUM(n), COUNT(*) FROM table"},
    ).json()

    assert body["rows"] == [[3, 2]] and all(type(v) is int for v in body["rows"][0])
    assert [m["type"] for m in body["metadata"]] == ["LONG", "LONG"]


# --- names --------------------------------------------------------------------------------------


def test_unaliased_expressions_are_named_as_mysql_names_them_in_both_apis(client):
    dataset_id = new_dataset(client, "a,1\nb,2\n")
    sql = {
        "sql": "SELECT count(*), SUM(n), max(n)+1, 'x', t.name AS who FROM table t GROUP BY t.name ORDER BY who"
    }
    names = ["count(*)", "SUM(n)", "max(n)+1", "x", "who"]

    objects = pairs(client.post(f"{QUERY}/{dataset_id}", json=sql).text)
    columns = client.post(f"{QUERY}/{dataset_id}", params={"format": "columns"}, json=sql).json()
    v1 = client.post(f"{V1_QUERY}/{dataset_id}", json=sql).json()

    assert [key for key, _ in objects[0]] == names
    assert columns["columns"] == names and v1["columns"] == names
    assert v1["rows"] == [[1, 1, 2, "x", "a"], [1, 2, 3, "x", "b"]]


def test_a_repeated_column_name_is_kept_as_often_and_where_it_appears(client):
    dataset_id = new_dataset(client, "a,1\n")
    sql = {"sql": "SELECT n, name, n FROM table"}

    objects = pairs(client.post(f"{QUERY}/{dataset_id}", json=sql).text)
    columns = client.post(f"{QUERY}/{dataset_id}", params={"format": "columns"}, json=sql).json()

    assert objects == [[("n", 1), ("name", "a"), ("n", 1)]]
    assert columns["columns"] == ["n", "name", "n"] and columns["rows"] == [[1, "a", 1]]


# --- errors and streaming -----------------------------------------------------------------------


def test_an_error_found_while_the_query_runs_is_a_clean_400(client):
    dataset_id = new_dataset(client, "1,1\n2,2\nnot a number,3\n")

    response = client.post(f"{QUERY}/{dataset_id}", json={"sql": "SELECT CAST(name AS INTEGER) FROM table"})

    assert response.status_code == 400, response.text
    assert response.json()["code"] == "invalid_sql" and "not a number" in response.json()["message"]


def test_a_large_answer_is_sent_in_chunks_and_arrives_whole(client):
    # 400 x 400 = 160,000 rows of ~80 bytes: far more than the 4 MiB held back before sending.
    names = "".join(f"{'name-' + str(i) * 8},{i}\n" for i in range(400))
    dataset_id = new_dataset(client, names)
    sql = {"sql": "SELECT a.n AS i, b.name AS label FROM table a, table b ORDER BY a.n, b.n"}

    with client.stream("POST", f"{QUERY}/{dataset_id}", json=sql) as response:
        assert response.status_code == 200
        assert response.headers.get("transfer-encoding") == "chunked"
        body = response.read()

    rows = json.loads(body)
    assert len(rows) == 160_000
    assert rows[0] == {"i": 0, "label": "name-" + "0" * 8} and rows[-1] == {
        "i": 399,
        "label": "name-" + "399" * 8,
    }
    small = client.post(f"{QUERY}/{dataset_id}", json={"sql": "SELECT n FROM table LIMIT 2"})
    assert small.headers.get("content-length") == str(len(small.content))


# --- limits once the answer is under way (a server with small limits) -------------------------

SMALL_LIMITS = {
    "DATAGROVE_QUERY_MAX_ROWS": "10000",
    "DATAGROVE_QUERY_BUFFER_BYTES": str(256 * 1024),
    "DATAGROVE_QUERY_TIMEOUT_SECONDS": "3",
}


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory):
    server = RunningServer(
        data_dir=tmp_path_factory.mktemp("small-limits"), catalog_url=None, extra_env=SMALL_LIMITS
    ).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def hundred(small: RunningServer) -> str:
    """A dataset of 101 rows, whose self-join (10,201 rows) passes the limit of 10,000."""
    with small.client() as client:
        return new_dataset(client, "".join(f"row {i},{i}\n" for i in range(101)))


def log_events(server: RunningServer, event: str) -> list[dict[str, Any]]:
    """The server's structured log lines for ``event``."""
    events = []
    for line in server.log_path.read_text().splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("event") == event:
            events.append(entry)
    return events


def test_passing_the_row_limit_within_the_buffer_is_a_clean_400(small, hundred):
    with small.client() as client:
        response = client.post(f"{QUERY}/{hundred}", json={"sql": "SELECT 1 FROM table a, table b"})

    assert response.status_code == 400
    assert response.json()["code"] == "query_limit_exceeded"
    assert "more than 10000 rows" in response.json()["message"]


def test_passing_the_row_limit_after_the_answer_started_cuts_the_response_off(small, hundred):
    sql = {"sql": "SELECT a.name, b.name, repeat('x', 100) FROM table a, table b"}  # ~1.5 MB
    with small.client() as client:
        for path, params in ((QUERY, {}), (QUERY, {"format": "columns"}), (V1_QUERY, {})):
            with client.stream("POST", f"{path}/{hundred}", params=params, json=sql) as response:
                assert response.status_code == 200  # sent before the limit was reached
                with pytest.raises(httpx.RemoteProtocolError):
                    response.read()
        assert client.post(f"{QUERY}/{hundred}", json={"sql": "SELECT COUNT(*) FROM table"}).json() == [
            {"COUNT(*)": 101}
        ]

    cut = [e for e in log_events(small, "query answer cut short") if e["dataset"] == hundred]
    assert len(cut) == 3 and {e["code"] for e in cut} == {"query_limit_exceeded"}


def test_outliving_the_time_limit_while_streaming_cuts_the_response_off(small, hundred):
    # ~50 MB: more than the sockets hold while the client does not read; the limit is 3 s.
    sql = {"sql": "SELECT a.n, repeat('x', 5000) FROM table a, table b LIMIT 9000"}
    with small.client() as client, client.stream("POST", f"{QUERY}/{hundred}", json=sql) as response:
        assert response.status_code == 200
        chunks = response.iter_raw()
        next(chunks)
        time.sleep(4)
        with pytest.raises(httpx.RemoteProtocolError):
            for _ in chunks:
                pass

    cut = [e for e in log_events(small, "query answer cut short") if e["dataset"] == hundred]
    # Whichever the server met first: the query's time limit, or a client that took nothing for as long.
    assert any("ran longer than 3 s" in e["message"] or e["code"] == "client_too_slow" for e in cut)


def test_a_client_that_stops_reading_ends_its_query(server: RunningServer):
    with server.client() as client:
        dataset_id = new_dataset(client, "".join(f"row {i},{i}\n" for i in range(1000)))
        sql = {"sql": "SELECT a.name, b.name FROM table a, table b"}  # 1,000,000 rows, ~40 MB
        with client.stream("POST", f"{QUERY}/{dataset_id}", json=sql) as response:
            assert response.status_code == 200
            next(response.iter_raw())
        # Leaving the block closed the connection a few MB into the answer.
        deadline = time.monotonic() + 30
        ended: list[dict[str, Any]] = []
        while not ended and time.monotonic() < deadline:
            time.sleep(0.2)
            ended = [e for e in log_events(server, "query") if e["dataset"] == dataset_id]
        assert [(e["outcome"], e["rows"] < 1_000_000) for e in ended] == [("abandoned", True)]
        assert (
            client.post(f"{QUERY}/{dataset_id}", json={"sql": "SELECT COUNT(*) FROM table"}).status_code
            == 200
        )
