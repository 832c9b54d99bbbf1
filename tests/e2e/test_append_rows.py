"""The one-row append (``POST /api/data/v3/datasources/{id}/uploads`` with ``{"values", "delimiter"}``):
acknowledged rows are durable, visible to the very next read, checked as the CSV dialect checks
them, and folded into the table in batches instead of a file and a snapshot per row."""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_sharing import DS, new_person, share
from tests.support.postgres import private_schema
from tests.support.server import RunningServer

SCHEMA = {"columns": [{"type": "LONG", "name": "n"}, {"type": "STRING", "name": "s"}]}


def new_dataset(client: httpx.Client, schema: dict = SCHEMA) -> str:
    created = client.post("/v1/datasets", json={"name": "append-" + uuid.uuid4().hex[:8], "schema": schema})
    assert created.status_code == 201, created.text
    return created.json()["id"]


def append(client: httpx.Client, dataset_id: str, values: str, delimiter: str | None = ",") -> httpx.Response:
    body = {"values": values} if delimiter is None else {"values": values, "delimiter": delimiter}
    return client.post(f"{DS}/{dataset_id}/uploads", json=body)


def rows(client: httpx.Client, dataset_id: str, sql: str = "SELECT * FROM table") -> list[list[object]]:
    answer = client.post(f"/v1/datasets/query/execute/{dataset_id}", json={"sql": sql})
    assert answer.status_code == 200, answer.text
    return answer.json()["rows"]


def numbers(client: httpx.Client, dataset_id: str) -> Counter[int]:
    return Counter(row[0] for row in rows(client, dataset_id, "SELECT n FROM table"))


# --- the seed document, as written ----------------------------------------------------------------


def test_the_seed_documents_snippet_appends_a_row_and_takes_its_success_branch(server: RunningServer):
    with server.client() as client:
        dataset_id = new_dataset(
            client,
            {"columns": [{"type": "STRING", "name": f"column{i}"} for i in (1, 2, 3)]},
        )
    # The document's Python snippet, with only the host, the id and the token filled in.
    headers = {
        "X-DOMO-Developer-Token": server.token,
        "Content-Type": "application/json",
    }
    url = f"{server.base_url}/api/data/v3/datasources/{dataset_id}/uploads"
    payload = {"values": "value1,value2,value3", "delimiter": ","}
    with httpx.Client() as client:
        response = client.post(url, headers=headers, json=payload)
        outcome = "Row appended successfully" if response.status_code == 200 else "Failed to append row"
    assert outcome == "Row appended successfully", response.text
    assert response.json() == {}
    with server.client() as client:
        assert rows(client, dataset_id) == [["value1", "value2", "value3"]]


# --- visibility -------------------------------------------------------------------------------------


def test_an_acknowledged_row_is_in_the_very_next_query_export_and_row_count(server: RunningServer):
    with server.client() as client:
        dataset_id = new_dataset(client)
        assert client.put(f"/v1/datasets/{dataset_id}/data", content=b"1,imported\n").status_code == 204
        assert append(client, dataset_id, "2,appended").status_code == 200
        assert rows(client, dataset_id) == [[1, "imported"], [2, "appended"]]
        product = client.post(f"/api/query/v1/execute/{dataset_id}", json={"sql": "SELECT n FROM table"})
        assert product.status_code == 200, product.text
        assert "2" in product.text
        export = client.get(f"/v1/datasets/{dataset_id}/data", params={"includeHeader": "true"})
        assert export.text == '"n","s"\n1,"imported"\n2,"appended"\n'
        assert client.get(f"/v1/datasets/{dataset_id}").json()["rows"] == 2
        assert client.get(f"{DS}/{dataset_id}").json()["rowCount"] == 2


