"""Query answers streamed as JSON text written by DuckDB (``tables.json_stream``, ``json_rows``).

The fast path is held to the slow, obvious one: the same query through ``run_query`` (Arrow), its
values turned into Python objects and serialised by the API's own ``dumps``, must read back as
the same JSON, value for value and type for type.
"""

from __future__ import annotations

import decimal
import json
import threading
import time
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datagrove.api.responses import dumps
from datagrove.errors import InvalidSql, QueryLimitExceeded
from datagrove.tables.json_rows import RowForm
from datagrove.tables.json_stream import BATCH_ROWS, stream_query
from datagrove.tables.sandbox import QueryLimits, run_query
from datagrove.tables.types import ColumnType

LIMITS = QueryLimits(timeout_seconds=30, max_rows=100_000)


def write_dataset(folder: Path, table: pa.Table) -> tuple[str, list[str]]:
    path = folder / f"part-{time.monotonic_ns()}.parquet"
    pq.write_table(table, path)
    return f"SELECT * FROM read_parquet(['{path}'])", [str(path)]


def streamed(folder: Path, table: pa.Table, sql: str, form: RowForm, limits: QueryLimits = LIMITS) -> bytes:
    view, files = write_dataset(folder, table)
    rows = stream_query(sql, view_sql=view, files=files, limits=limits, form=form)
    return b"[" + b"".join(rows) + b"]"


def typed(value: Any) -> Any:
    """``value`` with the type of every leaf beside it (True == 1 == 1.0 in Python)."""
    if isinstance(value, list):
        return [typed(v) for v in value]
    if isinstance(value, dict):
        return {k: typed(v) for k, v in value.items()}
    return (type(value).__name__, value)


def parsed(text: bytes | str) -> Any:
    # Decimal keeps the digits of every number with a fraction or exponent, and still tells them
    # from integers.
    return typed(json.loads(text, parse_float=Decimal))


# --- held to the obvious path -------------------------------------------------------------------

_decimal_digits = 10**38 - 1
VALUES: dict[ColumnType, st.SearchStrategy[Any]] = {
    ColumnType.STRING: st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
    | st.sampled_from(['"', "\\", "\n", "\x00", "\x1f", "é 名 😀", "\u2028"]),
    ColumnType.LONG: st.integers(min_value=-(2**63), max_value=2**63 - 1),
    ColumnType.DOUBLE: st.floats(),  # NaN and ±Infinity included: both paths answer null
    ColumnType.DECIMAL: st.integers(min_value=-_decimal_digits, max_value=_decimal_digits).map(
        lambda n: Decimal(n).scaleb(-10, decimal.Context(prec=60))
    ),
    ColumnType.DATE: st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31)),
    ColumnType.DATETIME: st.datetimes(
        min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59, 999999)
    ),
    ColumnType.BOOLEAN: st.booleans(),
}


@st.composite
def tables(draw: st.DrawFn) -> pa.Table:
    """1-5 columns of Domo types, 0-30 rows, any value possibly null."""
    types = draw(st.lists(st.sampled_from(list(ColumnType)), min_size=1, max_size=5))
    rows = draw(st.integers(min_value=0, max_value=30))
    columns = {
        f"c{i} {t.value}": pa.array(
            draw(st.lists(st.none() | VALUES[t], min_size=rows, max_size=rows)), t.arrow
        )
        for i, t in enumerate(types)
    }
    return pa.table(columns)


def reference(folder: Path, table: pa.Table, sql: str, form: RowForm) -> bytes:
    """The slow path: Arrow values, as Python objects, serialised by the API's ``dumps``."""
    view, files = write_dataset(folder, table)
    result = run_query(sql, view_sql=view, files=files, limits=LIMITS)
    rows = [list(row.values()) for row in result.to_pylist()]
    if form is RowForm.OBJECTS:
        return dumps([dict(zip(result.column_names, row, strict=True)) for row in rows])
    return dumps(rows)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(table=tables())
def test_every_value_reads_back_as_the_obvious_serialisation_gives_it(tmp_path, table):
    sql = 'SELECT * FROM "dataset"'
    for form in RowForm:
        assert parsed(streamed(tmp_path, table, sql, form)) == parsed(reference(tmp_path, table, sql, form))


def test_decimals_keep_every_digit_and_a_fraction(tmp_path):
    values = [
        Decimal("1234567890123456789012345678.1234567891"),
        Decimal("10"),
        Decimal("-0.5"),
        Decimal("0"),
    ]
    table = pa.table({"d": pa.array(values, ColumnType.DECIMAL.arrow)})

    text = streamed(tmp_path, table, 'SELECT d FROM "dataset"', RowForm.ARRAYS)

    assert text == b"[[1234567890123456789012345678.1234567891],[10.0],[-0.5],[0.0]]"


def test_datetimes_have_a_fraction_only_when_they_have_one(tmp_path):
    stamps = [datetime(2024, 2, 29, 10, 11, 12), datetime(2024, 2, 29, 10, 11, 12, 500), datetime(1, 1, 1)]
    table = pa.table({"stamp": pa.array(stamps, ColumnType.DATETIME.arrow)})

    text = streamed(tmp_path, table, 'SELECT stamp FROM "dataset"', RowForm.ARRAYS)

    assert text == b'[["2024-02-29T10:11:12"],["2024-02-29T10:11:12.000500"],["0001-01-01T00:00:00"]]'


