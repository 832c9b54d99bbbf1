"""What the database connectors (postgresql, mysql) share: their configuration items, where the
connection items come from, the incremental cursor, and error messages without credentials."""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pyarrow as pa

from datagrove.connectors.base import ConfigItem, require
from datagrove.connectors.network import NetworkPolicy
from datagrove.errors import BadRequest

CONFIG_ITEMS: Sequence[ConfigItem] = (
    ConfigItem("query", required=True, help="The SELECT whose rows the dataset receives."),
    ConfigItem(
        "cursorColumn",
        help="A column that only grows (an id, an update time): each run reads only rows whose value "
        "is above the last run's largest, ordered by it.",
    ),
    ConfigItem("host", help="The database server's host (or from the account)."),
    ConfigItem("port", help="The server's port (or from the account)."),
    ConfigItem("database", help="The database to connect to (or from the account)."),
    ConfigItem("username", help="The user to connect as (or from the account)."),
    ConfigItem("password", secret=True, help="The user's password (or from the account)."),
)

_CONNECTION_ITEMS = ("host", "port", "database", "username", "password")


@dataclass(frozen=True)
class Connection:
    host: str
    port: int
    database: str
    username: str
    password: str

    def __repr__(self) -> str:  # never shows the password in a traceback or log
        return f"Connection(host={self.host!r}, port={self.port}, database={self.database!r}, username={self.username!r})"


def connection(config: Mapping[str, str], credentials: Mapping[str, str], *, default_port: int) -> Connection:
    """The connection items. Those the account holds win over the stream's configuration: a user
    who may use an account but not see its password must not be able to send it to another host."""
    items = {name: credentials.get(name) or config.get(name) or "" for name in _CONNECTION_ITEMS}
    if not items["host"].strip():
        raise BadRequest("the connector's configuration needs 'host' (or an account holding it)")
    port_text = items["port"].strip() or str(default_port)
    try:
        port = int(port_text)
    except ValueError:
        raise BadRequest(f"the port {port_text!r} is not a number") from None
    if not 0 < port < 65536:
        raise BadRequest(f"the port {port} is out of range")
    return Connection(
        host=items["host"].strip(),
        port=port,
        database=items["database"].strip(),
        username=items["username"],
        password=items["password"],
    )


def check_config(config: Mapping[str, str], *, network: NetworkPolicy) -> None:
    """What both database connectors check when a stream is made: a query, and a host (if the
    stream names one; an account may give it) that the network policy lets them reach."""
    query(config)
    host = config.get("host", "").strip()
    if host:
        network.check_host(host)
    port = config.get("port", "").strip()
    if port and not port.isdigit():
        raise BadRequest(f"the port {port!r} is not a number")


def query(config: Mapping[str, str]) -> str:
    """The configured query without trailing semicolons (it is wrapped as a subquery)."""
    text = require(config, "query").strip()
    while text.endswith(";"):
        text = text[:-1].rstrip()
    return text


def scrub(message: str, conn: Connection) -> str:
    """``message`` on one line, with the password removed whatever the server or driver put in it."""
    if conn.password:
        message = message.replace(conn.password, "***")
    return " ".join(message.split())


class CursorTracker:
    """The largest value of the cursor column seen so far, as text for the next run's WHERE.

    Rows arrive ordered by the cursor column, so the last non-null value of the last batch with one
    is the largest (in the server's own ordering, collations included).
    """

    def __init__(self, column: str | None, previous: str | None) -> None:
        self.column = column
        self.value = previous

    def see(self, batch: pa.RecordBatch) -> None:
        if self.column is None or batch.num_rows == 0:
            return
        values = batch.column(self.column).drop_null()
        if len(values):
            self.value = cursor_text(values[len(values) - 1].as_py())

    def state(self) -> dict[str, str]:
        return {} if self.value is None else {"cursor": self.value}


def cursor_text(value: object) -> str:
    """A cursor value as a literal both servers read back as the same value."""
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return format(value, "f")
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)