def test_delimiters_quotes_nulls_and_empty_strings_read_as_the_csv_dialect_says(server: RunningServer):
    schema = {
        "columns": [
            {"type": "STRING", "name": "a"},
            {"type": "STRING", "name": "b"},
            {"type": "LONG", "name": "n"},
        ]
    }
    with server.client() as client:
        dataset_id = new_dataset(client, schema)
        for values, delimiter in [
            ('"x, y","say ""hi""",1', ","),
            ('"",\\N,2', ","),
            (",,", None),
            ("p|q|4", "|"),
            ('"r|s"\t\t5', "\t"),
            ('"multi\nline",b,6', ","),
            ("\ufeffbom,b,7", ","),
        ]:
            response = append(client, dataset_id, values, delimiter)
            assert response.status_code == 200, (values, response.text)
        assert rows(client, dataset_id) == [
            ["x, y", 'say "hi"', 1],
            ["", None, 2],
            [None, None, None],
            ["p", "q", 4],
            ["r|s", None, 5],
            ["multi\nline", "b", 6],
            ["bom", "b", 7],
        ]


def test_values_in_every_form_the_dialect_takes_are_appended_as_an_import_would_read_them(
    server: RunningServer,
):
    schema = {
        "columns": [
            {"type": "DATETIME", "name": "t"},
            {"type": "DOUBLE", "name": "x"},
            {"type": "BOOLEAN", "name": "b"},
            {"type": "DECIMAL", "name": "m"},
            {"type": "DATE", "name": "d"},
        ]
    }
    lines = [
        "2024-01-01T10:00:00+02:00,1_000,yes,0.5,2024-02-29 00:00:00",
        "2024-01-01 10:00:00.5,inf,0,1e2,2024-01-01",
    ]
    with server.client() as client:
        appended, imported = new_dataset(client, schema), new_dataset(client, schema)
        for line in lines:
            assert append(client, appended, line).status_code == 200
        assert client.put(f"/v1/datasets/{imported}/data", content="\n".join(lines) + "\n").status_code == 204
        assert rows(client, appended) == rows(client, imported)


# --- bad input --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({"values": "1"}, 400, "expected 2 values (n, s), found 1"),
        ({"values": "1,a,b"}, 400, "expected 2 values (n, s), found 3"),
        ({"values": "x,a"}, 400, 'column "n": "x" is not a LONG'),
        ({"values": "1.5,a"}, 400, 'column "n": "1.5" is not a LONG'),
        ({"values": "1,a\n2,b"}, 400, "exactly one row"),
        ({"values": '1,"open'}, 400, "not closed"),
        ({"values": "1|a", "delimiter": "||"}, 400, "delimiter must be one character"),
        ({"values": "1,a", "delimiter": '"'}, 400, "delimiter must be one character"),
        ({"values": 5}, 400, '"values"'),
        ({"delimiter": ","}, 400, '"values"'),
    ],
)
def test_a_bad_row_is_a_400_naming_the_problem_and_appends_nothing(
    server: RunningServer, body: dict, status: int, says: str
):
    with server.client() as client:
        dataset_id = new_dataset(client)
        response = client.post(f"{DS}/{dataset_id}/uploads", json=body)
        assert response.status_code == status, response.text
        assert says in response.json()["message"]
        assert "line 1" not in response.json()["message"]
        assert rows(client, dataset_id) == []
        assert client.get(f"{DS}/{dataset_id}").json()["rowCount"] == 0


def test_a_body_that_is_not_json_is_a_400(server: RunningServer):
    with server.client() as client:
        dataset_id = new_dataset(client)
        response = client.post(
            f"{DS}/{dataset_id}/uploads", content=b"{not json", headers={"Content-Type": "application/json"}
        )
    assert response.status_code == 400


def test_credentials_and_access_are_checked_for_every_row(server: RunningServer):
    stranger, viewer = new_person(server, role="Editor"), new_person(server, role="Editor")
    with server.client() as admin:
        dataset_id = new_dataset(admin)
        assert (
            share(admin, dataset_id, {"type": "USER", "id": viewer.id, "accessLevel": "CAN_VIEW"}).status_code
            == 200
        )
    url = f"{server.base_url}{DS}/{dataset_id}/uploads"
    body = {"values": "1,a"}
    assert httpx.post(url, json=body).status_code == 401
    assert httpx.post(url, json=body, headers={"X-DOMO-Developer-Token": "DDCI-unknown"}).status_code == 401
    with stranger.client(server) as client:
        assert client.post(f"{DS}/{dataset_id}/uploads", json=body).status_code == 404
        assert client.post(f"{DS}/00000000-0000-4000-8000-000000000000/uploads", json=body).status_code == 404
    with viewer.client(server) as client:
        refused = client.post(f"{DS}/{dataset_id}/uploads", json=body)
        assert refused.status_code == 403 and "CAN_EDIT" in refused.json()["message"]
    with server.client() as admin:
        assert rows(admin, dataset_id) == []


