"""SQL over several datasets as a user (``QueryService.open_batches``) and the ``dataset-sql``
connector that materialises it: with the real services on SQLite and on PostgreSQL, data written
through them, and the real DuckDB sandbox.

The owner of the stream is an Editor. It owns ``orders``; an admin's ``customers`` is shared with it
to view; an admin's ``sales`` is shared with it under a row-level policy (region east only); an
admin's ``secret`` is not shared at all.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from datagrove.app import Services, build_services
from datagrove.connectors.base import RunContext, SourceError
from datagrove.connectors.dataset_sql import DatasetSqlConnector
from datagrove.domain import (
    AccessLevel,
    Actor,
    Dataset,
    PolicyFilter,
    PolicyOperator,
    PrincipalType,
    Role,
    UpdateMethod,
)
from datagrove.errors import BadRequest, InvalidSql, NotFound
from datagrove.services.auth import Credential
from datagrove.services.bootstrap import bootstrap
from datagrove.services.policies import PolicyDraft
from datagrove.services.query import QueryService
from datagrove.services.sharing import ShareEntry
from datagrove.settings import load
from datagrove.tables.sandbox import QueryLimits
from datagrove.tables.types import Column, ColumnType
from tests.support.postgres import private_schema

BIG_ROWS = 150_000


@dataclass
class World:
    services: Services
    data_dir: Path
    admin: Actor
    owner: Actor
    owner_token: str
    orders: Dataset
    customers: Dataset
    sales: Dataset
    secret: Dataset
    big: Dataset

    def batches(self, sql: str, actor: Actor | None = None) -> pa.RecordBatchReader:
        return self.services.query.open_batches(actor=actor or self.owner, sql=sql)

    def rows(self, sql: str, actor: Actor | None = None) -> list[dict[str, Any]]:
        return self.batches(sql, actor).read_all().to_pylist()

    def read_areas(self) -> list[Path]:
        reads = self.data_dir / "staging" / "reads"
        return list(reads.iterdir()) if reads.exists() else []


def _user(services: Services, admin: Actor, role: Role) -> tuple[Actor, str]:
    person = services.people.create_user(
        actor=admin, name=f"user {uuid.uuid4().hex[:6]}", email=f"{uuid.uuid4().hex}@example.com", role=role
    )
    _, token = services.auth.create_developer_token(user_id=person.user.id, name="test")
    return services.auth.actor_for(Credential("developer_token", token)), token


def _dataset(
    services: Services, actor: Actor, name: str, columns: list[Column], csv: str, tmp: Path
) -> Dataset:
    dataset = services.datasets.create(actor=actor, name=name, description="", columns=columns)
    source = tmp / f"{dataset.id}.csv"
    source.write_text(csv)
    return services.datasets.import_csv(
        actor=actor, dataset_id=dataset.id, csv_path=source, method=UpdateMethod.REPLACE
    )


def _share(services: Services, admin: Actor, dataset: Dataset, actor: Actor) -> None:
    entry = ShareEntry(PrincipalType.USER, actor.user.id, AccessLevel.CAN_VIEW)
    services.sharing.share(actor=admin, dataset_id=dataset.id, entries=[entry])


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    data_dir = tmp_path_factory.mktemp(f"datasetsql-{request.param}")
    with contextlib.ExitStack() as stack:
        catalog_url = stack.enter_context(private_schema()) if request.param == "postgres" else None
        settings = load(
            data_dir=data_dir,
            catalog_url=catalog_url,
            bootstrap_token="DDCI" + uuid.uuid4().hex,
            # Appended rows stay in the append buffer, so that reading them is tested too.
            append_fold_seconds=3600,
            append_fold_interval_seconds=3600,
            # The query API's row limit; a stored answer is not bound by it.
            query_max_rows=1000,
        )
        services = build_services(settings)
        bootstrap(settings, services.catalog, services.auth)
        services.appends.start()
        stack.callback(services.appends.stop)
        admin = services.auth.actor_for(Credential("developer_token", settings.bootstrap_token or ""))
        owner, owner_token = _user(services, admin, Role.EDITOR)
        tmp = tmp_path_factory.mktemp("csv")
        long_, text, double = ColumnType.LONG, ColumnType.STRING, ColumnType.DOUBLE
        orders = _dataset(
            services,
            owner,
            "orders",
            [Column("customer", long_), Column("amount", double)],
            "1,10.5\n1,2\n2,7\n3,1\n",
            tmp,
        )
        customers = _dataset(
            services, admin, "customers", [Column("id", long_), Column("name", text)], "1,ann\n2,bob\n", tmp
        )
        sales = _dataset(
            services,
            admin,
            "sales",
            [Column("region", text), Column("amount", long_)],
            "east,1\nwest,10\neast,100\nnorth,1000\n",
            tmp,
        )
        secret = _dataset(services, admin, "secret", [Column("code", text)], "hunter2\n", tmp)
        big = _dataset(
            services, owner, "big", [Column("n", long_)], "".join(f"{n}\n" for n in range(BIG_ROWS)), tmp
        )
        _share(services, admin, customers, owner)
        _share(services, admin, sales, owner)
        services.datasets.update(actor=admin, dataset_id=sales.id, changes={"pdp_enabled": True})
        east = PolicyFilter("region", PolicyOperator.EQUALS, ("east",))
        services.policies.create(
            actor=admin,
            dataset_id=sales.id,
            draft=PolicyDraft(name="east only", filters=(east,), users=(owner.user.id,)),
        )
        yield World(services, data_dir, admin, owner, owner_token, orders, customers, sales, secret, big)


# --- the service: QueryService.open_batches ------------------------------------------------------


def test_a_query_joins_two_datasets_the_owner_may_view(world):
    sql = (
        f'SELECT c.name, SUM(o.amount) AS total, COUNT(*) AS orders FROM "{world.orders.id}" o '
        f"JOIN `{world.customers.id}` c ON c.id = o.customer GROUP BY c.name ORDER BY c.name"
    )
    assert world.rows(sql) == [
        {"name": "ann", "total": 12.5, "orders": 2},
        {"name": "bob", "total": 7.0, "orders": 1},
    ]


def test_a_dataset_is_named_by_its_id_in_any_case_and_mysql_functions_work(world):
    sql = f"SELECT CONCAT(UPPER(name), '!') AS shout FROM `{world.customers.id.upper()}` ORDER BY id"
    assert world.rows(sql) == [{"shout": "ANN!"}, {"shout": "BOB!"}]


def test_a_dataset_the_owner_may_not_view_is_not_found_and_nothing_is_read(world):
    sql = f'SELECT * FROM "{world.orders.id}" o JOIN "{world.secret.id}" s ON true'
    with pytest.raises(NotFound) as caught:
        world.batches(sql)
    assert caught.value.message == f"dataset {world.secret.id} does not exist"
    assert "hunter2" not in caught.value.message
    assert world.read_areas() == []  # refused before the sandbox opened
    # The admin may view it: the same query then runs.
    assert len(world.rows(sql, world.admin)) == 4


def test_a_dataset_that_does_not_exist_is_refused_the_same_way(world):
    missing = str(uuid.uuid4())
    with pytest.raises(NotFound) as caught:
        world.batches(f"SELECT * FROM `{missing}`")
    assert caught.value.message == f"dataset {missing} does not exist"


def test_a_row_level_policy_applies_to_the_owner(world):
    sql = f'SELECT region, amount FROM "{world.sales.id}" ORDER BY amount'
    assert world.rows(sql) == [{"region": "east", "amount": 1}, {"region": "east", "amount": 100}]
    # Aggregates, joins and subqueries see only those rows too: the filter is inside the view.
    totals = f'SELECT COUNT(*) AS n, SUM(amount) AS total FROM "{world.sales.id}"'
    assert world.rows(totals) == [{"n": 2, "total": 101}]
    # The admin (CO_OWNER and above) sees every row.
    assert world.rows(totals, world.admin) == [{"n": 4, "total": 1111}]


def test_rows_appended_but_not_yet_folded_are_read(world):
    dataset = world.services.datasets.create(
        actor=world.owner, name="appended", description="", columns=[Column("n", ColumnType.LONG)]
    )
    credential = Credential("developer_token", world.owner_token)
    for n in (1, 2, 3):
        world.services.appends.submit(
            credential=credential, dataset_id=dataset.id, values=str(n), delimiter=","
        ).result(30)
    assert world.services.datasets.buffered_rows(dataset.id)  # still buffered
    assert world.rows(f'SELECT SUM(n) AS total FROM "{dataset.id}" JOIN "{dataset.id}" x USING (n)') == [
        {"total": 6}
    ]


@pytest.mark.parametrize(
    "escape",
    [
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM read_parquet('{file}')",
        "SELECT * FROM read_csv('http://127.0.0.1:1/x.csv')",
        "SELECT (SELECT content FROM read_text('/etc/passwd')) AS c FROM \"{orders}\"",
        "SELECT * FROM \"{orders}\", LATERAL read_parquet('{file}')",
        "SELECT * FROM '{file}'",
    ],
)
def test_the_sandbox_still_refuses_files_and_urls(world, escape):
    file = world.services.store.current_files(world.secret.id)[0]
    sql = escape.format(file=file, orders=world.orders.id)
    # A quoted path in FROM is a table name to sqlglot: no dataset has it (NotFound), and it is
    # never read as a file.
    with pytest.raises((InvalidSql, NotFound)) as caught:
        world.rows(sql)
    assert "hunter2" not in caught.value.message


@pytest.mark.parametrize(
    ("sql", "error", "says"),
    [
        ("SELEC * FROM x", InvalidSql, "could not parse the query"),
        ('SELECT nope FROM "{orders}"', InvalidSql, 'Referenced column "nope" not found'),
        ('INSERT INTO "{orders}" VALUES (1, 2)', InvalidSql, "only read-only queries are allowed"),
        ('SELECT 1; SELECT * FROM "{orders}"', InvalidSql, "the query must be one statement"),
        (
            "SELECT 1 AS one",
            BadRequest,
            'the query reads no dataset; name each by its id, e.g. FROM "<dataset id>"',
        ),
    ],
)
def test_a_bad_query_says_what_is_wrong(world, sql, error, says):
    with pytest.raises(error) as caught:
        world.batches(sql.format(orders=world.orders.id))
    assert type(caught.value) is error
    assert says in caught.value.message


def test_a_big_result_streams_in_several_batches_and_releases_the_sandbox(world):
    reader = world.batches(f'SELECT n, n * 2 AS twice FROM "{world.big.id}"')
    sizes, total = [], 0
    for batch in reader:
        sizes.append(batch.num_rows)
        total += sum(batch.column("n").to_pylist())
    assert sum(sizes) == BIG_ROWS > world.services.settings.query_max_rows
    assert len(sizes) > 1
    assert total == BIG_ROWS * (BIG_ROWS - 1) // 2
    assert world.read_areas() == []


def _with_a_buffered_row(world: World) -> Dataset:
    """A dataset whose one row waits in the append buffer: a query over it has a read area."""
    dataset = world.services.datasets.create(
        actor=world.owner, name="buffered", description="", columns=[Column("n", ColumnType.LONG)]
    )
    credential = Credential("developer_token", world.owner_token)
    world.services.appends.submit(
        credential=credential, dataset_id=dataset.id, values="1", delimiter=","
    ).result(30)
    return dataset


def test_closing_the_reader_early_releases_the_sandbox(world):
    appended = _with_a_buffered_row(world)
    reader = world.batches(f'SELECT n FROM "{world.big.id}" UNION ALL SELECT n FROM "{appended.id}"')
    reader.read_next_batch()
    assert len(world.read_areas()) == 1  # the buffered row's file, while the query runs
    reader.close()
    assert world.read_areas() == []


# --- the connector ------------------------------------------------------------------------------


class OwnersDatasets:
    """What the run engine gives the connector: open_batches as the stream's owner."""

    def __init__(self, world: World) -> None:
        self._world = world

    def open_batches(self, sql: str) -> pa.RecordBatchReader:
        return self._world.services.query.open_batches(actor=self._world.owner, sql=sql)


