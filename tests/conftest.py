"""Fixtures: real servers (SQLite and PostgreSQL catalogs, and S3 storage for the modules marked
``s3_storage``), pydomo clients, unique names."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.support.postgres import private_schema
from tests.support.s3 import MotoServer, moto_server
from tests.support.server import RunningServer

S3_FLAVOUR = "s3"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The ``server`` fixture's S3 flavour runs only for modules marked ``s3_storage`` (the DataSet,
    Stream and query suites): the rest do not touch storage differently, and would only add time."""
    keep, drop = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        flavour = callspec.params.get("server") if callspec is not None else None
        wanted = flavour != S3_FLAVOUR or item.get_closest_marker("s3_storage") is not None
        (keep if wanted else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(scope="session")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """moto's S3 server, one per test session (per xdist worker)."""
    with moto_server(tmp_path_factory.mktemp("moto")) as running:
        yield running


@pytest.fixture(scope="session", params=["sqlite", "postgres", S3_FLAVOUR])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    """A running server with the embedded SQLite catalog, with PostgreSQL, and (modules marked
    ``s3_storage`` only) with SQLite and its tables in a moto S3 bucket."""
    data_dir = tmp_path_factory.mktemp(f"server-{request.param}")
    if request.param == "sqlite":
        running = RunningServer(data_dir=data_dir, catalog_url=None).start()
        yield running
        running.stop()
        return
    if request.param == S3_FLAVOUR:
        s3: MotoServer = request.getfixturevalue("moto")
        running = RunningServer(
            data_dir=data_dir, catalog_url=None, extra_env=s3.env(s3.new_bucket())
        ).start()
        yield running
        running.stop()
        return
    with private_schema() as catalog_url:
        running = RunningServer(data_dir=data_dir, catalog_url=catalog_url).start()
        yield running
        running.stop()


@pytest.fixture
def domo(server: RunningServer):  # type: ignore[no-untyped-def]
    """The unmodified pydomo SDK, pointed at the server."""
    from pydomo import Domo

    return Domo(
        server.client_id,
        server.client_secret,
        api_host=server.host,
        use_https=False,
        scope=["data", "user"],
        request_timeout=120,
    )


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:10]
