"""Queries on a Ray cluster through Daft (``engine=distributed``) answer as the local DuckDB query
does: TPC-H Q1 and every column type, in both APIs' shapes; row-level policies hold there too; a
query Daft cannot run is a 400 saying so, never a silent fallback; and with a row threshold set,
a query naming no engine runs on the cluster exactly when its dataset is larger.

One Ray cluster for the module (a head and one worker, one CPU each, bounded memory:
``tests/support/ray_cluster.py``), started and stopped here. Marked ``ray``: CI runs it; ``-m "not ray"``
leaves it out locally.
"""

from __future__ import annotations

import contextlib
import datetime
import math
import random
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.e2e.test_pdp import create_person, create_policy, set_pdp, share
from tests.e2e.test_query_answers import TYPED_CSV, TYPED_SCHEMA, create_dataset
from tests.support.ray_cluster import cluster_problems, ray_cluster
from tests.support.server import RunningServer

pytestmark = pytest.mark.ray

V1_QUERY = "/v1/datasets/query/execute"
QUERY = "/api/query/v1/execute"
THRESHOLD_ROWS = 1000
LINEITEM_ROWS = 3000

Q1 = """SELECT l_returnflag, l_linestatus,
       SUM(l_quantity) AS sum_qty, SUM(l_extendedprice) AS sum_base_price,
       SUM(l_extendedprice * (1 - l_discount)) AS sum_disc_price,
       SUM(l_extendedprice * (1 - l_discount) * (1 + l_tax)) AS sum_charge,
       AVG(l_quantity) AS avg_qty, AVG(l_extendedprice) AS avg_price, AVG(l_discount) AS avg_disc,
       COUNT(*) AS count_order
FROM table WHERE l_shipdate <= DATE_SUB('1998-12-01', INTERVAL 90 DAY)
GROUP BY l_returnflag, l_linestatus ORDER BY l_returnflag, l_linestatus"""


#: How long the first query on a fresh cluster may take: it starts Daft's workers there.
WARM_UP_SECONDS = 150


@dataclass
class Cluster:
    address: str
    server: RunningServer

    def diagnostics(self) -> str:
        """The server's log and the cluster's warnings, for a failed answer's message."""
        return (
            "\n--- server log (tail) ---\n"
            + self.server.log_path.read_text(errors="replace")[-6000:]
            + "\n--- Ray warnings and errors ---\n"
            + cluster_problems(self.address)
        )