def test_a_revoked_token_cannot_append_from_the_very_next_request(server: RunningServer):
    editor = new_person(server, role="Editor")
    with editor.client(server) as client:
        dataset_id = new_dataset(client)
        assert append(client, dataset_id, "1,a").status_code == 200
        token_id = client.get("/api/data/v1/accesstokens").json()[0]["id"]
        with server.client() as admin:
            assert admin.delete(f"/api/data/v1/accesstokens/{token_id}").status_code == 200
        assert append(client, dataset_id, "2,b").status_code == 401


def test_row_level_policies_filter_buffered_rows_too(server: RunningServer):
    reader = new_person(server, role="Participant")
    with server.client() as admin:
        dataset_id = new_dataset(admin)
        assert admin.put(f"/v1/datasets/{dataset_id}", json={"pdpEnabled": True}).status_code == 200
        policy = {
            "name": "only a",
            "filters": [{"column": "s", "values": ["a"], "operator": "EQUALS", "not": False}],
            "users": [reader.id],
            "groups": [],
            "type": "user",
        }
        assert admin.post(f"/v1/datasets/{dataset_id}/policies", json=policy).status_code == 201
        assert (
            share(admin, dataset_id, {"type": "USER", "id": reader.id, "accessLevel": "CAN_VIEW"}).status_code
            == 200
        )
        for values in ("1,a", "2,b", "3,a"):
            assert append(admin, dataset_id, values).status_code == 200
    with reader.client(server) as client:
        assert rows(client, dataset_id) == [[1, "a"], [3, "a"]]
        assert client.get(f"/v1/datasets/{dataset_id}/data").text == '1,"a"\n3,"a"\n'


def append_concurrently(server: RunningServer, dataset_id: str, workers: int, rows: int) -> Counter[int]:
    """``rows`` rows from each of ``workers`` clients at once, all acknowledged; their numbers."""

    def send(worker: int) -> None:
        with server.client() as own:
            for i in range(rows):
                assert append(own, dataset_id, f"{worker * 1000 + i},w{worker}").status_code == 200

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(send, range(workers)))
    return Counter({w * 1000 + i: 1 for w in range(workers) for i in range(rows)})


def test_rows_from_many_clients_at_once_all_land_exactly_once(server: RunningServer):
    with server.client() as client:
        dataset_id = new_dataset(client)
    sent = append_concurrently(server, dataset_id, workers=16, rows=25)
    with server.client() as client:
        assert numbers(client, dataset_id) == sent
        assert client.get(f"{DS}/{dataset_id}").json()["rowCount"] == 400


# --- folding ------------------------------------------------------------------------------------------