def context(world: World, query: str, *, batch_rows: int = 65_536, datasets: Any = "owner") -> RunContext:
    return RunContext(
        config={"query": query},
        credentials={},
        account_type=None,
        columns=(),
        state={},
        update_method=UpdateMethod.REPLACE,
        network=None,  # type: ignore[arg-type] - dataset-sql reaches no network
        cancelled=lambda: False,
        batch_rows=batch_rows,
        datasets=OwnersDatasets(world) if datasets == "owner" else datasets,
    )


def test_the_connector_describes_itself():
    connector = DatasetSqlConnector()
    assert (connector.key, connector.name, connector.account_types) == (
        "dataset-sql",
        "Dataset SQL",
        frozenset(),
    )
    assert [(item.name, item.required) for item in connector.config_items] == [("query", True)]


@pytest.mark.parametrize(
    ("query", "error", "says"),
    [
        ("  ", BadRequest, "the connector's configuration needs 'query'"),
        ("SELEC 1", InvalidSql, "could not parse the query"),
        ("SELECT * FROM read_csv('/etc/passwd')", InvalidSql, "read_csv() is not allowed"),
        ("SELECT 1", BadRequest, "the query reads no dataset"),
    ],
)
def test_the_connector_checks_its_query_when_the_stream_is_made(query, error, says):
    with pytest.raises(error) as caught:
        DatasetSqlConnector().check({"query": query}, network=None)  # type: ignore[arg-type]
    assert says in caught.value.message


