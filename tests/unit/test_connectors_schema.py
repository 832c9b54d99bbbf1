"""Arrow schemas of sources against datasets' columns, and the connector registry."""

from __future__ import annotations

import datetime as dt
import decimal
import zoneinfo

import pyarrow as pa
import pytest

from datagrove.connectors.arrow_schema import columns_for, conform
from datagrove.connectors.base import SchemaChanged, SourceError
from datagrove.connectors.registry import connector
from datagrove.errors import BadRequest
from datagrove.tables.types import Column, ColumnType

L, D, DEC, B, DT, DTT, S = (
    ColumnType.LONG,
    ColumnType.DOUBLE,
    ColumnType.DECIMAL,
    ColumnType.BOOLEAN,
    ColumnType.DATE,
    ColumnType.DATETIME,
    ColumnType.STRING,
)


def test_arrow_types_map_to_domo_types() -> None:
    schema = pa.schema(
        [
            ("i8", pa.int8()),
            ("u64", pa.uint64()),
            ("f32", pa.float32()),
            ("dec", pa.decimal128(12, 3)),
            ("b", pa.bool_()),
            ("d", pa.date32()),
            ("ts", pa.timestamp("ns")),
            ("tz", pa.timestamp("s", tz="Europe/Paris")),
            ("s", pa.string()),
            ("ls", pa.large_string()),
            ("n", pa.null()),
        ]
    )
    assert [c.type for c in columns_for(schema)] == [L, L, D, DEC, B, DT, DTT, DTT, S, S, S]


def test_a_type_without_a_domo_counterpart_is_named() -> None:
    with pytest.raises(SourceError, match="'blob'.*binary"):
        columns_for(pa.schema([("blob", pa.binary())]))


def test_names_that_differ_only_in_case_cannot_become_a_dataset() -> None:
    with pytest.raises(SourceError, match="more than once"):
        columns_for(pa.schema([("a", pa.int64()), ("A", pa.int64())]))


def test_conform_widens_and_reorders_to_the_dataset_schema() -> None:
    paris = zoneinfo.ZoneInfo("Europe/Paris")
    batch = pa.RecordBatch.from_pydict(
        {
            "ts": pa.array(
                [dt.datetime(2024, 1, 1, 12, tzinfo=paris)], pa.timestamp("ns", tz="Europe/Paris")
            ),
            "n": pa.array([7], pa.int32()),
            "x": pa.array([1.5], pa.float32()),
            "dec": pa.array([decimal.Decimal("1.123456789016")], pa.decimal128(20, 12)),
            "s": pa.array(["é"], pa.large_string()),
            "nothing": pa.nulls(1),
        }
    )
    columns = [
        Column("n", L),
        Column("x", D),
        Column("dec", DEC),
        Column("ts", DTT),
        Column("s", S),
        Column("nothing", DT),
    ]
    out = conform(batch, columns)
    assert out.schema == pa.schema([(c.name, c.type.arrow) for c in columns])
    assert out.to_pylist() == [
        {
            "n": 7,
            "x": 1.5,
            "dec": decimal.Decimal("1.1234567890"),
            "ts": dt.datetime(2024, 1, 1, 11, 0),  # UTC
            "s": "é",
            "nothing": None,
        }
    ]


@pytest.mark.parametrize(
    ("array", "column_type"),
    [
        (pa.array(["1"]), L),
        (pa.array([1.0]), L),
        (pa.array([1], pa.int64()), D),  # int64 -> double can lose digits
        (pa.array([1.5]), DEC),
        (pa.array([1]), S),
        (pa.array([dt.date(2024, 1, 1)]), DTT),
        (pa.array([dt.datetime(2024, 1, 1)]), DT),
        (pa.array([True]), L),
    ],
)
def test_conform_never_makes_a_lossy_cast(array: pa.Array, column_type: ColumnType) -> None:
    batch = pa.RecordBatch.from_arrays([array], names=["c"])
    with pytest.raises(SchemaChanged) as raised:
        conform(batch, [Column("c", column_type)])
    assert "'c'" in raised.value.message and column_type.value in raised.value.message
    assert str(array.type) in raised.value.message


def test_a_missing_or_extra_column_is_a_changed_schema() -> None:
    batch = pa.RecordBatch.from_pydict({"a": [1], "b": [2]})
    with pytest.raises(SchemaChanged, match="'b'"):
        conform(batch, [Column("a", L)])
    with pytest.raises(SchemaChanged, match="'c'"):
        conform(batch, [Column("a", L), Column("b", L), Column("c", L)])


def test_column_names_match_exactly() -> None:
    batch = pa.RecordBatch.from_pydict({"Amount": [1]})
    with pytest.raises(SchemaChanged, match="'Amount'"):
        conform(batch, [Column("amount", L)])


def test_a_value_too_large_for_its_column_is_a_source_error() -> None:
    batch = pa.RecordBatch.from_arrays([pa.array([2**64 - 1], pa.uint64())], names=["c"])
    with pytest.raises(SourceError, match="does not fit LONG"):
        conform(batch, [Column("c", L)])


def test_the_built_in_connectors_are_registered_as_entry_points() -> None:
    for key in ("postgresql", "mysql", "csv", "json", "parquet"):
        assert connector(key).key == key
    assert connector("csv") is connector("csv")


def test_an_unknown_connector_names_the_known_ones() -> None:
    with pytest.raises(BadRequest, match="known connectors: .*csv.*postgresql"):
        connector("oracle")
