"""``disk_space`` recognises a full disk as each engine reports it — real errors, made by writing to
a small tmpfs filled to the last byte (root; see tests/support/tmpfs.py) or by capping a SQLite
database's size — and nothing else; the floor refuses below its bytes."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from datagrove.disk_space import is_disk_full, require_free_space, translate_disk_full
from datagrove.errors import BadRequest, DatagroveError, InsufficientStorage
from tests.support.tmpfs import filled, tmpfs


@pytest.fixture(scope="module")
def full(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A directory on a filesystem with no byte free."""
    with tmpfs(tmp_path_factory.mktemp("full"), size=1024**2) as mount, filled(mount):
        yield mount


def raised(action: Callable[[], object]) -> BaseException:
    with pytest.raises(Exception) as caught:  # noqa: PT011 - whatever the engine raises is the point
        action()
    return caught.value


def write_with_python(full: Path) -> None:
    with (full / "python.bin").open("wb", buffering=0) as out:
        out.write(b"x" * 65536)


def write_parquet_with_pyarrow(full: Path) -> None:
    pq.write_table(pa.table({"n": list(range(100_000))}), str(full / "pyarrow.parquet"))


def copy_with_duckdb(full: Path) -> None:
    target = full / "duckdb.csv"
    duckdb.connect().execute(f"COPY (SELECT range AS n FROM range(1000000)) TO '{target}' (FORMAT csv)")


def fill_a_capped_sqlite_database(tmp_path: Path) -> None:
    connection = sqlite3.connect(tmp_path / "capped.db")
    connection.execute("PRAGMA max_page_count = 4")  # SQLite reports SQLITE_FULL past it
    connection.execute("CREATE TABLE t (s TEXT)")
    for _ in range(100):
        connection.execute("INSERT INTO t VALUES (?)", ("x" * 4000,))
    connection.commit()


def fill_it_through_sqlalchemy(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'capped-sa.db'}")
    with engine.begin() as connection:
        connection.exec_driver_sql("PRAGMA max_page_count = 4")
        connection.exec_driver_sql("CREATE TABLE t (s TEXT)")
        for _ in range(100):
            connection.exec_driver_sql("INSERT INTO t VALUES (?)", ("x" * 4000,))


@pytest.mark.parametrize("write", [write_with_python, write_parquet_with_pyarrow, copy_with_duckdb])
def test_a_write_to_a_full_disk_is_recognised_from_python_pyarrow_and_duckdb(
    full: Path, write: Callable[[Path], None]
) -> None:
    assert is_disk_full(raised(lambda: write(full)))


def test_sqlite_full_is_recognised_raw_and_wrapped_by_sqlalchemy(tmp_path: Path) -> None:
    raw = raised(lambda: fill_a_capped_sqlite_database(tmp_path))
    assert isinstance(raw, sqlite3.OperationalError) and is_disk_full(raw)
    wrapped = raised(lambda: fill_it_through_sqlalchemy(tmp_path))
    assert isinstance(wrapped, sa.exc.OperationalError) and is_disk_full(wrapped)


def test_a_full_disk_is_recognised_as_the_cause_of_another_error(full: Path) -> None:
    try:
        try:
            write_with_python(full)
        except OSError as exc:
            raise DatagroveError("could not store part-1.parquet") from exc
    except DatagroveError as outer:
        assert is_disk_full(outer)


def test_other_errors_are_not_a_full_disk_even_when_they_quote_the_words() -> None:
    assert not is_disk_full(ValueError("could not convert 'abc' to LONG"))
    assert not is_disk_full(FileNotFoundError(2, "No such file or directory"))
    # A client's value quoted in our own message is not the OS speaking.
    assert not is_disk_full(BadRequest("line 3, column s: value 'No space left on device' is too long"))


def test_translate_turns_a_full_disk_into_507_and_lets_everything_else_through(full: Path) -> None:
    with pytest.raises(InsufficientStorage) as caught, translate_disk_full("the commit"):
        write_with_python(full)
    assert caught.value.status == 507 and caught.value.code == "insufficient_storage"
    assert caught.value.message.startswith("the commit failed: the server's disk is full")
    assert isinstance(caught.value.__cause__, OSError)
    with pytest.raises(KeyError), translate_disk_full("the commit"):
        raise KeyError("not a disk")


def test_the_floor_refuses_below_its_bytes_and_zero_turns_it_off(tmp_path: Path) -> None:
    require_free_space([tmp_path], floor=0, what="the upload")
    require_free_space([tmp_path], floor=1, what="the upload")
    require_free_space([tmp_path / "not" / "yet" / "made"], floor=1, what="the upload")
    with pytest.raises(InsufficientStorage, match="min_free_disk_bytes"):
        require_free_space([tmp_path], floor=2**62, what="the upload")