def test_a_query_naming_datasets_passes_the_check_whether_or_not_they_exist_yet():
    query = f'SELECT * FROM "{uuid.uuid4()}" a JOIN `{uuid.uuid4()}` b USING (id)'
    DatasetSqlConnector().check({"query": query}, network=None)  # type: ignore[arg-type]


def test_the_connector_materialises_the_query_as_the_owner_in_batches_of_at_most_batch_rows(world):
    sql = f'SELECT b.n, s.region FROM "{world.big.id}" b JOIN "{world.sales.id}" s ON b.n = s.amount ORDER BY b.n'
    source = DatasetSqlConnector().open(context(world, sql))
    try:
        assert source.schema.names == ["n", "region"]
        rows = [row for batch in source.batches() for row in batch.to_pylist()]
        assert rows == [{"n": 1, "region": "east"}, {"n": 100, "region": "east"}]  # the policy applied
        assert source.state() == {}
    finally:
        source.close()

    source = DatasetSqlConnector().open(context(world, f'SELECT n FROM "{world.big.id}"', batch_rows=10_000))
    try:
        sizes = [batch.num_rows for batch in source.batches()]
    finally:
        source.close()
    assert sum(sizes) == BIG_ROWS
    assert max(sizes) <= 10_000
    assert world.read_areas() == []


