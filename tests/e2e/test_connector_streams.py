"""Connector streams end to end on a real server: each built-in connector pulling from a real source
(PostgreSQL, MariaDB, a local HTTP server, local files, other datasets), incremental APPEND and
REPLACE, failing and aborted runs that change nothing, and no credential in any response or log line.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_sharing import new_person
from tests.support.connector_streams import config, history, new_account, new_stream, rows, run, wait_for
from tests.support.server import RunningServer
from tests.support.sources import Database, FileServer, Served, mariadb_source, postgres_source

PEOPLE_CSV = b"id,name,score,joined\n1,Ada,9.5,2024-01-02\n2,Grace,8.25,2024-02-03\n3,,7,2024-03-04\n"


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("connector-files")


@pytest.fixture(scope="module")
def web() -> Iterator[FileServer]:
    served = FileServer()
    yield served
    served.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, files: Path) -> Iterator[RunningServer]:
    """One server for the module: loopback allowed for connectors (the test sources live there)."""
    running = RunningServer(
        data_dir=tmp_path_factory.mktemp("connector-server"),
        catalog_url=None,
        extra_env={
            "DATAGROVE_CONNECTOR_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DATAGROVE_CONNECTOR_LOCAL_DIRS": str(files),
            "DATAGROVE_CONNECTOR_HEARTBEAT_SECONDS": "0.5",
            "DATAGROVE_CONNECTOR_RETRY_BACKOFF_SECONDS": "0.2",
            "DATAGROVE_CONNECTOR_BATCH_ROWS": "1000",
        },
    ).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def pg() -> Iterator[Database]:
    with postgres_source() as source:
        source.execute(
            "CREATE TABLE orders (id bigint PRIMARY KEY, customer text, amount numeric(12,2), "
            "paid boolean, placed timestamptz, day date, ratio double precision)",
            "INSERT INTO orders SELECT g, CASE WHEN g % 10 = 0 THEN NULL WHEN g % 10 = 1 THEN '' "
            "ELSE 'customer ' || g || ' ü' END, g * 1.25, g % 2 = 0, "
            "timestamptz '2024-01-01 00:00:00+00' + g * interval '1 minute', date '2024-01-01' + g % 30, "
            "g / 7.0 FROM generate_series(1, 5000) g",
        )
        yield source


@pytest.fixture(scope="module")
def maria() -> Iterator[Database]:
    with mariadb_source() as source:
        source.execute(
            "CREATE TABLE events (id BIGINT PRIMARY KEY, kind VARCHAR(40), weight DOUBLE, at DATETIME, "
            "price DECIMAL(10,2), note TEXT)",
            "INSERT INTO events VALUES (1, 'open', 1.5, '2024-05-01 10:00:00', 3.10, NULL), "
            "(2, 'close', 2.25, '2024-05-02 11:30:00', 4.00, ''), (3, 'open', NULL, NULL, NULL, 'x, \"y\"')",
        )
        yield source


def secrets_of(*sources: Database) -> list[str]:
    return [source.password for source in sources]


def assert_no_secret(text: str, secrets: list[str]) -> None:
    for secret in secrets:
        assert secret not in text


# --- postgresql ---------------------------------------------------------------------------------


def test_postgresql_replace_copies_the_query_result_with_its_types(server: RunningServer, pg: Database):
    with server.client() as client:
        account = new_account(client, "postgresql", pg.credentials())
        stream = new_stream(
            client, "postgresql", config(query="SELECT * FROM orders WHERE id <= 100"), account=account
        )
        assert stream["status"] == "created" and stream["id"]
        ended = run(client, stream["id"])
        assert ended["currentState"] == "SUCCESS", ended
        assert ended["rowsInserted"] == 100
        found = client.get(f"/api/data/v1/streams/{stream['id']}?fields=all").json()
        types = {c["name"]: c["type"] for c in found["schemaDefinition"]["columns"]}
        assert types == {
            "id": "LONG",
            "customer": "STRING",
            "amount": "DECIMAL",
            "paid": "BOOLEAN",
            "placed": "DATETIME",
            "day": "DATE",
            "ratio": "DOUBLE",
        }
        got = rows(
            client,
            stream["dataSource"]["id"],
            "SELECT id, customer FROM table WHERE id IN (10, 11, 12) ORDER BY id",
        )
        assert [(r["id"], r["customer"]) for r in got] == [(10, None), (11, ""), (12, "customer 12 ü")]
        # REPLACE again: still 100 rows, not 200.
        assert run(client, stream["id"])["currentState"] == "SUCCESS"
        assert rows(client, stream["dataSource"]["id"], "SELECT COUNT(*) AS n FROM table")[0]["n"] == 100


def test_postgresql_incremental_append_fetches_only_new_rows(server: RunningServer, pg: Database):
    pg.execute(
        "CREATE TABLE ticks (id bigint, v text)",
        "INSERT INTO ticks SELECT g, 'v' || g FROM generate_series(1, 50) g",
    )
    with server.client() as client:
        account = new_account(client, "postgresql", pg.credentials())
        stream = new_stream(
            client,
            "postgresql",
            config(query="SELECT id, v FROM ticks", cursorColumn="id"),
            account=account,
            method="APPEND",
        )
        first = run(client, stream["id"])
        assert first["currentState"] == "SUCCESS" and first["rowsInserted"] == 50
        pg.execute("INSERT INTO ticks SELECT g, 'v' || g FROM generate_series(51, 60) g")
        second = run(client, stream["id"])
        assert second["rowsInserted"] == 10
        nothing_new = run(client, stream["id"])
        assert nothing_new["currentState"] == "SUCCESS" and nothing_new["rowsInserted"] == 0
        got = rows(
            client, stream["dataSource"]["id"], "SELECT COUNT(*) AS n, COUNT(DISTINCT id) AS d FROM table"
        )
        assert got == [{"n": 60, "d": 60}]


def test_a_source_failing_midway_leaves_the_dataset_unchanged(server: RunningServer, pg: Database):
    with server.client() as client:
        account = new_account(client, "postgresql", pg.credentials())
        stream = new_stream(
            client,
            "postgresql",
            config(query="SELECT id, 100 / (id - 4000) AS q FROM orders ORDER BY id"),
            account=account,
        )
        good = client.put(
            f"/api/data/v1/streams/{stream['id']}",
            json={"configuration": config(query="SELECT id, 1 AS q FROM orders WHERE id <= 5")},
        )
        assert good.status_code == 200, good.text
        assert run(client, stream["id"])["currentState"] == "SUCCESS"
        client.put(
            f"/api/data/v1/streams/{stream['id']}",
            json={"configuration": config(query="SELECT id, 100 / (id - 4000) AS q FROM orders ORDER BY id")},
        )
        failed = run(client, stream["id"])
        assert failed["currentState"] == "ERROR"
        assert "division by zero" in failed["errors"][0]["message"]
        assert failed["errors"][0]["category"] == "CONNECTOR"
        assert rows(client, stream["dataSource"]["id"], "SELECT COUNT(*) AS n FROM table") == [{"n": 5}]
        entries = history(client, stream["id"])
        assert [e["status"] for e in entries[:2]] == ["failed", "completed"]
        assert "division by zero" in entries[0]["error"]


def test_bad_sql_ends_the_run_in_error_naming_the_cause(server: RunningServer, pg: Database):
    with server.client() as client:
        account = new_account(client, "postgresql", pg.credentials())
        stream = new_stream(client, "postgresql", config(query="SELEC nonsense"), account=account)
        failed = run(client, stream["id"])
    assert failed["currentState"] == "ERROR"
    assert "syntax error" in failed["errors"][0]["message"]


def test_a_later_type_change_in_the_source_fails_the_run_clearly(server: RunningServer, pg: Database):
    pg.execute("CREATE TABLE shifty (k bigint, v bigint)", "INSERT INTO shifty VALUES (1, 10)")
    with server.client() as client:
        account = new_account(client, "postgresql", pg.credentials())
        stream = new_stream(client, "postgresql", config(query="SELECT k, v FROM shifty"), account=account)
        assert run(client, stream["id"])["currentState"] == "SUCCESS"
        pg.execute("ALTER TABLE shifty ALTER COLUMN v TYPE text")
        failed = run(client, stream["id"])
        assert failed["currentState"] == "ERROR"
        assert failed["errors"][0]["code"] == "schema_changed"
        assert "v" in failed["errors"][0]["message"]
        assert rows(client, stream["dataSource"]["id"]) == [{"k": 1, "v": 10}]


# --- mysql / mariadb ----------------------------------------------------------------------------


def test_mysql_connector_reads_mariadb_with_incremental_append(server: RunningServer, maria: Database):
    with server.client() as client:
        account = new_account(client, "mysql", maria.credentials())
        stream = new_stream(
            client,
            "mysql",
            config(query="SELECT id, kind, weight, at, price, note FROM events", cursorColumn="id"),
            account=account,
            method="APPEND",
        )
        assert run(client, stream["id"])["rowsInserted"] == 3
        maria.execute("INSERT INTO events VALUES (4, 'open', 0.5, '2024-06-01 00:00:00', 1.00, 'new')")
        assert run(client, stream["id"])["rowsInserted"] == 1
        got = rows(client, stream["dataSource"]["id"], "SELECT id, note FROM table ORDER BY id")
    assert [(r["id"], r["note"]) for r in got] == [(1, None), (2, ""), (3, 'x, "y"'), (4, "new")]


# --- files ----------------------------------------------------------------------------------------


def test_csv_over_http_with_the_accounts_bearer_token(server: RunningServer, web: FileServer):
    token = "tok-" + uuid.uuid4().hex
    web.files["/people.csv"] = Served(PEOPLE_CSV, authorization=f"Bearer {token}")
    with server.client() as client:
        account = new_account(client, "http", {"bearerToken": token})
        stream = new_stream(client, "csv", config(url=f"{web.url}/people.csv"), account=account)
        ended = run(client, stream["id"])
        assert ended["currentState"] == "SUCCESS", ended
        got = rows(client, stream["dataSource"]["id"], "SELECT id, name FROM table ORDER BY id")
        assert [(r["id"], r["name"]) for r in got] == [(1, "Ada"), (2, "Grace"), (3, None)]
        listed = client.get(f"/api/data/v1/streams/{stream['id']}?fields=all").text
    assert token not in listed
    assert token not in server.log_path.read_text()


def test_json_records_and_parquet_from_the_allowed_local_directory(server: RunningServer, files: Path):
    (files / "feed.json").write_text(
        json.dumps({"data": {"items": [{"a": 1, "b": "x"}, {"a": 2, "b": None}, {"a": 3, "b": "z"}]}})
    )
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"n": [1, 2, 3, 4], "s": ["a", "b", None, "d"]}), files / "numbers.parquet")
    with server.client() as client:
        from_json = new_stream(client, "json", config(path=str(files / "feed.json"), recordPath="data.items"))
        from_parquet = new_stream(client, "parquet", config(path=str(files / "numbers.parquet")))
        assert run(client, from_json["id"])["rowsInserted"] == 3
        assert run(client, from_parquet["id"])["rowsInserted"] == 4
        assert rows(client, from_json["dataSource"]["id"], "SELECT a, b FROM table ORDER BY a")[1] == {
            "a": 2,
            "b": None,
        }
        assert rows(client, from_parquet["dataSource"]["id"], "SELECT SUM(n) AS t FROM table") == [{"t": 10}]


def test_a_path_outside_the_allowed_directories_is_refused_at_create(server: RunningServer):
    with server.client() as client:
        refused = new_stream(client, "csv", config(path="/etc/passwd"), expect=400)
    assert "connector_local_dirs" in refused["message"]


def test_a_private_address_is_refused_unless_allowed(server: RunningServer):
    with server.client() as client:
        for url in (
            "http://169.254.169.254/latest/meta-data",
            "http://10.1.2.3/data.csv",
            "http://[::1]:9/x.csv",
        ):
            refused = new_stream(client, "csv", config(url=url), expect=400)
            assert "allowed" in refused["message"] or "private" in refused["message"], refused


def test_an_http_source_cut_off_midway_fails_and_changes_nothing(server: RunningServer, web: FileServer):
    body = b"id,v\n" + b"".join(b"%d,%d\n" % (i, i) for i in range(200_000))
    web.files["/cut.csv"] = Served(body, fail_after=len(body) // 2)
    web.files["/whole.csv"] = Served(b"id,v\n1,1\n")
    with server.client() as client:
        stream = new_stream(client, "csv", config(url=f"{web.url}/whole.csv"))
        assert run(client, stream["id"])["currentState"] == "SUCCESS"
        client.put(
            f"/api/data/v1/streams/{stream['id']}", json={"configuration": config(url=f"{web.url}/cut.csv")}
        )
        failed = run(client, stream["id"])
        assert failed["currentState"] == "ERROR"
        assert rows(client, stream["dataSource"]["id"]) == [{"id": 1, "v": 1}]


def test_an_aborted_run_changes_nothing(server: RunningServer, web: FileServer):
    body = b"id\n" + b"".join(b"%d\n" % i for i in range(300_000))
    web.files["/slow.csv"] = Served(body, trickle=0.05)
    with server.client() as client:
        stream = new_stream(client, "csv", config(url=f"{web.url}/slow.csv"))
        started = run(client, stream["id"], wait=False)
        aborted = client.put(
            f"/api/data/v1/streams/{stream['id']}/executions/{started['executionId']}/abort",
            json={"category": "USER", "message": "changed my mind"},
        )
        assert aborted.status_code == 200, aborted.text
        ended = wait_for(client, stream["id"], started["executionId"])
        assert ended["currentState"] == "ERROR"
        assert rows(client, stream["dataSource"]["id"], "SELECT COUNT(*) AS n FROM table") == [{"n": 0}]
        assert history(client, stream["id"])[0]["status"] == "aborted"


# --- dataset-sql ----------------------------------------------------------------------------------


def test_dataset_sql_materialises_a_query_over_other_datasets(server: RunningServer, files: Path):
    (files / "a.csv").write_bytes(b"k,x\n1,10\n2,20\n")
    (files / "b.csv").write_bytes(b"k,y\n1,one\n2,two\n")
    with server.client() as client:
        a = new_stream(client, "csv", config(path=str(files / "a.csv")))
        b = new_stream(client, "csv", config(path=str(files / "b.csv")))
        run(client, a["id"])
        run(client, b["id"])
        sql = (
            f"SELECT a.k, a.x, b.y FROM `{a['dataSource']['id']}` a "
            f"JOIN `{b['dataSource']['id']}` b ON a.k = b.k"
        )
        flow = new_stream(client, "dataset-sql", config(query=sql))
        ended = run(client, flow["id"])
        assert ended["currentState"] == "SUCCESS", ended
        got = rows(client, flow["dataSource"]["id"], "SELECT k, x, y FROM table ORDER BY k")
    assert got == [{"k": 1, "x": 10, "y": "one"}, {"k": 2, "x": 20, "y": "two"}]


# --- the stream as clients read it ------------------------------------------------------------------


def test_get_shows_the_configuration_with_secrets_masked_and_put_keeps_them(
    server: RunningServer, pg: Database
):
    with server.client() as client:
        stream = new_stream(
            client,
            "postgresql",
            config(
                query="SELECT 1 AS one",
                host=pg.host,
                port=str(pg.port),
                database=pg.database,
                username=pg.username,
                password=pg.password,
            ),
        )
        found = client.get(f"/api/data/v1/streams/{stream['id']}?fields=all").json()
        items = {c["name"]: c for c in found["configuration"]}
        assert items["password"]["value"] == "********"
        assert items["query"]["value"] == "SELECT 1 AS one"
        assert found["dataProvider"]["key"] == "postgresql"
        assert found["transport"]["type"] == "CONNECTOR"
        # A client PUTs back the whole object it read: the masked password keeps the stored one.
        put = client.put(f"/api/data/v1/streams/{stream['id']}", json=found)
        assert put.status_code == 200, put.text
        ended = run(client, stream["id"])
        assert ended["currentState"] == "SUCCESS", ended
        assert pg.password not in json.dumps(put.json()) + json.dumps(ended)


def test_bad_connector_settings_are_400_at_create(server: RunningServer, pg: Database, web: FileServer):
    with server.client() as client:
        unknown = new_stream(client, "no-such-connector", config(query="x"), expect=400)
        assert "no-such-connector" in unknown["message"]
        missing = new_stream(client, "postgresql", config(host="127.0.0.1"), expect=400)
        assert "query" in missing["message"]
        bad_schedule = new_stream(
            client, "csv", config(url=f"{web.url}/x.csv"), schedule='{"type": "FORTNIGHT"}', expect=400
        )
        assert "FORTNIGHT" in bad_schedule["message"]
        wrong_type = new_account(client, "http", {"bearerToken": "t"})
        refused = new_stream(client, "postgresql", config(query="SELECT 1"), account=wrong_type, expect=400)
        assert "http" in refused["message"]
        nobody = new_stream(client, "postgresql", config(query="SELECT 1"), account="999999", expect=404)
        assert "999999" in nobody["message"]


def test_no_credential_in_any_response_or_log_line(server: RunningServer, pg: Database, maria: Database):
    secrets = secrets_of(pg, maria)
    with server.client() as client:
        bodies: list[Any] = []
        for kind, source in (("postgresql", pg), ("mysql", maria)):
            account = new_account(client, kind, source.credentials())
            bodies.append(client.get(f"/v1/accounts/{account}").text)
            stream = new_stream(client, kind, config(query="SELECT nope FROM nowhere"), account=account)
            bodies.append(json.dumps(stream))
            bodies.append(json.dumps(run(client, stream["id"])))
            bodies.append(client.get(f"/api/data/v1/streams/{stream['id']}?fields=all").text)
            bodies.append(json.dumps(history(client, stream["id"])))
    for body in bodies:
        assert_no_secret(body, secrets)
    assert_no_secret(server.log_path.read_text(), secrets)
    # Nor in the catalog: credentials and secret configuration items are sealed there.
    for path in server.data_dir.glob("catalog.db*"):
        assert_no_secret(path.read_bytes().decode("latin-1"), secrets)


def test_only_an_account_shared_with_the_caller_may_be_used(server: RunningServer, pg: Database):
    owner, other = new_person(server, role="Editor"), new_person(server, role="Editor")
    with owner.client(server) as client:
        account = new_account(client, "postgresql", pg.credentials())
    with other.client(server) as client:
        hidden = new_stream(
            client, "postgresql", config(query="SELECT 1 AS one"), account=account, expect=404
        )
        assert account in hidden["message"]
    with owner.client(server) as client:
        shared = client.post(f"/v1/accounts/{account}/shares", json={"user": {"id": other.id}})
        assert shared.status_code == 200, shared.text
    with other.client(server) as client:
        stream = new_stream(client, "postgresql", config(query="SELECT 1 AS one"), account=account)
        ended = run(client, stream["id"])
    assert ended["currentState"] == "SUCCESS", ended