def test_other_types_of_expressions_get_json_too(tmp_path):
    table = pa.table({"n": [1]})
    sql = (
        "SELECT 0.1::FLOAT AS f, TIMESTAMPTZ '2024-01-01 10:00:00+02' AS tz, [1, 2] AS l, {'k': 'v'} AS s, "
        "TIME '01:02:03' AS t, NULL AS z, 'infinity'::DATE AS d"
    )
    view, files = write_dataset(tmp_path, table)
    rows = stream_query(sql, view_sql=view, files=files, limits=LIMITS, form=RowForm.OBJECTS)

    assert rows.types == ["DOUBLE", "DATETIME", "STRING", "STRING", "STRING", "STRING", "DATE"]
    assert json.loads(b"[" + b"".join(rows) + b"]") == [
        {
            "f": 0.1,
            "tz": "2024-01-01T08:00:00",
            "l": [1, 2],
            "s": {"k": "v"},
            "t": "01:02:03",
            "z": None,
            "d": "infinity",
        }
    ]


# --- the stream ---------------------------------------------------------------------------------


def test_names_and_types_are_known_before_any_row_and_duplicates_stay(tmp_path):
    view, files = write_dataset(tmp_path, pa.table({"a": [1], "b": ["x"]}))

    rows = stream_query(
        'SELECT a, b, a FROM "dataset"', view_sql=view, files=files, limits=LIMITS, form=RowForm.OBJECTS
    )

    assert (rows.columns, rows.types, rows.rows) == (["a", "b", "a"], ["LONG", "STRING", "LONG"], 0)
    assert b"".join(rows) == b'{"a":1,"b":"x","a":1}'
    assert rows.rows == 1


def test_rows_keep_the_querys_order_across_many_batches(tmp_path):
    table = pa.table({"n": list(range(3 * BATCH_ROWS + 5))})
    view, files = write_dataset(tmp_path, table)

    rows = stream_query(
        'SELECT n FROM "dataset" ORDER BY n DESC',
        view_sql=view,
        files=files,
        limits=LIMITS,
        form=RowForm.ARRAYS,
    )
    chunks = list(rows)

    assert len(chunks) >= 3  # one chunk per batch, each of whole rows
    assert all(chunk.endswith(b"]") for chunk in chunks)
    assert json.loads(b"[" + b"".join(chunks) + b"]") == [[n] for n in reversed(range(3 * BATCH_ROWS + 5))]


def test_passing_the_row_limit_part_way_raises_after_the_rows_before_it(tmp_path):
    view, files = write_dataset(tmp_path, pa.table({"n": list(range(3 * BATCH_ROWS))}))
    limits = QueryLimits(timeout_seconds=30, max_rows=BATCH_ROWS + 10)
    rows = stream_query(
        'SELECT n FROM "dataset"', view_sql=view, files=files, limits=limits, form=RowForm.ARRAYS
    )
    chunks = iter(rows)

    assert next(chunks).startswith(b"[0],[1],")
    with pytest.raises(QueryLimitExceeded, match=f"more than {BATCH_ROWS + 10} rows"):
        next(chunks)


def test_an_error_met_while_the_rows_come_is_invalid_sql(tmp_path):
    view, files = write_dataset(tmp_path, pa.table({"s": ["1"] * 3 * BATCH_ROWS + ["not a number"]}))
    rows = stream_query(
        'SELECT CAST(s AS INTEGER) FROM "dataset"',
        view_sql=view,
        files=files,
        limits=LIMITS,
        form=RowForm.ARRAYS,
    )

    with pytest.raises(InvalidSql, match="Conversion Error.*not a number"):
        list(rows)


def test_a_reader_slower_than_the_time_limit_is_stopped(tmp_path):
    view, files = write_dataset(tmp_path, pa.table({"n": list(range(3 * BATCH_ROWS))}))
    limits = QueryLimits(timeout_seconds=0.5, max_rows=100_000)
    rows = stream_query(
        'SELECT n FROM "dataset"', view_sql=view, files=files, limits=limits, form=RowForm.ARRAYS
    )
    chunks = iter(rows)
    next(chunks)
    time.sleep(1)

    with pytest.raises(QueryLimitExceeded, match="ran longer than 0.5 s"):
        list(chunks)


def test_errors_before_the_first_row_are_raised_at_once(tmp_path):
    view, files = write_dataset(tmp_path, pa.table({"n": [1]}))
    with pytest.raises(InvalidSql, match="no_such_column"):
        stream_query(
            'SELECT no_such_column FROM "dataset"',
            view_sql=view,
            files=files,
            limits=LIMITS,
            form=RowForm.ARRAYS,
        )
    with pytest.raises(InvalidSql, match="single SELECT"):
        stream_query("SELECT 1; SELECT 2", view_sql=view, files=files, limits=LIMITS, form=RowForm.ARRAYS)


def test_closing_early_or_finishing_leaves_no_query_running(tmp_path):
    view, files = write_dataset(tmp_path, pa.table({"n": list(range(3 * BATCH_ROWS))}))
    finished = stream_query(
        'SELECT n FROM "dataset"', view_sql=view, files=files, limits=LIMITS, form=RowForm.ARRAYS
    )
    list(finished)
    abandoned = stream_query(
        'SELECT n FROM "dataset"', view_sql=view, files=files, limits=LIMITS, form=RowForm.ARRAYS
    )
    next(iter(abandoned))
    abandoned.close()
    abandoned.close()  # idempotent

    assert [t for t in threading.enumerate() if t.name == "query-watchdog"] == []