def test_closing_the_source_early_releases_the_sandbox(world):
    appended = _with_a_buffered_row(world)
    sql = f'SELECT n FROM "{world.big.id}" UNION ALL SELECT n FROM "{appended.id}"'
    source = DatasetSqlConnector().open(context(world, sql, batch_rows=100))
    assert len(next(iter(source.batches()))) == 100
    assert len(world.read_areas()) == 1
    source.close()
    assert world.read_areas() == []
    assert list(source.batches()) == []


@pytest.mark.parametrize(
    ("sql", "code", "says"),
    [
        ("SELEC 1", "invalid_sql", "could not parse the query"),
        ('SELECT nope FROM "{orders}"', "invalid_sql", 'Referenced column "nope" not found'),
        ('SELECT * FROM "{secret}"', "dataset_not_found", "dataset {secret} does not exist"),
        ("SELECT 1 AS one", "source_error", "the query reads no dataset"),
    ],
)
def test_the_connectors_errors_say_what_the_query_did_wrong(world, sql, code, says):
    names = {"orders": world.orders.id, "secret": world.secret.id}
    with pytest.raises(SourceError) as caught:
        DatasetSqlConnector().open(context(world, sql.format(**names)))
    assert caught.value.code == code
    assert caught.value.status == 400
    assert says.format(**names) in caught.value.message