def _warmed_up(server: RunningServer) -> bool:
    """Whether a first distributed query (the one that starts Daft's workers) answers in time."""
    with server.client() as client:
        client.timeout = httpx.Timeout(WARM_UP_SECONDS)
        dataset_id = create_dataset(client, [("n", "LONG")], b"1\n2\n")
        try:
            return run(client, dataset_id, "SELECT SUM(n) AS s FROM table", "distributed").status_code == 200
        except httpx.TimeoutException:
            return False


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A Ray cluster and a server using it, once a first query has run there.

    A first query that never ran had two causes, both fixed: two raylets on this machine handing
    out the same worker port (``ray_cluster``), and Ray starting the workers through ``uv run``
    (``datagrove.tables.distributed``). Should a fresh cluster still not run it, it is stopped with
    a warning carrying what Ray logged (``Cluster.diagnostics``), and a new one started, once."""
    for attempt in (1, 2):
        with contextlib.ExitStack() as stack:
            address = stack.enter_context(ray_cluster(workers=1))
            server = RunningServer(
                data_dir=tmp_path_factory.mktemp("server-ray"),
                catalog_url=None,
                extra_env={
                    "DATAGROVE_DISTRIBUTED_RAY_ADDRESS": address,
                    "DATAGROVE_DISTRIBUTED_MIN_ROWS": str(THRESHOLD_ROWS),
                    "DATAGROVE_QUERY_TIMEOUT_SECONDS": str(WARM_UP_SECONDS),
                },
            ).start()
            stack.callback(server.stop)
            running = Cluster(address, server)
            if _warmed_up(server):
                yield running
                return
            if attempt == 2:
                pytest.fail("the Ray cluster never ran a first query:" + running.diagnostics())
            warnings.warn(
                f"a fresh Ray cluster never ran its first query; starting another:{running.diagnostics()}"
            )
    raise AssertionError("unreachable")


@pytest.fixture(scope="module")
def server(cluster: Cluster) -> RunningServer:
    return cluster.server


#: The module's cluster, for ``answer``'s failure messages.
_CLUSTER: list[Cluster] = []


@pytest.fixture(scope="module", autouse=True)
def watched(cluster: Cluster) -> Iterator[None]:
    _CLUSTER.append(cluster)
    yield
    _CLUSTER.clear()


@pytest.fixture(scope="module")
def client(server: RunningServer) -> Iterator[httpx.Client]:
    with server.client() as client:
        client.timeout = httpx.Timeout(600)
        yield client


def _lineitem_csv(rows: int) -> bytes:
    draw = random.Random(15)
    start = datetime.date(1992, 1, 1)
    lines = []
    for _ in range(rows):
        shipped = start + datetime.timedelta(days=draw.randrange(2526))
        flag = draw.choice("RA") if shipped < datetime.date(1995, 6, 17) else "N"
        status = "F" if shipped < datetime.date(1995, 6, 17) else "O"
        lines.append(
            f"{flag},{status},{draw.randint(1, 50)},{draw.randint(90000, 10000000) / 100},"
            f"{draw.randint(0, 10) / 100},{draw.randint(0, 8) / 100},{shipped.isoformat()}"
        )
    return ("\n".join(lines) + "\n").encode()


@pytest.fixture(scope="module")
def lineitem(client: httpx.Client) -> str:
    schema = [
        ("l_returnflag", "STRING"),
        ("l_linestatus", "STRING"),
        ("l_quantity", "DOUBLE"),
        ("l_extendedprice", "DOUBLE"),
        ("l_discount", "DOUBLE"),
        ("l_tax", "DOUBLE"),
        ("l_shipdate", "DATE"),
    ]
    return create_dataset(client, schema, _lineitem_csv(LINEITEM_ROWS))


def run(
    client: httpx.Client, dataset_id: str, sql: str, engine: str | None, path: str = V1_QUERY
) -> httpx.Response:
    params = {"engine": engine} if engine else {}
    return client.post(f"{path}/{dataset_id}", params=params, json={"sql": sql})


def answer(client: httpx.Client, dataset_id: str, sql: str, engine: str | None, path: str = V1_QUERY):
    response = run(client, dataset_id, sql, engine, path)
    assert response.status_code == 200, response.text + "".join(c.diagnostics() for c in _CLUSTER)
    return response.json()


def same_values(left, right) -> bool:
    """Equal, floats within 1e-9 relative (the engines add in different orders)."""
    if isinstance(left, float) and isinstance(right, float):
        return math.isclose(left, right, rel_tol=1e-9)
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(same_values(a, b) for a, b in zip(left, right))
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(same_values(left[k], right[k]) for k in left)
    return left == right and type(left) is type(right)


def test_tpch_q1_on_the_cluster_answers_as_the_local_query_does(client, lineitem):
    local = answer(client, lineitem, Q1, "local")
    distributed = answer(client, lineitem, Q1, "distributed")
    assert distributed["columns"] == local["columns"]
    assert distributed["metadata"] == local["metadata"]
    assert [row[:2] for row in local["rows"]] == [["A", "F"], ["N", "O"], ["R", "F"]]
    assert same_values(distributed["rows"], local["rows"])
    assert sum(row[-1] for row in distributed["rows"]) <= LINEITEM_ROWS


def test_every_column_type_reads_the_same_in_both_shapes(client):
    typed = create_dataset(client, TYPED_SCHEMA, TYPED_CSV)
    sql = "SELECT * FROM table ORDER BY s"
    assert answer(client, typed, sql, "distributed") == answer(client, typed, sql, "local")
    rows_local = answer(client, typed, sql, "local", QUERY)
    assert answer(client, typed, sql, "distributed", QUERY) == rows_local
    assert [row["s"] for row in rows_local] == ['a "quoted" é', "b", "c"]


def test_a_viewer_under_a_row_policy_sees_only_its_rows_on_the_cluster(server, client, unique):
    dataset_id = create_dataset(
        client, [("Region", "STRING"), ("Amount", "LONG")], b"East,10\nWest,20\nEast,30\nNorth,40\n,50\n"
    )
    user_id, token = create_person(server, client, f"ray-{unique}")
    share(client, dataset_id, user_id)
    set_pdp(client, dataset_id, True)
    filters = [{"column": "Region", "values": ["East"], "operator": "EQUALS", "not": False}]
    create_policy(client, dataset_id, users=[user_id], filters=filters)
    sql = "SELECT Region, SUM(Amount) AS total, COUNT(*) AS n FROM table GROUP BY Region"
    with httpx.Client(
        base_url=server.base_url, headers={"X-DOMO-Developer-Token": token}, timeout=600
    ) as viewer:
        assert answer(viewer, dataset_id, sql, "distributed")["rows"] == [["East", 40, 2]]
        # A user expression that would reveal hidden rows runs after the policy's filter.
        hidden = "SELECT COUNT(*) AS n FROM table WHERE Region <> 'East' OR Region IS NULL"
        assert answer(viewer, dataset_id, hidden, "distributed")["rows"] == [[0]]
    assert len(answer(client, dataset_id, sql, "distributed")["rows"]) == 4  # the owner sees all


def test_a_query_daft_cannot_run_is_a_400_naming_the_distributed_engine(client, lineitem):
    refused = run(
        client, lineitem, "SELECT CONCAT(l_returnflag, l_linestatus) AS k FROM table", "distributed"
    )
    assert refused.status_code == 400
    assert "distributed engine" in refused.json()["message"]
    # Daft's functions that reach files and URLs are not callable.
    reach = run(
        client, lineitem, "SELECT url_download('file:///etc/hostname') AS f FROM table", "distributed"
    )
    assert reach.status_code == 400
    assert "url_download" in reach.json()["message"]
    assert (
        run(
            client, lineitem, "SELECT CONCAT(l_returnflag, l_linestatus) AS k FROM table LIMIT 1", "local"
        ).status_code
        == 200
    )


def test_without_an_engine_only_datasets_over_the_threshold_run_on_the_cluster(client, lineitem):
    small = create_dataset(client, [("l_returnflag", "STRING")], b"A\nN\n")
    # CONCAT runs locally but not on Daft: where the query ran shows in the answer.
    sql = "SELECT CONCAT(l_returnflag, 'x') AS k FROM table LIMIT 1"
    assert run(client, small, sql, None).status_code == 200
    routed = run(client, lineitem, sql, None)
    assert routed.status_code == 400
    assert "distributed engine" in routed.json()["message"]
    assert run(client, lineitem, sql, "local").status_code == 200


def test_a_query_out_of_time_is_a_400_and_logs_what_the_cluster_had_free(cluster, tmp_path):
    impatient = RunningServer(
        data_dir=tmp_path / "impatient",
        catalog_url=None,
        extra_env={
            "DATAGROVE_DISTRIBUTED_RAY_ADDRESS": cluster.address,
            "DATAGROVE_QUERY_TIMEOUT_SECONDS": "0.001",
        },
    ).start()
    try:
        with impatient.client() as client:
            dataset_id = create_dataset(client, [("n", "LONG")], b"1\n2\n")
            late = run(client, dataset_id, "SELECT SUM(n) AS s FROM table", "distributed")
        assert late.status_code == 400
        assert late.json()["code"] == "query_limit_exceeded"
    finally:
        impatient.stop()
    logged = [line for line in impatient.log_path.read_text().splitlines() if "ran out of time" in line]
    assert len(logged) == 1
    assert '"nodes_alive":2' in logged[0]
