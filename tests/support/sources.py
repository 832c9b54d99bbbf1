"""Real sources for connector tests: a local HTTP file server, a PostgreSQL schema, a MariaDB database."""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import sqlalchemy as sa

from tests.support.postgres import SERVER_URL

MARIADB_URL = os.environ.get("DATAGROVE_TEST_MARIADB", "mysql+pymysql://root@127.0.0.1:3306/test")


@dataclass
class Served:
    body: bytes
    #: Seconds to wait between 64 KiB chunks (a slow source, for aborts and crashes).
    trickle: float = 0.0
    #: Close the connection after this many bytes (a source failing midway).
    fail_after: int | None = None
    #: The Authorization header required (401 without it).
    authorization: str | None = None


@dataclass
class FileServer:
    """Serves ``files`` (path -> Served) on 127.0.0.1; records the requests' headers."""

    files: dict[str, Served] = field(default_factory=dict)
    requests: list[dict[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                outer.requests.append(dict(self.headers))
                served = outer.files.get(self.path.split("?")[0])
                if served is None:
                    self.send_error(404)
                    return
                if served.authorization and self.headers.get("Authorization") != served.authorization:
                    self.send_error(401)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(served.body)))
                self.end_headers()
                sent = 0
                try:
                    while sent < len(served.body):
                        chunk = served.body[sent : sent + 65536]
                        if served.fail_after is not None and sent + len(chunk) > served.fail_after:
                            self.wfile.write(chunk[: served.fail_after - sent])
                            self.wfile.flush()
                            self.close_connection = True
                            return
                        self.wfile.write(chunk)
                        sent += len(chunk)
                        if served.trickle:
                            time.sleep(served.trickle)
                except (BrokenPipeError, ConnectionResetError):
                    return

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@dataclass(frozen=True)
class Database:
    """Where a source database lives, as an account's credentials name it."""

    host: str
    port: int
    database: str
    username: str
    password: str
    schema: str | None
    url: str

    def credentials(self) -> dict[str, str]:
        return {
            "host": self.host,
            "port": str(self.port),
            "database": self.database,
            "username": self.username,
            "password": self.password,
        }

    def execute(self, *statements: str) -> None:
        engine = sa.create_engine(self.url)
        try:
            with engine.begin() as db:
                for statement in statements:
                    db.execute(sa.text(statement))
        finally:
            engine.dispose()


def _unreachable(what: str, exc: Exception) -> None:
    if os.environ.get("CI"):
        raise exc
    pytest.skip(f"{what} is not reachable: {exc}")


@contextmanager
def postgres_source() -> Iterator[Database]:
    """A private schema on the test PostgreSQL, reached as a role with a password (so a test can
    look for the password in every response and log line)."""
    admin = sa.create_engine(SERVER_URL, isolation_level="AUTOCOMMIT")
    suffix = uuid.uuid4().hex[:10]
    schema, role, password = f"dg_src_{suffix}", f"dg_reader_{suffix}", f"Pw-{uuid.uuid4().hex}"
    try:
        with admin.connect() as db:
            db.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
            db.execute(sa.text(f"CREATE ROLE \"{role}\" LOGIN PASSWORD '{password}'"))
            db.execute(sa.text(f'GRANT USAGE, CREATE ON SCHEMA "{schema}" TO "{role}"'))
            # The connector's queries name tables without a schema, as a user's would.
            db.execute(sa.text(f'ALTER ROLE "{role}" SET search_path = "{schema}"'))
    except sa.exc.OperationalError as exc:
        admin.dispose()
        _unreachable("PostgreSQL", exc)
    url = sa.make_url(SERVER_URL)
    try:
        yield Database(
            host="127.0.0.1",
            port=url.port or 5432,
            database=url.database or "test",
            username=role,
            password=password,
            schema=schema,
            url=str(url.set(username=role, password=password).render_as_string(hide_password=False))
            + f"?options=-csearch_path%3D{schema}",
        )
    finally:
        with admin.connect() as db:
            db.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
            db.execute(sa.text(f'DROP ROLE IF EXISTS "{role}"'))
        admin.dispose()


@contextmanager
def mariadb_source() -> Iterator[Database]:
    """A database of its own on the test MariaDB, with a user and a password of its own."""
    admin = sa.create_engine(MARIADB_URL, isolation_level="AUTOCOMMIT")
    suffix = uuid.uuid4().hex[:10]
    name, user, password = f"dg_src_{suffix}", f"dgr_{suffix}", f"Pw-{uuid.uuid4().hex}"
    try:
        with admin.connect() as db:
            db.execute(sa.text(f"CREATE DATABASE `{name}`"))
            db.execute(sa.text(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'"))
            db.execute(sa.text(f"GRANT ALL ON `{name}`.* TO '{user}'@'%'"))
    except sa.exc.OperationalError as exc:
        admin.dispose()
        _unreachable("MariaDB", exc)
    url = sa.make_url(MARIADB_URL)
    try:
        yield Database(
            host="127.0.0.1",
            port=url.port or 3306,
            database=name,
            username=user,
            password=password,
            schema=None,
            url=str(
                url.set(username=user, password=password, database=name).render_as_string(hide_password=False)
            ),
        )
    finally:
        with admin.connect() as db:
            db.execute(sa.text(f"DROP DATABASE IF EXISTS `{name}`"))
            db.execute(sa.text(f"DROP USER IF EXISTS '{user}'@'%'"))
        admin.dispose()