def test_an_error_of_the_data_becomes_the_runs_error(world):
    # DuckDB may meet the bad row before the first batch is handed over or after: either way.
    sql = f"SELECT CAST(CASE WHEN n = {BIG_ROWS - 1} THEN 'x' ELSE n END AS SIGNED) AS n FROM \"{world.big.id}\""
    with pytest.raises(SourceError) as caught:
        source = DatasetSqlConnector().open(context(world, sql, batch_rows=1000))
        try:
            for _ in source.batches():
                pass
        finally:
            source.close()
    assert caught.value.code == "invalid_sql"
    assert "Could not convert string 'x'" in caught.value.message
    assert world.read_areas() == []


def test_a_query_past_the_time_limit_ends_the_run_while_it_reads(world):
    services = world.services
    hurried = QueryService(
        datasets=services.datasets,
        store=services.store,
        policies=services.policies,
        audit=services.audit,
        limits=QueryLimits(timeout_seconds=1, max_rows=10, threads=1, memory_limit="1GB"),
    )

    class Hurried:
        def open_batches(self, sql: str) -> pa.RecordBatchReader:
            return hurried.open_batches(actor=world.owner, sql=sql)

    endless = f'SELECT a.n FROM "{world.big.id}" a, "{world.big.id}" b'  # 2 * 10^10 rows
    source = DatasetSqlConnector().open(context(world, endless, datasets=Hurried()))
    read = 0
    with pytest.raises(SourceError) as caught:
        try:
            for batch in source.batches():
                read += batch.num_rows
        finally:
            source.close()
    assert read > 0  # the error came while reading, across the Arrow stream
    assert caught.value.code == "query_limit_exceeded"
    assert caught.value.message == "the query ran longer than 1 s; filter, aggregate or add a LIMIT"
    assert "Traceback" not in caught.value.message


def test_a_result_with_two_columns_of_one_name_is_refused(world):
    sql = f'SELECT o.customer AS id, c.id FROM "{world.orders.id}" o JOIN "{world.customers.id}" c ON c.id = o.customer'
    with pytest.raises(SourceError, match="more than one column named 'id'") as caught:
        DatasetSqlConnector().open(context(world, sql))
    assert caught.value.code == "invalid_sql"


def test_the_connector_needs_the_run_engines_dataset_reader(world):
    with pytest.raises(SourceError, match="dataset reader"):
        DatasetSqlConnector().open(context(world, "SELECT 1", datasets=None))


def test_a_dataflow_has_its_own_time_limit_in_place_of_the_querys(world):
    services = world.services
    hurried = QueryService(
        datasets=services.datasets,
        store=services.store,
        policies=services.policies,
        audit=services.audit,
        limits=QueryLimits(timeout_seconds=1, max_rows=10, threads=1, memory_limit="1GB"),
    )
    endless = f'SELECT a.n FROM "{world.big.id}" a, "{world.big.id}" b'
    started = time.monotonic()
    reader = hurried.open_batches(actor=world.owner, sql=endless, timeout_seconds=2.5)
    with pytest.raises(pa.ArrowInvalid, match="longer than 2.5 s"):
        try:
            for _ in reader:
                pass
        finally:
            reader.close()
    assert time.monotonic() - started >= 2.4  # the query's own 1 s limit did not apply
