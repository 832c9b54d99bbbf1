"""Fixtures: real servers (SQLite and PostgreSQL catalogs), pydomo clients, unique names."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.support.postgres import private_schema
from tests.support.server import RunningServer


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    """A running server, once with the embedded SQLite catalog and once with PostgreSQL."""
    data_dir = tmp_path_factory.mktemp(f"server-{request.param}")
    if request.param == "sqlite":
        running = RunningServer(data_dir=data_dir, catalog_url=None).start()
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