FOLDING = {
    "DATAGROVE_APPEND_FOLD_ROWS": "50",
    "DATAGROVE_APPEND_FOLD_SECONDS": "2",
    "DATAGROVE_APPEND_FOLD_INTERVAL_SECONDS": "0.2",
    "DATAGROVE_COMMIT_CLAIM_SECONDS": "3",  # a claim left by a killed server runs out quickly
}


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def folding(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """A server that folds its append buffers after 50 rows or 2 seconds."""
    data_dir = tmp_path_factory.mktemp(f"folding-{request.param}")
    if request.param == "sqlite":
        running = RunningServer(data_dir=data_dir, catalog_url=None, extra_env=FOLDING).start()
        yield running
        running.stop()
        return
    with private_schema() as catalog_url:
        running = RunningServer(data_dir=data_dir, catalog_url=catalog_url, extra_env=FOLDING).start()
        yield running
        running.stop()


def data_files(server: RunningServer, dataset_id: str) -> list[Path]:
    return sorted(
        (server.data_dir / "warehouse" / "datagrove" / f"ds_{dataset_id.replace('-', '')}" / "data").glob(
            "*.parquet"
        )
    )


def iceberg_table(server: RunningServer, dataset_id: str):  # type: ignore[no-untyped-def]
    """The dataset's table as PyIceberg, an outside reader, sees it."""
    from pyiceberg.catalog.sql import SqlCatalog

    url = server.catalog_url or f"sqlite:///{server.data_dir.resolve() / 'catalog.db'}"
    catalog = SqlCatalog("datagrove", uri=url, warehouse=(server.data_dir / "warehouse").resolve().as_uri())
    return catalog.load_table(f"datagrove.ds_{dataset_id.replace('-', '')}")


def snapshots(server: RunningServer, dataset_id: str) -> int:
    return len(iceberg_table(server, dataset_id).metadata.snapshots)


def folded_rows(server: RunningServer, dataset_id: str) -> int:
    """Rows in the table's current snapshot (not the append buffer), read with PyIceberg."""
    return iceberg_table(server, dataset_id).scan().to_arrow().num_rows


def wait_until(condition, seconds: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_appended_rows_are_folded_in_batches_not_a_file_and_snapshot_per_row(folding: RunningServer):
    with folding.client() as client:
        dataset_id = new_dataset(client)
    sent = append_concurrently(folding, dataset_id, workers=8, rows=50)
    wait_until(lambda: folded_rows(folding, dataset_id) == 400)
    with folding.client() as client:
        assert numbers(client, dataset_id) == sent
    # 400 rows at a fold every 50 rows (or 2 s): a handful of files and snapshots, not 400.
    assert len(data_files(folding, dataset_id)) <= 12
    assert snapshots(folding, dataset_id) <= 12


def test_a_trickle_of_rows_is_folded_once_the_oldest_is_old_enough(folding: RunningServer):
    with folding.client() as client:
        dataset_id = new_dataset(client)
        assert append(client, dataset_id, "1,a").status_code == 200
        wait_until(lambda: folded_rows(folding, dataset_id) == 1, seconds=20)
        assert rows(client, dataset_id) == [[1, "a"]]


def test_a_schema_change_keeps_buffered_rows_and_brings_them_into_the_new_schema(server: RunningServer):
    with server.client() as client:
        dataset_id = new_dataset(client)
        assert append(client, dataset_id, "1,a").status_code == 200
        new_schema = {
            "columns": [
                {"type": "STRING", "name": "n"},
                {"type": "STRING", "name": "s"},
                {"type": "LONG", "name": "extra"},
            ]
        }
        assert client.put(f"/v1/datasets/{dataset_id}", json={"schema": new_schema}).status_code == 200
        assert append(client, dataset_id, "two,b,2").status_code == 200
        assert rows(client, dataset_id) == [["1", "a", None], ["two", "b", 2]]


def test_a_replace_discards_rows_appended_before_it_and_keeps_those_after(folding: RunningServer):
    with folding.client() as client:
        dataset_id = new_dataset(client)
        for i in range(60):  # more than a fold: some are in the table, some buffered
            assert append(client, dataset_id, f"{i},before").status_code == 200
        assert client.put(f"/v1/datasets/{dataset_id}/data", content=b"1000,replaced\n").status_code == 204
        assert append(client, dataset_id, "2000,after").status_code == 200
        assert rows(client, dataset_id) == [[1000, "replaced"], [2000, "after"]]
        wait_until(lambda: folded_rows(folding, dataset_id) == 2)
        assert rows(client, dataset_id) == [[1000, "replaced"], [2000, "after"]]
        assert client.get(f"{DS}/{dataset_id}").json()["rowCount"] == 2


def test_a_stream_replace_racing_appends_and_folds_wins_cleanly(folding: RunningServer):
    """Appenders run before, during and after a REPLACE commit of a stream: no row acknowledged
    before the REPLACE started survives it, and every row acknowledged after it returned is there."""
    with folding.client() as client:
        stream = client.post(
            "/v1/streams", json={"dataSet": {"name": "race", "schema": SCHEMA}, "updateMethod": "REPLACE"}
        ).json()
        stream_id, dataset_id = stream["id"], stream["dataSet"]["id"]
    acknowledged: list[tuple[float, float, int]] = []  # (sent, answered, n)
    lock = threading.Lock()
    stop = threading.Event()

    def appender(worker: int) -> None:
        with folding.client() as own:
            i = 0
            while not stop.is_set():
                n = worker * 100_000 + i
                sent = time.monotonic()
                assert append(own, dataset_id, f"{n},appended").status_code == 200
                with lock:
                    acknowledged.append((sent, time.monotonic(), n))
                i += 1

    threads = [threading.Thread(target=appender, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(1.5)
    with folding.client() as client:
        execution = client.post(f"/v1/streams/{stream_id}/executions").json()["id"]
        part = "".join(f"{500_000 + i},replaced\n" for i in range(100))
        assert (
            client.put(f"/v1/streams/{stream_id}/executions/{execution}/part/1", content=part).status_code
            == 200
        )
        replace_started = time.monotonic()
        assert client.put(f"/v1/streams/{stream_id}/executions/{execution}/commit").status_code == 200
        replace_done = time.monotonic()
    time.sleep(1.5)
    stop.set()
    for thread in threads:
        thread.join()
    with folding.client() as client:
        wait_until(
            lambda: client.get(f"{DS}/{dataset_id}").json()["rowCount"] == folded_rows(folding, dataset_id)
        )
        counted = numbers(client, dataset_id)
    assert all(counted[500_000 + i] == 1 for i in range(100))
    assert all(count == 1 for count in counted.values())
    before = [n for _, answered, n in acknowledged if answered < replace_started]
    after = [n for sent, _, n in acknowledged if sent > replace_done]
    assert before and after
    assert not any(counted[n] for n in before)
    assert all(counted[n] == 1 for n in after)


# --- crashes ------------------------------------------------------------------------------------------


def crash_server(tmp_path: Path, **env: str) -> RunningServer:
    return RunningServer(data_dir=tmp_path / "data", catalog_url=None, extra_env={**FOLDING, **env}).start()


def restarted(server: RunningServer) -> RunningServer:
    env = {key: value for key, value in server.extra_env.items() if key != "DATAGROVE_CRASH_AT"}
    return RunningServer(
        data_dir=server.data_dir,
        catalog_url=server.catalog_url,
        port=server.port,
        client_id=server.client_id,
        client_secret=server.client_secret,
        token=server.token,
        extra_env=env,
    ).start()


def burst(server: RunningServer, dataset_id: str, workers: int, per_worker: int) -> set[int]:
    """Append from ``workers`` clients until done or the server dies; the acknowledged numbers."""
    acknowledged: set[int] = set()
    lock = threading.Lock()

    def send(worker: int) -> None:
        with server.client() as client:
            for i in range(per_worker):
                n = worker * 100_000 + i
                try:
                    response = append(client, dataset_id, f"{n},burst")
                except httpx.HTTPError:
                    return
                if response.status_code != 200:
                    return
                with lock:
                    acknowledged.add(n)

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(send, range(workers)))
    return acknowledged


@pytest.mark.parametrize(
    "crash_at",
    ["append-stored#5", "fold-written", "fold-committed", "commit-landed"],
)
def test_a_crash_at_any_step_loses_no_acknowledged_row_and_doubles_none(tmp_path: Path, crash_at: str):
    # "commit-landed" is never reached by folds; it stands for a crash-free run of the same test.
    server = crash_server(tmp_path, DATAGROVE_CRASH_AT=crash_at)
    with server.client() as client:
        dataset_id = new_dataset(client)
    acknowledged = burst(server, dataset_id, workers=4, per_worker=40)
    if crash_at.startswith("fold"):
        wait_until(lambda: server.process is not None and server.process.poll() is not None, seconds=30)
    server.kill()
    server = restarted(server)
    try:
        with server.client() as client:
            wait_until(
                lambda: folded_rows(server, dataset_id) == client.get(f"{DS}/{dataset_id}").json()["rowCount"]
            )
            counted = numbers(client, dataset_id)
    finally:
        server.stop()
    assert acknowledged
    assert all(counted[n] == 1 for n in acknowledged), "an acknowledged row was lost"
    assert all(count == 1 for count in counted.values()), "a row was doubled"


def test_a_server_killed_at_a_random_moment_of_a_burst_keeps_every_acknowledged_row_once(tmp_path: Path):
    server = crash_server(tmp_path)
    with server.client() as client:
        dataset_id = new_dataset(client)
    killer = threading.Timer(1.0 + (os.getpid() % 10) / 10, server.kill)
    killer.start()
    acknowledged = burst(server, dataset_id, workers=8, per_worker=400)
    killer.join()
    server = restarted(server)
    try:
        with server.client() as client:
            counted = numbers(client, dataset_id)
    finally:
        server.stop()
    assert acknowledged
    assert all(counted[n] == 1 for n in acknowledged)
    assert all(count == 1 for count in counted.values())


def test_buffered_rows_go_through_every_schema_change_the_tables_rows_go_through(server: RunningServer):
    """STRING -> LONG -> STRING: 'abc' does not survive the LONG step, buffered or not."""
    schema = {"columns": [{"type": "LONG", "name": "n"}, {"type": "STRING", "name": "x"}]}
    with server.client() as client:
        dataset_id = new_dataset(client, schema)
        assert client.put(f"/v1/datasets/{dataset_id}/data", content=b"1,abc\n").status_code == 204
        assert append(client, dataset_id, "2,abc").status_code == 200
        for x_type in ("LONG", "STRING"):
            changed = {"columns": [{"type": "LONG", "name": "n"}, {"type": x_type, "name": "x"}]}
            assert client.put(f"/v1/datasets/{dataset_id}", json={"schema": changed}).status_code == 200
        assert rows(client, dataset_id) == [[1, None], [2, None]]
        assert client.get(f"{DS}/{dataset_id}").json()["rowCount"] == 2


# --- commits take turns ---------------------------------------------------------------------------


def test_commits_to_one_dataset_take_turns_so_a_replace_never_meets_a_fold_halfway(tmp_path: Path):
    """In-process, with the real services: while one commit holds a dataset's claim, a fold skips
    the dataset and a REPLACE waits; both go ahead once the claim is released."""
    from datagrove.app import build_services
    from datagrove.domain import UpdateMethod
    from datagrove.services.auth import Credential
    from datagrove.services.bootstrap import bootstrap
    from datagrove.settings import load
    from datagrove.tables.types import Column, ColumnType

    settings = load(data_dir=tmp_path, bootstrap_token="DDCI" + uuid.uuid4().hex)
    services = build_services(settings)
    bootstrap(settings, services.catalog, services.auth)
    services.appends.start()
    try:
        admin = services.auth.actor_for(Credential("developer_token", settings.bootstrap_token or ""))
        dataset = services.datasets.create(
            actor=admin, name="turns", description="", columns=[Column("n", ColumnType.LONG)]
        )
        credential = Credential("developer_token", settings.bootstrap_token or "")
        for n in range(3):
            services.appends.submit(
                credential=credential, dataset_id=dataset.id, values=str(n), delimiter=","
            ).result(30)
        replaced = threading.Event()
        source = tmp_path / "replace.csv"
        source.write_text("100\n")

        def replace() -> None:
            services.datasets.import_csv(
                actor=admin, dataset_id=dataset.id, csv_path=source, method=UpdateMethod.REPLACE
            )
            replaced.set()

        with services.datasets.commit_claim(dataset.id):
            assert services.appends.fold(dataset.id) == 0  # skipped, not blocked
            worker = threading.Thread(target=replace)
            worker.start()
            time.sleep(0.5)
            assert not replaced.is_set()  # the REPLACE waits its turn
        worker.join(30)
        assert replaced.is_set()
        assert services.appends.fold(dataset.id) == 0  # the REPLACE discarded what was buffered
        assert services.datasets.get(actor=admin, dataset_id=dataset.id).row_count == 1
    finally:
        services.appends.stop()
